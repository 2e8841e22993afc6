"""The next transition of the same seed: the one rule behind ``next_state``, ``dones`` and
every successor a reader or learner takes.

A transition's successor is the next one of its seed (``t + 1``), never another seed's; the
last transition of a seed has none (its ``next_state`` is null, its ``done`` true, its
successor row zeros). :class:`NextStateLinker` applies the rule to records as they stream
(the shard writer at log time, the loader at read time); :func:`episode_ends` and
:func:`successors` to arrays in ``(seed, t)`` order (the array view, the exports, the learners).

    >>> linker = NextStateLinker()
    >>> [linker.push({"seed": s, "state": i, "next_state": None}) for s, i in [(1, "a"), (2, "b"), (1, "c")]]
    [None, None, {'seed': 1, 'state': 'a', 'next_state': 'c'}]
    >>> [r["state"] for r in linker.drain()]
    ['b', 'c']
    >>> seeds = np.array([1, 1, 2])
    >>> episode_ends(seeds).tolist(), successors(np.array([10, 11, 20]), episode_ends(seeds)).tolist()
    ([False, True, True], [11, 0, 0])
"""

from __future__ import annotations

from typing import Any

import numpy as np


class NextStateLinker:
    """Holds each record until the next record of its seed arrives, then fills its
    ``next_state`` with that record's ``state`` and hands it back."""

    def __init__(self) -> None:
        self._pending: dict[Any, dict[str, Any]] = {}

    def push(self, record: dict[str, Any]) -> dict[str, Any] | None:
        """Take the next record; return the record of its seed it completes, if any.

        :param record: A transition record (``seed``, ``state``, ``next_state``).
        """
        seed = record.get("seed")
        previous = self._pending.pop(seed, None)
        if previous is not None:
            previous["next_state"] = record["state"]
        self._pending[seed] = record
        return previous

    def drain(self) -> list[dict[str, Any]]:
        """The records still held (each seed's last), with a null ``next_state``, in the order
        their seeds were last pushed; the linker is empty afterwards."""
        held = list(self._pending.values())
        self._pending.clear()
        for record in held:
            record["next_state"] = None
        return held


def episode_ends(seeds: np.ndarray) -> np.ndarray:
    """``done`` per row of ``(seed, t)``-ordered data: true at each seed's last transition.

    :param seeds: ``(N,)`` the seed of each row, rows in ``(seed, t)`` order.
    """
    ends = np.ones(len(seeds), dtype=bool)
    ends[:-1] = seeds[1:] != seeds[:-1]
    return ends


def successors(values: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Each row's successor row (the next of its seed), zeros (false) after an end.

    :param values: ``(N, ...)`` rows in ``(seed, t)`` order.
    :param ends: ``(N,)`` from :func:`episode_ends`.
    """
    out = np.zeros_like(values)
    out[:-1] = values[1:]
    out[ends] = 0
    return out
