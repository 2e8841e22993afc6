"""Path-selection policies: the heuristics an offline dataset is logged with and compared to.

A policy ranks the feasible paths of a request, best first; :meth:`PathPolicy.select_path`
takes the first. The ranking's second entry is what epsilon-mix takes (:class:`EpsilonMixPolicy`;
the seed card's :func:`select_path_with_epsilon_mix` is a thin wrapper of it).

    >>> mask = [False, True, True, False]
    >>> state = {"paths": [{"path_hops": h, "min_residual_slots": r} for h, r in
    ...          [(2, 9), (4, 30), (3, 12), (5, 40)]]}
    >>> KSPFFPolicy().select_path(state, mask), ShortestFeasiblePolicy().rank(state, mask)
    (1, [2, 1])
    >>> LeastCongestedPolicy().rank(state, mask)
    [1, 2]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fusion.config.vocabulary import POLICY_NAMES
from fusion.sim.heuristics import FAMILY, KSPFFPolicy
from fusion.sim.policy import DecisionView, PathPolicy, UniformSource
from fusion.sim.spectrum import path_feasible

__all__ = [
    "POLICIES",
    "DecisionView",
    "EpsilonMixPolicy",
    "KSPFFPolicy",
    "LeastCongestedPolicy",
    "PathPolicy",
    "RandomFeasiblePolicy",
    "ShortestFeasiblePolicy",
    "UniformSource",
    "compute_action_mask",
    "make_policy",
    "select_path_with_epsilon_mix",
]


class EpsilonMixPolicy(PathPolicy):
    """A behaviour policy's choice, or with probability ``epsilon`` its second choice.

    The draw comes from the run's seeded ``rng``, made only when at least two paths are
    feasible and ``0 < epsilon < 1``; there is no unseeded fallback: without an ``rng`` only
    the certain cases, 0 and 1, are accepted.

    :param base: The behaviour policy.
    :param epsilon: Probability of the second choice, in [0, 1].
    :param rng: The run's random stream (``None`` only for epsilon 0 or 1).
    :raises ValueError: for an epsilon outside [0, 1], or a random one without ``rng``.

    Example::

        >>> EpsilonMixPolicy(KSPFFPolicy(), 0.5, np.random.default_rng(0)).select_path({}, [True, True])
        0
        >>> EpsilonMixPolicy(KSPFFPolicy(), 1.0).select_path({}, [True, True])
        1
    """

    def __init__(self, base: PathPolicy, epsilon: float, rng: UniformSource | None = None) -> None:
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon must lie in [0, 1], got {epsilon!r}")
        if rng is None and 0.0 < epsilon < 1.0:
            raise ValueError(
                f"epsilon {epsilon} draws at random: pass the run's seeded generator as rng"
            )
        self.base = base
        self.epsilon = epsilon
        self.rng = rng
        self.name = f"{base.name}+epsilon{epsilon}"
        self.spectrum = base.spectrum
        self.reads_state = base.reads_state

    def rank(self, state: Mapping[str, Any], action_mask: Sequence[bool]) -> list[int]:
        return self.base.rank(state, action_mask)

    def rank_decision(self, decision: DecisionView) -> list[int]:
        return self.base.rank_decision(decision)

    def select_path(self, state: Mapping[str, Any], action_mask: Sequence[bool]) -> int:
        return self._mix(self.base.rank(state, action_mask))

    def select_decision(self, decision: DecisionView) -> int:
        return self._mix(self.base.rank_decision(decision))

    def _mix(self, ranking: list[int]) -> int:
        if not ranking:
            return -1
        # rng is None only when epsilon is 0 or 1: no draw is needed then
        if (
            len(ranking) >= 2
            and self.epsilon > 0.0
            and (self.rng is None or self.rng.random() < self.epsilon)
        ):
            return ranking[1]
        return ranking[0]


def select_path_with_epsilon_mix(
    policy: PathPolicy,
    state: Mapping[str, Any],
    action_mask: Sequence[bool],
    epsilon: float = 0.1,
    rng: UniformSource | None = None,
) -> int:
    """The seed card's epsilon-mix: ``EpsilonMixPolicy(policy, epsilon, rng).select_path(...)``.

    :param policy: The behaviour policy.
    :param state: The current state.
    :param action_mask: One boolean per path.
    :param epsilon: Probability of taking the second choice, in [0, 1].
    :param rng: The run's seeded generator; needed unless epsilon is 0 or 1.
    :return: The chosen path index, -1 when no path is feasible.

        >>> select_path_with_epsilon_mix(KSPFFPolicy(), {}, [True, True, False], epsilon=1.0)
        1
    """
    return EpsilonMixPolicy(policy, epsilon, rng).select_path(state, action_mask)


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
    reads_state = False

    def __init__(self, rng: np.random.Generator | None = None) -> None:
        self.rng = rng if rng is not None else np.random.default_rng()

    def rank(self, state: Mapping[str, Any], action_mask: Sequence[bool]) -> list[int]:
        feasible = [i for i, ok in enumerate(action_mask) if ok]
        if len(feasible) > 1:
            self.rng.shuffle(feasible)
        return feasible

    def rank_decision(self, decision: DecisionView) -> list[int]:
        return self.rank({}, decision.mask)  # the mask alone: the state is never built for it


#: The heuristics by config name (:data:`fusion.config.vocabulary.POLICY_NAMES`, in order):
#: XLRON's family (:mod:`fusion.sim.heuristics`), then the path-only ones above.
_ALL: tuple[type[PathPolicy], ...] = (
    *FAMILY,
    ShortestFeasiblePolicy,
    LeastCongestedPolicy,
    RandomFeasiblePolicy,
)
POLICIES: dict[str, type[PathPolicy]] = {cls.name: cls for cls in _ALL}
if tuple(POLICIES) != POLICY_NAMES:  # pragma: no cover - a developer's slip, caught at import
    raise ImportError(f"policies {tuple(POLICIES)} differ from the config's {POLICY_NAMES}")


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
    """The seed card's mask function: :func:`fusion.sim.spectrum.path_feasible` per path.

    The engine computes its masks with :func:`~fusion.sim.spectrum.path_feasible` itself; this
    wrapper applies the same rule to per-path figures a caller already has.

    :param k_paths: The K candidate paths as node lists.
    :param k_path_features: Per path: ``failure_mask``, ``largest_common_block`` (the longest
        block free on every link) and optionally ``reach_ok`` (``False``: no modulation
        format reaches, as the engine's 0 slots needed).
    :param slots_needed: Slots the request needs, guard band included.
    """
    if len(k_paths) != len(k_path_features):
        raise ValueError(f"{len(k_paths)} paths but {len(k_path_features)} feature sets")
    return [
        path_feasible(
            slots_needed if f.get("reach_ok", True) else 0,
            bool(f["failure_mask"]),
            f["largest_common_block"],
        )
        for f in k_path_features
    ]
