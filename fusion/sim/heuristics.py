"""The field's heuristics: XLRON's family of twelve, each a path rule and a spectrum rule.

Reference: micdoh/XLRON ``xlron/heuristics/heuristics.py``. Every heuristic ranks the feasible
candidate paths (the engine's mask) and allocates with its spectrum rule
(:func:`fusion.sim.spectrum.place`); the action logged is the path index, ``meta.start_slot``
the chosen start. Ties go to the lower path index (and the lower slot), as XLRON's
``argmin``/``argmax`` take the first.

=========  ==============================================================  ==========
name       path                                                            spectrum
=========  ==============================================================  ==========
ksp_ff     the first feasible candidate                                    first_fit
ksp_lf     the first feasible candidate                                    last_fit
ksp_bf     the first feasible candidate                                    best_fit
ksp_mu     the first feasible candidate                                    most_used
ff_ksp     the lowest first-fit start over all candidates                  first_fit
lf_ksp     the highest last-fit start over all candidates                  last_fit
bf_ksp     the tightest best-fit block over all candidates                 best_fit
mu_ksp     the most used start slot over all candidates                    most_used
kmc_ff     fewest new free blocks (cuts) its first-fit allocation opens    first_fit
kmf_ff     smallest free fragments left just below the allocation          first_fit
kme_ff     lowest spectrum entropy of its links after allocation           first_fit
kca_ff     lowest sum of km x 1 / (1 - occupied / (slots + 1)) over links  first_fit
=========  ==============================================================  ==========

Where ours differ from XLRON's: ``best_fit`` takes the smallest free block of the path's
common spectrum that holds the request (XLRON averages per-link block fits and adds gap
terms); the family ranks feasible paths only (XLRON's ``kca_ff`` may pick an infeasible path
and block); ``most_used`` counts, per slot, the links on which it is taken.

    >>> KSPLFPolicy().spectrum, sorted(h.name for h in FAMILY)[:3]
    ('last_fit', ['bf_ksp', 'ff_ksp', 'kca_ff'])
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from fusion.sim.policy import DecisionView, PathPolicy
from fusion.sim.spectrum import best_fit, block_count, first_fit, free_blocks, last_fit, place


def _feasible(mask: Sequence[bool]) -> list[int]:
    return [i for i, ok in enumerate(mask) if ok]


class KSPFFPolicy(PathPolicy):
    """k-shortest-path first-fit: the first feasible path in the candidates' order."""

    name = "ksp_ff"
    spectrum = "first_fit"
    reads_state = False
    first_feasible = True

    def rank(self, state: Mapping[str, Any], action_mask: Sequence[bool]) -> list[int]:
        return _feasible(action_mask)

    def rank_decision(self, decision: DecisionView) -> list[int]:
        return _feasible(decision.mask)  # the mask alone: the state is never built for it

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


class _SpectrumRanked(PathPolicy):
    """A heuristic whose path choice weighs the live spectrum: ranks by :meth:`score`
    (lower first, ties to the lower index); it needs the engine's decision."""

    spectrum = "first_fit"
    reads_state = False

    def rank(self, state: Mapping[str, Any], action_mask: Sequence[bool]) -> list[int]:
        raise TypeError(
            f"{self.name} weighs the live spectrum: the engine ranks with rank_decision(decision)"
        )

    def rank_decision(self, decision: DecisionView) -> list[int]:
        feasible = _feasible(decision.mask)
        if len(feasible) < 2:
            return feasible
        score = self.score
        return sorted(feasible, key=lambda i: (score(decision, i), i))

    def score(self, decision: DecisionView, path: int) -> float:
        """Lower is better.

        :param decision: The arrival.
        :param path: A feasible candidate's index.
        """
        raise NotImplementedError


class FFKSPPolicy(_SpectrumRanked):
    """The path whose first-fit start is lowest."""

    name = "ff_ksp"

    def score(self, decision: DecisionView, path: int) -> float:
        return first_fit(decision.commons[path], decision.needs[path])


class LFKSPPolicy(_SpectrumRanked):
    """The path whose last-fit start is highest."""

    name = "lf_ksp"
    spectrum = "last_fit"

    def score(self, decision: DecisionView, path: int) -> float:
        return -last_fit(decision.commons[path], decision.needs[path])


class BFKSPPolicy(_SpectrumRanked):
    """The path whose best-fit block leaves the fewest slots free."""

    name = "bf_ksp"
    spectrum = "best_fit"

    def score(self, decision: DecisionView, path: int) -> float:
        return best_fit(decision.commons[path], decision.needs[path])[1]


class MUKSPPolicy(_SpectrumRanked):
    """The path offering the most used start slot across the network."""

    name = "mu_ksp"
    spectrum = "most_used"

    def score(self, decision: DecisionView, path: int) -> float:
        usage = decision.spectrum.usage
        assert usage is not None  # the engine tracks usage for a most_used rule
        start = place("most_used", decision.commons[path], decision.needs[path], usage)
        return -usage[start]


def _after(decision: DecisionView, path: int) -> tuple[int, list[int]]:
    """The first-fit block of a path and its links' free masks after taking it."""
    need = decision.needs[path]
    start = first_fit(decision.commons[path], need)
    block = ((1 << need) - 1) << start
    free = decision.spectrum.free
    return start, [free[link] & ~block for link in decision.links[path]]


class KMCFFPolicy(_SpectrumRanked):
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


class KMFFFPolicy(_SpectrumRanked):
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


class KMEFFPolicy(_SpectrumRanked):
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


class KCAFFPolicy(_SpectrumRanked):
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


#: XLRON's family in its order, ``ksp_ff`` first.
FAMILY: tuple[type[PathPolicy], ...] = (
    KSPFFPolicy,
    KSPLFPolicy,
    KSPBFPolicy,
    KSPMUPolicy,
    FFKSPPolicy,
    LFKSPPolicy,
    BFKSPPolicy,
    MUKSPPolicy,
    KMCFFPolicy,
    KMFFFPolicy,
    KMEFFPolicy,
    KCAFFPolicy,
)
