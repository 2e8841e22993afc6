"""fusion's path-only heuristics: they rank by the logged state (or at random) and leave the
spectrum to ``[policy_settings] spectrum``.

    >>> mask = [False, True, True, False]
    >>> state = {"paths": [{"path_hops": h, "min_residual_slots": r} for h, r in
    ...          [(2, 9), (4, 30), (3, 12), (5, 40)]]}
    >>> ShortestFeasiblePolicy().rank(state, mask), LeastCongestedPolicy().rank(state, mask)
    ([2, 1], [1, 2])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fusion.sim.heuristics.base import feasible
from fusion.sim.policy import DecisionView, PathPolicy


class ShortestFeasiblePolicy(PathPolicy):
    """The feasible path with the fewest hops; ties go to the shorter (lower) index."""

    name = "shortest_feasible"

    def rank(self, state: Mapping[str, Any], action_mask: Sequence[bool]) -> list[int]:
        paths = state["paths"]
        return sorted(feasible(action_mask), key=lambda i: paths[i]["path_hops"])


class LeastCongestedPolicy(PathPolicy):
    """The feasible path whose busiest link has the most free slots; ties to the lower index."""

    name = "least_congested"

    def rank(self, state: Mapping[str, Any], action_mask: Sequence[bool]) -> list[int]:
        paths = state["paths"]
        return sorted(feasible(action_mask), key=lambda i: -paths[i]["min_residual_slots"])


class RandomFeasiblePolicy(PathPolicy):
    """A uniformly random order of the feasible paths, drawn from a seeded generator; each
    ranking sets :attr:`~fusion.sim.policy.PathPolicy.propensity` to 1/n over its n feasible
    paths (1.0 for none).

    :param rng: The run's generator (one stream per seed).

        >>> policy = RandomFeasiblePolicy(np.random.default_rng(0))
        >>> sorted(policy.rank({}, [True, False, True, True])), policy.propensity
        ([0, 2, 3], 0.3333333333333333)
    """

    name = "random_feasible"
    reads_state = False

    def __init__(self, rng: np.random.Generator | None = None) -> None:
        self.rng = rng if rng is not None else np.random.default_rng()

    @classmethod
    def for_run(cls, rng: np.random.Generator | None = None) -> RandomFeasiblePolicy:
        return cls(rng)

    def rank(self, state: Mapping[str, Any], action_mask: Sequence[bool]) -> list[int]:
        candidates = feasible(action_mask)
        if len(candidates) > 1:
            self.rng.shuffle(candidates)
            self.propensity = 1.0 / len(candidates)
        else:
            self.propensity = 1.0
        return candidates

    def rank_decision(self, decision: DecisionView) -> list[int]:
        return self.rank({}, decision.mask)  # the mask alone: the state is never built for it
