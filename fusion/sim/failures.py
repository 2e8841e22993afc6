"""One failure per run: which links go down, when, when they come back, and where its centre is.

Kinds: ``link`` (one link), ``node`` (every link of a node), ``srlg`` (a shared-risk group of
links), ``geo`` (a disaster: every link that a walk of at most ``geo_hop_radius`` hops from the
centre node can cross, i.e. with an end at most ``radius - 1`` hops from the centre). The failure
hits at the arrival time of request ``t_fail_arrival_index`` (-1: the middle one) and is repaired
at the arrival time of the request ``t_repair_after_arrivals`` later.

    >>> from fusion.config.config import FailureSettings
    >>> from fusion.sim.topology import load_topology
    >>> import numpy as np
    >>> plan = plan_failure(FailureSettings(), load_topology("NSFNet"), np.arange(30_000.0))
    >>> plan.kind, sorted(plan.links), plan.t_fail, plan.t_repair
    ('link', [14], 15000.0, 25000.0)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fusion.config.config import FailureSettings
from fusion.errors import ConfigError
from fusion.sim.topology import Topology


@dataclass(frozen=True)
class FailurePlan:
    """A run's failure.

    :param kind: link, node, srlg or geo.
    :param links: Indices of the links that fail.
    :param centre: The failure's centre nodes (ends of the failed links, the node, the centre).
    :param t_fail: When it hits.
    :param t_repair: When it is repaired (``inf``: not within the run).
    """

    kind: str
    links: frozenset[int]
    centre: tuple[int, ...]
    t_fail: float
    t_repair: float

    def distance_to_centre(self, topology: Topology, nodes: Sequence[int]) -> int:
        """Fewest hops from any node of a path to any centre node (0: the path touches it)."""
        return min(topology.hop_distance(n, c) for n in nodes for c in self.centre)


def _parse_link(topology: Topology, text: str, key: str) -> tuple[int, int, tuple[int, ...]]:
    """``u-v`` (numbers or names; a name may hold ``-``) -> its ends and its links (both
    directions of the fibre on a directed topology)."""
    text = text.strip()
    for cut in (i for i, c in enumerate(text) if c == "-"):
        try:
            u, v = topology.node_id(text[:cut]), topology.node_id(text[cut + 1 :])
            return u, v, topology.fibre_links(u, v)
        except KeyError:
            continue
    raise ConfigError(
        f"[failure_settings] {key} = {text!r}: expected a link 'u-v' of {topology.name}"
    )


def _node(topology: Topology, node: int | str, key: str) -> int:
    try:
        return topology.node_id(str(node))
    except KeyError:
        raise ConfigError(
            f"[failure_settings] {key} = {node!r}: expected a node of {topology.name} "
            f"(0 .. {topology.num_nodes - 1}"
            + (", or its name" if topology.node_names else "")
            + ")"
        ) from None


def plan_failure(
    settings: FailureSettings, topology: Topology, arrival: np.ndarray
) -> FailurePlan | None:
    """Resolve the failure settings against a topology and a seed's arrival times.

    :param settings: ``[failure_settings]``.
    :param topology: The network.
    :param arrival: The seed's arrival times.
    :raises ConfigError: naming the key whose element or index does not exist.
    :return: The plan, or ``None`` for ``failure_type = none``.
    """
    kind = settings.failure_type
    if kind == "none":
        return None
    centre: tuple[int, ...]
    if kind == "link":
        u, v, fibre = _parse_link(topology, settings.failed_link, "failed_link")
        links, centre = frozenset(fibre), (u, v)
    elif kind == "node":
        node = _node(topology, settings.failed_node, "failed_node")
        links = frozenset(i for i, (a, b) in enumerate(topology.links) if node in (a, b))
        centre = (node,)
    elif kind == "srlg":
        parsed = [_parse_link(topology, t, "srlg_links") for t in settings.srlg_links.split(",")]
        links = frozenset(i for _, _, fibre in parsed for i in fibre)
        centre = tuple(sorted({n for u, v, _ in parsed for n in (u, v)}))
    else:
        c = _node(topology, settings.geo_center_node, "geo_center_node")
        radius = settings.geo_hop_radius
        if radius < 1:
            raise ConfigError(
                "[failure_settings] geo_hop_radius = 0: expected >= 1 for a geo failure"
            )
        links = frozenset(
            i
            for i, (u, v) in enumerate(topology.links)
            if min(topology.hop_distance(c, u), topology.hop_distance(c, v)) <= radius - 1
        )
        centre = (c,)
    n = len(arrival)
    index = n // 2 if settings.t_fail_arrival_index == -1 else settings.t_fail_arrival_index
    if index >= n:
        raise ConfigError(
            f"[failure_settings] t_fail_arrival_index = {index}: expected -1 or an index below "
            f"[general_settings] num_requests = {n}"
        )
    repair_index = index + settings.t_repair_after_arrivals
    t_repair = float(arrival[repair_index]) if repair_index < n else float("inf")
    return FailurePlan(kind, links, centre, float(arrival[index]), t_repair)
