"""Path-selection policies: the heuristics an offline dataset is logged with and compared to.

A policy ranks the feasible paths of a request, best first; :meth:`PathPolicy.select_path`
takes the first. The ranking's second entry is what epsilon-mix takes
(:func:`fusion.reporting.dataset_logger.select_path_with_epsilon_mix`).

    >>> mask = [False, True, True, False]
    >>> state = {"paths": [{"path_hops": h, "min_residual_slots": r} for h, r in
    ...          [(2, 9), (4, 30), (3, 12), (5, 40)]]}
    >>> KSPFFPolicy().select_path(state, mask), ShortestFeasiblePolicy().rank(state, mask)
    (1, [2, 1])
    >>> LeastCongestedPolicy().rank(state, mask)
    [1, 2]
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np


class PathPolicy(ABC):
    """Chooses one of K candidate paths for a request."""

    #: The name used in configs (``[policy_settings] policy``).
    name: str = ""

    @abstractmethod
    def rank(self, state: Mapping[str, Any], action_mask: Sequence[bool]) -> list[int]:
        """Feasible path indices, best first (empty when none is feasible).

        :param state: The request's state (the seed card's keys).
        :param action_mask: One boolean per path: feasible now.
        """

    def select_path(self, state: Mapping[str, Any], action_mask: Sequence[bool]) -> int:
        """The best feasible path index, or -1 when none is feasible.

        :param state: The request's state.
        :param action_mask: One boolean per path.
        """
        ranking = self.rank(state, action_mask)
        return ranking[0] if ranking else -1


class UniformSource(Protocol):
    """What epsilon-mix draws from: a ``numpy.random.Generator``, or any ``random()``."""

    def random(self) -> float:
        """A uniform draw in [0, 1)."""
        ...


class EpsilonMixPolicy(PathPolicy):
    """A behaviour policy's choice, or with probability ``epsilon`` its second choice.

    The draw comes from the run's seeded ``rng``, made only when at least two paths are
    feasible; there is no unseeded fallback.

    :param base: The behaviour policy.
    :param epsilon: Probability of the second choice, in [0, 1].
    :param rng: The run's random stream.

    Example::

        >>> EpsilonMixPolicy(KSPFFPolicy(), 1.0, np.random.default_rng(0)).select_path({}, [True, True])
        1
    """

    def __init__(self, base: PathPolicy, epsilon: float, rng: UniformSource) -> None:
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon must lie in [0, 1], got {epsilon!r}")
        self.base = base
        self.epsilon = epsilon
        self.rng = rng
        self.name = f"{base.name}+epsilon{epsilon}"

    def rank(self, state: Mapping[str, Any], action_mask: Sequence[bool]) -> list[int]:
        return self.base.rank(state, action_mask)

    def select_path(self, state: Mapping[str, Any], action_mask: Sequence[bool]) -> int:
        ranking = self.base.rank(state, action_mask)
        if not ranking:
            return -1
        if len(ranking) >= 2 and self.epsilon > 0.0 and self.rng.random() < self.epsilon:
            return ranking[1]
        return ranking[0]


class KSPFFPolicy(PathPolicy):
    """k-shortest-path first-fit: the first feasible path in length order."""

    name = "ksp_ff"

    def rank(self, state: Mapping[str, Any], action_mask: Sequence[bool]) -> list[int]:
        return [i for i, ok in enumerate(action_mask) if ok]


class ShortestFeasiblePolicy(PathPolicy):
    """The feasible path with the fewest hops; ties go to the shorter (lower) index."""

    name = "shortest_feasible"

    def rank(self, state: Mapping[str, Any], action_mask: Sequence[bool]) -> list[int]:
        paths = state["paths"]
        return sorted(
            (i for i, ok in enumerate(action_mask) if ok), key=lambda i: paths[i]["path_hops"]
        )


class LeastCongestedPolicy(PathPolicy):
    """The feasible path whose busiest link has the most free slots; ties to the lower index."""

    name = "least_congested"

    def rank(self, state: Mapping[str, Any], action_mask: Sequence[bool]) -> list[int]:
        paths = state["paths"]
        return sorted(
            (i for i, ok in enumerate(action_mask) if ok),
            key=lambda i: -paths[i]["min_residual_slots"],
        )


class RandomFeasiblePolicy(PathPolicy):
    """A uniformly random order of the feasible paths, drawn from a seeded generator.

    :param rng: The run's generator (one stream per seed).
    """

    name = "random_feasible"

    def __init__(self, rng: np.random.Generator | None = None) -> None:
        self.rng = rng if rng is not None else np.random.default_rng()

    def rank(self, state: Mapping[str, Any], action_mask: Sequence[bool]) -> list[int]:
        feasible = [i for i, ok in enumerate(action_mask) if ok]
        if len(feasible) > 1:
            self.rng.shuffle(feasible)
        return feasible


POLICIES: dict[str, type[PathPolicy]] = {
    cls.name: cls
    for cls in (KSPFFPolicy, ShortestFeasiblePolicy, LeastCongestedPolicy, RandomFeasiblePolicy)
}


def make_policy(name: str, rng: np.random.Generator | None = None) -> PathPolicy:
    """Build a policy by its config name.

    :param name: One of :data:`POLICIES`.
    :param rng: The generator for policies that draw at random.
    :raises ValueError: naming the unknown policy and the known ones.
    """
    if name not in POLICIES:
        raise ValueError(f"unknown policy {name!r}; expected one of {sorted(POLICIES)}")
    cls = POLICIES[name]
    return cls(rng) if cls is RandomFeasiblePolicy else cls()


def compute_action_mask(
    k_paths: Sequence[Sequence[int]],
    k_path_features: Sequence[Mapping[str, Any]],
    slots_needed: int,
) -> list[bool]:
    """Which of K paths can carry a request now.

    A path is feasible when it crosses no failed link (``failure_mask`` 0) and its links share
    a free contiguous block of at least ``slots_needed`` slots (``largest_common_block``, the
    engine's per-path spectrum figure) and its modulation reaches (``reach_ok``).

    :param k_paths: The K candidate paths as node lists.
    :param k_path_features: Per path: ``failure_mask``, ``largest_common_block``, ``reach_ok``.
    :param slots_needed: Slots the request needs, guard band included.
    """
    if len(k_paths) != len(k_path_features):
        raise ValueError(f"{len(k_paths)} paths but {len(k_path_features)} feature sets")
    return [
        not f["failure_mask"]
        and f.get("reach_ok", True)
        and f["largest_common_block"] >= slots_needed
        for f in k_path_features
    ]
