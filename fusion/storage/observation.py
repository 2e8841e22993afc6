"""The observation vector a learned policy sees: upstream FUSION's feature order.

An observation is ``5 + FK`` numbers: the request's ``src, dst, slots_needed,
est_remaining_time, is_disaster``, then for each of the K paths its F path features: the seed
card's five (``path_hops, min_residual_slots, frag_indicator, failure_mask,
dist_to_disaster_centroid``), followed by the eight extended ones when the data has them
(``path_features`` below; :mod:`fusion.config.features` describes each). A state with fewer
than K paths is padded with zeros. This module is the layout's one home, with its two builders
side by side: :func:`observation_rows` lays out a file's columns (the array view,
:func:`fusion.datasets.arrays.to_arrays`), :func:`observation` one state dict (the
environment and learned policies, once per decision, so in plain Python);
``tests/test_arrays.py`` checks that they agree row for row.

    >>> observation_names(1)
    ['src', 'dst', 'slots_needed', 'est_remaining_time', 'is_disaster', 'path0.path_hops', 'path0.min_residual_slots', 'path0.frag_indicator', 'path0.failure_mask', 'path0.dist_to_disaster_centroid']
    >>> state = {"src": 0, "dst": 3, "slots_needed": 4, "est_remaining_time": 0.5, "is_disaster": 0,
    ...          "paths": [{"path_hops": 2, "min_residual_slots": 300, "frag_indicator": 0.25,
    ...                     "failure_mask": 0, "dist_to_disaster_centroid": -1}]}
    >>> observation(state, 2).tolist()
    [0.0, 3.0, 4.0, 0.5, 0.0, 2.0, 300.0, 0.25, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from fusion.config.features import feature_set_holding
from fusion.storage.schema import EXTENDED_PATH_FEATURES, PATH_FEATURES, STATE_FEATURES

__all__ = [
    "EXTENDED_PATH_FEATURES",
    "PATH_FEATURES",
    "STATE_FEATURES",
    "observation",
    "observation_names",
    "observation_rows",
    "observation_size",
    "path_features_of",
    "scatter_rows",
]


def observation_size(k_paths: int, path_features: Sequence[str] = PATH_FEATURES) -> int:
    """Length of the observation vector for K paths.

    :param k_paths: K.
    :param path_features: The path features (default: the seed card's five).
    """
    return len(STATE_FEATURES) + len(path_features) * k_paths


def observation_names(k_paths: int, path_features: Sequence[str] = PATH_FEATURES) -> list[str]:
    """Column names of the observation vector, in order (``path<i>.<feature>`` per path).

    :param k_paths: K.
    :param path_features: The path features (default: the seed card's five).
    """
    names = list(STATE_FEATURES)
    for i in range(k_paths):
        names.extend(f"path{i}.{name}" for name in path_features)
    return names


def path_features_of(
    width: int, k_paths: int, recorded: Sequence[str] | None = None
) -> tuple[str, ...]:
    """The path features of observations ``width`` wide with K paths: the ``recorded`` list
    (a dataset's manifest's) when given, else the feature set of that width (data made before
    manifests recorded it): :func:`~fusion.config.features.feature_set_holding` decides.

    :param width: The observation's length.
    :param k_paths: K.
    :param recorded: The list the data's manifest records, or ``None``.
    :raises ValueError: when the width fits neither the recorded list nor any set.

        >>> path_features_of(5 + 5 * 4, 4)  # no list: the set of that width
        ('path_hops', 'min_residual_slots', 'frag_indicator', 'failure_mask', 'dist_to_disaster_centroid')
        >>> path_features_of(5 + 2 * 4, 4, ["path_hops", "free_slots"])
        ('path_hops', 'free_slots')
    """
    extra = width - len(STATE_FEATURES)
    per_path, rest = divmod(extra, k_paths) if k_paths > 0 else (None, extra)
    if extra < 0 or rest:
        raise ValueError(f"an observation of {width} values fits no feature set with K = {k_paths}")
    try:
        return feature_set_holding(recorded=recorded, count=per_path)
    except ValueError as exc:
        raise ValueError(
            f"an observation of {width} values with K = {k_paths} does not fit: {exc}"
        ) from None


def observation_rows(
    out: np.ndarray, state_values: np.ndarray, path_values: np.ndarray, path_counts: np.ndarray
) -> None:
    """Lay rows out in the observation order: request features, then K paths' features,
    a row with fewer than K paths padded with zeros.

    :param out: ``(n, 5 + FK)``, zeros, written in place (K from its width).
    :param state_values: ``(n, 5)``, :data:`STATE_FEATURES` per row.
    :param path_values: ``(sum(path_counts), F)``, the path features of every row's paths,
        rows back to back, at most K per row.
    :param path_counts: ``(n,)`` paths per row.
    """
    n = len(out)
    width = path_values.shape[1]
    k = (out.shape[1] - len(STATE_FEATURES)) // width
    out[:, : len(STATE_FEATURES)] = state_values
    scatter_rows(out[:, len(STATE_FEATURES) :].reshape(n, k, width), path_values, path_counts)


def scatter_rows(target: np.ndarray, values: np.ndarray, counts: np.ndarray) -> None:
    """Write lists stored back to back into ``target[row, position]`` (padding stays as is).

    :param target: ``(n, K, ...)``.
    :param values: ``(sum(counts), ...)`` every row's items, rows back to back.
    :param counts: ``(n,)`` items per row, each at most K.

        >>> out = np.zeros((2, 3), int)
        >>> scatter_rows(out, np.array([1, 2, 3]), np.array([1, 2])); out.tolist()
        [[1, 0, 0], [2, 3, 0]]
    """
    n, k = target.shape[0], target.shape[1]
    if len(values) == n * k:  # every row is full
        target[...] = values.reshape(target.shape)
        return
    rows = np.repeat(np.arange(n), counts)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1])) if n else np.zeros(0, np.int64)
    positions = np.arange(len(values)) - np.repeat(starts, counts)
    target[rows, positions] = values


def observation(
    state: Mapping[str, Any], k_paths: int, path_features: Sequence[str] = PATH_FEATURES
) -> np.ndarray:
    """One state as a float32 vector in upstream FUSION's order (as :func:`observation_rows`).

    :param state: The seed card's state dict.
    :param k_paths: K; paths beyond K are ignored, missing ones are zeros.
    :param path_features: The path features to lay out (default: the seed card's five).
    """
    values = list(_STATE(state))
    take = _getter(tuple(path_features))
    for path in state["paths"][:k_paths]:  # one C call per path: a third of a loop's time
        values += take(path)
    missing = len(STATE_FEATURES) + len(path_features) * k_paths - len(values)
    if missing:
        values += [0.0] * missing
    return np.array(values, dtype=np.float32)


_STATE = operator.itemgetter(*STATE_FEATURES)


@functools.cache
def _getter(path_features: tuple[str, ...]) -> Callable[[Mapping[str, Any]], Sequence[Any]]:
    """A path object's features, in order, as one tuple."""
    if len(path_features) == 1:
        (name,) = path_features
        return lambda path: (path[name],)
    return operator.itemgetter(*path_features)
