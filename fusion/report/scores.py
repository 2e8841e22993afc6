"""Normalized scores on blocking probability (D4RL's convention: 0 = random, 100 = expert) and
the relative change against a baseline, both paired seed by seed.

A policy's score over a set of seeds is ``100 x (BP_random - BP) / (BP_random - BP_expert)``
with each figure the mean over those seeds: the references are fixed numbers, as D4RL's and
Minari's ``ref_min_score``/``ref_max_score`` are, so the score is the one
``minari.get_normalized_score`` gives for mean episode returns (an episode of N decisions
returns ``N (1 - 2 BP)``, so the two agree exactly when N is the same on every seed). Its 95%
interval is paired: seed by seed, ``100 x (BP_random,s - BP_s) / (BP_random - BP_expert)``
(the same seed fixes the traffic and the failure for both policies), Student's t over those
(:func:`~fusion.report.intervals.interval`, ``n - 1`` degrees of freedom, unclipped), the
reference gap held fixed. So the random policy scores exactly 0 with an interval of zero width
and the expert exactly 100; a seed on which the two block alike is just one more seed. Only a
set of seeds over which they block alike *on average* leaves no room for a score (refused,
naming the seeds, never made up).

The change against a baseline is ``(BP - BP_base) / BP_base`` per seed (negative: less
blocking than the baseline), with the same interval. A seed on which neither blocks counts 0;
one on which the baseline blocks nothing and the policy blocks some has no relative change
(it is infinite): it is left out of the mean and the interval and named under
``undefined_seeds``, never counted as no change.

    >>> random, expert = {1: 0.25, 2: 0.5}, {1: 0.125, 2: 0.25}
    >>> score_interval({1: 0.1875, 2: 0.375}, random, expert)["mean"]
    50.0
    >>> score_interval(random, random, expert)["mean"], score_interval(expert, random, expert)["mean"]
    (0.0, 100.0)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from fusion.report.intervals import interval


def normalized_score(
    blocking: float, random: float, expert: float, seed: int | None = None
) -> float:
    """One seed's normalized score: ``100 x (random - blocking) / (random - expert)``.

    :param blocking: The policy's blocking probability on the seed.
    :param random: The random policy's blocking on the same seed (scores 0).
    :param expert: The expert policy's blocking on the same seed (scores 100).
    :param seed: The seed, named in the error.
    :raises ValueError: when ``random == expert`` (no room between the references).

        >>> normalized_score(0.25, 0.4, 0.1)
        50.0
        >>> normalized_score(0.1, 0.2, 0.2, seed=7)
        Traceback (most recent call last):
        ...
        ValueError: seed 7: the random and the expert policies both block 0.2000, so no score can place a policy between them (use more requests, a higher load or other seeds)
    """
    room = random - expert
    if room == 0:
        where = f"seed {seed}: " if seed is not None else ""
        raise ValueError(
            f"{where}the random and the expert policies both block {random:.4f}, so no score "
            "can place a policy between them (use more requests, a higher load or other seeds)"
        )
    # the ratio first: x / x is exactly 1 and 0 / x exactly 0, so the references score
    # exactly 100 and 0 (``+ 0.0`` turns the -0.0 of a negative room into 0.0)
    return 100.0 * ((random - blocking) / room) + 0.0


def relative_change(blocking: float, baseline: float) -> float:
    """One seed's change against a baseline: ``(blocking - baseline) / baseline``; 0 when
    neither blocks, ``inf`` when only the policy does (no ratio to a baseline of nothing).

    :param blocking: The policy's blocking probability on the seed.
    :param baseline: The baseline's blocking on the same seed.

        >>> relative_change(0.375, 0.5), relative_change(0.0, 0.0), relative_change(0.05, 0.0)
        (-0.25, 0.0, inf)
    """
    if baseline:
        return (blocking - baseline) / baseline
    return 0.0 if blocking == baseline else math.inf


def _paired(what: str, seeds: Mapping[int, float], **references: Mapping[int, float]) -> None:
    """Refuse references that do not cover the policy's seeds, naming the missing ones."""
    for name, reference in references.items():
        missing = sorted(set(seeds) - set(reference))
        if missing:
            raise ValueError(
                f"{what}: the {name} has no blocking on seed(s) {', '.join(map(str, missing))}; "
                "a paired figure needs every policy on the same seeds"
            )


def _mean(values: Mapping[int, float], seeds: Iterable[int]) -> float:
    """The mean over ``seeds`` (always summed in that order: equal inputs, equal means)."""
    picked = [values[seed] for seed in seeds]
    return sum(picked) / len(picked)


def _room(
    seeds: list[int], random: Mapping[int, float], expert: Mapping[int, float]
) -> tuple[float, float]:
    """The references' mean blocking over ``seeds``: the random policy's and the gap to the
    expert's (refused when there is none)."""
    mean_random = _mean(random, seeds)
    room = mean_random - _mean(expert, seeds)
    if room == 0:
        raise ValueError(
            f"seeds {', '.join(map(str, seeds))}: the random and the expert policies block "
            f"{mean_random:.4f} on average, so no score can place a policy between them (use "
            "more requests, a higher load or other seeds)"
        )
    return mean_random, room


def seed_scores(
    blocking: Mapping[int, float], random: Mapping[int, float], expert: Mapping[int, float]
) -> dict[int, float]:
    """Each seed's part of the score: ``100 x (BP_random,s - BP_s) / (BP_random - BP_expert)``
    with the references' gap over all the policy's seeds fixed; their mean is the score
    (:func:`score_interval`). The random policy's parts are 0; the expert's average 100.

    :param blocking: The policy's blocking probability per seed.
    :param random: The random policy's blocking per seed (a superset of the policy's seeds).
    :param expert: The expert policy's blocking per seed (likewise).
    :raises ValueError: naming the seeds a reference lacks, or the seeds over which random and
        expert block alike on average.

        >>> seed_scores({3: 0.75, 4: 0.25}, {3: 0.5, 4: 0.5}, {3: 0.25, 4: 0.25})
        {3: -100.0, 4: 100.0}
    """
    _paired("normalized score", blocking, **{"random policy": random, "expert policy": expert})
    seeds = list(blocking)
    _, room = _room(seeds, random, expert)
    return {seed: 100.0 * ((random[seed] - blocking[seed]) / room) + 0.0 for seed in seeds}


def score_interval(
    blocking: Mapping[int, float], random: Mapping[int, float], expert: Mapping[int, float]
) -> dict[str, Any]:
    """The normalized score over the policy's seeds (:func:`normalized_score` of the mean
    blockings) with its paired 95% interval: Student's t over the per-seed parts
    (:func:`seed_scores`), the reference gap fixed.

    :param blocking: The policy's blocking probability per seed.
    :param random: The random policy's blocking per seed.
    :param expert: The expert policy's blocking per seed.
    :raises ValueError: as :func:`seed_scores`.

        >>> agg = score_interval({1: 0.375, 2: 0.25}, {1: 0.5, 2: 0.5}, {1: 0.25, 2: 0.25})
        >>> agg["n"], agg["mean"], round(agg["ci95_low"], 1), round(agg["ci95_high"], 1)
        (2, 75.0, -242.6, 392.6)
    """
    parts = seed_scores(blocking, random, expert)
    seeds = list(blocking)
    result = interval(list(parts.values()))
    # the point is the references' ratio itself, so random is exactly 0 and expert exactly 100
    # (the mean of the parts can differ from it in the last bits); the interval moves with it
    exact = normalized_score(
        _mean(blocking, seeds), _mean(random, seeds), _mean(expert, seeds), None
    )
    shift = exact - result["mean"]
    result["mean"] = exact
    if result["ci95_low"] is not None:
        result["ci95_low"] += shift
        result["ci95_high"] += shift
    return result


def seed_changes(blocking: Mapping[int, float], baseline: Mapping[int, float]) -> dict[int, float]:
    """Each seed's relative change against the baseline (:func:`relative_change`).

    :param blocking: The policy's blocking probability per seed.
    :param baseline: The baseline's blocking per seed (a superset of the policy's seeds).
    :raises ValueError: naming the seeds the baseline lacks.

        >>> seed_changes({1: 0.75, 2: 0.125}, {1: 0.5, 2: 0.125})
        {1: 0.5, 2: 0.0}
    """
    _paired("relative change", blocking, baseline=baseline)
    return {seed: relative_change(bp, baseline[seed]) for seed, bp in blocking.items()}


def change_interval(blocking: Mapping[int, float], baseline: Mapping[int, float]) -> dict[str, Any]:
    """The mean relative change against the baseline with its paired 95% interval (Student's
    t over the per-seed changes, unclipped); seeds whose change is undefined (the baseline
    blocks nothing, the policy some) are left out and listed under ``undefined_seeds``.

    :param blocking: The policy's blocking probability per seed.
    :param baseline: The baseline's blocking per seed.
    :raises ValueError: as :func:`seed_changes`.

        >>> change_interval({1: 0.1, 2: 0.2}, {1: 0.1, 2: 0.2})["mean"]
        0.0
        >>> change = change_interval({1: 0.1, 2: 0.2, 3: 0.05}, {1: 0.1, 2: 0.1, 3: 0.0})
        >>> change["n"], change["mean"], change["undefined_seeds"]
        (2, 0.5, [3])
    """
    changes = seed_changes(blocking, baseline)
    result = interval([c for c in changes.values() if c != math.inf])
    undefined = sorted(seed for seed, c in changes.items() if c == math.inf)
    if undefined:
        result["undefined_seeds"] = undefined
    return result
