"""The shard writer's checks of a line it serialised: the record's rule at the writer's speed.

A hand-fed writer (:class:`~fusion.storage.shard_writer.DatasetLogger` without ``trusted``)
refuses at once every line ``fusion validate`` would refuse: :class:`HandFedCheck` applies the
one rule (:class:`~fusion.storage.schema.RecordRule`) to the parsed line, and skips the parse
for a line it can tell is accepted from its bytes alone. :func:`given` checks what those bytes
do not settle (the action against the mask, the reward against the action) at every call. The
engine's (``trusted``) writer checks its first line in full and the rest in bulk at each flush:
:func:`first_stray_null` finds the NaN or infinity orjson wrote as ``null``.

    >>> import orjson
    >>> check = HandFedCheck(seed=1)
    >>> record = {"t": 0, "seed": 1, "state": {"src": 0, "dst": 1, "paths": []}, "action": -1,
    ...           "reward": -1.0, "next_state": None, "action_mask": [], "meta": {}}
    >>> check.accepted(record, orjson.dumps(record))
    [0]
    >>> record["meta"] = {"bp_window_tag": "bogus"}
    >>> check.accepted(record, orjson.dumps(record))
    Traceback (most recent call last):
    ...
    ValueError: transition t=0: meta.bp_window_tag is 'bogus', not one of ('pre', 'fail', 'post')
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import orjson

from fusion.storage.schema import (
    MAX_LINE_BYTES,
    RecordRule,
    action_fits,
    non_finite_field,
    reward_fits,
)
from fusion.storage.shard_stats import TallyKey

_NULL = int.from_bytes(b"null", "little")
#: A line's shape: its bytes with every digit made 0 (what the rule's verdict depends on, the
#: action's and reward's values aside: see :class:`HandFedCheck`).
ZEROS = bytes.maketrans(b"123456789", b"000000000")
_DIGITS = b"0123456789"
#: How many shapes a check remembers before it folds their counts into its tally.
MAX_SHAPES = 4096


def strings_hold_no_digit(line: bytes) -> bool:
    """Whether no string of a serialised line (no key, no value) holds a digit or an escape.

    :param line: A line as orjson writes it.

        >>> strings_hold_no_digit(b'{"a":12,"b":"pre"}'), strings_hold_no_digit(b'{"a1":0}')
        (True, False)
    """
    if b"\\" in line:
        return False
    strings = b"".join(line.split(b'"')[1::2])
    return len(strings.translate(None, _DIGITS)) == len(strings)


def _kind(value: Any) -> str:
    return type(value).__name__


def _as_action(action: Any, t: int) -> int:
    if isinstance(action, (bool, np.bool_)) or not isinstance(action, (int, np.integer)):
        raise ValueError(
            f"transition t={t}: action must be an integer (a path index or -1), got "
            f"{action!r} ({_kind(action)})"
        )
    return int(action)


def _as_reward(reward: Any, t: int) -> float:
    if isinstance(reward, (bool, np.bool_)) or not isinstance(
        reward, (int, float, np.integer, np.floating)
    ):
        raise ValueError(
            f"transition t={t}: reward must be a finite number (+1.0 routed, -1.0 blocked), "
            f"got {reward!r} ({_kind(reward)})"
        )
    return float(reward)


def _as_mask(mask: Any, t: int) -> list[Any]:
    if isinstance(mask, np.ndarray):
        if mask.dtype != np.bool_ or mask.ndim != 1:
            raise ValueError(
                f"transition t={t}: action_mask must be booleans, got an array of {mask.dtype}"
            )
        return mask.tolist()
    if not isinstance(mask, (list, tuple)):
        raise ValueError(
            f"transition t={t}: action_mask must be a list of booleans, got {_kind(mask)}"
        )
    # numpy booleans become Python ones; anything else is left for the rule to name
    return [bool(m) if isinstance(m, np.bool_) else m for m in mask]


def given(action: Any, reward: Any, mask: Any, meta: Any, t: int) -> tuple[int, float, list[Any]]:
    """The caller's action, reward and mask as written (numpy scalars and arrays become
    Python values), refused at once when their values break the rule: what a line's shape
    does not show (:class:`HandFedCheck`).

    :param action: The chosen path index, or -1.
    :param reward: +1.0 routed, -1.0 blocked.
    :param mask: One boolean per path.
    :param meta: The transition's ``meta`` (its window tag is tallied: it must be an object).
    :param t: The transition's index, for the message.
    :raises ValueError: naming the transition and the field.

        >>> given(np.int64(0), 1, np.array([True]), {}, 0)
        (0, 1.0, [True])
        >>> given(1, 1.0, [True, False], {}, 3)
        Traceback (most recent call last):
        ...
        ValueError: transition t=3: action 1 is not -1 nor the index of a feasible path in action_mask [True, False]
    """
    if action.__class__ is not int:
        action = _as_action(action, t)
    if reward.__class__ is not float:
        reward = _as_reward(reward, t)
    if mask.__class__ is not list:  # (numpy booleans in a list are written as booleans)
        mask = _as_mask(mask, t)
    if not action_fits(action, mask):
        raise ValueError(
            f"transition t={t}: action {action} is not -1 nor the index of a feasible path "
            f"in action_mask {list(mask)!r}"
        )
    if not reward_fits(reward, action):
        raise ValueError(
            f"transition t={t}: reward {reward!r} does not match action {action} (+1.0 routed, "
            "-1.0 blocked)"
        )
    if not isinstance(meta, dict):
        raise ValueError(f"transition t={t}: meta is {_kind(meta)}, not an object of meta fields")
    return action, reward, mask


class HandFedCheck:
    """A hand-fed writer's check of each line it serialised: the rule
    (:class:`~fusion.storage.schema.RecordRule`, the validator's) applied to the parsed line,
    after a look for NaN and infinities (which orjson writes as null).

    The rule's verdict on a line depends on its structure, keys, strings and the kind of each
    number (an integer, or a float with ``.`` or ``e``; a sign is no digit), never on a
    number's digits, the action's and reward's values aside (:func:`given` checks those
    before a line comes here). So:

    - a line equal to the last accepted one but for its ``t`` (which the writer sets) is
      accepted, its action and reward those of that line; it costs the writer a comparison
      of bytes (:attr:`last`: the seed card logs one state over and over);
    - a line whose *shape* (every digit made 0) is that of a line already accepted, holding
      no null but a missing ``next_state``'s, is accepted too: its nulls sit where the
      accepted line's are, so it holds no NaN either; it costs a translation and a lookup;
    - lines of varied numbers rarely share a shape; most share a *loose shape* (the digits
      dropped), and that is as good when neither line holds a digit in a string (a key, a
      window tag), nor an empty list (``[]``, which ``[7]`` loosely is): then they differ
      only in their numbers' digits too. Such a line costs a second translation and a look
      at its strings; the others are parsed and checked in full.

    :param seed: The seed every line carries.
    """

    def __init__(self, seed: int) -> None:
        self.rule = RecordRule()
        self.seed = seed
        #: The last accepted line's length, its bytes from the comma after its ``t`` on, and
        #: its shape's counts. A line of that length ending with those bytes is that line but
        #: for its ``t`` (which only grows, so its digits end where the last line's did: a
        #: longer ``t`` puts a digit where the comma was): the writer counts it there at once.
        self.last: tuple[int, bytes, list[int] | None] = (-1, b"", None)
        # each accepted shape -> how many of its lines took each action (index action + 1);
        # the shape fixes the line's window tag and mask, the rest of the writer's tally key
        self.shapes: dict[bytes, list[int]] = {}
        self._loose: dict[bytes, list[int]] = {}  # loose shape -> a shape's counts
        self._entries: list[tuple[Any, tuple[bool, ...], list[int]]] = []  # (tag, mask, counts)
        self.folded: defaultdict[TallyKey, int] = defaultdict(int)  # of shapes forgotten

    def tally(self) -> dict[TallyKey, int]:
        """What the remembered shapes' lines add to the writer's tally."""
        tally = defaultdict(int, self.folded)
        for tag, mask, counts in self._entries:
            for index, count in enumerate(counts):
                if count:
                    tally[tag, index - 1, mask] += count
        return tally

    def accepted(self, record: Mapping[str, Any], line: bytes) -> list[int] | None:
        """Refuse ``line``, or accept it (and make it the :attr:`last`).

        :param record: What was serialised (its objects, to tell a NaN from a ``None``), its
            action, reward and mask already checked by value (:func:`given`).
        :param line: The serialised line (``t`` first, as the writer writes it).
        :return: The action counts of the line's shape (the caller counts the line at
            ``action + 1``), or ``None`` when no shape is remembered for it (the caller
            tallies the line itself).
        :raises ValueError: naming the transition and the field.
        """
        shape = line.translate(ZEROS)
        counts = self.shapes.get(shape)
        if counts is None:
            counts = self.check(record, line, shape)
        if counts is not None:
            self.last = len(line), line[line.index(b",", 5) :], counts  # (after {"t":<digits>)
        return counts

    def check(
        self, record: Mapping[str, Any], line: bytes, shape: bytes | None
    ) -> list[int] | None:
        """Refuse ``line``, or accept it (and remember its shape).

        :param record: What was serialised.
        :param line: The serialised line.
        :param shape: ``line.translate(ZEROS)``, or ``None`` not to remember it.
        :return: The shape's action counts, or ``None`` when the shape is not remembered.
        :raises ValueError: naming the transition and the field.
        """
        loose = None
        if shape is not None:
            loose = line.translate(None, _DIGITS)
            counts = self._loose.get(loose)
            if counts is not None and b"[]" not in line and strings_hold_no_digit(line):
                if len(self.shapes) < MAX_SHAPES:  # (the next line of this shape: a lookup)
                    self.shapes[shape] = counts
                return counts
        nulls = line.count(b"null")
        self._refuse(record, line, nulls)
        if shape is None or nulls != (record["next_state"] is None):
            return None
        return self._remember(record, line, shape, loose)

    def _refuse(self, record: Mapping[str, Any], line: bytes, nulls: int) -> None:
        """Refuse a line holding NaN or infinity, or breaking the rule."""
        t = record["t"]
        if nulls != (record["next_state"] is None):
            bad = non_finite_field(record)
            if bad is not None:
                raise ValueError(
                    f"transition t={t}: {bad} is NaN or infinite; a transition holds finite numbers"
                )
        problems = self.rule.problems(orjson.loads(line), t, self.seed)
        if problems:
            paths = record["state"].get("paths") if isinstance(record["state"], dict) else []
            if not isinstance(paths, (list, tuple)):  # (an array: written as lists of lists)
                raise ValueError(
                    f"transition t={t}: state.paths must be a list of path objects, got "
                    f"{_kind(paths)}"
                )
            raise ValueError(f"transition t={t}: {problems[0]}")

    def _remember(
        self, record: Mapping[str, Any], line: bytes, shape: bytes, loose: bytes | None
    ) -> list[int]:
        """Remember an accepted line's shape (and loose shape); its action counts."""
        if len(self.shapes) >= MAX_SHAPES:
            self.folded = defaultdict(int, self.tally())
            self.shapes.clear()
            self._loose.clear()
            self._entries.clear()
        mask = tuple(record["action_mask"])
        counts = self.shapes[shape] = [0] * (len(mask) + 1)
        self._entries.append((record["meta"].get("bp_window_tag"), mask, counts))
        if loose is not None and b"[]" not in line and strings_hold_no_digit(line):
            self._loose.setdefault(loose, counts)
        return counts


def refuse_long_line(record: Mapping[str, Any], line: bytes) -> None:
    """Refuse a serialised transition longer than a line may be (naming a NaN or infinity
    first, when one made it longer).

    :param record: What was serialised.
    :param line: The serialised line.
    :raises ValueError: naming the transition.
    """
    # orjson writes NaN and infinities as null without a word: look closer only when the
    # line holds more nulls than the one a missing next_state explains.
    nulls = line.count(b"null")
    if nulls and nulls != (record["next_state"] is None):
        bad = non_finite_field(record)
        if bad is not None:
            raise ValueError(
                f"transition t={record['t']}: {bad} is NaN or infinite; a transition must hold "
                "finite numbers"
            )
    if len(line) > MAX_LINE_BYTES:
        raise ValueError(
            f"transition t={record['t']} is {len(line)} bytes as JSON, over the "
            f"{MAX_LINE_BYTES} a line may hold"
        )


def count_nulls(buffer: bytes | bytearray) -> int:
    """How often ``null`` occurs in ``buffer`` (numpy at each of the four byte offsets:
    a third of ``bytes.count``'s time).

    :param buffer: Serialised lines.

        >>> count_nulls(b'{"a":null,"b":[null]}')
        2
    """
    total = 0
    for offset in range(4):
        count = (len(buffer) - offset) // 4
        if count > 0:
            words = np.frombuffer(buffer, "<u4", count=count, offset=offset)
            total += int(np.count_nonzero(words == _NULL))
    return total


def null_field(value: Any, where: str = "") -> str | None:
    """Path of the first null in a parsed transition, a missing ``next_state`` aside.

    :param value: A parsed transition or any part of it.
    :param where: The path of ``value`` itself.

        >>> null_field({"next_state": None, "meta": {"x": [1, None]}})
        'meta.x[1]'
    """
    if value is None:
        return where
    if isinstance(value, dict):
        children = [(f"{where}.{key}" if where else str(key), v) for key, v in value.items()]
    elif isinstance(value, list):
        children = [(f"{where}[{index}]", v) for index, v in enumerate(value)]
    else:
        return None
    for path, child in children:
        found = None if path == "next_state" and child is None else null_field(child, path)
        if found is not None:
            return found
    return None


def first_stray_null(lines: Sequence[bytes | bytearray]) -> int | None:
    """The index of the first line holding a null beyond a missing ``next_state``'s (a NaN
    or infinity, as orjson writes them), or ``None``.

    :param lines: Serialised lines.

        >>> first_stray_null([b'{"next_state":null}', b'{"next_state":null,"r":null}'])
        1
    """
    for index, line in enumerate(lines):
        if line.count(b"null") > line.count(b'"next_state":null'):
            return index
    return None
