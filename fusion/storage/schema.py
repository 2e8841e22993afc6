"""The transition record: its fields, their types, the feature order and the window tags.

This is the one definition the writer's checks, the validator, the array view and the exports
share. A line is one JSON object with exactly the keys :data:`TOP_KEYS`:

- ``t`` (int, 0, 1, 2, ... within its seed), ``seed`` (int);
- ``state``: an object with ``src``, ``dst`` and ``paths`` (a list of objects, one per mask
  entry), and the request features :data:`STATE_FEATURES` and path features
  :data:`PATH_FEATURES` (and, logged with ``path_features = extended``,
  :data:`EXTENDED_PATH_FEATURES` after them) as numbers (upstream FUSION's order: the array
  view flattens a state as ``STATE_FEATURES + path features x K``); with ``log_spectrum`` the
  state also holds ``spectrum`` (per link, its occupied slots as a hex number) and each path
  its ``links``. The engine logs every feature; a state written by
  hand may leave some out (as the seed card's examples do), and the readers that need one
  (the array view, the exports) name it when it is missing; but the paths of one state hold
  the same features (a reader lays them out as K rows of one width).
  :func:`state_problem` is the one rule, for the writer and the validator alike;
- ``action`` (int: a feasible path index, or -1 when blocked), ``reward`` (+1.0 routed, -1.0
  blocked),
  ``next_state`` (``null`` or an object), ``action_mask`` (booleans, one per path);
- ``meta``: an object; ``meta.bp_window_tag`` is one of :data:`WINDOW_TAGS` when present
  (:func:`meta_problem`, again one rule for the writer and the validator).

A line is at most :data:`MAX_LINE_BYTES` long (the array view parses in blocks of 4 MiB).

    >>> state = {"src": 0, "dst": 1, "paths": []}
    >>> action, reward, mask = check_transition(state, 0, 1, None, [True], {})
    >>> action, reward, mask
    (0, 1.0, [True])
    >>> check_transition(state, 0, True, None, [True], {})
    Traceback (most recent call last):
    ...
    ValueError: reward must be a finite float (+1.0 routed, -1.0 blocked), got True (bool)
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from fusion.config import features as _features
from fusion.config.vocabulary import MAX_LINE_BYTES as MAX_LINE_BYTES  # (the scenario check too)

TOP_KEYS = frozenset(
    {"t", "seed", "state", "action", "reward", "next_state", "action_mask", "meta"}
)
#: The request's features (:mod:`fusion.config.features` describes every feature).
STATE_FEATURES = _features.STATE_FEATURES
#: The seed card's five path features; ``path_features = extended`` logs
#: :data:`EXTENDED_PATH_FEATURES` after them.
PATH_FEATURES = _features.SEED_PATH_FEATURES
EXTENDED_PATH_FEATURES = _features.EXTENDED_PATH_FEATURES
_ALL_PATH_FEATURES = PATH_FEATURES + EXTENDED_PATH_FEATURES
_PATH_FEATURE_SET = frozenset(_ALL_PATH_FEATURES)
STATE_KEYS = (*STATE_FEATURES, "paths")
#: What every state holds, whoever wrote it.
REQUIRED_STATE_KEYS = ("src", "dst", "paths")
WINDOW_TAGS = ("pre", "fail", "post")


def check_window(window: str | None) -> None:
    """Refuse a window tag that is not ``pre``, ``fail``, ``post`` or ``None``.

    :param window: The tag asked for.
    :raises ValueError: naming the tag and the allowed ones.
    """
    if window is not None and window not in WINDOW_TAGS:
        raise ValueError(f"window must be one of {WINDOW_TAGS} or None, got {window!r}")


def _kind(value: Any) -> str:
    return type(value).__name__


def _as_action(action: Any, mask: Sequence[Any]) -> int:
    if action.__class__ is not int:
        if isinstance(action, (bool, np.bool_)) or not isinstance(action, (int, np.integer)):
            raise ValueError(
                f"action must be an integer (a path index or -1), got {action!r} ({_kind(action)})"
            )
        action = int(action)
    if action != -1 and not (0 <= action < len(mask) and mask[action]):
        raise ValueError(
            f"action {action!r} is not -1 or the index of a feasible path in "
            f"action_mask {list(mask)!r}"
        )
    return action


def _as_reward(reward: Any) -> float:
    if reward.__class__ is not float:
        if isinstance(reward, (bool, np.bool_)) or not isinstance(
            reward, (int, float, np.integer, np.floating)
        ):
            raise ValueError(
                "reward must be a finite float (+1.0 routed, -1.0 blocked), "
                f"got {reward!r} ({_kind(reward)})"
            )
        reward = float(reward)
    return reward


def _as_mask(mask: Any) -> list[bool]:
    if isinstance(mask, np.ndarray):
        if mask.dtype != np.bool_ or mask.ndim != 1:
            raise ValueError(f"action_mask must be booleans, got an array of {mask.dtype}")
        return mask.tolist()
    if mask.__class__ is not list:
        if not isinstance(mask, (list, tuple)):
            raise ValueError(f"action_mask must be a list of booleans, got {_kind(mask)}")
        mask = list(mask)
    for entry in mask:
        if entry.__class__ is not bool:
            if not isinstance(entry, np.bool_):
                raise ValueError(
                    f"action_mask entries must be booleans, got {entry!r} ({_kind(entry)}) "
                    f"in {mask!r}"
                )
            mask = [bool(m) for m in mask]
            break
    return mask


def check_transition(
    state: Any,
    action: Any,
    reward: Any,
    next_state: Any,
    action_mask: Any,
    meta: Any,
    *,
    features: bool = True,
) -> tuple[int, float, list[bool]]:
    """The writer's check: refuse what a reader would refuse; return the normalised values.

    numpy integers, floats and booleans become Python ones; everything else of the wrong type
    is refused with a ``ValueError`` naming the field. NaN and infinities are checked after
    serialisation (:func:`non_finite_field`).

    :param state: The state (a mapping; ``paths``, when present, a list of mappings).
    :param action: A path index feasible in the mask, or -1.
    :param reward: +1.0 when routed (``action >= 0``), -1.0 when blocked; any real number type
        but bool.
    :param next_state: ``None`` or a mapping.
    :param action_mask: Booleans, one per path.
    :param meta: A mapping.
    :param features: Type-check every feature (see :func:`state_problem`).
    :return: ``(action, reward, action_mask)`` as written.
    :raises ValueError: naming the field and what was expected.
    """
    # Fast paths first (this runs once per logged transition): exact built-in types pass
    # with identity checks; anything else takes the general checks below.
    problem = meta_problem(meta)
    if problem is not None:
        raise ValueError(problem)
    if (
        next_state is not None
        and next_state.__class__ is not dict
        and not isinstance(next_state, Mapping)
    ):
        raise ValueError(f"next_state must be None or a dict, got {_kind(next_state)}")
    mask = action_mask
    if mask.__class__ is list:
        for entry in mask:
            if entry.__class__ is not bool:
                mask = _as_mask(mask)
                break
    else:
        mask = _as_mask(mask)
    paths = state.get("paths") if state.__class__ is dict else None
    if (  # the engine's states pass these identity checks; anything else gets the full rule
        features
        or paths.__class__ is not list
        or "src" not in state
        or "dst" not in state
        or (paths and len(paths) != len(mask))
    ):
        problem = state_problem(state, len(mask), features=features)
        if problem is not None:
            raise ValueError(problem)
    if action.__class__ is not int or (
        action != -1 and not (0 <= action < len(mask) and mask[action])
    ):
        action = _as_action(action, mask)
    if reward.__class__ is not float:
        reward = _as_reward(reward)
    if reward != (1.0 if action >= 0 else -1.0):
        raise ValueError(
            f"reward {reward!r} does not match action {action} (+1.0 routed, -1.0 blocked)"
        )
    return action, reward, mask


def meta_problem(meta: Any) -> str | None:
    """What is wrong with a transition's ``meta``, or ``None``: the one rule the writer and
    the validator share (a mapping whose ``bp_window_tag``, when present, is one of
    :data:`WINDOW_TAGS`: the blocking figures per window are counted by it).

    :param meta: The ``meta`` object.

        >>> meta_problem({"bp_window_tag": "bogus"})
        "meta.bp_window_tag is 'bogus', not one of ('pre', 'fail', 'post')"
    """
    if meta.__class__ is not dict and not isinstance(meta, Mapping):
        return f"meta must be a dict, got {_kind(meta)}"
    tag = meta.get("bp_window_tag", "pre")
    if tag not in WINDOW_TAGS:
        return f"meta.bp_window_tag is {tag!r}, not one of {WINDOW_TAGS}"
    return None


def _not_a_number(value: Any) -> bool:
    """Whether a feature value is not a number (bools are not; numpy scalars are)."""
    kind = value.__class__
    if kind is int or kind is float:  # the engine's values: the fast path
        return False
    return isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating))


def state_problem(state: Any, mask_width: int | None, *, features: bool = True) -> str | None:
    """What is wrong with a state, or ``None``: the one rule the writer and validator share.

    A state is a mapping holding :data:`REQUIRED_STATE_KEYS`; ``paths`` is a list of mappings,
    as many as the mask has entries (or none), each holding the same path features as the
    first; every feature of :data:`STATE_FEATURES` and of the path feature sets that is
    present is a number (NaN and infinities are caught after serialisation,
    :func:`non_finite_field`).

    :param state: The state.
    :param mask_width: The action mask's length (``None``: not checked).
    :param features: Also check each path object and feature value (``False``: only the
        structure, for a writer fed by the engine, whose features are numbers by construction).

        >>> state_problem({"src": 0, "dst": 1, "paths": [{"path_hops": "3"}]}, 1)
        "state.paths[0].path_hops is '3', not a number"
        >>> state_problem({"src": 0, "dst": 1, "paths": [{"path_hops": 3}, {}]}, 2)
        "state.paths[1] lacks ['path_hops'], which state.paths[0] holds (the paths of a state hold the same features)"
    """
    if state.__class__ is not dict and not isinstance(state, Mapping):
        return f"state must be a dict, got {_kind(state)}"
    if "paths" not in state or "src" not in state or "dst" not in state:
        return f"state lacks {[key for key in REQUIRED_STATE_KEYS if key not in state]}"
    paths = state["paths"]
    if paths.__class__ is not list and not isinstance(paths, (list, tuple)):
        return f"state.paths must be a list of path dicts, got {_kind(paths)}"
    if paths and mask_width is not None and len(paths) != mask_width:
        return f"action_mask has {mask_width} entries but state.paths has {len(paths)}"
    if not features:
        return None
    for key in STATE_FEATURES:
        if key in state and _not_a_number(state[key]):
            return f"state.{key} is {state[key]!r}, not a number"
    first: Any = None
    for index, path in enumerate(paths):
        if path.__class__ is not dict and not isinstance(path, Mapping):
            return f"state.paths[{index}] is {_kind(path)}, not a path dict"
        if first is None:
            first = path.keys()
        elif path.keys() != first:  # (the same keys, the common case: a C-level comparison)
            problem = _features_differ(index, path.keys(), first)
            if problem is not None:
                return problem
        for key in _ALL_PATH_FEATURES:
            if key in path and _not_a_number(path[key]):
                return f"state.paths[{index}].{key} is {path[key]!r}, not a number"
    return None


def _features_differ(index: int, keys: Any, first: Any) -> str | None:
    """How path ``index``'s features differ from the first path's, or ``None`` (only other
    keys differ)."""
    held, wanted = keys & _PATH_FEATURE_SET, first & _PATH_FEATURE_SET
    lacking = [key for key in _ALL_PATH_FEATURES if key in wanted and key not in held]
    if lacking:
        return (
            f"state.paths[{index}] lacks {lacking}, which state.paths[0] holds (the paths of a "
            "state hold the same features)"
        )
    extra = [key for key in _ALL_PATH_FEATURES if key in held and key not in wanted]
    if extra:
        return (
            f"state.paths[{index}] holds {extra}, which state.paths[0] lacks (the paths of a "
            "state hold the same features)"
        )
    return None


def non_finite_field(value: Any, where: str = "") -> str | None:
    """Path of the first NaN or infinity inside ``value`` (dataclasses included), or ``None``.

    :param value: A transition or any part of it.
    :param where: The path of ``value`` itself, for the answer.
    """
    if isinstance(value, (float, np.floating)):
        return None if math.isfinite(value) else where
    if isinstance(value, Mapping):
        items: Any = value.items()
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        items = ((f.name, getattr(value, f.name)) for f in dataclasses.fields(value))
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            found = non_finite_field(item, f"{where}[{index}]")
            if found:
                return found
        return None
    elif isinstance(value, np.ndarray):
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            return where
        if value.dtype.kind == "O":
            return non_finite_field(value.tolist(), where)
        return None
    else:
        return None
    for key, item in items:
        found = non_finite_field(item, f"{where}.{key}" if where else str(key))
        if found:
            return found
    return None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_record(record: Any, expected_t: int | None, expected_seed: int | None) -> list[str]:
    """Problems of one parsed line against the schema (empty when it is valid).

    :param record: The parsed line.
    :param expected_t: The ``t`` this line must carry, or ``None`` to skip that check.
    :param expected_seed: The ``seed`` it must carry, or ``None``.
    """
    if not isinstance(record, dict):
        return ["not a JSON object"]
    keys = set(record)
    if keys != TOP_KEYS:
        missing, extra = sorted(TOP_KEYS - keys), sorted(keys - TOP_KEYS)
        return [f"top-level keys: missing {missing}, unexpected {extra}"]
    problems = []
    t, action, reward, mask = record["t"], record["action"], record["reward"], record["action_mask"]
    if not _is_int(t) or (expected_t is not None and t != expected_t):
        problems.append(f"t is {t!r}, expected {expected_t}")
    if not _is_int(record["seed"]) or (
        expected_seed is not None and record["seed"] != expected_seed
    ):
        problems.append(f"seed is {record['seed']!r}, expected {expected_seed}")
    if not isinstance(mask, list) or not all(isinstance(m, bool) for m in mask):
        problems.append("action_mask is not a list of booleans")
        mask = []
        width = None
    else:
        width = len(mask)
    problem = state_problem(record["state"], width)
    if problem is not None:
        problems.append(problem)
    if not _is_int(action):
        problems.append(f"action is {action!r}, not an integer")
    elif action != -1 and not (0 <= action < len(mask) and mask[action]):
        problems.append(f"action {action} is not -1 nor a feasible index of {mask}")
    if not _is_number(reward) or not math.isfinite(reward):
        problems.append(f"reward is {reward!r}, not a finite number")
    elif _is_int(action) and reward != (1.0 if action >= 0 else -1.0):
        problems.append(f"reward {reward} does not match action {action} (+1 routed, -1 blocked)")
    if record["next_state"] is not None and not isinstance(record["next_state"], dict):
        problems.append("next_state is neither null nor an object")
    problem = meta_problem(record["meta"])
    if problem is not None:
        problems.append(problem)
    return problems
