"""Summary statistics of a shard, tallied while it is written (never by a second read).

The writer counts each distinct ``(bp_window_tag, action, action_mask)`` once per transition;
:func:`summarise` turns that tally into accepted/blocked counts, blocking probability overall
and per window (through :func:`fusion.sim.stats.per_window`, as the engine's own counts), and
how often each path index was feasible and chosen.

    >>> tally = {("pre", 0, (True, False)): 3, ("pre", -1, (False, False)): 1}
    >>> s = summarise(tally)
    >>> s["accepted"], s["blocked"], s["blocking_probability"], s["path_chosen"]
    (3, 1, 0.25, [3, 0])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fusion.sim.stats import blocking_probability, per_window

TallyKey = tuple[Any, int, tuple[bool, ...]]  # (window tag, action, mask)


def tally_keys(records: Sequence[Mapping[str, Any]]) -> list[TallyKey]:
    """What the writer tallies of each record: ``(bp_window_tag, action, action_mask)``.

    :param records: Transition records (parsed lines).

        >>> tally_keys([{"meta": {"bp_window_tag": "pre"}, "action": 0, "action_mask": [True]}])
        [('pre', 0, (True,))]
    """
    return [
        (record["meta"].get("bp_window_tag"), record["action"], tuple(record["action_mask"]))
        for record in records
    ]


def summarise(tally: Mapping[TallyKey, int]) -> dict[str, Any]:
    """Turn a writer's tally into the shard's summary stats.

    :param tally: Count of each ``(window_tag, action, mask)`` seen.
    :return: ``transitions``-level stats as plain JSON values.
    """
    width = max((len(key[2]) for key in tally), default=0)
    feasible = [0] * width
    chosen = [0] * width
    windows: dict[str, list[int]] = {}
    accepted = blocked = 0
    for (tag, action, mask), count in tally.items():
        counts = windows.setdefault(str(tag), [0, 0])
        counts[0] += count
        if action >= 0:
            accepted += count
            chosen[action] += count
        else:
            blocked += count
            counts[1] += count
        for index, ok in enumerate(mask):
            if ok:
                feasible[index] += count
    return {
        "accepted": accepted,
        "blocked": blocked,
        "blocking_probability": blocking_probability(accepted + blocked, blocked),
        "per_window": per_window(windows),
        "path_feasible": feasible,
        "path_chosen": chosen,
    }
