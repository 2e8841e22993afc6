"""What the heuristics share: the feasible candidates, and the base of those that score each
feasible path on the live spectrum.

    >>> feasible([False, True, True])
    [1, 2]
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

from fusion.sim.policy import DecisionView, PathPolicy


def feasible(mask: Sequence[bool]) -> list[int]:
    """The feasible path indices, in the candidates' order.

    :param mask: One boolean per candidate path: feasible now.
    """
    return [i for i, ok in enumerate(mask) if ok]


class SpectrumRanked(PathPolicy):
    """A heuristic whose path choice weighs the live spectrum: ranks the feasible paths by
    :meth:`score` (lower first, ties to the lower index); it needs the engine's decision.

    A subclass gives ``name``, its ``spectrum`` rule (first-fit unless it says otherwise) and
    :meth:`score`.
    """

    spectrum = "first_fit"
    reads_state = False

    def rank(self, state: Mapping[str, Any], action_mask: Sequence[bool]) -> list[int]:
        raise TypeError(
            f"{self.name} weighs the live spectrum: the engine ranks with rank_decision(decision)"
        )

    def rank_decision(self, decision: DecisionView) -> list[int]:
        candidates = feasible(decision.mask)
        if len(candidates) < 2:
            return candidates
        score = self.score
        return sorted(candidates, key=lambda i: (score(decision, i), i))

    @abstractmethod
    def score(self, decision: DecisionView, path: int) -> float:
        """Lower is better.

        :param decision: The arrival.
        :param path: A feasible candidate's index.
        """
