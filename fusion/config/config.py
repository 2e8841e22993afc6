"""Configuration: an INI file in FUSION's style, read into a typed, frozen :class:`Config`.

Every key is declared once below with its type, default and a one-line help; an unknown
section or key, a wrong type or a value out of range raises :class:`~fusion.errors.ConfigError`
naming the file, section, key, value and what was expected. ``default.ini`` beside this file
is the embedded default and lists every key.

    >>> cfg = load_config()
    >>> cfg.general.k_paths, cfg.topology.network, cfg.general.seeds
    (4, 'NSFNet', (42, 43, 44, 45, 46))
"""

from __future__ import annotations

import configparser
import dataclasses
import os
import re
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

from fusion.config.features import PATH_FEATURE_SETS
from fusion.config.heuristics import policy_help
from fusion.config.identity import canonical_identity, check_content, split_content
from fusion.config.vocabulary import (
    BANDWIDTH_MIX,
    BIT_RATES,
    FAILURE_TYPES,
    LATER_KEYS,
    NETWORKS,
    NOT_IDENTITY,
    PATH_ORDERS,
    POLICY_NAMES,
    SHARD_COMPRESSIONS,
    SPECTRUM_RULES,
)
from fusion.errors import ConfigError

MAX_SEED = 2**31 - 1
#: The largest integer a record holds (JSON as orjson writes it: 64 bits).
MAX_JSON_INT = 2**63 - 1
#: Most requests one seed simulates (``num_requests + warmup_requests``): the engine draws a
#: seed's traffic up front, some 210 bytes a request (10**8: about 21 GB).
MAX_REQUESTS = 10**8
#: Most frequency slots a link has, and most a bit rate may be (Gbps, or slots with
#: ``modulation = none``): beyond, each spectrum operation handles integers of megabytes.
MAX_SLOTS = 10**6
#: Most candidate paths per request (a line pads every state to K paths).
MAX_K_PATHS = 10_000
#: The most candidate paths a run takes (:func:`fusion.sim.scenario.check_scenario`): the
#: k-shortest search and every decision grow with k; past 100 a large network (jpn48) takes
#: minutes per few requests.
RUN_K_PATHS = 100
#: Most seeds one list names, and most loads a study's ``erlang_start/stop/step`` range holds.
MAX_SEEDS = 10**6
MAX_LOADS = 10_000
#: Smallest ``holding_time_truncation`` above 0: each redraw keeps a share ``1 - exp(-F)``,
#: so a smaller F takes more than a hundred rounds per request and never finishes.
MIN_TRUNCATION = 0.01
DEFAULT_CONFIG = "default.ini"
SECTION_ALIASES = {"dataset_logging_settings": "dataset_logging"}


def parse_seeds(text: str) -> tuple[int, ...]:
    """Parse ``0-3``, ``0,2,5`` or a mix (``0-2,7``) into sorted unique seeds.

    :param text: The seed list.
    :raises ValueError: when a part is not an integer or a range, or lies outside 0 .. 2**31-1.
    """
    seeds: set[int] = set()
    for part in (p.strip() for p in str(text).split(",")):
        if not part:
            continue
        low, sep, high = part.partition("-")
        try:
            first, last = (int(low), int(high)) if sep else (int(part), int(part))
        except ValueError:
            raise ValueError(f"{part!r} is not an integer or a range like 0-7") from None
        if first > last:
            raise ValueError(f"range {part!r} runs backwards")
        if first < 0 or last > MAX_SEED:
            raise ValueError(f"seeds must lie in 0 .. {MAX_SEED}, got {part!r}")
        if len(seeds) + last - first >= MAX_SEEDS:
            raise ValueError(f"at most {MAX_SEEDS} seeds in one list, got more with {part!r}")
        seeds.update(range(first, last + 1))
    if not seeds:
        raise ValueError("no seeds given")
    return tuple(sorted(seeds))


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0 or value != value or value == float("inf"):
        raise ValueError("a finite number > 0")
    return value


def _non_negative_float(text: str) -> float:
    value = float(text)
    if not value >= 0 or value == float("inf"):
        raise ValueError("a finite number >= 0")
    return value


def _int_at_least(low: int, high: int = MAX_JSON_INT, why: str = "") -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            below = value is not None and value < low and high == MAX_JSON_INT
            raise ValueError(f"an integer {f'>= {low}' if below else f'in {low} .. {high}'}{why}")
        return value

    return parse


def _truncation(text: str) -> float:
    value = _non_negative_float(text)
    if 0 < value < MIN_TRUNCATION:
        raise ValueError(
            f"0 or a finite number >= {MIN_TRUNCATION} (redrawing until a holding time falls "
            "below F x holding_time takes about 1/F rounds: a smaller F never finishes)"
        )
    return value


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise ValueError("a number in [0, 1]")
    return value


def _boolean(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "yes", "true", "on"):
        return True
    if lowered in ("0", "no", "false", "off"):
        return False
    raise ValueError("true or false")


def _choice(*options: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in options:
            raise ValueError(f"one of {', '.join(options)}")
        return text

    return parse


def _text(text: str) -> str:
    return text.strip()


def _path(text: str) -> str:
    """A path a run writes to, ``~`` expanded (as for every file key)."""
    return os.path.expanduser(text.strip())


def _seeds(text: str) -> tuple[int, ...]:
    return parse_seeds(text)


def _request_distribution(text: str) -> str:
    """``25:0.1,50:0.1,...`` or upstream's ``{"25": 0.1, ...}`` -> canonical ``rate:share`` text."""
    raw = text.strip()
    try:
        if raw.startswith("{"):
            pairs = [(str(k), str(v)) for k, v in orjson.loads(raw).items()]
        else:
            pairs = [tuple(part.split(":")) for part in raw.split(",") if part.strip()]  # type: ignore[misc]
        shares = {int(rate): float(share) for rate, share in pairs}
    except (ValueError, AttributeError, orjson.JSONDecodeError):
        raise ValueError("bit rate:share pairs such as 25:0.1,100:0.9") from None
    unknown = sorted(set(shares) - set(BIT_RATES))
    if unknown or any(v < 0 for v in shares.values()) or abs(sum(shares.values()) - 1.0) > 1e-6:
        raise ValueError(
            f"shares >= 0 of the bit rates {list(BIT_RATES)} that sum to 1"
            + (f" (unknown bit rates {unknown})" if unknown else "")
        )
    return ",".join(f"{rate}:{shares.get(rate, 0.0):g}" for rate in BIT_RATES)


def _bit_rates(text: str) -> str:
    """``fusion``, ``uniform:A-B`` or a list ``a,b,c`` of positive integers -> canonical text."""
    raw = text.strip()
    if raw == "fusion":
        return raw
    try:
        if raw.startswith("uniform:"):
            low, high = (int(x) for x in raw.removeprefix("uniform:").split("-"))
            if not 0 < low <= high <= MAX_SLOTS:
                raise ValueError
            return f"uniform:{low}-{high}"
        values = [int(x) for x in raw.split(",")]
        if not values or min(values) < 1 or max(values) > MAX_SLOTS:
            raise ValueError
        return ",".join(map(str, values))
    except ValueError:
        raise ValueError(
            "fusion (request_distribution's mix), uniform:A-B (integers A..B, 0 < A <= B) or "
            "a list of positive integers drawn uniformly such as 1,1,2,4 (each at most "
            f"{MAX_SLOTS})"
        ) from None


def _node(text: str) -> int | str:
    """A node as a number (kept an int) or a name."""
    raw = text.strip()
    if not raw:
        raise ValueError("a node number or name")
    return int(raw) if raw.isdigit() else raw


def _network(text: str) -> str:
    """A network's name or a topology file's path (``~`` expanded, as for every file key)."""
    return os.path.expanduser(text.strip())


def _modulation(text: str) -> str:
    raw = text.strip()
    if raw in ("fusion", "deeprmsa", "none"):
        return raw
    if raw.endswith(".csv"):
        return os.path.expanduser(raw)
    raise ValueError("fusion, deeprmsa, none or a path to a name,reach_km,spectral_efficiency .csv")


def _file_or(word: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        raw = text.strip()
        if raw == word:
            return raw
        if raw.endswith(".csv"):
            return os.path.expanduser(raw)
        raise ValueError(f"{word} or a path to a .csv file")

    return parse


def _one_of(options: tuple[str, ...]) -> str:
    """``a, b or c``: a help text's list of the allowed values."""
    return f"{', '.join(options[:-1])} or {options[-1]}" if len(options) > 1 else options[0]


#: The shipped literature topologies (beyond FUSION's NSFNet, USNet and toy), for the help.
_LITERATURE_NETWORKS = tuple(n for n in NETWORKS.values() if n not in ("NSFNet", "USNet", "toy"))


def _key(default: Any, parse: Callable[[str], Any], help: str) -> Any:
    return field(default=default, metadata={"parse": parse, "help": help})


@dataclass(frozen=True)
class GeneralSettings:
    """``[general_settings]``: load, request count, K, seeds."""

    erlang: float = _key(
        300.0, _positive_float, "offered load in Erlang (arrival rate x mean holding time)"
    )
    holding_time: float = _key(
        1.0,
        _positive_float,
        "mean of a request's exponential holding time (before holding_time_truncation)",
    )
    erlang_start: int = _key(
        0, _int_at_least(0), "study: loads range(erlang_start, erlang_stop, erlang_step); 0: none"
    )
    erlang_stop: int = _key(0, _int_at_least(0), "study: the load range's end, excluded (FUSION's)")
    erlang_step: int = _key(0, _int_at_least(0), "study: the load range's step")
    num_requests: int = _key(
        50_000,
        _int_at_least(1, MAX_REQUESTS, " (a seed's requests are drawn up front: run more seeds)"),
        "requests per seed, measured (warmup_requests are simulated before them)",
    )
    k_paths: int = _key(
        4,
        _int_at_least(1, MAX_K_PATHS),
        "candidate paths per request (chosen by path_order; at most 100: more would take "
        "minutes per request on a large network)",
    )
    seeds: tuple[int, ...] = _key((42, 43, 44, 45, 46), _seeds, "seeds to run: 0-3, 0,2,5 or 0-2,7")
    request_distribution: str = _key(
        _request_distribution(
            ",".join(f"{r}:{m}" for r, m in zip(BIT_RATES, BANDWIDTH_MIX, strict=True))
        ),
        _request_distribution,
        "share of requests per bit rate in Gbps (FUSION's mix; drawn with bit_rates = fusion)",
    )
    bit_rates: str = _key(
        "fusion",
        _bit_rates,
        "fusion (request_distribution), uniform:A-B (integers A..B) or a list drawn uniformly "
        "(1,1,2,4; with modulation = none the values are slot counts)",
    )
    holding_time_truncation: float = _key(
        0.0,
        _truncation,
        "0: exponential holding times; F > 0: drawn again until below F x holding_time "
        "(DeepRMSA: 2; the mean is then below holding_time, about 0.69 x it at F = 2)",
    )
    warmup_requests: int = _key(
        0,
        _int_at_least(0, MAX_REQUESTS),
        "requests simulated first, kept out of the shard and of every blocking figure",
    )
    path_order: str = _key(
        "length",
        _choice(*PATH_ORDERS),
        "length: the k shortest by km; hops, hops_length, spectral_resources: the k "
        "fewest-hop paths, sorted by hops, hops then km, or hops / spectral efficiency (ties "
        "by the sha256 of the node list, as XLRON)",
    )
    traffic_matrix: str = _key(
        "uniform",
        _file_or("uniform"),
        "uniform over node pairs, or a .csv of 'src,dst,weight' rows (relative weights)",
    )

    @property
    def bandwidth_mix(self) -> tuple[float, ...]:
        """The shares of :data:`~fusion.config.vocabulary.BIT_RATES`, in that order."""
        return tuple(float(part.split(":")[1]) for part in self.request_distribution.split(","))


@dataclass(frozen=True)
class TopologySettings:
    """``[topology_settings]``: network and spectrum grid."""

    network: str = _key(
        "NSFNet",
        _network,
        f"NSFNet, USNet, toy, a literature topology ({', '.join(_LITERATURE_NETWORKS)}) or a "
        "'src dst km' file (nodes as numbers or names)",
    )
    c_band: int = _key(320, _int_at_least(1, MAX_SLOTS), "frequency slots per link")
    guard_slots: int = _key(1, _int_at_least(0, MAX_SLOTS), "guard slots added to every lightpath")
    directed: bool = _key(
        False,
        _boolean,
        "true: each fibre direction is a link with its own spectrum and paths are directed "
        "(a link failure cuts both directions)",
    )
    slot_ghz: float = _key(
        12.5,
        _positive_float,
        "width of a frequency slot in GHz (a deeprmsa or .csv table takes "
        "ceil(rate / (SE x slot_ghz)) slots)",
    )
    modulation: str = _key(
        "fusion",
        _modulation,
        "fusion (FUSION's per bit rate table), deeprmsa (BPSK/QPSK/8QAM/16QAM by reach), none "
        "(the bit rates are slot counts) or a .csv of name,reach_km,spectral_efficiency",
    )


@dataclass(frozen=True)
class FailureSettings:
    """``[failure_settings]``: one failure per run, with its repair."""

    failure_type: str = _key("link", _choice(*FAILURE_TYPES), _one_of(FAILURE_TYPES))
    failed_link: str = _key("7-8", _text, "link failure: the link as 'u-v'")
    failed_node: int | str = _key(8, _node, "node failure: the node (number or name)")
    srlg_links: str = _key(
        "7-8,8-9", _text, "srlg failure: the links that fail together, 'u-v,u-v'"
    )
    geo_center_node: int | str = _key(
        8, _node, "geo failure: the disaster's centre node (number or name)"
    )
    geo_hop_radius: int = _key(1, _int_at_least(0), "geo failure: links within this many hops fail")
    t_fail_arrival_index: int = _key(
        -1, _int_at_least(-1, MAX_REQUESTS), "the failure hits at this arrival; -1: mid-run"
    )
    t_repair_after_arrivals: int = _key(
        10_000, _int_at_least(1), "repaired this many arrivals later"
    )
    restoration_latency_ms: float = _key(100.0, _non_negative_float, "time to restore a lightpath")


@dataclass(frozen=True)
class PolicySettings:
    """``[policy_settings]``: the behaviour policy."""

    policy: str = _key(
        "ksp_ff",
        _choice(*POLICY_NAMES),
        policy_help(),
    )
    spectrum: str = _key(
        "first_fit",
        _choice(*SPECTRUM_RULES),
        f"spectrum rule of the path-only policies: {_one_of(SPECTRUM_RULES)} (the family's "
        "heuristics bring their own)",
    )


@dataclass(frozen=True)
class DatasetLoggingSettings:
    """``[dataset_logging]``: what and where to log."""

    log_offline_dataset: bool = _key(True, _boolean, "log every decision as a transition")
    dataset_output_path: str = _key(
        "datasets/nsfnet_default/offline_data.jsonl",
        _path,
        "shards go beside this path as <stem>.seed<N>.jsonl",
    )
    epsilon_mix: float = _key(0.1, _probability, "probability of the policy's second choice")
    flush_every: int = _key(1000, _int_at_least(1), "write the buffer out every N transitions")
    link_next_state: bool = _key(False, _boolean, "fill next_state at log time (holds one back)")
    shard_compression: str = _key(
        "none",
        _choice(*SHARD_COMPRESSIONS),
        f"{_one_of(SHARD_COMPRESSIONS)}: compress each shard once complete",
    )
    path_features: str = _key(
        "extended",
        _choice(*PATH_FEATURE_SETS),
        f"seed: the seed card's {len(PATH_FEATURE_SETS['seed'])} features per path; extended: "
        f"{len(PATH_FEATURE_SETS['extended']) - len(PATH_FEATURE_SETS['seed'])} more after them "
        "(length, slots, modulation, first-fit block, free blocks), what a learner needs to "
        "beat a heuristic",
    )
    holding_time_known: bool = _key(
        False,
        _boolean,
        "true: est_remaining_time is the request's own holding time (the future leaks into "
        "the data); false: it is [general_settings] holding_time, the configured mean, all a "
        "real controller can know (with holding_time_truncation the drawn times' mean is "
        "lower: about 0.69 x it at F = 2)",
    )
    log_spectrum: bool = _key(
        False,
        _boolean,
        "true: every state also holds each link's slot occupancy (hex) and each path its link ids",
    )

    @property
    def compression(self) -> str | None:
        """``shard_compression`` as the storage layer takes it: ``None`` for ``none``."""
        return None if self.shard_compression == "none" else self.shard_compression


SECTIONS: dict[str, type] = {
    "general_settings": GeneralSettings,
    "topology_settings": TopologySettings,
    "failure_settings": FailureSettings,
    "policy_settings": PolicySettings,
    "dataset_logging": DatasetLoggingSettings,
}
_ATTRS = {
    "general_settings": "general",
    "topology_settings": "topology",
    "failure_settings": "failure",
    "policy_settings": "policy",
    "dataset_logging": "dataset",
}


def section_fields(section: str) -> dict[str, dataclasses.Field[Any]]:
    """The keys of an INI section (``general_settings``, ...), by name."""
    return {f.name: f for f in dataclasses.fields(SECTIONS[section])}


def section_name(where: str, section: str) -> str:
    """The section's canonical name (upstream's aliases taken), or a :class:`ConfigError`.

    :param where: What the name came from, first in the message.
    :param section: The section as written.
    """
    name = SECTION_ALIASES.get(section, section)
    if name not in SECTIONS:
        raise ConfigError(
            f"{where}: unknown section [{section}]; expected one of {sorted(SECTIONS)}"
        )
    return name


def key_field(where: str, section: str, key: str) -> dataclasses.Field[Any]:
    """The declaration of ``[section] key``: the one check of section and key names.

    :param where: What the name came from (a file, ``--set 'x'``), first in the message.
    :param section: The section as written (upstream's aliases are taken).
    :param key: The key.
    :raises ConfigError: naming the unknown section or key and the known ones.

        >>> key_field("x.ini", "general_settings", "k_path")
        Traceback (most recent call last):
        ...
        fusion.errors.ConfigError: x.ini: [general_settings] unknown key 'k_path'; expected one of [...]
    """
    fields = section_fields(section_name(where, section))
    if key not in fields:
        raise ConfigError(
            f"{where}: [{section}] unknown key {key!r}; expected one of {sorted(fields)}"
        )
    return fields[key]


def section_attr(section: str) -> str:
    """The :class:`Config` attribute holding an INI section (``general`` for
    ``general_settings``)."""
    return _ATTRS[section]


@dataclass(frozen=True)
class Config:
    """A resolved configuration: one frozen dataclass per INI section.

    :param source: Where it was read from.
    """

    general: GeneralSettings = field(default_factory=GeneralSettings)
    topology: TopologySettings = field(default_factory=TopologySettings)
    failure: FailureSettings = field(default_factory=FailureSettings)
    policy: PolicySettings = field(default_factory=PolicySettings)
    dataset: DatasetLoggingSettings = field(default_factory=DatasetLoggingSettings)
    source: str = "<defaults>"

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """Every section and key as plain JSON values."""
        out: dict[str, dict[str, Any]] = {}
        for section, attr in _ATTRS.items():
            values = dataclasses.asdict(getattr(self, attr))
            out[section] = {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}
        return out

    def identity(self) -> dict[str, dict[str, Any]]:
        """The keys that fix a seed's transitions (no seed list, no output path).

        Its sha256 is the dataset's ``config_sha256``. A file a key names enters by its name
        and the sha256 of its content (``network_sha256``, ...), and equivalent spellings are
        spelled one way (:mod:`fusion.config.identity`): an edited topology file makes another
        config, ``nsfnet`` is ``NSFNet``.

            >>> Config().replace("topology_settings", network="nsfnet").identity() == Config().identity()
            True
        """
        return canonical_identity(
            {
                section: {
                    k: v
                    for k, v in keys.items()
                    if (section, k) not in NOT_IDENTITY
                    and ((section, k) not in LATER_KEYS or LATER_KEYS[section, k] != v)
                }
                for section, keys in self.to_dict().items()
            }
        )

    def replace(self, section: str, **changes: Any) -> Config:
        """A copy with some keys of one section changed (checked like the INI values).

        :param section: The INI section name, e.g. ``"general_settings"``.
        :param changes: Keys and new values (strings are parsed like INI text).
        """
        written, section = section, section_name(self.source, section)  # upstream's alias too
        parsed = {}
        for key, value in changes.items():
            spec = key_field(self.source, written, key)
            parsed[key] = _parse_value(self.source, section, spec, str(value))
        current = getattr(self, _ATTRS[section])
        new = dataclasses.replace(current, **parsed)
        result = dataclasses.replace(self, **{_ATTRS[section]: new})
        _check_cross_keys(result)
        return result

    @property
    def dataset_dir(self) -> Path:
        """The directory the shards and manifest go to."""
        return Path(self.dataset.dataset_output_path).parent

    @property
    def dataset_stem(self) -> str:
        """The shard stem (``offline_data`` for ``.../offline_data.jsonl``)."""
        name = Path(self.dataset.dataset_output_path).name
        return name[: -len(".jsonl")] if name.endswith(".jsonl") else name


def _parse_value(source: str, section: str, spec: dataclasses.Field[Any], raw: str) -> Any:
    try:
        return spec.metadata["parse"](raw)
    except ValueError as exc:
        detail = str(exc) or "a valid value"
        if not detail.startswith("one of "):  # (a choice's names say it all; its help repeats)
            detail += f" ({spec.metadata['help']})"
        raise ConfigError(
            f"{source}: [{section}] {spec.name} = {raw!r}: expected {detail}"
        ) from None


def _check_cross_keys(config: Config) -> None:
    if config.dataset.epsilon_mix > 0 and config.general.k_paths < 2:
        raise ConfigError(
            f"{config.source}: [dataset_logging] epsilon_mix = {config.dataset.epsilon_mix} "
            "needs [general_settings] k_paths >= 2 (a second choice to take)"
        )
    g = config.general
    if g.erlang_step > 0 and len(range(g.erlang_start, g.erlang_stop, g.erlang_step)) > MAX_LOADS:
        raise ConfigError(
            f"{config.source}: [general_settings] erlang_start/stop/step = "
            f"{g.erlang_start}/{g.erlang_stop}/{g.erlang_step} gives "
            f"{len(range(g.erlang_start, g.erlang_stop, g.erlang_step))} loads; a study takes at "
            f"most {MAX_LOADS}: raise erlang_step or narrow the range"
        )


def config_from_mapping(data: Mapping[str, Mapping[str, str]], source: str) -> Config:
    """Build a :class:`Config` from section -> key -> text, checking every name and value.

    :param data: Sections of raw INI text values.
    :param source: Named in errors (a file path).
    :raises ConfigError: naming the section, key, value and what was expected.
    """
    built: dict[str, Any] = {}
    for raw_section, keys in data.items():
        section = section_name(source, raw_section)
        values = {
            key: _parse_value(source, raw_section, key_field(source, raw_section, key), raw)
            for key, raw in keys.items()
        }
        built[_ATTRS[section]] = SECTIONS[section](**values)
    config = Config(**built, source=source)
    _check_cross_keys(config)
    return config


def config_from_dict(data: Mapping[str, Mapping[str, Any]], source: str) -> Config:
    """Rebuild a :class:`Config` from :meth:`Config.to_dict` or :meth:`Config.identity` output.

    This is how a dataset's manifest (which records ``identity()``) gives back the config its
    shards were made with; keys it lacks take their defaults, except the keys added later
    (:data:`~fusion.config.vocabulary.LATER_KEYS`), which take the value the data had before
    them (an identity leaves them out exactly when they hold it).

    A file's recorded content hash (``network_sha256``, ...) is checked against the file the
    key names now, when it can be read: a config rebuilt from a manifest is the config its data
    was made with, or is refused.

    :param data: Sections of typed JSON values.
    :param source: Named in errors (the manifest's path).
    :raises ConfigError: on an unknown section or key, or a named file whose content is not
        the one recorded.
    """
    data, hashes = split_content(data)
    text = {
        section: {
            k: ",".join(map(str, v)) if isinstance(v, list) else str(v) for k, v in keys.items()
        }
        for section, keys in data.items()
    }
    canonical = {SECTION_ALIASES.get(name, name): name for name in text}
    for (section, key), before in LATER_KEYS.items():
        written = canonical.get(section, section)
        if key not in text.get(written, {}):
            text.setdefault(written, {})[key] = (
                str(before).lower() if isinstance(before, bool) else str(before)
            )
    config = config_from_mapping(text, source)
    if hashes:
        values = {k: getattr(getattr(config, _ATTRS[k[0]]), k[1]) for k in hashes if k[0] in _ATTRS}
        check_content(source, values, hashes)
    return config


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read an INI file (the embedded ``default.ini`` when ``None``), or a preset by name
    (:mod:`fusion.config.presets`, when no such file exists); missing keys take defaults.

    :param path: The INI file, or a preset's name (``deeprmsa-nsfnet``).
    :raises ConfigError: when the file is missing, not INI, or holds a bad section, key or value.
    """
    if path is not None and not Path(path).exists():
        from fusion.config.presets import PRESETS, preset_config  # presets build on this module

        if str(path) in PRESETS:
            return preset_config(str(path))
    parser = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=("#", ";"))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    if path is None:
        text = resources.files("fusion.config").joinpath(DEFAULT_CONFIG).read_text("utf-8")
        source = f"<embedded {DEFAULT_CONFIG}>"
    else:
        source = str(path)
        try:
            text = Path(path).read_text("utf-8")
        except OSError as exc:
            raise ConfigError(
                f"{source}: cannot read the config ({exc.strerror}); not a preset either "
                "(fusion scenarios lists them)"
            ) from None
    try:
        parser.read_string(text, source=source)
    except configparser.Error as exc:
        raise ConfigError(f"{source}: not a valid INI file: {exc}") from None
    data = {section: dict(parser.items(section)) for section in parser.sections()}
    return config_from_mapping(data, source)


def default_ini_text() -> str:
    """The embedded default config file's text (what :func:`default_ini` renders)."""
    return resources.files("fusion.config").joinpath(DEFAULT_CONFIG).read_text("utf-8")


#: The comment ``default.ini`` opens with; the rest of the file is rendered from the keys'
#: declarations above (:func:`default_ini`), so each key has one help text.
DEFAULT_INI_HEADER = """\
fusion's embedded default config: every key, its value, and what it means.
NSFNet, k=4, a load that blocks a few percent, a link failure mid-run repaired well
before the end (so the pre, fail and post windows all appear), logging on; 5 seeds
(42-46) of 50,000 requests, as FUSION's own usage example.
Rendered from fusion/config/config.py (default_ini()): change a key's help there."""

#: The widest line :func:`config_ini` writes a help text in.
INI_WIDTH = 95


def format_seeds(seeds: tuple[int, ...] | list[int]) -> str:
    """The shortest text :func:`parse_seeds` reads back as ``seeds``: runs as ``a-b``.

    :param seeds: Seeds, sorted and unique (as :func:`parse_seeds` gives them).

        >>> format_seeds((0, 1, 2, 3, 7, 9, 10))
        '0-3,7,9-10'
        >>> parse_seeds(format_seeds((42, 43, 44, 45, 46)))
        (42, 43, 44, 45, 46)
    """
    runs: list[list[int]] = []
    for seed in seeds:
        if runs and seed == runs[-1][1] + 1:
            runs[-1][1] = seed
        else:
            runs.append([seed, seed])
    return ",".join(f"{a}" if a == b else f"{a}-{b}" for a, b in runs)


def ini_value(value: Any) -> str:
    """A key's value as INI text its parser reads back to the same value.

    :param value: A typed value of a :class:`Config` section.
    :raises ValueError: for text an INI line cannot hold (a line break, or ``#``/``;`` after
        a space, which the reader takes for a comment).

        >>> ini_value(True), ini_value(300.0), ini_value((0, 1, 2)), ini_value(8)
        ('true', '300.0', '0-2', '8')
    """
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return format_seeds(value)
    if isinstance(value, float):
        return repr(value)
    text = str(value)
    if "\n" in text or "\r" in text or re.search(r"\s[#;]", text) or text != text.strip():
        raise ValueError(f"{text!r} cannot be written as an INI value and read back the same")
    return text


def config_ini(config: Config, header: str = "") -> str:
    """Every section and key of ``config`` as an INI file: each key after its help text as a
    comment, in declaration order. :func:`load_config` reads it back to the same config.

    :param config: The config to write out.
    :param header: Comment text for the top of the file (one ``#`` line per line).
    :raises ValueError: naming the key whose value an INI line cannot hold.

        >>> text = config_ini(Config())
        >>> text.splitlines()[:3]
        ['[general_settings]', '# offered load in Erlang (arrival rate x mean holding time)', 'erlang = 300.0']
    """
    lines = [f"# {line}".rstrip() for line in header.splitlines()]
    for section, cls in SECTIONS.items():
        if lines:
            lines.append("")
        lines.append(f"[{section}]")
        values = getattr(config, _ATTRS[section])
        for spec in dataclasses.fields(cls):
            help_lines = textwrap.wrap(
                spec.metadata["help"],
                INI_WIDTH - 2,
                break_long_words=False,
                break_on_hyphens=False,
            )
            lines.extend(f"# {line}" for line in help_lines)
            try:
                lines.append(f"{spec.name} = {ini_value(getattr(values, spec.name))}")
            except ValueError as exc:
                raise ValueError(f"{config.source}: [{section}] {spec.name}: {exc}") from None
    return "\n".join(lines) + "\n"


def default_ini() -> str:
    """The text ``default.ini`` holds: the defaults, each key under its help text.

    >>> default_ini() == default_ini_text()
    True
    """
    return config_ini(Config(), DEFAULT_INI_HEADER)


def check_seed(seed: Any) -> int:
    """Return ``seed`` as an int, or raise ``ValueError`` naming it and the allowed range.

    :param seed: The seed to check.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be an integer in 0 .. {MAX_SEED}, got {seed!r}")
    return seed
