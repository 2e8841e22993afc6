"""Network topologies and their k shortest paths.

A topology is a graph of nodes and fibre links with lengths in km. Undirected (the default),
each fibre link carries one spectrum shared by both directions; directed, each direction of a
fibre is a link with its own spectrum (``A->B`` and ``B->A``), and paths follow the directions.
Shipped networks: ``NSFNet`` (14 nodes, 22 links), ``USNet`` (24 nodes, 43 links), ``toy``
(5 nodes, 6 links) and the literature's (:data:`SHIPPED`: ``nsfnet_deeprmsa``,
``cost239_deeprmsa``, ``cost239_ptrnet_real``, ``usnet_gcnrnn``, ``usnet_ptrnet``, ``jpn48``);
any ``src dst km`` text file works too, with nodes as numbers 0 .. N-1 or as names
(``Copenhagen London 1310``; numbered in order of first appearance).

Candidate paths come from networkx's ``shortest_simple_paths``, by length in km (``by="km"``:
the k shortest, in its order) or by hop count (``by="hops"``: the k fewest-hop paths, ordered
by hops, ties by the sha256 of the node list's text, as XLRON orders them). They are computed
once per topology, pair, K and basis in a process and shared by every request and seed.

    >>> topo = load_topology("NSFNet")
    >>> topo.num_nodes, topo.num_links
    (14, 22)
    >>> [p.length_km for p in topo.k_paths(0, 13, 2)]
    [3500.0, 3700.0]
    >>> load_topology("nsfnet_deeprmsa", directed=True).num_links
    44
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import networkx as nx

from fusion.errors import ConfigError

#: The longest link a topology file may give (km): far beyond any fibre, and small enough that
#: any path's length (a sum of links) stays finite.
MAX_KM = 1e9

#: Shipped networks by lower-case name -> file in ``fusion/data/topologies``.
SHIPPED = {
    "nsfnet": "nsfnet.txt",
    "usnet": "usnet.txt",
    "toy": "toy.txt",
    "nsfnet_deeprmsa": "nsfnet_deeprmsa.txt",
    "cost239_deeprmsa": "cost239_deeprmsa.txt",
    "cost239_ptrnet_real": "cost239_ptrnet_real.txt",
    "usnet_gcnrnn": "usnet_gcnrnn.txt",
    "usnet_ptrnet": "usnet_ptrnet.txt",
    "jpn48": "jpn48.txt",
}


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
    """A network with indexed links.

    :param name: A name for messages and caching.
    :param edges: ``(u, v, km)`` triples, one per fibre; nodes are the integers 0 .. N-1.
    :param directed: Each direction of a fibre is a link of its own (link ``2i`` runs
        ``u->v``, ``2i+1`` runs ``v->u`` for the ``i``-th fibre); otherwise fibre ``i`` is
        link ``i``, both ways.
    :param node_names: The nodes' names, when the file named them.
    """

    def __init__(
        self,
        name: str,
        edges: list[tuple[int, int, float]],
        *,
        directed: bool = False,
        node_names: list[str] | None = None,
    ) -> None:
        self.name = name
        self.directed = directed
        self.node_names = node_names
        self.graph: nx.Graph = nx.DiGraph() if directed else nx.Graph()
        self.links: list[tuple[int, int]] = []
        self.lengths: list[float] = []
        self._index: dict[tuple[int, int], int] = {}
        self._fibres: dict[frozenset[int], tuple[int, ...]] = {}
        for u, v, km in edges:
            if frozenset((u, v)) in self._fibres:
                raise ValueError(
                    f"{name}: link {self.node_label(u)}-{self.node_label(v)} listed twice"
                )
            ends = [(u, v), (v, u)] if directed else [(u, v)]
            indices = []
            for a, b in ends:
                index = len(self.links)
                self._index[(a, b)] = index
                if not directed:
                    self._index[(b, a)] = index
                self.links.append((a, b))
                self.lengths.append(float(km))
                self.graph.add_edge(a, b, weight=float(km))
                indices.append(index)
            self._fibres[frozenset((u, v))] = tuple(indices)
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
        """Number of links (each with its own spectrum: twice the fibres when directed)."""
        return len(self.links)

    def node_label(self, node: int) -> str:
        """A node's name, or its number when the file gave none."""
        return self.node_names[node] if self.node_names else str(node)

    def node_id(self, text: str) -> int:
        """A node by name or number, as a config names it.

        :raises KeyError: naming the node when the topology has none such.
        """
        text = text.strip()
        if self.node_names and text in self.node_names:
            return self.node_names.index(text)
        try:
            node = int(text)
        except ValueError:
            raise KeyError(f"{self.name} has no node {text!r}") from None
        if not 0 <= node < self.num_nodes:
            raise KeyError(f"{self.name} has no node {node}")
        return node

    def link_index(self, u: int, v: int) -> int:
        """Index of link ``u-v`` (``u->v`` when directed; either direction otherwise).

        :raises KeyError: naming the link when there is none.
        """
        try:
            return self._index[(u, v)]
        except KeyError:
            raise KeyError(f"{self.name} has no link {u}-{v}") from None

    def fibre_links(self, u: int, v: int) -> tuple[int, ...]:
        """The links of the fibre between ``u`` and ``v``: one, or both directions.

        :raises KeyError: naming the fibre when there is none.
        """
        try:
            return self._fibres[frozenset((u, v))]
        except KeyError:
            raise KeyError(f"{self.name} has no link {u}-{v}") from None

    def hop_distance(self, u: int, v: int) -> int:
        """Fewest hops between two nodes."""
        return int(self._hops[u][v])

    def k_paths(self, src: int, dst: int, k: int, by: str = "km") -> list[CandidatePath]:
        """The k shortest loop-free paths (cached per process).

        :param src: Source node.
        :param dst: Destination node.
        :param k: How many.
        :param by: ``km``: shortest by length, in networkx's order; ``hops``: fewest hops,
            ordered by hops, ties by the sha256 of ``str(node_list)`` (XLRON's order).
        """
        return _k_paths(self, src, dst, k, by)

    def __repr__(self) -> str:
        kind = "directed " if self.directed else ""
        return f"Topology({self.name!r}, {kind}nodes={self.num_nodes}, links={self.num_links})"


def path_tie_key(nodes: tuple[int, ...]) -> int:
    """XLRON's tie-break between equally ranked paths: the sha256 of the node list's text."""
    return int(hashlib.sha256(str(list(nodes)).encode()).hexdigest(), 16)


@functools.cache
def _k_paths(topology: Topology, src: int, dst: int, k: int, by: str) -> list[CandidatePath]:
    if by not in ("km", "hops"):
        raise ValueError(f"by must be 'km' or 'hops', got {by!r}")
    weight = "weight" if by == "km" else None
    generator = nx.shortest_simple_paths(topology.graph, src, dst, weight=weight)
    paths = []
    for nodes in itertools.islice(generator, k):
        links = tuple(topology.link_index(a, b) for a, b in itertools.pairwise(nodes))
        paths.append(CandidatePath(tuple(nodes), links, sum(topology.lengths[i] for i in links)))
    if by == "hops":
        paths.sort(key=lambda p: (p.hops, path_tie_key(p.nodes)))
    return paths


def parse_edges(text: str, source: str) -> tuple[list[tuple[int, int, float]], list[str] | None]:
    """Parse ``src dst km`` lines (``#`` starts a comment); nodes are numbers or names.

    :return: The edges with nodes as 0 .. N-1, and the names (``None`` when all were numbers).
    :raises ConfigError: naming the file and line of a malformed line.
    """
    rows = []
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        try:
            if len(words) != 3 or words[0] == words[1]:
                raise ValueError
            km = float(words[2])
            if not 0 < km <= MAX_KM:
                raise ValueError
        except ValueError:
            raise ConfigError(
                f"{source}:{number}: expected 'src dst km' (two different nodes, a length > 0 "
                f"and at most {MAX_KM:g} km, so that path lengths stay finite), got {line!r}"
            ) from None
        rows.append((words[0], words[1], km))
    if not rows:
        raise ConfigError(f"{source}: no links")
    if all(w.isdigit() for u, v, _ in rows for w in (u, v)):
        return [(int(u), int(v), km) for u, v, km in rows], None
    names: dict[str, int] = {}
    for u, v, _ in rows:
        for word in (u, v):
            names.setdefault(word, len(names))
    return [(names[u], names[v], km) for u, v, km in rows], list(names)


def load_topology(network: str, directed: bool = False) -> Topology:
    """A shipped network by name (case-insensitive) or a ``src dst km`` file (cached by
    content: a file edited since is read anew, as the config's identity hashes it).

    :param network: A name of :data:`SHIPPED` or a path.
    :param directed: Give each direction of a fibre its own link and spectrum.
    :raises ConfigError: naming the network when it is neither, or the file's bad line.
    """
    shipped = SHIPPED.get(network.lower())
    if shipped is not None:
        return _topology(network, _shipped_text(shipped), f"<{shipped}>", directed)
    path = Path(os.path.expanduser(network))
    if not path.is_file():
        raise ConfigError(
            f"[topology_settings] network = {network!r}: expected one of "
            f"{sorted(SHIPPED)} (any case) or a path to a 'src dst km' file"
        )
    return _topology(path.stem, path.read_text("utf-8"), str(path), directed)


@functools.cache
def _shipped_text(name: str) -> str:
    """A shipped topology's text (read once per process: the package's files do not change)."""
    return resources.files("fusion.data").joinpath("topologies", name).read_text("utf-8")


@functools.lru_cache(maxsize=32)
def _topology(name: str, text: str, source: str, directed: bool) -> Topology:
    edges, names = parse_edges(text, source)
    try:
        return Topology(name, edges, directed=directed, node_names=names)
    except ValueError as exc:
        raise ConfigError(f"{source}: {exc}") from None
