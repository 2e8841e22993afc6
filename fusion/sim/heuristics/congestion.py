"""Congestion-aware routing (XLRON's ``kca_ff``): the path whose links, weighted by their
km, are least occupied.

    >>> KCAFFPolicy.name, KCAFFPolicy.spectrum
    ('kca_ff', 'first_fit')
"""

from __future__ import annotations

from fusion.sim.heuristics.base import SpectrumRanked
from fusion.sim.policy import DecisionView


class KCAFFPolicy(SpectrumRanked):
    """Congestion-aware: the path with the lowest sum over its links of
    ``km x 1 / (1 - occupied / (slots + 1))``."""

    name = "kca_ff"

    def score(self, decision: DecisionView, path: int) -> float:
        spectrum = decision.spectrum
        slots, counts, lengths = spectrum.slots, spectrum.free_count, decision.lengths
        return sum(
            lengths[link] / (1.0 - (slots - counts[link]) / (slots + 1))
            for link in decision.links[path]
        )
