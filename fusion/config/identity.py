"""A config's identity by content: each file it names by the sha256 of what the file holds,
each setting in one spelling.

:meth:`~fusion.config.config.Config.identity` (what a manifest records, and hashes as the
dataset's ``config_sha256``) passes through :func:`canonical_identity`:

- a file a key names (:data:`~fusion.config.vocabulary.FILE_KEYS`: a ``network`` that is no
  shipped network, a ``.csv`` ``modulation`` or ``traffic_matrix``) is recorded by its real
  path (so a config rebuilt from a manifest finds it) and by ``<key>_sha256``, the sha256 of
  its bytes: an edited file is another config, and ``topo.txt``, ``./topo.txt``,
  ``~/x/topo.txt``, a link to it or its absolute path are one;
- a shipped network is spelled as :data:`~fusion.config.vocabulary.NETWORKS` spells it (the
  loader takes any case);
- the failure's nodes and links (``failed_link``, ``srlg_links``, ``failed_node``,
  ``geo_center_node``) are resolved against the network as the simulator resolves them: a
  node by its number, or by its name when the topology file names its nodes; a link's ends in
  ascending node order (a failed link takes its fibre down both ways); a shared-risk group's
  links sorted, each once.

What a config holds is left as written: only its identity changes. A config that names no file
and spells its keys as the embedded default and the presets do keeps the identity it had
before (so do their datasets' config sha256).

    >>> ident = {"topology_settings": {"network": "nsfnet"},
    ...          "failure_settings": {"failed_link": "8-7", "srlg_links": "8-9,7-8,8-7",
    ...                               "failed_node": 8, "geo_center_node": 8}}
    >>> out = canonical_identity(ident)
    >>> out["topology_settings"], out["failure_settings"]["failed_link"]
    ({'network': 'NSFNet'}, '7-8')
    >>> out["failure_settings"]["srlg_links"]
    '7-8,8-9'
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from fusion.config.vocabulary import FILE_KEYS, NETWORKS
from fusion.errors import ConfigError

#: What a content hash key adds to the name of the key naming the file.
CONTENT_SUFFIX = "_sha256"
#: The failure keys that name nodes, and those that name links.
NODE_KEYS = ("failed_node", "geo_center_node")
LINK_KEYS = ("failed_link", "srlg_links")


def content_key(key: str) -> str:
    """The identity key holding the sha256 of the file ``key`` names.

    >>> content_key("network")
    'network_sha256'
    """
    return key + CONTENT_SUFFIX


def file_key_of(section: str, key: str) -> str | None:
    """The key naming a file whose content hash ``[section] key`` is, else ``None``.

    :param section: An INI section.
    :param key: An identity key.

        >>> file_key_of("topology_settings", "network_sha256"), file_key_of("x", "network")
        ('network', None)
    """
    name = key.removesuffix(CONTENT_SUFFIX)
    return name if name != key and (section, name) in FILE_KEYS else None


def shipped_network(network: str) -> str | None:
    """A shipped network's spelling in an identity (any case names it), or ``None``.

    >>> shipped_network("NSFNET"), shipped_network("topo.txt")
    ('NSFNet', None)
    """
    return NETWORKS.get(str(network).strip().lower())


def names_file(section: str, key: str, value: Any) -> bool:
    """Whether ``[section] key = value`` names a file (rather than a built-in choice).

    >>> names_file("topology_settings", "modulation", "deeprmsa")
    False
    >>> names_file("general_settings", "traffic_matrix", "tm.csv")
    True
    """
    if (section, key) not in FILE_KEYS or not isinstance(value, str):
        return False
    if key == "network":
        return shipped_network(value) is None
    return value.endswith(".csv")


def file_path(value: str) -> Path:
    """The file a key's value names, as the simulator opens it (``~`` expanded, relative to
    the working directory)."""
    return Path(os.path.expanduser(value.strip()))


def file_name(value: str) -> str:
    """The name an identity gives the file ``value`` names: its real path (``~``, links and
    ``..`` followed), so every spelling of one file is one name, and a config rebuilt from a
    manifest still finds the file (the content hash is what tells an edited file apart).

        >>> file_name("~/a/../topo.txt") == os.path.realpath(os.path.expanduser("~/topo.txt"))
        True
    """
    return os.path.realpath(file_path(value))


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def file_sha256(value: str) -> str | None:
    """The sha256 of the bytes of the file ``value`` names (``None``: it cannot be read; the
    simulator's check names it).

    :param value: The key's value, a path.
    """
    data = _read(file_path(value))
    return None if data is None else hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class _Nodes:
    """A topology's nodes as :class:`fusion.sim.topology.Topology` resolves them."""

    count: int
    names: tuple[str, ...] | None
    fibres: frozenset[frozenset[int]]

    def node(self, text: str) -> int | None:
        """``Topology.node_id``: a name, else a number in 0 .. N-1 (``None``: no such node)."""
        text = text.strip()
        if self.names and text in self.names:
            return self.names.index(text)
        try:
            node = int(text)
        except ValueError:
            return None
        return node if 0 <= node < self.count else None

    def spell(self, node: int) -> int | str:
        """A node as an identity spells it: its name if the file names nodes, else its number."""
        return self.names[node] if self.names else node

    def link(self, text: str) -> tuple[int, int] | None:
        """``u-v`` resolved as ``fusion.sim.failures`` resolves it (the first cut at a ``-``
        whose two sides are nodes joined by a fibre), ends in ascending order."""
        text = text.strip()
        for cut in (i for i, c in enumerate(text) if c == "-"):
            u, v = self.node(text[:cut]), self.node(text[cut + 1 :])
            if u is not None and v is not None and frozenset((u, v)) in self.fibres:
                return (u, v) if u <= v else (v, u)
        return None

    def spell_link(self, ends: tuple[int, int]) -> str:
        return f"{self.spell(ends[0])}-{self.spell(ends[1])}"


def _parse_nodes(text: str) -> _Nodes | None:
    """The nodes of a ``src dst km`` text as ``fusion.sim.topology.parse_edges`` numbers them;
    ``None`` for a text it would refuse (then nothing is respelled: the run names the line)."""
    rows = []
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        if len(words) != 3 or words[0] == words[1]:
            return None
        rows.append((words[0], words[1]))
    if not rows:
        return None
    if all(w.isdigit() for row in rows for w in row):
        ids = [(int(u), int(v)) for u, v in rows]
        nodes = sorted({n for pair in ids for n in pair})
        if nodes != list(range(len(nodes))):
            return None
        return _Nodes(len(nodes), None, frozenset(frozenset(pair) for pair in ids))
    names: dict[str, int] = {}
    for u, v in rows:
        for word in (u, v):
            names.setdefault(word, len(names))
    fibres = frozenset(frozenset((names[u], names[v])) for u, v in rows)
    return _Nodes(len(names), tuple(names), fibres)


_NODES: dict[str, _Nodes | None] = {}


@functools.cache
def _shipped_bytes(lower: str) -> bytes:
    """A shipped network's file (read once per process: the package's files do not change)."""
    return resources.files("fusion.data").joinpath("topologies", f"{lower}.txt").read_bytes()


def _nodes(network: str) -> _Nodes | None:
    """The nodes of a shipped network or of a topology file (``None``: unreadable)."""
    shipped = shipped_network(network)
    if shipped is not None:
        data = _shipped_bytes(str(network).strip().lower())
    else:
        read = _read(file_path(network))
        if read is None:
            return None
        data = read
    digest = hashlib.sha256(data).hexdigest()
    if digest not in _NODES:
        try:
            _NODES[digest] = _parse_nodes(data.decode("utf-8"))
        except UnicodeDecodeError:
            _NODES[digest] = None
    return _NODES[digest]


def _respell_failure(keys: dict[str, Any], nodes: _Nodes) -> None:
    for key in NODE_KEYS:
        if key in keys:
            node = nodes.node(str(keys[key]))
            if node is not None:
                keys[key] = nodes.spell(node)
    if "failed_link" in keys:
        ends = nodes.link(str(keys["failed_link"]))
        if ends is not None:
            keys["failed_link"] = nodes.spell_link(ends)
    if "srlg_links" in keys:
        links = [nodes.link(part) for part in str(keys["srlg_links"]).split(",")]
        if all(link is not None for link in links):
            keys["srlg_links"] = ",".join(
                nodes.spell_link(ends) for ends in sorted({e for e in links if e is not None})
            )


def canonical_identity(identity: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """The identity with every file by name and content hash and every key in one spelling
    (see the module docstring); the input is left as it is.

    :param identity: Sections of JSON values, as :meth:`Config.identity` filters them.
    """
    out = {s: dict(k) for s, k in identity.items()}  # (keys are only replaced, never mutated)
    topology = out.get("topology_settings", {})
    network = topology.get("network")
    if isinstance(network, str):
        nodes = _nodes(network)
        if nodes is not None and "failure_settings" in out:
            _respell_failure(out["failure_settings"], nodes)
        if shipped_network(network) is not None:
            topology["network"] = shipped_network(network)
    for section, key in FILE_KEYS:
        keys = out.get(section, {})
        value = keys.get(key)
        if not isinstance(value, str) or not names_file(section, key, value):
            continue
        digest = file_sha256(value)
        if digest is None:
            continue  # the scenario check refuses a file it cannot read, naming it
        keys[key] = file_name(value)
        keys[content_key(key)] = digest
    return out


def split_content(
    data: Mapping[str, Mapping[str, Any]],
) -> tuple[dict[str, dict[str, Any]], dict[tuple[str, str], Any]]:
    """A recorded identity without its content hashes, and those hashes by the file key.

    :param data: Sections of values, as a manifest records them.

        >>> split_content({"topology_settings": {"network": "t.txt", "network_sha256": "ab"}})
        ({'topology_settings': {'network': 't.txt'}}, {('topology_settings', 'network'): 'ab'})
    """
    rest: dict[str, dict[str, Any]] = {}
    hashes: dict[tuple[str, str], Any] = {}
    for section, keys in data.items():
        rest[section] = {}
        for key, value in keys.items():
            named = file_key_of(section, key)
            if named is None:
                rest[section][key] = value
            else:
                hashes[section, named] = value
    return rest, hashes


def check_content(
    source: str, values: Mapping[tuple[str, str], Any], hashes: Mapping[tuple[str, str], Any]
) -> None:
    """Refuse a recorded content hash that the file named now does not have.

    :param source: Named first in the message (a manifest's path).
    :param values: ``(section, key)`` -> the value the rebuilt config has.
    :param hashes: ``(section, key)`` -> the sha256 recorded for that file.
    :raises ConfigError: naming the key, the file and both digests. A file that cannot be read
        is left to the run, which names it.
    """
    for (section, key), recorded in hashes.items():
        value = values.get((section, key))
        if not isinstance(value, str) or not names_file(section, key, value):
            raise ConfigError(
                f"{source}: [{section}] {content_key(key)} records a file's content, but "
                f"{key} = {value!r} names no file"
            )
        now = file_sha256(value)
        if now is not None and now != recorded:
            raise ConfigError(
                f"{source}: [{section}] {key} = {value!r}: the file holds other content "
                f"(sha256 {now}) than the data was made with ({recorded}); restore the file, "
                "or point the key at a copy of the original"
            )


def describe_content_difference(
    section: str, key: str, made: Any, now: Any, config: Mapping[str, Any] | None = None
) -> str | None:
    """A config difference in a content hash, in words (``None`` for any other key).

    :param section: The section.
    :param key: The identity key (``network_sha256``).
    :param made: The recorded digest (``None``: none recorded).
    :param now: The digest now (``None``: the key names no file now).
    :param config: The identity now, for the file's name.

        >>> describe_content_difference("topology_settings", "network_sha256", "ab", "cd",
        ...                             {"topology_settings": {"network": "topo.txt"}})
        "[topology_settings] network = 'topo.txt': the file holds other content than the dataset was made with (sha256 ab there, cd here): edited since"
    """
    named = file_key_of(section, key)
    if named is None:
        return None
    value = (config or {}).get(section, {}).get(named)
    shown = f"[{section}] {named}" + (f" = {value!r}" if value is not None else "")
    if made is None:
        return f"{shown}: names a file (sha256 {now}) here, no file there"
    if now is None:
        return f"{shown}: names no file here, a file (sha256 {made}) there"
    return (
        f"{shown}: the file holds other content than the dataset was made with "
        f"(sha256 {made} there, {now} here): edited since"
    )


def scenario_value(section: str, key: str, value: Any) -> Any:
    """``[section] key = value`` as recorded (by a manifest, a model file; older ones as the
    config spelled it) in the spelling an identity gives it: a shipped network's name, a
    file's name; other values as they are.

        >>> scenario_value("topology_settings", "network", "usnet")
        'USNet'
        >>> scenario_value("topology_settings", "network", "data/topo.txt")
        'topo.txt'
    """
    if (section, key) == ("topology_settings", "network") and shipped_network(value):
        return shipped_network(value)
    if names_file(section, key, value):
        return file_path(value).name  # a recorded name: the file it named may be gone
    return value
