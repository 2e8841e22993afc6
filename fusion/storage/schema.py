"""The transition record's rule: the one check the writer and the validator share.

A line is one JSON object holding exactly the fields the declaration
(:data:`fusion.config.features.RECORD_FIELDS`) gives a record: ``t``, ``seed``, ``state``,
``action``, ``reward``, ``next_state``, ``action_mask``, ``meta``. Every rule below is derived
from that declaration (each field's name, group and kind), not spelled again here:

- an object of a group (``state``, ``next_state``, each of ``state.paths``, ``meta``) holds
  only the group's declared fields (``meta`` may also hold a caller's own facts, of any JSON
  value), each of its declared kind: ``int`` an integer, ``float`` a finite number (an integer
  too), ``bool``, ``str``, ``hex`` (a hexadecimal number as a string), ``<kind> list``;
  ``null`` is a value only for ``next_state`` (:data:`NULLABLE`);
- a state holds :data:`REQUIRED_STATE_KEYS`; the other features may be left out by a writer
  fed by hand (the seed card's examples do), and the readers that need one name it;
- a path holds path features (a feature set of
  :data:`~fusion.config.features.PATH_FEATURE_SETS`, or the list a dataset records), every
  path of a state the same fields, and every path of a file the features of the file's first
  transition with paths (a reader lays a file's paths out as rows of one width;
  :class:`RecordRule` carries that first list along a file);
- ``action_mask`` is booleans, as many as the state's paths (or any number when it lists
  none); ``action`` is -1 or the index of a feasible path; ``reward`` +1.0 routed, -1.0
  blocked; ``meta.bp_window_tag`` one of :data:`WINDOW_TAGS` (:data:`CHOICES`).

A line is at most :data:`MAX_LINE_BYTES` long (the array view parses in blocks of 4 MiB).
The rule applies to a parsed line; the writer applies it to the line it serialised
(:class:`fusion.storage.shard_writer.DatasetLogger`), so writer and validator refuse the same
lines by construction.

    >>> rule = RecordRule()
    >>> line = {"t": 0, "seed": 1, "state": {"src": 0, "dst": 1, "paths": [{"links": [2]}]},
    ...         "action": 0, "reward": 1.0, "next_state": None, "action_mask": [True],
    ...         "meta": {"bp_window_tag": "bogus"}}
    >>> for problem in rule.problems(line):
    ...     print(problem)
    state.paths[0] holds no path feature (a path holds the file's list of path features, such as a feature set: seed or extended)
    meta.bp_window_tag is 'bogus', not one of ('pre', 'fail', 'post')
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from fusion.config import features as _features
from fusion.config.features import ALL_PATH_FEATURES, GROUP_KINDS, PATH_FEATURE_SETS, RECORD_FIELDS
from fusion.config.vocabulary import MAX_LINE_BYTES as MAX_LINE_BYTES  # (the scenario check too)

#: The fields of a line, in the order the writer writes them.
RECORD_KEYS: tuple[str, ...] = tuple(f.name for f in RECORD_FIELDS["record"])
TOP_KEYS = frozenset(RECORD_KEYS)
#: The request's features (:mod:`fusion.config.features` describes every feature).
STATE_FEATURES = _features.STATE_FEATURES
#: The seed card's five path features; ``path_features = extended`` logs
#: :data:`EXTENDED_PATH_FEATURES` after them.
PATH_FEATURES = _features.SEED_PATH_FEATURES
EXTENDED_PATH_FEATURES = _features.EXTENDED_PATH_FEATURES
WINDOW_TAGS = ("pre", "fail", "post")

# What the declaration does not say of a field, and the rule needs:
#: What every object of a group holds, whoever wrote it (a line holds every field of its own).
REQUIRED: dict[str, tuple[str, ...]] = {"record": RECORD_KEYS, "state": ("src", "dst", "paths")}
REQUIRED_STATE_KEYS = REQUIRED["state"]
#: The fields whose value may be ``null``.
NULLABLE = frozenset({"next_state"})
#: The groups that may hold fields the declaration does not name (a caller's own facts).
OPEN_GROUPS = frozenset({"meta"})
#: The values a ``str`` field may take, where they are few.
CHOICES: dict[str, tuple[str, ...]] = {"bp_window_tag": WINDOW_TAGS}

#: The path features of the path group (``links`` is a path's field but no feature).
_PATH_FEATURE_NAMES = frozenset(name for names in PATH_FEATURE_SETS.values() for name in names)
_PATH_SETS = {frozenset(names): name for name, names in PATH_FEATURE_SETS.items()}
_HEX = re.compile(r"[0-9a-fA-F]+")

Check = Callable[[Any, str], "str | None"]


def check_window(window: str | None) -> None:
    """Refuse a window tag that is not ``pre``, ``fail``, ``post`` or ``None``.

    :param window: The tag asked for.
    :raises ValueError: naming the tag and the allowed ones.
    """
    if window is not None and window not in WINDOW_TAGS:
        raise ValueError(f"window must be one of {WINDOW_TAGS} or None, got {window!r}")


def _kind(value: Any) -> str:
    return type(value).__name__


def _is_int(value: Any) -> bool:
    return value.__class__ is int


def _is_number(value: Any) -> bool:
    kind = value.__class__
    return kind is int or (kind is float and value - value == 0.0)  # (inf - inf is nan)


def _is_bool(value: Any) -> bool:
    return value.__class__ is bool


def _is_str(value: Any) -> bool:
    return value.__class__ is str


def _is_hex(value: Any) -> bool:
    return value.__class__ is str and _HEX.fullmatch(value) is not None


#: A scalar kind of the declaration -> (its test on a parsed JSON value, what it is).
SCALAR_KINDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "int": (_is_int, "an integer"),
    "float": (_is_number, "a finite number"),
    "bool": (_is_bool, "a boolean"),
    "str": (_is_str, "a string"),
    "hex": (_is_hex, "a hexadecimal number as a string"),
}


def _scalar_check(kind: str, choices: tuple[str, ...] | None) -> Check:
    test, what = SCALAR_KINDS[kind]

    def check(value: Any, where: str) -> str | None:
        if not test(value):
            return f"{where} is {value!r}, not {what}"
        if choices is not None and value not in choices:
            return f"{where} is {value!r}, not one of {choices}"
        return None

    return check


def _list_check(kind: str) -> Check:
    test, what = SCALAR_KINDS[kind]

    def check(value: Any, where: str) -> str | None:
        if value.__class__ is not list:
            return f"{where} is {_kind(value)}, not a list of {kind} values"
        for index, item in enumerate(value):
            if not test(item):
                return f"{where}[{index}] is {item!r}, not {what}"
        return None

    return check


def _group_check(group: str) -> Check:
    def check(value: Any, where: str) -> str | None:
        if group == "state":
            return _state_problem(value, where, None, None)[0]
        return _object_problem(group, value, where)

    return check


def _field_check(feature: _features.Feature) -> Check | None:
    """The check of one declared field's value, from its kind (``None``: the state's paths,
    which :func:`_paths_problem` checks with the mask and the file)."""
    kind = feature.kind
    if kind in SCALAR_KINDS:
        return _scalar_check(kind, CHOICES.get(feature.name))
    if kind in GROUP_KINDS:
        return _group_check(kind)
    inner = kind.removesuffix(" list")
    if inner in SCALAR_KINDS:
        return _list_check(inner)
    if inner in GROUP_KINDS:
        return None
    raise ValueError(f"field {feature.name!r}: kind {kind!r} is not one the rule knows")


#: Every group's declared fields -> the check of their values.
CHECKS: dict[str, dict[str, Check | None]] = {
    group: {f.name: _field_check(f) for f in fields} for group, fields in RECORD_FIELDS.items()
}
#: The line's own scalar fields -> the test of their kind.
_LINE_KIND = {
    f.name: SCALAR_KINDS[f.kind][0] for f in RECORD_FIELDS["record"] if f.kind in SCALAR_KINDS
}
_MASK_CHECK = _field_check(next(f for f in RECORD_FIELDS["record"] if f.name == "action_mask"))


def _undeclared(group: str, key: Any, where: str) -> str:
    return (
        f"{where}.{key} is not a field of {group} (fusion.config.features.RECORD_FIELDS"
        f"[{group!r}] declares {list(CHECKS[group])})"
    )


def _object_problem(group: str, value: Any, where: str) -> str | None:
    """What is wrong with an object of ``group`` (its paths aside), or ``None``."""
    if value.__class__ is not dict:
        return f"{where} is {_kind(value)}, not an object of {group} fields"
    required = REQUIRED.get(group, ())
    lacking = [key for key in required if key not in value]
    if lacking:
        return f"{where} lacks {lacking}"
    checks = CHECKS[group]
    for key, item in value.items():
        if key in checks:
            check = checks[key]
            problem = None if check is None else check(item, f"{where}.{key}")
            if problem is not None:
                return problem
        elif group not in OPEN_GROUPS:
            return _undeclared(group, key, where)
    return None


def _set_problem(features: frozenset[str], where: str) -> str | None:
    """Whether a path holds path features at all (which: the file's first path says, and a
    dataset records that list: :func:`~fusion.config.features.feature_set_holding`)."""
    if features:
        return None
    return (
        f"{where} holds no path feature (a path holds the file's list of path features, "
        f"such as a feature set: {' or '.join(PATH_FEATURE_SETS)})"
    )


def _set_name(features: frozenset[str]) -> str:
    named = _PATH_SETS.get(features)
    return f"the {named} set" if named else str([n for n in ALL_PATH_FEATURES if n in features])


class Layout(frozenset[str]):
    """The path features every path of a file holds, and where that was learnt (for the
    message): the file's first transition with paths, or the dataset's record."""

    origin = "the file's first transition with paths holds"


class RecordedLayout(Layout):
    """A layout the dataset's manifest (or a merge record) lists."""

    origin = "the dataset's record (manifest.json path_features) lists"


def _paths_problem(
    paths: Any, where: str, mask_width: int | None, layout: Layout | None
) -> tuple[str | None, frozenset[str] | None]:
    """What is wrong with a state's paths, and the feature set they hold (``None``: none)."""
    if paths.__class__ is not list:
        return f"{where}.paths is {_kind(paths)}, not a list of path objects", None
    if paths and mask_width is not None and len(paths) != mask_width:
        return f"action_mask has {mask_width} entries but {where}.paths has {len(paths)}", None
    first: Any = None
    held: frozenset[str] | None = None
    for index, path in enumerate(paths):
        at = f"{where}.paths[{index}]"
        if path.__class__ is not dict:
            return f"{at} is {_kind(path)}, not a path object", None
        keys = path.keys()
        if first is None:
            first, held = keys, frozenset(keys & _PATH_FEATURE_NAMES)
            problem = _set_problem(held, at)
            if problem is not None:
                return problem, None
            if layout is not None and held != layout:
                return (
                    f"{at} holds the path features {_set_name(held)}, but {layout.origin} "
                    f"{_set_name(layout)} (the paths of a file hold one list of path features)"
                ), None
        elif keys != first:
            lacking = sorted(first - keys)
            if lacking:
                return (
                    f"{at} lacks {lacking}, which {where}.paths[0] holds (the paths of a state "
                    "hold the same fields)"
                ), None
            return (
                f"{at} holds {sorted(keys - first)}, which {where}.paths[0] lacks (the paths of "
                "a state hold the same fields)"
            ), None
        problem = _object_problem("path", path, at)
        if problem is not None:
            return problem, None
    return None, held


def _state_problem(
    state: Any, where: str, mask_width: int | None, layout: Layout | None
) -> tuple[str | None, frozenset[str] | None]:
    """What is wrong with a state, and the feature set its paths hold."""
    problem = _object_problem("state", state, where)
    if problem is not None:
        return problem, None
    return _paths_problem(state["paths"], where, mask_width, layout)


def state_problem(state: Any, mask_width: int | None) -> str | None:
    """What is wrong with a parsed state, or ``None`` (see the module's rule).

    :param state: The state.
    :param mask_width: The action mask's length (``None``: not checked).

        >>> state_problem({"src": 0, "dst": 1, "slots_needed": "3", "paths": []}, 1)
        "state.slots_needed is '3', not an integer"
    """
    return _state_problem(state, "state", mask_width, None)[0]


def meta_problem(meta: Any) -> str | None:
    """What is wrong with a parsed ``meta``, or ``None``.

    :param meta: The ``meta`` object.

        >>> meta_problem({"bp_window_tag": "bogus"})
        "meta.bp_window_tag is 'bogus', not one of ('pre', 'fail', 'post')"
    """
    return _object_problem("meta", meta, "meta")


def action_fits(action: int, mask: Sequence[Any]) -> bool:
    """Whether ``action`` is -1 (blocked) or the index of a feasible path of ``mask``.

    :param action: An integer action.
    :param mask: The action mask.

        >>> action_fits(-1, []), action_fits(1, [True, True]), action_fits(1, [True, False])
        (True, True, False)
    """
    return action == -1 or (0 <= action < len(mask) and bool(mask[action]))


def reward_fits(reward: float, action: int) -> bool:
    """Whether ``reward`` is the one of ``action``: +1.0 routed, -1.0 blocked.

    :param reward: A finite number.
    :param action: An integer action.

        >>> reward_fits(1.0, 0), reward_fits(1, 0), reward_fits(1.0, -1)
        (True, True, False)
    """
    return reward == (1.0 if action >= 0 else -1.0)


class RecordRule:
    """The rule over the records of one file, in order: each record's own checks, and the
    feature set of the file's first transition with paths, which every later one holds.

    :param path_features: The path features the file's dataset records (its manifest's or
        merge record's list), which every path must hold; ``None``: the first transition with
        paths sets them.
    """

    def __init__(self, path_features: Iterable[str] | None = None) -> None:
        self.path_features: Layout | None = (
            None if path_features is None else RecordedLayout(path_features)
        )

    def problems(
        self, record: Any, expected_t: int | None = None, expected_seed: int | None = None
    ) -> list[str]:
        """The problems of one parsed line (empty when it is valid); a valid line with paths
        sets the file's feature set if none is set yet.

        :param record: The parsed line.
        :param expected_t: The ``t`` this line must carry, or ``None`` to skip that check.
        :param expected_seed: The ``seed`` it must carry, or ``None``.
        """
        if record.__class__ is not dict:
            return ["not a JSON object"]
        if record.keys() != TOP_KEYS:
            missing, extra = sorted(TOP_KEYS - record.keys()), sorted(record.keys() - TOP_KEYS)
            return [f"top-level keys: missing {missing}, unexpected {extra}"]
        problems = []
        t, seed, action, reward = record["t"], record["seed"], record["action"], record["reward"]
        mask = record["action_mask"]
        is_int, is_number = _LINE_KIND["action"], _LINE_KIND["reward"]
        if not _LINE_KIND["t"](t) or (expected_t is not None and t != expected_t):
            problems.append(f"t is {t!r}, expected {expected_t}")
        if not _LINE_KIND["seed"](seed) or (expected_seed is not None and seed != expected_seed):
            problems.append(f"seed is {seed!r}, expected {expected_seed}")
        width = None
        assert _MASK_CHECK is not None
        problem = _MASK_CHECK(mask, "action_mask")
        if problem is not None:
            problems.append(problem)
            mask = []
        else:
            width = len(mask)
        problem, held = _state_problem(record["state"], "state", width, self.path_features)
        if problem is not None:
            problems.append(problem)
        if not is_int(action):
            problems.append(f"action is {action!r}, not an integer")
        elif not action_fits(action, mask):
            problems.append(f"action {action} is not -1 nor a feasible index of {mask}")
        if not is_number(reward):
            problems.append(f"reward is {reward!r}, not a finite number")
        elif is_int(action) and not reward_fits(reward, action):
            problems.append(
                f"reward {reward} does not match action {action} (+1 routed, -1 blocked)"
            )
        next_state = record["next_state"]
        if next_state is not None:
            problem = _state_problem(next_state, "next_state", None, None)[0]
            if problem is not None:
                problems.append(problem)
        problem = meta_problem(record["meta"])
        if problem is not None:
            problems.append(problem)
        if not problems and held is not None and self.path_features is None:
            self.path_features = Layout(held)
        return problems


def check_record(record: Any, expected_t: int | None, expected_seed: int | None) -> list[str]:
    """Problems of one parsed line on its own (no file around it: see :class:`RecordRule`).

    :param record: The parsed line.
    :param expected_t: The ``t`` this line must carry, or ``None`` to skip that check.
    :param expected_seed: The ``seed`` it must carry, or ``None``.
    """
    return RecordRule().problems(record, expected_t, expected_seed)


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
