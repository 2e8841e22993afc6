"""The observation vector a learned policy sees: upstream FUSION's feature order.

An observation is ``5 + 5K`` numbers: the request's ``src, dst, slots_needed,
est_remaining_time, is_disaster``, then for each of the K paths ``path_hops,
min_residual_slots, frag_indicator, failure_mask, dist_to_disaster_centroid``. A state with
fewer than K paths is padded with zeros. The names come from the record's schema
(:mod:`fusion.storage.schema`). The array view
(:func:`fusion.datasets.arrays.to_arrays`) and learned policies
(:class:`fusion.rl.bc.BCPolicy`) both use this one definition.

    >>> observation_names(1)
    ['src', 'dst', 'slots_needed', 'est_remaining_time', 'is_disaster', 'path0.path_hops', 'path0.min_residual_slots', 'path0.frag_indicator', 'path0.failure_mask', 'path0.dist_to_disaster_centroid']
    >>> state = {"src": 0, "dst": 3, "slots_needed": 4, "est_remaining_time": 0.5, "is_disaster": 0,
    ...          "paths": [{"path_hops": 2, "min_residual_slots": 300, "frag_indicator": 0.25,
    ...                     "failure_mask": 0, "dist_to_disaster_centroid": -1}]}
    >>> observation(state, 2).tolist()
    [0.0, 3.0, 4.0, 0.5, 0.0, 2.0, 300.0, 0.25, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fusion.storage.schema import PATH_FEATURES, STATE_FEATURES

__all__ = [
    "PATH_FEATURES",
    "STATE_FEATURES",
    "legal_actions",
    "observation",
    "observation_names",
    "observation_size",
]


def observation_size(k_paths: int) -> int:
    """Length of the observation vector for K paths.

    :param k_paths: K.
    """
    return len(STATE_FEATURES) + len(PATH_FEATURES) * k_paths


def observation_names(k_paths: int) -> list[str]:
    """Column names of the observation vector, in order (``path<i>.<feature>`` per path).

    :param k_paths: K.
    """
    names = list(STATE_FEATURES)
    for i in range(k_paths):
        names.extend(f"path{i}.{name}" for name in PATH_FEATURES)
    return names


def observation(state: Mapping[str, Any], k_paths: int) -> np.ndarray:
    """One state as a float32 vector in upstream FUSION's order.

    :param state: The seed card's state dict.
    :param k_paths: K; paths beyond K are ignored, missing ones are zeros.
    """
    values = [float(state[name]) for name in STATE_FEATURES]
    for path in list(state["paths"])[:k_paths]:
        values.extend(float(path[name]) for name in PATH_FEATURES)
    vector = np.zeros(observation_size(k_paths), dtype=np.float32)
    vector[: len(values)] = values
    return vector


def legal_actions(masks: np.ndarray | Sequence[bool]) -> np.ndarray:
    """The legal actions of ``Discrete(K + 1)``: the feasible paths, and block (action K) only
    where no path is feasible, so a logged ``-1`` is action K and the mask stays exact.

    :param masks: ``(N, K)`` or ``(K,)`` feasibility; the result has one more column.

        >>> legal_actions(np.array([[True, False], [False, False]])).tolist()
        [[True, False, False], [False, False, True]]
    """
    masks = np.asarray(masks, dtype=bool)
    return np.concatenate([masks, ~masks.any(axis=-1, keepdims=True)], axis=-1)
