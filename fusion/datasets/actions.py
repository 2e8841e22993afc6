"""The block action's two encodings, and the conversions between them (their one home).

A decision is logged in the record's encoding: ``action`` is a path index ``0 .. K-1``, or
``-1`` when the request is blocked, and ``action_mask`` holds K flags, one per path
(feasible or not). Gymnasium, Minari and the learners that bootstrap over "block" use the
environment's encoding: ``Discrete(K + 1)``, action ``K`` blocks, and the legal actions are
K + 1 flags: the feasible paths, and block only where no path is feasible (so a logged
``-1``, which happens exactly when no path is, is action ``K`` and the mask stays exact).

Each conversion has an array form (rows of a dataset) and a plain form (one decision, in
plain Python: the environment calls it once per step); ``tests/test_encodings.py`` checks
that both directions round-trip and that the two forms agree.

    >>> masks = np.array([[True, False], [False, False]])
    >>> env_masks(masks).tolist()
    [[True, False, False], [False, False, True]]
    >>> env_actions(np.array([1, -1]), 2).tolist(), logged_actions(np.array([1, 2]), 2).tolist()
    ([1, 2], [1, -1])
    >>> env_mask([False, True]), env_action(-1, 2), logged_action(2, 2)
    ([False, True, False], 2, -1)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = [
    "BLOCKED",
    "env_action",
    "env_action_count",
    "env_actions",
    "env_mask",
    "env_masks",
    "first_feasible_actions",
    "logged_action",
    "logged_actions",
    "logged_masks",
]

#: A blocked request's action in the record's encoding.
BLOCKED = -1


def env_action_count(k_paths: int) -> int:
    """The size of the environment's ``Discrete`` action space: K paths and block (action K).

    :param k_paths: K.

        >>> env_action_count(4)
        5
    """
    return k_paths + 1


def env_action(action: int, k_paths: int) -> int:
    """One logged action (``-1``: blocked) as the environment's (``K``: block).

    :param action: ``-1 .. K-1``.
    :param k_paths: K.
    """
    return k_paths if action < 0 else action


def logged_action(action: int, k_paths: int) -> int:
    """One environment action (``K``: block) as the record logs it (``-1``: blocked).

    :param action: ``0 .. K``.
    :param k_paths: K.
    """
    return BLOCKED if action >= k_paths else action


def env_actions(actions: np.ndarray, k_paths: int) -> np.ndarray:
    """Logged actions as the environment's, int64 (:func:`env_action` row by row).

    :param actions: ``(N,)`` in ``-1 .. K-1``.
    :param k_paths: K.
    """
    actions = np.asarray(actions)
    return np.where(actions < 0, k_paths, actions).astype(np.int64, copy=False)


def logged_actions(actions: np.ndarray, k_paths: int) -> np.ndarray:
    """Environment actions as the record logs them, int64 (:func:`logged_action` row by row).

    :param actions: ``(N,)`` in ``0 .. K``.
    :param k_paths: K.
    """
    actions = np.asarray(actions)
    return np.where(actions >= k_paths, BLOCKED, actions).astype(np.int64, copy=False)


def env_mask(mask: Sequence[bool]) -> list[bool]:
    """One decision's legal actions (K + 1 flags: block only where no path is feasible), as
    a list (:func:`env_masks`' rule, without numpy).

    :param mask: The decision's K feasibility flags.

        >>> env_mask([False, False])
        [False, False, True]
    """
    return [*mask, not any(mask)]


def env_masks(masks: np.ndarray | Sequence[bool]) -> np.ndarray:
    """The legal actions of ``Discrete(K + 1)``: the feasible paths, and block (action K) only
    where no path is feasible.

    :param masks: ``(N, K)`` or ``(K,)`` feasibility; the result has one more column.
    """
    masks = np.asarray(masks, dtype=bool)
    return np.concatenate([masks, ~masks.any(axis=-1, keepdims=True)], axis=-1)


def logged_masks(masks: np.ndarray) -> np.ndarray:
    """The environment's legal actions as the record's K feasibility flags (block's column
    dropped: it follows from the others).

    :param masks: ``(N, K + 1)`` or ``(K + 1,)`` legal actions, as :func:`env_masks` gives.
    :raises ValueError: when a row's block flag is not "no path is feasible".
    """
    masks = np.asarray(masks, dtype=bool)
    paths, block = masks[..., :-1], masks[..., -1]
    if (block == paths.any(axis=-1)).any():
        raise ValueError(
            "an environment mask whose block flag (the last) is not 'no path is feasible': "
            "not one env_masks gives"
        )
    return paths


def first_feasible_actions(masks: np.ndarray) -> np.ndarray:
    """KSP-FF's path choice over logged decisions (the first feasible candidate, in the
    record's encoding: ``-1`` where none is), to compare a learner's actions with.

    :param masks: ``(N, K)`` feasibility, as logged.

        >>> first_feasible_actions(np.array([[False, True], [False, False]])).tolist()
        [1, -1]
    """
    masks = np.asarray(masks, dtype=bool)
    return np.where(masks.any(axis=1), masks.argmax(axis=1), BLOCKED)
