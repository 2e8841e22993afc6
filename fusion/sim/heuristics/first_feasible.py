"""KSP-FF's family: the first feasible candidate in the candidates' order, each with its own
spectrum rule.

    >>> KSPLFPolicy().select_path({}, [False, True, True]), KSPLFPolicy.spectrum
    (1, 'last_fit')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fusion.sim.heuristics.base import feasible
from fusion.sim.policy import DecisionView, PathPolicy


class KSPFFPolicy(PathPolicy):
    """k-shortest-path first-fit: the first feasible path in the candidates' order."""

    name = "ksp_ff"
    spectrum = "first_fit"
    reads_state = False
    first_feasible = True

    def rank(self, state: Mapping[str, Any], action_mask: Sequence[bool]) -> list[int]:
        return feasible(action_mask)

    def rank_decision(self, decision: DecisionView) -> list[int]:
        return feasible(decision.mask)  # the mask alone: the state is never built for it

    def select_decision(self, decision: DecisionView) -> int:
        mask = decision.mask  # the first feasible path, found by list's own scan
        return mask.index(True) if True in mask else -1


class KSPLFPolicy(KSPFFPolicy):
    """The first feasible path, last-fit."""

    name = "ksp_lf"
    spectrum = "last_fit"


class KSPBFPolicy(KSPFFPolicy):
    """The first feasible path, best-fit."""

    name = "ksp_bf"
    spectrum = "best_fit"


class KSPMUPolicy(KSPFFPolicy):
    """The first feasible path, most-used slot."""

    name = "ksp_mu"
    spectrum = "most_used"
