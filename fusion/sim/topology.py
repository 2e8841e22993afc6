"""Network topologies and their k shortest paths.

A topology is an undirected graph of nodes and fibre links with lengths in km; every link
carries one spectrum (see :mod:`fusion.sim.spectrum`). Shipped networks: ``NSFNet`` (14 nodes,
22 links), ``USNet`` (24 nodes, 43 links) and ``toy`` (5 nodes, 6 links); any ``src dst km``
text file works too.
The K shortest paths of a node pair (by length, networkx's ``shortest_simple_paths``) are
computed once per topology and K in a process and shared by every request and every seed.

    >>> topo = load_topology("NSFNet")
    >>> topo.num_nodes, topo.num_links
    (14, 22)
    >>> [p.length_km for p in topo.k_paths(0, 13, 2)]
    [3500.0, 3700.0]
"""

from __future__ import annotations

import functools
import itertools
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import networkx as nx

from fusion.errors import ConfigError

SHIPPED = {"nsfnet": "nsfnet.txt", "usnet": "usnet.txt", "toy": "toy.txt"}


@dataclass(frozen=True)
class CandidatePath:
    """One of the K candidate paths of a node pair.

    :param nodes: The nodes from source to destination.
    :param links: Indices of the links it crosses, in order.
    :param length_km: Total length.
    """

    nodes: tuple[int, ...]
    links: tuple[int, ...]
    length_km: float

    @property
    def hops(self) -> int:
        """Number of links crossed."""
        return len(self.links)


class Topology:
    """An undirected network with indexed links.

    :param name: A name for messages and caching.
    :param edges: ``(u, v, km)`` triples; nodes are the integers 0 .. N-1.
    """

    def __init__(self, name: str, edges: list[tuple[int, int, float]]) -> None:
        self.name = name
        self.graph = nx.Graph()
        self.links: list[tuple[int, int]] = []
        self.lengths: list[float] = []
        self._index: dict[tuple[int, int], int] = {}
        for u, v, km in edges:
            if (u, v) in self._index:
                raise ValueError(f"{name}: link {u}-{v} listed twice")
            self._index[(u, v)] = self._index[(v, u)] = len(self.links)
            self.links.append((u, v))
            self.lengths.append(float(km))
            self.graph.add_edge(u, v, weight=float(km))
        nodes = sorted(self.graph.nodes)
        if nodes != list(range(len(nodes))):
            raise ValueError(f"{name}: nodes must be numbered 0 .. N-1, got {nodes}")
        self._hops = dict(nx.all_pairs_shortest_path_length(self.graph))

    @property
    def num_nodes(self) -> int:
        """Number of nodes."""
        return self.graph.number_of_nodes()

    @property
    def num_links(self) -> int:
        """Number of (undirected) links."""
        return len(self.links)

    def link_index(self, u: int, v: int) -> int:
        """Index of link ``u-v`` (either direction).

        :raises KeyError: naming the link when there is none.
        """
        try:
            return self._index[(u, v)]
        except KeyError:
            raise KeyError(f"{self.name} has no link {u}-{v}") from None

    def hop_distance(self, u: int, v: int) -> int:
        """Fewest hops between two nodes."""
        return int(self._hops[u][v])

    def k_paths(self, src: int, dst: int, k: int) -> list[CandidatePath]:
        """The k shortest loop-free paths by length, shortest first (cached per process).

        :param src: Source node.
        :param dst: Destination node.
        :param k: How many.
        """
        return _k_paths(self, src, dst, k)

    def __repr__(self) -> str:
        return f"Topology({self.name!r}, nodes={self.num_nodes}, links={self.num_links})"


@functools.cache
def _k_paths(topology: Topology, src: int, dst: int, k: int) -> list[CandidatePath]:
    generator = nx.shortest_simple_paths(topology.graph, src, dst, weight="weight")
    paths = []
    for nodes in itertools.islice(generator, k):
        links = tuple(topology.link_index(a, b) for a, b in itertools.pairwise(nodes))
        paths.append(CandidatePath(tuple(nodes), links, sum(topology.lengths[i] for i in links)))
    return paths


def parse_edges(text: str, source: str) -> list[tuple[int, int, float]]:
    """Parse ``src dst km`` lines (``#`` starts a comment).

    :raises ConfigError: naming the file and line of a malformed line.
    """
    edges = []
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        try:
            u, v, km = int(words[0]), int(words[1]), float(words[2])
            if len(words) != 3 or km <= 0 or u == v:
                raise ValueError
        except (ValueError, IndexError):
            raise ConfigError(
                f"{source}:{number}: expected 'src dst km' (two node numbers, a length > 0), got {line!r}"
            ) from None
        edges.append((u, v, km))
    if not edges:
        raise ConfigError(f"{source}: no links")
    return edges


@functools.lru_cache(maxsize=16)
def load_topology(network: str) -> Topology:
    """A shipped network by name (case-insensitive) or a ``src dst km`` file (cached).

    :param network: ``NSFNet``, ``USNet``, ``toy`` or a path.
    :raises ConfigError: naming the network when it is neither.
    """
    shipped = SHIPPED.get(network.lower())
    if shipped is not None:
        text = resources.files("fusion.data").joinpath("topologies", shipped).read_text("utf-8")
        return _topology(network, text, f"<{shipped}>")
    path = Path(os.path.expanduser(network))
    if not path.is_file():
        raise ConfigError(
            f"[topology_settings] network = {network!r}: expected one of "
            "['NSFNet', 'USNet', 'toy'] or a path to a 'src dst km' file"
        )
    return _topology(path.stem, path.read_text("utf-8"), str(path))


def _topology(name: str, text: str, source: str) -> Topology:
    try:
        return Topology(name, parse_edges(text, source))
    except ValueError as exc:
        raise ConfigError(f"{source}: {exc}") from None
