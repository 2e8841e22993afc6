"""The paths that leave the spectrum least fragmented after their first-fit allocation
(XLRON's ``kmc_ff``, ``kmf_ff``, ``kme_ff``): each scores what the allocation would leave on
the path's links.

    >>> sorted(cls.name for cls in (KMCFFPolicy, KMFFFPolicy, KMEFFPolicy))
    ['kmc_ff', 'kme_ff', 'kmf_ff']
"""

from __future__ import annotations

import math

from fusion.sim.heuristics.base import SpectrumRanked
from fusion.sim.policy import DecisionView
from fusion.sim.spectrum import block_count, first_fit, free_blocks


def _after(decision: DecisionView, path: int) -> tuple[int, list[int]]:
    """The first-fit block of a path and its links' free masks after taking it."""
    need = decision.needs[path]
    start = first_fit(decision.commons[path], need)
    block = ((1 << need) - 1) << start
    free = decision.spectrum.free
    return start, [free[link] & ~block for link in decision.links[path]]


class KMCFFPolicy(SpectrumRanked):
    """K-minimum cut: the path whose first-fit allocation opens the fewest new free blocks,
    summed over its links."""

    name = "kmc_ff"

    def score(self, decision: DecisionView, path: int) -> float:
        _, after = _after(decision, path)
        free = decision.spectrum.free
        return sum(
            max(block_count(new) - block_count(free[link]), 0)
            for link, new in zip(decision.links[path], after, strict=True)
        )


class KMFFFPolicy(SpectrumRanked):
    """K-minimum fragment: the path whose first-fit allocation leaves the fewest free slots
    stranded just below it (the free run ending at its start), summed over its links."""

    name = "kmf_ff"

    def score(self, decision: DecisionView, path: int) -> float:
        start, _ = _after(decision, path)
        below = (1 << start) - 1
        free = decision.spectrum.free
        total = 0
        for link in decision.links[path]:
            taken = ~free[link] & below
            total += start - taken.bit_length()  # free slots from the last taken one up
        return total


class KMEFFPolicy(SpectrumRanked):
    """K-minimum entropy: the path whose links' free spectrum is least fragmented after its
    first-fit allocation (sum over blocks of ``b/S * ln(S/b)``, summed over links)."""

    name = "kme_ff"

    def score(self, decision: DecisionView, path: int) -> float:
        slots = decision.spectrum.slots
        _, after = _after(decision, path)
        return sum(
            length / slots * math.log(slots / length)
            for mask in after
            for _, length in free_blocks(mask)
        )
