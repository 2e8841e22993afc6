"""The path whose spectrum rule places best over all candidates (XLRON's ``ff_ksp`` ...
``mu_ksp``): each scores a feasible path by where its own rule would put the request.

    >>> FFKSPPolicy.spectrum, MUKSPPolicy.spectrum
    ('first_fit', 'most_used')
"""

from __future__ import annotations

from fusion.sim.heuristics.base import SpectrumRanked
from fusion.sim.policy import DecisionView
from fusion.sim.spectrum import best_fit, first_fit, last_fit, place


class FFKSPPolicy(SpectrumRanked):
    """The path whose first-fit start is lowest."""

    name = "ff_ksp"

    def score(self, decision: DecisionView, path: int) -> float:
        return first_fit(decision.commons[path], decision.needs[path])


class LFKSPPolicy(SpectrumRanked):
    """The path whose last-fit start is highest."""

    name = "lf_ksp"
    spectrum = "last_fit"

    def score(self, decision: DecisionView, path: int) -> float:
        return -last_fit(decision.commons[path], decision.needs[path])


class BFKSPPolicy(SpectrumRanked):
    """The path whose best-fit block leaves the fewest slots free."""

    name = "bf_ksp"
    spectrum = "best_fit"

    def score(self, decision: DecisionView, path: int) -> float:
        return best_fit(decision.commons[path], decision.needs[path])[1]


class MUKSPPolicy(SpectrumRanked):
    """The path offering the most used start slot across the network."""

    name = "mu_ksp"
    spectrum = "most_used"

    def score(self, decision: DecisionView, path: int) -> float:
        usage = decision.spectrum.usage
        assert usage is not None  # the engine tracks usage for a most_used rule
        start = place("most_used", decision.commons[path], decision.needs[path], usage)
        return -usage[start]
