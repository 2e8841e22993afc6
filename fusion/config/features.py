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
engine writes (``start_slot`` among them, unless an original heuristic allocates first-fit).

Ranges name the scenario's sizes: ``nodes`` (the topology's node count), ``slots``
(``[topology_settings] c_band``), ``links`` and ``paths`` (K); ``inf`` is unbounded.

    >>> path_features("seed")
    ('path_hops', 'min_residual_slots', 'frag_indicator', 'failure_mask', 'dist_to_disaster_centroid')
    >>> len(path_features("extended"))
    13
    >>> feature_bounds(["slots_needed", "first_fit_start"], nodes=14, slots=320)
    ([0.0, -1.0], [320.0, 319.0])
    >>> [f.name for f in RECORD_FIELDS["record"]]
    ['t', 'seed', 'state', 'action', 'reward', 'next_state', 'action_mask', 'meta']
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "EXTENDED_PATH_FEATURES",
    "FEATURES",
    "GROUP_KINDS",
    "META_FIELDS",
    "PATH_FEATURE_SETS",
    "RECORD_FIELDS",
    "SEED_PATH_FEATURES",
    "STATE_FEATURES",
    "Feature",
    "feature_bounds",
    "feature_set_holding",
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
    """

    name: str
    unit: str
    low: str
    high: str
    meaning: str
    kind: str


_STATE = (
    Feature("src", "node", "0", "nodes-1", "the request's source node", kind="int"),
    Feature("dst", "node", "0", "nodes-1", "the request's destination node", kind="int"),
    Feature(
        "slots_needed",
        "slots",
        "0",
        "slots",
        "slots (guard band included) on the first path a modulation format reaches; "
        "0: no path does",
        kind="int",
    ),
    Feature(
        "est_remaining_time",
        "holding-time units",
        "0",
        "inf",
        "the request's holding time when [dataset_logging] holding_time_known, else the mean "
        "holding time (what a controller can estimate)",
        kind="float",
    ),
    Feature("is_disaster", "flag", "0", "1", "1 while a failure is active", kind="int"),
)
_SEED_PATH = (
    Feature("path_hops", "links", "0", "nodes", "links on the path", kind="int"),
    Feature(
        "min_residual_slots",
        "slots",
        "0",
        "slots",
        "fewest free slots on any of its links",
        kind="int",
    ),
    Feature(
        "frag_indicator",
        "ratio",
        "0",
        "1",
        "1 - longest free block / free slots, over the slots free on every link (0: one block)",
        kind="float",
    ),
    Feature(
        "failure_mask", "flag", "0", "1", "1 if the path crosses a link that is down", kind="int"
    ),
    Feature(
        "dist_to_disaster_centroid",
        "hops",
        "-1",
        "nodes",
        "fewest hops to the failure's centre while one is active; -1 otherwise",
        kind="int",
    ),
)
_EXTENDED_PATH = (
    Feature("length_km", "km", "0", "inf", "the path's length", kind="float"),
    Feature(
        "path_slots_needed",
        "slots",
        "0",
        "slots",
        "slots (guard band included) the request takes on this path; 0: out of reach",
        kind="int",
    ),
    Feature(
        "spectral_efficiency",
        "b/s/Hz",
        "0",
        "inf",
        "the modulation format's spectral efficiency on this path; 0: out of reach",
        kind="float",
    ),
    Feature(
        "first_fit_start",
        "slot",
        "-1",
        "slots-1",
        "the lowest slot where the request fits on every link; -1: nowhere",
        kind="int",
    ),
    Feature(
        "first_fit_block",
        "slots",
        "0",
        "slots",
        "the size of the free block that first fit lands in; 0: none",
        kind="int",
    ),
    Feature(
        "fitting_blocks",
        "blocks",
        "0",
        "slots",
        "free blocks (free on every link) large enough for the request",
        kind="int",
    ),
    Feature(
        "free_slots", "slots", "0", "slots", "slots free on every link of the path", kind="int"
    ),
    Feature(
        "mean_block_size",
        "slots",
        "0",
        "slots",
        "free_slots / the number of free blocks, 4 decimals; 0: none free",
        kind="float",
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
)
_SPECTRUM = Feature(
    "spectrum",
    "occupied slots",
    "0",
    "2^slots-1",
    "per link, its occupied slots as a hexadecimal number (bit s: slot s); with "
    "[dataset_logging] log_spectrum",
    kind="hex list",
)
_LINKS = Feature(
    "links", "link ids", "0", "links-1", "the path's links; with log_spectrum", kind="int list"
)
_META = (
    Feature("decision_time_ms", "ms", "0", "inf", "wall-clock time of the decision", kind="float"),
    Feature(
        "restoration_latency_ms",
        "ms",
        "0",
        "inf",
        "[failure_settings] restoration_latency_ms while a failure is active; 0 otherwise",
        kind="float",
    ),
    Feature(
        "bp_window_tag",
        "window",
        "pre",
        "post",
        "pre, fail or post: where the arrival falls against the run's failure",
        kind="str",
    ),
    Feature(
        "backup_available",
        "flag",
        "false",
        "true",
        "another feasible path is link-disjoint from the one taken",
        kind="bool",
    ),
    Feature(
        "was_groomed",
        "flag",
        "false",
        "true",
        "false: this simulator grooms no traffic",
        kind="bool",
    ),
    Feature(
        "request_id",
        "requests",
        "0",
        "inf",
        "the request's index among the measured ones (warm-up excluded)",
        kind="int",
    ),
    Feature("arrival_time", "holding-time units", "0", "inf", "when it arrived", kind="float"),
    Feature(
        "bit_rate",
        "Gb/s",
        "1",
        "inf",
        "the request's bit rate (or slots: modulation none)",
        kind="int",
    ),
    Feature(
        "start_slot",
        "slot",
        "-1",
        "slots-1",
        "the first slot allocated, -1 when blocked; logged unless an original heuristic "
        "allocates first-fit",
        kind="int",
    ),
)
_RECORD = (
    Feature("t", "decisions", "0", "inf", "the transition's index within its seed", kind="int"),
    Feature("seed", "seed", "0", "inf", "the run's seed", kind="int"),
    Feature("state", "", "", "", "what the decision saw", kind="state"),
    Feature("action", "path", "-1", "paths-1", "the path taken; -1: blocked", kind="int"),
    Feature("reward", "reward", "-1", "1", "+1.0 routed, -1.0 blocked", kind="float"),
    Feature(
        "next_state",
        "",
        "",
        "",
        "the next transition's state with [dataset_logging] link_next_state; else null",
        kind="state",
    ),
    Feature(
        "action_mask",
        "flags",
        "false",
        "true",
        "per path, whether it can carry the request",
        kind="bool list",
    ),
    Feature("meta", "", "", "", "facts about the decision a policy does not see", kind="meta"),
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


def feature_set_holding(held: Iterable[str]) -> tuple[str, ...]:
    """The path features of the smallest feature set holding every one of ``held``: the one
    rule that tells which set a file holds from the features its paths hold (the seed card's
    five when they hold none).

    :param held: Path features found in the data.
    :raises ValueError: naming a feature no set holds.

        >>> feature_set_holding(["path_hops", "free_slots"]) == path_features("extended")
        True
        >>> feature_set_holding([])
        ('path_hops', 'min_residual_slots', 'frag_indicator', 'failure_mask', 'dist_to_disaster_centroid')
    """
    wanted = set(held)
    for features in sorted(PATH_FEATURE_SETS.values(), key=len):
        if wanted <= set(features):
            return features
    known = {name for features in PATH_FEATURE_SETS.values() for name in features}
    raise ValueError(f"no feature set holds {sorted(wanted - known)}")


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
