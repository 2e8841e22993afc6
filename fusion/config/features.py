"""Every state and path feature a transition carries: its name, unit, range and meaning.

This catalogue is the one place a feature is described. The record's schema
(:mod:`fusion.storage.schema`), the array view's ``observation_names``, the environment's
``observation_space`` bounds and the README's feature table are all built from it.

A state holds the request's :data:`STATE_FEATURES` and one object per candidate path. A path
object holds the seed card's five features (:data:`SEED_PATH_FEATURES`) and, with
``[dataset_logging] path_features = extended`` (the default), eight more after them
(:data:`EXTENDED_PATH_FEATURES`), so a reader of the seed card's schema keeps working.

Ranges name the scenario's sizes: ``nodes`` (the topology's node count) and ``slots``
(``[topology_settings] c_band``); ``inf`` is unbounded.

    >>> path_features("seed")
    ('path_hops', 'min_residual_slots', 'frag_indicator', 'failure_mask', 'dist_to_disaster_centroid')
    >>> len(path_features("extended"))
    13
    >>> feature_bounds(["slots_needed", "first_fit_start"], nodes=14, slots=320)
    ([0.0, -1.0], [320.0, 319.0])
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "EXTENDED_PATH_FEATURES",
    "FEATURES",
    "PATH_FEATURE_SETS",
    "SEED_PATH_FEATURES",
    "STATE_FEATURES",
    "Feature",
    "feature_bounds",
    "feature_table",
    "path_features",
]


@dataclass(frozen=True)
class Feature:
    """One feature of a state or of a path.

    :param name: Its key in the state (or path) object.
    :param unit: What it counts or measures.
    :param low: Smallest value: a number or ``"nodes"``/``"slots"`` arithmetic (:func:`_size`).
    :param high: Largest value, the same way (``"inf"``: unbounded).
    :param meaning: One sentence.
    """

    name: str
    unit: str
    low: str
    high: str
    meaning: str


_STATE = (
    Feature("src", "node", "0", "nodes-1", "the request's source node"),
    Feature("dst", "node", "0", "nodes-1", "the request's destination node"),
    Feature(
        "slots_needed",
        "slots",
        "0",
        "slots",
        "slots (guard band included) on the first path a modulation format reaches; "
        "0: no path does",
    ),
    Feature(
        "est_remaining_time",
        "holding-time units",
        "0",
        "inf",
        "the request's holding time when [dataset_logging] holding_time_known, else the mean "
        "holding time (what a controller can estimate)",
    ),
    Feature("is_disaster", "flag", "0", "1", "1 while a failure is active"),
)
_SEED_PATH = (
    Feature("path_hops", "links", "0", "nodes", "links on the path"),
    Feature("min_residual_slots", "slots", "0", "slots", "fewest free slots on any of its links"),
    Feature(
        "frag_indicator",
        "ratio",
        "0",
        "1",
        "1 - longest free block / free slots, over the slots free on every link (0: one block)",
    ),
    Feature("failure_mask", "flag", "0", "1", "1 if the path crosses a link that is down"),
    Feature(
        "dist_to_disaster_centroid",
        "hops",
        "-1",
        "nodes",
        "fewest hops to the failure's centre while one is active; -1 otherwise",
    ),
)
_EXTENDED_PATH = (
    Feature("length_km", "km", "0", "inf", "the path's length"),
    Feature(
        "path_slots_needed",
        "slots",
        "0",
        "slots",
        "slots (guard band included) the request takes on this path; 0: out of reach",
    ),
    Feature(
        "spectral_efficiency",
        "b/s/Hz",
        "0",
        "inf",
        "the modulation format's spectral efficiency on this path; 0: out of reach",
    ),
    Feature(
        "first_fit_start",
        "slot",
        "-1",
        "slots-1",
        "the lowest slot where the request fits on every link; -1: nowhere",
    ),
    Feature(
        "first_fit_block",
        "slots",
        "0",
        "slots",
        "the size of the free block that first fit lands in; 0: none",
    ),
    Feature(
        "fitting_blocks",
        "blocks",
        "0",
        "slots",
        "free blocks (free on every link) large enough for the request",
    ),
    Feature("free_slots", "slots", "0", "slots", "slots free on every link of the path"),
    Feature(
        "mean_block_size",
        "slots",
        "0",
        "slots",
        "free_slots / the number of free blocks, 4 decimals; 0: none free",
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
