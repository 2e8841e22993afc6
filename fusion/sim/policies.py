"""Path-selection policies: the heuristics an offline dataset is logged with and compared to.

A policy ranks the feasible paths of a request, best first; :meth:`PathPolicy.select_path`
takes the first. The ranking's second entry is what epsilon-mix takes (:class:`EpsilonMixPolicy`;
the seed card's :func:`select_path_with_epsilon_mix` is a thin wrapper of it). The heuristics
themselves live in :mod:`fusion.sim.heuristics`, one registry line each
(:data:`fusion.config.heuristics.HEURISTICS`); this module gives their usual import path
(:data:`POLICIES`, :func:`make_policy`, the path-only classes) beside epsilon-mix and the seed
card's mask function.

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

from fusion.sim.heuristics import (
    POLICIES,
    KSPFFPolicy,
    LeastCongestedPolicy,
    RandomFeasiblePolicy,
    ShortestFeasiblePolicy,
    make_policy,
)
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

    Each selection sets :attr:`explored` (the second choice was taken) and :attr:`propensity`,
    the probability of the path taken: with two or more ranked paths ``1 - epsilon`` for the
    first choice and ``epsilon`` for the second, when the base policy is deterministic; a base
    that draws its order uniformly (``random_feasible``: 1/n) keeps its own, since both its
    first and second choice are each path with that probability; 1.0 with one path or none.

    :param base: The behaviour policy.
    :param epsilon: Probability of the second choice, in [0, 1].
    :param rng: The run's random stream (``None`` only for epsilon 0 or 1).
    :raises ValueError: for an epsilon outside [0, 1], or a random one without ``rng``.

    Example::

        >>> import numpy as np
        >>> EpsilonMixPolicy(KSPFFPolicy(), 0.5, np.random.default_rng(0)).select_path({}, [True, True])
        0
        >>> EpsilonMixPolicy(KSPFFPolicy(), 1.0).select_path({}, [True, True])
        1
        >>> mix = EpsilonMixPolicy(KSPFFPolicy(), 0.25, np.random.default_rng(1))
        >>> [(mix.select_path({}, [True, True]), mix.explored, mix.propensity) for _ in range(3)]
        [(0, False, 0.75), (0, False, 0.75), (1, True, 0.25)]
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
        self.chooses_start = base.chooses_start

    def rank(self, state: Mapping[str, Any], action_mask: Sequence[bool]) -> list[int]:
        return self.base.rank(state, action_mask)

    def start_slot(self, decision: DecisionView, path: int) -> int:
        return self.base.start_slot(decision, path)

    def rank_decision(self, decision: DecisionView) -> list[int]:
        return self.base.rank_decision(decision)

    def select_path(self, state: Mapping[str, Any], action_mask: Sequence[bool]) -> int:
        return self._mix(self.base.rank(state, action_mask))

    def select_decision(self, decision: DecisionView) -> int:
        return self._mix(self.base.rank_decision(decision))

    def _mix(self, ranking: list[int]) -> int:
        drawn = self.base.propensity  # < 1.0: the base drew a uniform order (1/n)
        if len(ranking) < 2 or self.epsilon <= 0.0:
            self.explored, self.propensity = False, drawn
            return ranking[0] if ranking else -1
        # rng is None only when epsilon is 0 or 1: no draw is needed then
        if self.rng is None or self.rng.random() < self.epsilon:
            self.explored = True
            self.propensity = self.epsilon if drawn == 1.0 else drawn
            return ranking[1]
        self.explored = False
        self.propensity = 1.0 - self.epsilon if drawn == 1.0 else drawn
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


def compute_action_mask(
    k_paths: Sequence[Sequence[int]],
    k_path_features: Sequence[Mapping[str, Any]],
    slots_needed: int,
) -> list[bool]:
    """The seed card's mask function: :func:`fusion.sim.spectrum.path_feasible` per path.

    The engine's path scan (:mod:`fusion.sim.scan`) inlines
    :func:`~fusion.sim.spectrum.path_feasible` on its hot path (``tests/test_engine_rules.py``
    checks the copy against it); this wrapper applies the rule to per-path figures a caller
    already has.

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
