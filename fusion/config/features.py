"""Every field a transition carries: its name, kind, unit, range and meaning.

This catalogue is the one place a feature, and any other field of a record, is described. The
record's schema (:mod:`fusion.storage.schema`), the array view's ``observation_names``, the
environment's ``observation_space`` bounds, the Parquet export's columns
(:mod:`fusion.datasets.arrow_types`) and the README's feature table are all built from it.

A state holds the request's :data:`STATE_FEATURES` and one object per candidate path. A path
object holds the seed card's five features (:data:`SEED_PATH_FEATURES`) and, with
``[dataset_logging] path_features = extended`` (the default), eight more after them
(:data:`EXTENDED_PATH_FEATURES`), so a reader of the seed card's schema keeps working.
:data:`RECORD_FIELDS` declares the rest of a line: its own fields, the state's ``paths`` and
``spectrum``, a path's ``links`` (both with ``log_spectrum``) and the ``meta`` fields the
engine writes (``start_slot`` among them, and what produced the action: ``behaviour``,
``explored``, ``propensity``).

Each field says since when it exists (:attr:`Feature.since`, one of :data:`EDITIONS`; the
seed card's fields are the first). A dataset's manifest records the exact list of path features
its shards hold (``path_features``); :func:`feature_set_holding` is the one rule readers apply,
taking that list when there is one and guessing only for data made before manifests held it.
An engine-written dataset's manifest also records the edition its shards hold
(:data:`RECORD_EDITION`, the newest), and a run refuses to add shards of another edition.

Ranges name the scenario's sizes: ``nodes`` (the topology's node count), ``slots``
(``[topology_settings] c_band``), ``links`` and ``paths`` (K); ``inf`` is unbounded.

    >>> path_features("seed")
    ('path_hops', 'min_residual_slots', 'frag_indicator', 'failure_mask', 'dist_to_disaster_centroid')
    >>> path_features("extended")[5:8]  # after the seed card's five
    ('length_km', 'path_slots_needed', 'spectral_efficiency')
    >>> feature_bounds(["slots_needed", "first_fit_start"], nodes=14, slots=320)
    ([0.0, -1.0], [320.0, 319.0])
    >>> [f.name for f in RECORD_FIELDS["record"]]
    ['t', 'seed', 'state', 'action', 'reward', 'next_state', 'action_mask', 'meta']
    >>> FEATURES["free_slots"].since, FEATURES["path_hops"].since
    ('path_features = extended', 'seed card')
    >>> META_FIELDS[-4:], RECORD_EDITION
    (('start_slot', 'behaviour', 'explored', 'propensity'), 'behaviour')
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ALL_PATH_FEATURES",
    "EDITIONS",
    "EXTENDED_PATH_FEATURES",
    "FEATURES",
    "GROUP_KINDS",
    "META_FIELDS",
    "PATH_FEATURE_SETS",
    "RECORD_EDITION",
    "RECORD_FIELDS",
    "SEED_PATH_FEATURES",
    "STATE_FEATURES",
    "Feature",
    "check_path_feature_list",
    "feature_bounds",
    "feature_set_holding",
    "feature_set_name",
    "feature_table",
    "path_features",
]


@dataclass(frozen=True)
class Feature:
    """One feature of a state or of a path, or another field of a record.

    :param name: Its key in the state (or path, meta, line) object.
    :param unit: What it counts or measures.
    :param low: Smallest value: a number or ``"nodes"``/``"slots"`` arithmetic (:func:`_size`);
        for a list, its entries' (empty for an object).
    :param high: Largest value, the same way (``"inf"``: unbounded).
    :param meaning: One sentence.
    :param kind: Its value in a line: ``int``, ``float``, ``bool``, ``str``, ``hex`` (a
        hexadecimal number as a string), ``<kind> list``, or a group of :data:`RECORD_FIELDS`
        (:data:`GROUP_KINDS`: an object holding that group's fields).
    :param since: The edition of the record that introduced it (a key of :data:`EDITIONS`;
        ``""`` only for what is not a field of the record, such as an export's own column).
    """

    name: str
    unit: str
    low: str
    high: str
    meaning: str
    kind: str
    since: str = ""


#: The record's editions, oldest first: what :attr:`Feature.since` names, and what each
#: brought. A dataset of an edition holds the fields of it and of every edition before it
#: (those that a setting turns on, when it is on).
SEED_CARD = "seed card"
FIRST_RELEASE = "fusion 0.1.0"
EXTENDED = "path_features = extended"
LOG_SPECTRUM = "log_spectrum"
START_SLOT = "start_slot"
BEHAVIOUR = "behaviour"
EDITIONS: dict[str, str] = {
    SEED_CARD: "the seed card's schema: the line's fields, the request's five features, a "
    "path's five and meta's first five (decision_time_ms .. was_groomed)",
    FIRST_RELEASE: "fusion's engine: meta's request_id, arrival_time and bit_rate",
    EXTENDED: "[dataset_logging] path_features = extended: eight path features after the seed "
    "card's five",
    LOG_SPECTRUM: "[dataset_logging] log_spectrum: the state's spectrum and each path's links",
    START_SLOT: "[policy_settings] spectrum policies: meta's start_slot",
    BEHAVIOUR: "what produced each action: meta's behaviour, explored and propensity, and "
    "start_slot for every policy",
}
#: The edition the engine writes (the newest): what an engine-written dataset's manifest
#: records (``record_edition``, :mod:`fusion.storage.manifest`).
RECORD_EDITION: str = list(EDITIONS)[-1]


_STATE = (
    Feature(
        "src", "node", "0", "nodes-1", "the request's source node", kind="int", since=SEED_CARD
    ),
    Feature(
        "dst", "node", "0", "nodes-1", "the request's destination node", kind="int", since=SEED_CARD
    ),
    Feature(
        "slots_needed",
        "slots",
        "0",
        "slots",
        "slots (guard band included) on the first path a modulation format reaches; "
        "0: no path does",
        kind="int",
        since=SEED_CARD,
    ),
    Feature(
        "est_remaining_time",
        "holding-time units",
        "0",
        "inf",
        "the request's holding time when [dataset_logging] holding_time_known; else "
        "[general_settings] holding_time, the mean of the exponential draw before any "
        "truncation (with holding_time_truncation F > 0 the requests' mean is lower: "
        "holding_time x (1 - (1 + F) e^-F) / (1 - e^-F))",
        kind="float",
        since=SEED_CARD,
    ),
    Feature(
        "is_disaster", "flag", "0", "1", "1 while a failure is active", kind="int", since=SEED_CARD
    ),
)
_SEED_PATH = (
    Feature("path_hops", "links", "0", "nodes", "links on the path", kind="int", since=SEED_CARD),
    Feature(
        "min_residual_slots",
        "slots",
        "0",
        "slots",
        "fewest free slots on any of its links",
        kind="int",
        since=SEED_CARD,
    ),
    Feature(
        "frag_indicator",
        "ratio",
        "0",
        "1",
        "1 - longest free block / free slots, over the slots free on every link (0: one block)",
        kind="float",
        since=SEED_CARD,
    ),
    Feature(
        "failure_mask",
        "flag",
        "0",
        "1",
        "1 if the path crosses a link that is down",
        kind="int",
        since=SEED_CARD,
    ),
    Feature(
        "dist_to_disaster_centroid",
        "hops",
        "-1",
        "nodes",
        "fewest hops to the failure's centre while one is active; -1 otherwise",
        kind="int",
        since=SEED_CARD,
    ),
)
_EXTENDED_PATH = (
    Feature("length_km", "km", "0", "inf", "the path's length", kind="float", since=EXTENDED),
    Feature(
        "path_slots_needed",
        "slots",
        "0",
        "slots",
        "slots (guard band included) the request takes on this path; 0: out of reach",
        kind="int",
        since=EXTENDED,
    ),
    Feature(
        "spectral_efficiency",
        "b/s/Hz",
        "0",
        "inf",
        "the modulation format's spectral efficiency on this path; 0: out of reach",
        kind="float",
        since=EXTENDED,
    ),
    Feature(
        "first_fit_start",
        "slot",
        "-1",
        "slots-1",
        "the lowest slot where the request fits on every link; -1: nowhere",
        kind="int",
        since=EXTENDED,
    ),
    Feature(
        "first_fit_block",
        "slots",
        "0",
        "slots",
        "the size of the free block that first fit lands in; 0: none",
        kind="int",
        since=EXTENDED,
    ),
    Feature(
        "fitting_blocks",
        "blocks",
        "0",
        "slots",
        "free blocks (free on every link) large enough for the request",
        kind="int",
        since=EXTENDED,
    ),
    Feature(
        "free_slots",
        "slots",
        "0",
        "slots",
        "slots free on every link of the path",
        kind="int",
        since=EXTENDED,
    ),
    Feature(
        "mean_block_size",
        "slots",
        "0",
        "slots",
        "free_slots / the number of free blocks, 4 decimals; 0: none free",
        kind="float",
        since=EXTENDED,
    ),
)

# The rest of a record: what is not an observation feature.
_PATHS = Feature(
    "paths",
    "paths",
    "",
    "",
    "the candidate paths, K objects (padding after the real ones)",
    kind="path list",
    since=SEED_CARD,
)
_SPECTRUM = Feature(
    "spectrum",
    "occupied slots",
    "0",
    "2^slots-1",
    "per link, its occupied slots as a hexadecimal number (bit s: slot s); with "
    "[dataset_logging] log_spectrum",
    kind="hex list",
    since=LOG_SPECTRUM,
)
_LINKS = Feature(
    "links",
    "link ids",
    "0",
    "links-1",
    "the path's links; with log_spectrum",
    kind="int list",
    since=LOG_SPECTRUM,
)
_META = (
    Feature(
        "decision_time_ms",
        "ms",
        "0",
        "inf",
        "wall-clock time of the decision",
        kind="float",
        since=SEED_CARD,
    ),
    Feature(
        "restoration_latency_ms",
        "ms",
        "0",
        "inf",
        "[failure_settings] restoration_latency_ms while a failure is active; 0 otherwise",
        kind="float",
        since=SEED_CARD,
    ),
    Feature(
        "bp_window_tag",
        "window",
        "pre",
        "post",
        "pre, fail or post: where the arrival falls against the run's failure",
        kind="str",
        since=SEED_CARD,
    ),
    Feature(
        "backup_available",
        "flag",
        "false",
        "true",
        "another feasible path is link-disjoint from the one taken",
        kind="bool",
        since=SEED_CARD,
    ),
    Feature(
        "was_groomed",
        "flag",
        "false",
        "true",
        "false: this simulator grooms no traffic",
        kind="bool",
        since=SEED_CARD,
    ),
    Feature(
        "request_id",
        "requests",
        "0",
        "inf",
        "the request's index among the measured ones (warm-up excluded)",
        kind="int",
        since=FIRST_RELEASE,
    ),
    Feature(
        "arrival_time",
        "holding-time units",
        "0",
        "inf",
        "when it arrived",
        kind="float",
        since=FIRST_RELEASE,
    ),
    Feature(
        "bit_rate",
        "Gb/s",
        "1",
        "inf",
        "the request's bit rate (or slots: modulation none)",
        kind="int",
        since=FIRST_RELEASE,
    ),
    Feature(
        "start_slot",
        "slot",
        "-1",
        "slots-1",
        "the first slot allocated, -1 when blocked",
        kind="int",
        since=START_SLOT,
    ),
    Feature(
        "behaviour",
        "policy/rule",
        "",
        "",
        "what chose the action: the behaviour policy's name and the spectrum rule the engine "
        "allocates with, policy/rule (e.g. ksp_ff/first_fit; epsilon-mix's base policy), or "
        "policy/chosen for a policy that places the request itself",
        kind="str",
        since=BEHAVIOUR,
    ),
    Feature(
        "explored",
        "flag",
        "false",
        "true",
        "epsilon-mix took the behaviour policy's second choice ([dataset_logging] epsilon_mix)",
        kind="bool",
        since=BEHAVIOUR,
    ),
    Feature(
        "propensity",
        "probability",
        "0",
        "1",
        "the probability the behaviour policy (epsilon-mix included) gave the action taken, "
        "in (0, 1]: 1.0 for a deterministic choice and for a block",
        kind="float",
        since=BEHAVIOUR,
    ),
)
_RECORD = (
    Feature(
        "t",
        "decisions",
        "0",
        "inf",
        "the transition's index within its seed",
        kind="int",
        since=SEED_CARD,
    ),
    Feature("seed", "seed", "0", "inf", "the run's seed", kind="int", since=SEED_CARD),
    Feature("state", "", "", "", "what the decision saw", kind="state", since=SEED_CARD),
    Feature(
        "action",
        "path",
        "-1",
        "paths-1",
        "the path taken; -1: blocked",
        kind="int",
        since=SEED_CARD,
    ),
    Feature(
        "reward", "reward", "-1", "1", "+1.0 routed, -1.0 blocked", kind="float", since=SEED_CARD
    ),
    Feature(
        "next_state",
        "",
        "",
        "",
        "the next transition's state with [dataset_logging] link_next_state; else null",
        kind="state",
        since=SEED_CARD,
    ),
    Feature(
        "action_mask",
        "flags",
        "false",
        "true",
        "per path, whether it can carry the request",
        kind="bool list",
        since=SEED_CARD,
    ),
    Feature(
        "meta",
        "",
        "",
        "",
        "facts about the decision a policy does not see",
        kind="meta",
        since=SEED_CARD,
    ),
)

#: The request's features, in the observation's order (upstream FUSION's).
STATE_FEATURES: tuple[str, ...] = tuple(f.name for f in _STATE)
#: The seed card's five path features, in order.
SEED_PATH_FEATURES: tuple[str, ...] = tuple(f.name for f in _SEED_PATH)
#: The features ``path_features = extended`` adds after the seed card's five, in order.
EXTENDED_PATH_FEATURES: tuple[str, ...] = tuple(f.name for f in _EXTENDED_PATH)
#: ``[dataset_logging] path_features`` -> the path features logged, in order.
PATH_FEATURE_SETS: dict[str, tuple[str, ...]] = {
    "seed": SEED_PATH_FEATURES,
    "extended": SEED_PATH_FEATURES + EXTENDED_PATH_FEATURES,
}
#: Every feature by name (state features, then path features; ``slots_needed`` is the state's).
FEATURES: dict[str, Feature] = {f.name: f for f in (*_STATE, *_SEED_PATH, *_EXTENDED_PATH)}
#: The ``meta`` fields, in the order the engine writes them.
META_FIELDS: tuple[str, ...] = tuple(f.name for f in _META)
#: Every field of a record by object, each in the order a line holds it: the line's own
#: (``record``), a state's (``state``, of ``next_state`` too), a path's (``path``: each of
#: ``state.paths``) and ``meta``'s.
RECORD_FIELDS: dict[str, tuple[Feature, ...]] = {
    "record": _RECORD,
    "state": (*_STATE, _PATHS, _SPECTRUM),
    "path": (*_SEED_PATH, *_EXTENDED_PATH, _LINKS),
    "meta": _META,
}
#: The kinds that name an object: a field of kind ``state`` holds the ``state`` fields.
GROUP_KINDS = frozenset(RECORD_FIELDS) - {"record"}
#: Every declared path feature, in the declaration's (an observation's) order.
ALL_PATH_FEATURES: tuple[str, ...] = tuple(f.name for f in (*_SEED_PATH, *_EXTENDED_PATH))


def path_features(name: str) -> tuple[str, ...]:
    """The path features of a ``path_features`` setting (``seed`` or ``extended``).

    :param name: The setting.
    :raises ValueError: naming the known settings.
    """
    try:
        return PATH_FEATURE_SETS[name]
    except KeyError:
        raise ValueError(
            f"path_features must be one of {sorted(PATH_FEATURE_SETS)}, got {name!r}"
        ) from None


def check_path_feature_list(names: Any) -> tuple[str, ...]:
    """A recorded list of path features, checked: declared path features (of
    :data:`RECORD_FIELDS` ``path``, whose observation values they are), each once, in the
    declaration's order (the order every reader lays them out in).

    :param names: The list as read (a manifest's or a sidecar's ``path_features``).
    :raises ValueError: saying what is wrong with it.

        >>> check_path_feature_list(["path_hops", "free_slots"])
        ('path_hops', 'free_slots')
        >>> check_path_feature_list(["free_slots", "path_hops"])
        Traceback (most recent call last):
        ...
        ValueError: the declaration's order is ['path_hops', 'free_slots']
    """
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise ValueError("not a list of names")
    unknown = [n for n in names if n not in ALL_PATH_FEATURES]
    if unknown:
        raise ValueError(f"{unknown} {'is' if len(unknown) == 1 else 'are'} not path features")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ValueError(f"{twice} listed more than once")
    ordered = [n for n in ALL_PATH_FEATURES if n in names]
    if list(names) != ordered:
        raise ValueError(f"the declaration's order is {ordered}")
    return tuple(names)


def feature_set_holding(
    held: Iterable[str] = (),
    *,
    recorded: Sequence[str] | None = None,
    count: int | None = None,
) -> tuple[str, ...]:
    """The path features a dataset holds, in observation order: the one rule every reader
    applies (the column reader, the Parquet export, the observation layout).

    A dataset's manifest records its list (``path_features``); given it, that list is the
    answer, checked against what the data shows. Data made before manifests recorded one
    holds what it holds: the declared features among ``held``, in declaration order (the
    writer and ``fusion validate`` let a file hold any declared list, the same in every path);
    given only a width (``count``), the feature set of that many features; the seed card's
    five when nothing is known.

    :param held: Path features found in the data (for a recorded list: must be among it).
    :param recorded: The list the dataset's manifest (or merge record) holds, or ``None``.
    :param count: Features per path the data has (an observation's width), when known.
    :raises ValueError: naming a feature no set (or not the recorded list) holds, or a count
        that does not fit.

        >>> feature_set_holding(["free_slots", "path_hops"])
        ('path_hops', 'free_slots')
        >>> feature_set_holding([])
        ('path_hops', 'min_residual_slots', 'frag_indicator', 'failure_mask', 'dist_to_disaster_centroid')
        >>> feature_set_holding(["path_hops"], recorded=["path_hops", "free_slots"])
        ('path_hops', 'free_slots')
        >>> feature_set_holding(count=len(path_features("extended"))) == path_features("extended")
        True
    """
    wanted = set(held)
    if recorded is not None:
        listed = check_path_feature_list(list(recorded))
        if wanted - set(listed):
            raise ValueError(
                f"the data holds {sorted(wanted - set(listed))}, which its recorded "
                f"path_features {list(listed)} do not list"
            )
        if count is not None and count != len(listed):
            raise ValueError(
                f"{count} features per path, the recorded path_features list {len(listed)}"
            )
        return listed
    known = {name for features in PATH_FEATURE_SETS.values() for name in features}
    if wanted - known:
        raise ValueError(f"no feature set holds {sorted(wanted - known)}")
    if wanted:
        exact = tuple(name for name in ALL_PATH_FEATURES if name in wanted)
        if count in (None, len(exact)):
            return exact
        raise ValueError(f"{count} features per path, the data holds {len(exact)}: {list(exact)}")
    for features in sorted(PATH_FEATURE_SETS.values(), key=len):
        if count in (None, len(features)):
            return features
    raise ValueError(f"no feature set has {count} features per path")


def feature_set_name(features: Sequence[str]) -> str:
    """The ``path_features`` setting that gives ``features``, else the features themselves.

    :param features: Path features in order.

        >>> feature_set_name(path_features("seed")), feature_set_name(["path_hops"])
        ('seed', 'path_hops')
    """
    for name, listed in PATH_FEATURE_SETS.items():
        if tuple(features) == listed:
            return name
    return ", ".join(features)


def _size(text: str, nodes: int, slots: int) -> float:
    """``"nodes-1"``, ``"slots"``, ``"inf"`` or a number, as a float."""
    sizes = {"nodes": nodes, "slots": slots}
    base, _, minus = text.partition("-") if not text.startswith("-") else (text, "", "")
    if base == "inf":
        return math.inf
    value = float(sizes[base]) if base in sizes else float(base)
    return value - float(minus or 0)


def feature_bounds(
    names: Sequence[str], *, nodes: int, slots: int
) -> tuple[list[float], list[float]]:
    """The low and high bound of each named feature in a scenario.

    :param names: Feature names (state or path).
    :param nodes: The topology's node count.
    :param slots: Slots per link.
    """
    low = [_size(FEATURES[n].low, nodes, slots) for n in names]
    high = [_size(FEATURES[n].high, nodes, slots) for n in names]
    return low, high


def feature_table() -> str:
    """The catalogue as a Markdown table (the README's)."""
    rows = ["| feature | of | set | unit | range | meaning |", "|---|---|---|---|---|---|"]
    for group, where, features in (
        ("request", "state", _STATE),
        ("path", "seed", _SEED_PATH),
        ("path", "extended", _EXTENDED_PATH),
    ):
        for f in features:
            rows.append(
                f"| `{f.name}` | {group} | {where} | {f.unit} | {f.low} .. {f.high} | {f.meaning} |"
            )
    return "\n".join(rows)
