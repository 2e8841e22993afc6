"""Failure restoration: what a failure does to the lightpaths it cuts.

When links go down every lightpath that crosses one is torn down (its slots released) and,
in request order, moved to the first of its pair's candidates that crosses no failed link
and has room, at the start the run's spectrum rule picks (:func:`fusion.sim.spectrum.place`:
first-fit, last-fit, best-fit or most-used); a lightpath no candidate can carry is dropped.

    >>> from fusion.sim.spectrum import SpectrumState
    >>> spectrum = SpectrumState(num_links=3, slots=8)
    >>> spectrum.allocate((0,), 0, 2)
    >>> spectrum.allocate((2,), 0, 1)
    >>> lightpaths = {7: ((0,), 0, 2, 0, 1, 100)}
    >>> candidates = {(0, 1): Candidates([(0,), (1, 2)], [2, 2], [True, False])}
    >>> restore(spectrum, lightpaths, frozenset({0}), candidates.__getitem__, "last_fit")
    (1, 0)
    >>> lightpaths[7]
    ((1, 2), 6, 2, 0, 1, 100)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from fusion.sim.spectrum import SpectrumState, place

#: A lightpath: its links, first slot, slots, and its request's source, destination and rate.
Lightpath = tuple[tuple[int, ...], int, int, int, int, int]


class Reroutes(Protocol):
    """What restoration reads of a pair (:class:`fusion.sim.pairs.Pair` is one): per path its
    links, whether it is down, and the slots a bit rate takes on it (0: out of reach)."""

    @property
    def links(self) -> list[tuple[int, ...]]: ...
    @property
    def failed(self) -> list[bool]: ...
    def slots(self, rate: int) -> Sequence[int]: ...


@dataclass(frozen=True)
class Candidates:
    """A fixed :class:`Reroutes` (one figure per path for every rate), for tests and examples.

    :param links: Per path, its link indices.
    :param needs: Per path, the slots a request takes (0: out of reach).
    :param failed: Per path, whether it crosses a failed link.
    """

    links: list[tuple[int, ...]]
    needs: list[int]
    failed: list[bool]

    def slots(self, rate: int) -> Sequence[int]:
        """The slots per path, whatever the rate."""
        return self.needs


def restore(
    spectrum: SpectrumState,
    lightpaths: dict[int, Lightpath],
    failed: frozenset[int],
    pair_of: Callable[[tuple[int, int]], Reroutes],
    rule: str,
) -> tuple[int, int]:
    """Tear down every lightpath that crosses a failed link and move it, in request order, to
    its pair's first candidate that can carry it, where ``rule`` puts it; drop the others.

    :param spectrum: The live spectrum (changed in place).
    :param lightpaths: Request -> its lightpath (changed in place: moved or removed).
    :param failed: The links down now (the pairs' ``failed`` must already say so).
    :param pair_of: ``(src, dst)`` -> the pair's candidates.
    :param rule: The run's spectrum rule (``first_fit``, ``last_fit``, ``best_fit``,
        ``most_used``).
    :return: ``(restored, dropped)``.
    """
    restored = dropped = 0
    for request in sorted(lightpaths):
        links, start, need, src, dst, rate = lightpaths[request]
        if failed.isdisjoint(links):
            continue
        spectrum.release(links, start, need)
        del lightpaths[request]
        pair = pair_of((src, dst))
        for candidate, slots, down in zip(pair.links, pair.slots(rate), pair.failed, strict=True):
            if down or not slots:
                continue
            begin = place(rule, spectrum.common_free(candidate), slots, spectrum.usage)
            if begin >= 0:
                spectrum.allocate(candidate, begin, slots)
                lightpaths[request] = (candidate, begin, slots, src, dst, rate)
                restored += 1
                break
        else:
            dropped += 1
    return restored, dropped
