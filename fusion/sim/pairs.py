"""The candidate pairs: a node pair's K paths and the figures every request of it shares.

A :class:`Pair` holds what does not change while the run goes on (links, hops, km, the
slots a bit rate takes on each path, which paths are link-disjoint, the hops to a failure's
centre) and the one thing a failure changes (``failed``: which paths cross a link that is
down). :class:`Pairs` builds each pair on first use and, when the failed links change,
updates every pair it holds at once, so that a lookup on the hot path is one dict access.

    >>> from fusion.config.config import load_config
    >>> from fusion.sim.scenario import build_scenario
    >>> cfg = load_config()
    >>> scenario = build_scenario(cfg)
    >>> pairs = Pairs(scenario.topology, scenario.modulation, k=4, order="length", guard=1)
    >>> pair = pairs[0, 13]
    >>> pair.hops, pair.needs[100][0] > 0, pair.failed
    ([4, 4, 5, 5], True, [False, False, False, False])
    >>> pairs.set_failed(frozenset(pair.links[0])); pair.failed[0]
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from fusion.sim.failures import FailurePlan
from fusion.sim.modulation import ModulationTable
from fusion.sim.topology import CandidatePath, Topology


class Efficiency(dict[int, list[float]]):
    """Bit rate -> per path: the format's spectral efficiency (0: out of reach), on first use;
    an efficiency table's formats depend on the length only, so its row is found once.

    :param lengths: Per path, its km.
    :param table: The modulation table.
    """

    def __init__(self, lengths: list[float], table: ModulationTable) -> None:
        super().__init__()
        self._lengths, self._table = lengths, table
        self._fixed: list[float] | None = None

    def __missing__(self, rate: int) -> list[float]:
        table = self._table
        if table.kind == "efficiency":
            if self._fixed is None:
                self._fixed = [table.request_efficiency(0, km) for km in self._lengths]
            row = self[rate] = self._fixed
        else:
            row = self[rate] = [table.request_efficiency(rate, km) for km in self._lengths]
        return row


class Needs(dict[int, list[int]]):
    """Bit rate -> per path: slots incl. guard (0: out of reach), filled on first use.

    :param lengths: Per path, its km.
    :param table: The modulation table.
    :param efficiency: The pair's :class:`Efficiency` (an efficiency table's slots follow
        from it).
    :param guard: Guard slots added to every reachable path's slots.
    """

    def __init__(
        self, lengths: list[float], table: ModulationTable, efficiency: Efficiency, guard: int
    ) -> None:
        super().__init__()
        self._lengths, self._table, self._guard = lengths, table, guard
        self._efficiency = efficiency

    def __missing__(self, rate: int) -> list[int]:
        table = self._table
        if table.kind == "efficiency":  # ceil(rate / (SE x slot width)), SE per path found once
            step = table.slot_ghz
            slots = [
                math.ceil(rate / (se * step) - 1e-9) if se else 0 for se in self._efficiency[rate]
            ]
        else:
            slots = [table.slots(rate, km) for km in self._lengths]
        row = self[rate] = [n + self._guard if n else 0 for n in slots]
        return row


class FirstReach(dict[int, int]):
    """Bit rate -> slots on the first path a format reaches (0: none), filled on first use:
    the state's ``slots_needed``.

    :param needs: The pair's :class:`Needs`.
    """

    def __init__(self, needs: Needs) -> None:
        super().__init__()
        self._needs = needs

    def __missing__(self, rate: int) -> int:
        first = self[rate] = next((n for n in self._needs[rate] if n), 0)
        return first


@dataclass
class Pair:
    """What every request of one node pair shares: its K paths and their fixed figures.

    :param links: Per path, its link indices.
    :param hops: Per path, its links' count.
    :param needs: Bit rate -> per path: slots incl. guard (0: out of reach).
    :param slots_needed: Bit rate -> slots on the first path that reaches (0: none).
    :param disjoint: ``disjoint[i][j]``: paths ``i`` and ``j`` share no link.
    :param distance: Per path, hops to the failure's centre (-1 without a failure).
    :param failed: Per path, whether it crosses a link that is down now.
    :param lengths: Per path, its km.
    :param efficiency: Bit rate -> per path: spectral efficiency (0: out of reach).
    """

    links: list[tuple[int, ...]]
    hops: list[int]
    needs: Needs
    slots_needed: FirstReach
    disjoint: list[list[bool]]
    distance: list[int]
    failed: list[bool]
    lengths: list[float]
    efficiency: Efficiency

    def slots(self, rate: int) -> list[int]:
        """Per path, the slots a request of ``rate`` takes, guard band included (0: out of
        reach)."""
        return self.needs[rate]


def candidates(
    topology: Topology, modulation: ModulationTable, src: int, dst: int, k: int, order: str
) -> list[CandidatePath]:
    """A pair's K candidate paths in ``[general_settings] path_order``: ``length`` the k
    shortest by km (networkx's order); the others the k fewest-hop paths, sorted by hops,
    by hops then km, or by hops / spectral efficiency, ties by the node list's sha256.

    :param topology: The network.
    :param modulation: The modulation table (``spectral_resources`` weighs its efficiency).
    :param src: Source node.
    :param dst: Destination node.
    :param k: K.
    :param order: ``length``, ``hops``, ``hops_length`` or ``spectral_resources``.
    """
    if order == "length":
        return topology.k_paths(src, dst, k)
    paths = topology.k_paths(src, dst, k, by="hops")
    if order == "hops_length":
        return sorted(paths, key=lambda p: (p.hops, p.length_km))
    if order == "spectral_resources":
        efficiency = modulation.efficiency
        return sorted(paths, key=lambda p: p.hops / max(efficiency(p.length_km), 1.0))
    return paths


class Pairs(dict[tuple[int, int], Pair]):
    """``(src, dst)`` -> its :class:`Pair`, built on first use against the failed links.

    :param topology: The network.
    :param modulation: The modulation table.
    :param k: K, the candidates per pair.
    :param order: ``[general_settings] path_order``.
    :param guard: ``[topology_settings] guard_slots``.
    :param failure: The run's failure (its centre gives each path's distance), if any.
    """

    def __init__(
        self,
        topology: Topology,
        modulation: ModulationTable,
        *,
        k: int,
        order: str,
        guard: int,
        failure: FailurePlan | None = None,
    ) -> None:
        super().__init__()
        self._topology, self._modulation = topology, modulation
        self._k, self._order, self._guard, self._failure = k, order, guard, failure
        self.failed_links: frozenset[int] = frozenset()

    def candidates(self, src: int, dst: int) -> list[CandidatePath]:
        """The pair's K candidate paths (:func:`candidates`)."""
        return candidates(self._topology, self._modulation, src, dst, self._k, self._order)

    def set_failed(self, links: frozenset[int]) -> None:
        """Mark ``links`` as the links down now, in every pair built and to be built.

        :param links: Every failed link (empty: all repaired).
        """
        self.failed_links = links
        for pair in self.values():
            pair.failed = [not links.isdisjoint(path) for path in pair.links]

    def __missing__(self, key: tuple[int, int]) -> Pair:
        pair = self[key] = self._build(*key)
        return pair

    def _build(self, src: int, dst: int) -> Pair:
        paths = self.candidates(src, dst)
        lengths = [p.length_km for p in paths]
        efficiency = Efficiency(lengths, self._modulation)
        needs = Needs(lengths, self._modulation, efficiency, self._guard)
        failure, topology = self._failure, self._topology
        link_sets = [set(p.links) for p in paths]
        return Pair(
            links=[p.links for p in paths],
            hops=[p.hops for p in paths],
            needs=needs,
            slots_needed=FirstReach(needs),
            disjoint=[[a.isdisjoint(b) for b in link_sets] for a in link_sets],
            distance=[
                failure.distance_to_centre(topology, p.nodes) if failure else -1 for p in paths
            ],
            failed=[not self.failed_links.isdisjoint(p.links) for p in paths],
            lengths=lengths,
            efficiency=efficiency,
        )
