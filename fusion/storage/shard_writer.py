"""Offline-RL dataset logging: one JSON Lines shard per seed, registered in a manifest.

The writer knows nothing of the simulator: the simulator builds a transition and calls
:meth:`DatasetLogger.log_transition`. Each line is one transition
``{t, seed, state, action, reward, next_state, action_mask, meta}`` written with orjson into
an in-memory buffer that is hashed and written out every ``flush_every`` transitions and at
close. A crash can only lose buffered lines or leave a last line without its newline, which no
loader takes for a transition. A hand-fed writer refuses at once every transition that
``fusion validate`` would refuse (the one rule, :class:`~fusion.storage.schema.RecordRule`,
applied to the line it serialised); the engine's (``trusted``) checks its first in full and
the rest in bulk at each flush.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with DatasetLogger.open_shard(d, seed=7, engine_props={"erlang": 300}) as log:
    ...     log.log_transition({"src": 0, "dst": 1, "paths": []}, -1, -1.0, None, [], {})
    >>> from fusion.storage.loader import load_dataset
    >>> [tr["t"] for tr in load_dataset(d)]
    [0]
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import orjson
from filelock import FileLock, Timeout

from fusion.config.config import check_seed
from fusion.errors import (
    DatasetError,
    ManifestConflictError,
    ShardBusyError,
    ShardExistsError,
    ShardWriteError,
)
from fusion.storage import manifest as mf
from fusion.storage.clearing import refuse_foreign_shards
from fusion.storage.compression import SUFFIXES, check_compression, compress_file
from fusion.storage.dataset_identity import config_sha256
from fusion.storage.ownership import Lease, refuse_if_held
from fusion.storage.schema import MAX_LINE_BYTES, RecordRule, non_finite_field
from fusion.storage.shard_entries import (
    first_path_features,
    host_and_pid,
    now_iso,
    publish_sidecar,
    read_sidecar,
    sidecar_record,
)
from fusion.storage.shard_names import DEFAULT_STEM, shard_file_name, sidecar_path
from fusion.storage.shard_stats import TallyKey, summarise
from fusion.storage.sink import HashingSink
from fusion.storage.statuses import STATUS_COMPLETE, STATUS_FAILED, STATUS_WRITING
from fusion.storage.study_layout import is_study
from fusion.storage.successors import NextStateLinker

logger = logging.getLogger(__name__)

_DUMPS = orjson.dumps
_OPT = orjson.OPT_APPEND_NEWLINE | orjson.OPT_SERIALIZE_NUMPY
_MAX_BUFFER = 4 << 20
_NULL = int.from_bytes(b"null", "little")
# A line's shape: its bytes with every digit made 0 (what the rule's verdict depends on, the
# action's and reward's values aside: see _LineCheck).
_ZEROS = bytes.maketrans(b"123456789", b"000000000")
_DIGITS = b"0123456789"
_MAX_SHAPES = 4096


def _strings_hold_no_digit(line: bytes) -> bool:
    """Whether no string of a serialised line (no key, no value) holds a digit or an escape."""
    if b"\\" in line:
        return False
    strings = b"".join(line.split(b'"')[1::2])
    return len(strings.translate(None, _DIGITS)) == len(strings)


def _no_follow(path: str, flags: int) -> int:
    """``open``'s opener that refuses to follow a symbolic link at ``path``."""
    return os.open(path, flags | os.O_NOFOLLOW, 0o666)


def _count_nulls(buffer: bytearray) -> int:
    """How often ``null`` occurs in ``buffer`` (numpy at each of the four byte offsets:
    a third of ``bytes.count``'s time)."""
    total = 0
    for offset in range(4):
        count = (len(buffer) - offset) // 4
        if count > 0:
            words = np.frombuffer(buffer, "<u4", count=count, offset=offset)
            total += int(np.count_nonzero(words == _NULL))
    return total


def _tally_keys(records: list[dict[str, Any]]) -> list[TallyKey]:
    """What the writer tallies of each record: ``(bp_window_tag, action, action_mask)``."""
    return [
        (record["meta"].get("bp_window_tag"), record["action"], tuple(record["action_mask"]))
        for record in records
    ]


def _null_field(value: Any, where: str = "") -> str | None:
    """Path of the first null in a parsed transition, a missing ``next_state`` aside."""
    if value is None:
        return where
    if isinstance(value, dict):
        children = [(f"{where}.{key}" if where else str(key), v) for key, v in value.items()]
    elif isinstance(value, list):
        children = [(f"{where}[{index}]", v) for index, v in enumerate(value)]
    else:
        return None
    for path, child in children:
        found = None if path == "next_state" and child is None else _null_field(child, path)
        if found is not None:
            return found
    return None


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


def _given(action: Any, reward: Any, mask: Any, meta: Any, t: int) -> tuple[int, float, list[Any]]:
    """The caller's action, reward and mask as written (numpy scalars and arrays become
    Python values), refused at once when their values break the rule: what a line's shape
    does not show (:class:`_LineCheck`).

    :raises ValueError: naming the transition and the field.
    """
    if action.__class__ is not int:
        action = _as_action(action, t)
    if reward.__class__ is not float:
        reward = _as_reward(reward, t)
    if mask.__class__ is not list:  # (numpy booleans in a list are written as booleans)
        mask = _as_mask(mask, t)
    if action != -1 and not (0 <= action < len(mask) and mask[action]):
        raise ValueError(
            f"transition t={t}: action {action} is not -1 nor the index of a feasible path "
            f"in action_mask {list(mask)!r}"
        )
    if reward != (1.0 if action >= 0 else -1.0):
        raise ValueError(
            f"transition t={t}: reward {reward!r} does not match action {action} (+1.0 routed, "
            "-1.0 blocked)"
        )
    if not isinstance(meta, dict):  # (its window tag is tallied)
        raise ValueError(f"transition t={t}: meta is {_kind(meta)}, not an object of meta fields")
    return action, reward, mask


class _LineCheck:
    """A hand-fed writer's check of each line it serialised: the rule
    (:class:`~fusion.storage.schema.RecordRule`, the validator's) applied to the parsed line,
    after a look for NaN and infinities (which orjson writes as null).

    The rule's verdict on a line depends on its structure, keys, strings and the kind of each
    number (an integer, or a float with ``.`` or ``e``), never on a number's digits, the
    action's and reward's values aside (:func:`_given` checks those at every call). So a line
    whose *shape* (every digit made 0) is that of a line already accepted, holding no null
    but a missing ``next_state``'s, is accepted too: its nulls sit where the accepted line's
    are, so it holds no NaN either. Such lines cost a byte translation and a set lookup.

    Lines of varied numbers rarely share a shape; most share a *loose shape* (the digits
    dropped), and that is as good when neither line holds a digit in a string (a key, a
    window tag), nor an empty list (``[]``, which ``[7]`` loosely is): then they differ
    only in their numbers' digits too. Such a line costs a
    second translation and a look at its strings; the others are parsed and checked in full.

    :param seed: The seed every line carries.
    """

    def __init__(self, seed: int) -> None:
        self.rule = RecordRule()
        self.seed = seed
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

    def check(
        self, record: Mapping[str, Any], line: bytes, shape: bytes | None
    ) -> list[int] | None:
        """Refuse ``line``, or accept it (and remember its shape).

        :param record: What was serialised (its objects, to tell a NaN from a ``None``).
        :param line: The serialised line.
        :param shape: ``line.translate(_ZEROS)``, or ``None`` not to remember it.
        :return: The shape's action counts (the caller counts the line there), or ``None``
            when the shape is not remembered (the caller tallies the line itself).
        :raises ValueError: naming the transition and the field.
        """
        loose = None
        if shape is not None:
            loose = line.translate(None, _DIGITS)
            counts = self._loose.get(loose)
            if counts is not None and b"[]" not in line and _strings_hold_no_digit(line):
                if len(self.shapes) < _MAX_SHAPES:  # (the next line of this shape: a lookup)
                    self.shapes[shape] = counts
                return counts
        t = record["t"]
        nulls = line.count(b"null")
        explained = record["next_state"] is None
        if nulls != explained:
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
        if shape is None or nulls != explained:
            return None
        if len(self.shapes) >= _MAX_SHAPES:
            self.folded = defaultdict(int, self.tally())
            self.shapes.clear()
            self._loose.clear()
            self._entries.clear()
        mask = tuple(record["action_mask"])
        counts = self.shapes[shape] = [0] * (len(mask) + 1)
        self._entries.append((record["meta"].get("bp_window_tag"), mask, counts))
        if loose is not None and b"[]" not in line and _strings_hold_no_digit(line):
            self._loose.setdefault(loose, counts)
        return counts


def _refuse_bad_line(record: Mapping[str, Any], line: bytes) -> None:
    """Refuse a serialised transition holding NaN or infinity, or longer than a line may be."""
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


class DatasetLogger:
    """Log offline-RL transitions to a JSON Lines file, one object per line.

    Use :meth:`open_shard` for a dataset directory with a manifest (the normal way), or the
    constructor for a lone file as in the seed card.

    :param output_path: The JSONL file to write (parents are created, an old file is replaced).
    :param engine_props: Engine configuration; ``engine_props["seed"]`` goes into every line.
    :param flush_every: Write the buffer out every this many transitions (and always at close).
    :param link_next: Fill each transition's ``next_state`` with the ``state`` of the next one
        logged (the last keeps ``null``): the logger holds one transition back until the next
        arrives, so the caller must not change a state dict after logging it. A crash loses at
        most that one; whatever was flushed stays whole.
    :param trusted: The caller builds every transition by construction, as the engine does
        (:func:`fusion.run.simulation.run_simulation` passes ``True``): the first transition
        is checked in full, the later ones in bulk when the buffer is written out (no null but
        a missing ``next_state``'s, as orjson writes NaN and infinities as null; each line
        within :data:`~fusion.storage.schema.MAX_LINE_BYTES`); a bad one is then refused by
        that later call (or :meth:`close`), the lines before it written, it and those after it
        dropped. The caller must not change a transition's objects after logging it. The
        default (``False``) checks each transition as it comes and refuses exactly what
        ``fusion validate`` refuses (every field's kind included): a line shaped like one
        already accepted (the same but for its numbers' digits) costs a byte translation
        and a lookup, another one is parsed back and checked in full.

    Example::

        >>> import tempfile, os
        >>> path = os.path.join(tempfile.mkdtemp(), "offline_data.jsonl")
        >>> with DatasetLogger(path, {"seed": 42}) as log:
        ...     log.log_transition({"src": 0, "dst": 5, "paths": []}, 0, 1.0, None, [True],
        ...                        {"decision_time_ms": 0.35, "bp_window_tag": "pre"})
        >>> log.transition_count
        1
    """

    def __init__(
        self,
        output_path: str | os.PathLike[str],
        engine_props: Mapping[str, Any],
        *,
        flush_every: int = 1000,
        link_next: bool = False,
        trusted: bool = False,
    ) -> None:
        if isinstance(flush_every, bool) or not isinstance(flush_every, int) or flush_every < 1:
            raise ValueError(f"flush_every must be a positive integer, got {flush_every!r}")
        self.output_path = Path(output_path)
        self.output_path.parent.mkdir(parents=True, exist_ok=True)
        self.engine_props = engine_props
        self.transition_count = 0
        seed = engine_props.get("seed")
        if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
            raise ValueError(
                f"engine_props['seed'] must be an integer (every line carries it), got {seed!r}"
            )
        self._seed = int(seed)
        self._check = _LineCheck(self._seed)
        self._shapes = self._check.shapes
        self._last: tuple[bytes, list[int] | None] = (b"", None)  # the last line's shape
        self._flush_every = flush_every
        self._trusted = trusted
        self._next_flush = flush_every
        self._buffer = bytearray()
        self._nulls = 0  # trusted: the buffer's nulls of missing next states
        self._tally: defaultdict[TallyKey, int] = defaultdict(int)  # (faster than Counter)
        self._extra_stats: dict[str, Any] = {}
        self._closed = False
        self._write_error: ShardWriteError | None = None
        self.lines_written = 0
        self._buffered_lines = 0
        self._shard: _ShardContext | None = None
        self._linker = NextStateLinker() if link_next else None
        try:  # (never through a link: a shard is written in place, as its own file)
            self._file = open(self.output_path, "wb", buffering=0, opener=_no_follow)  # noqa: SIM115
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise
            raise ShardWriteError(
                f"{self.output_path}: is a symbolic link; a shard is written in place, never "
                "through a link (remove the link, or write elsewhere)"
            ) from None
        # Hashing on a background thread (hashlib lets go of the GIL): 0.77x a bare orjson
        # loop against 0.66x hashing in the caller (1.5 KB lines, 7 interleaved rounds); the
        # writes stay in the caller, where a write-behind thread lost more than it saved.
        self._sink = HashingSink(self._file)
        logger.debug("dataset logger opened %s", self.output_path)

    # -- shards --------------------------------------------------------------------------------
    @classmethod
    def open_shard(
        cls,
        dataset_dir: str | os.PathLike[str],
        seed: int,
        engine_props: Mapping[str, Any],
        *,
        stem: str = DEFAULT_STEM,
        overwrite: bool = False,
        flush_every: int = 1000,
        compress: str | None = None,
        link_next: bool = False,
        commit: bool = True,
        trusted: bool = False,
        owner: Lease | None = None,
        path_features: Sequence[str] | None = None,
    ) -> DatasetLogger:
        """Open the shard ``dataset_dir/<stem>.seed<seed>.jsonl``.

        At close the shard's record goes to its sidecar (always) and, with ``commit``, to the
        manifest (see :mod:`fusion.storage.manifest` for the protocol). With ``commit`` the
        manifest is created if missing (its config is ``engine_props`` without ``seed``) or
        checked against this config, and the shard is listed ``writing`` until it closes.
        Without ``commit`` (a sweep's worker: its driver alone writes the manifest) the
        manifest is not touched at all, and :attr:`record` holds the entry after close. A
        second writer of the same seed and directory is refused; so is a complete shard unless
        ``overwrite``.

        :param dataset_dir: The dataset directory.
        :param seed: The simulation seed, 0 .. 2**31-1; written into every line.
        :param engine_props: The resolved config (plain JSON values).
        :param stem: Shard file stem.
        :param overwrite: Rewrite a shard that is already complete.
        :param flush_every: Write the buffer out every this many transitions.
        :param compress: ``"gzip"`` or ``"zstd"``: once the shard is complete, replace it with
            ``<stem>.seed<seed>.jsonl.gz`` / ``.zst`` (the plain file stays while writing, so a
            crash still leaves whole lines); the manifest then records the compressed file's
            sha256 and size, and the plain file's as ``raw_sha256`` / ``raw_bytes``.
        :param link_next: Fill ``next_state`` at log time (see the class's parameters).
        :param trusted: Check the first transition in full, the rest in bulk (see the class's
            parameters).
        :param commit: Publish the entry to the manifest too (off for a sweep's workers).
        :param owner: The lease of the run writing the directory
            (:mod:`~fusion.storage.ownership`), checked now and before the shard's record is
            published; ``None`` (a hand-fed writer): refused while another run holds it.
        :param path_features: The path features every transition's paths hold, in order
            (a simulation's, from its config): recorded in the manifest (with ``commit``) and
            the sidecar. ``None`` (a hand-fed writer): the sidecar records the declared path
            features of the first transition's first path, which a manifest that records none
            takes (:mod:`fusion.storage.manifest`).
        :raises ShardBusyError: when another writer holds this seed's shard.
        :raises DirectoryBusyError: when a run holds the directory and ``owner`` is not its.
        :raises RunConflictError: when ``owner`` no longer holds the directory.
        :raises ShardExistsError: when the shard is complete and ``overwrite`` is false.
        :raises ManifestConflictError: when the directory holds a dataset of another config,
            or is a study (a dataset there would be shadowed by it: write into a point).
        """
        seed = check_seed(seed)
        check_compression(compress)
        directory = Path(dataset_dir)
        if is_study(directory):
            raise ManifestConflictError(
                f"{directory} is a study (it holds study.json): readers would never see a "
                "shard written there; write into a point's directory or another directory"
            )
        if owner is not None:  # (before anything is created: a lost directory stays lost)
            owner.check()
        else:
            refuse_if_held(directory, "a shard writer")
        if commit:  # (a sweep's driver made this check for its workers, once per directory)
            refuse_foreign_shards(directory, stem, [seed])
        directory.mkdir(parents=True, exist_ok=True)
        shard_path = directory / shard_file_name(seed, stem)
        lock = FileLock(str(shard_path) + ".lock", timeout=0)
        try:
            lock.acquire()
        except Timeout as exc:
            raise ShardBusyError(
                f"{shard_path}: another writer holds the shard of seed {seed}"
            ) from exc
        try:
            config = {k: v for k, v in engine_props.items() if k != "seed"}
            if commit:
                manifest = mf.init_manifest(
                    directory,
                    config,
                    planned_seeds=[seed],
                    stem=stem,
                    path_features=path_features,
                )
                listed = [e for e in manifest["shards"] if e["seed"] == seed]
            else:  # the driver made and checked the manifest; reading it would cost per shard
                manifest = {"config": config, "config_sha256": config_sha256(config)}
                manifest["stem"] = stem
                manifest[mf.PATH_FEATURES_FIELD] = path_features
                listed = []
            _refuse_existing(listed, seed, shard_path, overwrite)
            if shard_path.is_symlink():  # the record's name: the link goes, never its target
                shard_path.unlink()
            sidecar_path(shard_path).unlink(missing_ok=True)  # shared by .gz / .zst
            for suffix in SUFFIXES.values():  # compressed files an earlier run left
                shard_path.with_name(shard_path.name + suffix).unlink(missing_ok=True)
            entry = {
                "seed": seed,
                "file": shard_path.name,
                "status": STATUS_WRITING,
                "started": now_iso(),
                **host_and_pid(),
            }
            if commit:
                mf.put_shard_entry(directory, entry)
            props = {**engine_props, "seed": seed}
            log = cls(
                shard_path,
                props,
                flush_every=flush_every,
                link_next=link_next,
                trusted=trusted,
            )
        except BaseException:
            lock.release()
            raise
        log._shard = _ShardContext(directory, lock, manifest, entry, compress, commit, owner)
        return log

    @property
    def record(self) -> dict[str, Any] | None:
        """The shard's entry as published at close (``None`` before, or for a lone file)."""
        return None if self._shard is None else self._shard.record

    # -- writing -------------------------------------------------------------------------------
    def log_transition(
        self,
        state: Mapping[str, Any],
        action: int,
        reward: float,
        next_state: Mapping[str, Any] | None,
        action_mask: Sequence[bool],
        meta: Mapping[str, Any],
    ) -> None:
        """Log one transition; a rejected transition writes nothing.

        :param state: The state dict (``src``, ``dst``, ..., ``paths``).
        :param action: The chosen path index, or -1 when blocked.
        :param reward: A finite reward (+1.0 accepted, -1.0 blocked).
        :param next_state: The next state dict, or ``None``.
        :param action_mask: One boolean per path: feasible now.
        :param meta: Metadata (``decision_time_ms``, ``bp_window_tag``, ...).
        :raises ValueError: naming the transition and the field when the line breaks the
            record's rule (:mod:`fusion.storage.schema`: a field the declaration does not
            have or of the wrong kind, a path lacking a feature of its set, paths holding
            another set than the file's, an action illegal for the mask, a mask as long as no
            path list, a bad window tag, ...), any number is NaN or infinite, or the line
            would be longer than a reader takes.
        :raises ShardWriteError: naming the file when writing fails (a full disk); the shard's
            earlier lines stay whole and it is recorded ``failed`` at close.
        """
        if self._closed:
            raise ValueError(f"{self.output_path}: log_transition on a closed DatasetLogger")
        trusted, count = self._trusted, self.transition_count
        if (not trusted or not count) and (  # the exact built-in types pass these at once
            action.__class__ is not int
            or reward.__class__ is not float
            or action_mask.__class__ is not list
            or meta.__class__ is not dict
            or (action != -1 and not (0 <= action < len(action_mask) and action_mask[action]))
            or reward != (1.0 if action >= 0 else -1.0)
        ):
            action, reward, action_mask = _given(action, reward, action_mask, meta, count)
        record = {
            "t": count,
            "seed": self._seed,
            "state": state,
            "action": action,
            "reward": reward,
            "next_state": next_state,
            "action_mask": action_mask,
            "meta": meta,
        }
        try:
            line = _DUMPS(record, None, _OPT)  # (positional: a keyword costs more)
        except orjson.JSONEncodeError as exc:
            raise ValueError(f"transition t={count} is not JSON: {exc}") from exc
        if len(line) > MAX_LINE_BYTES:
            _refuse_bad_line(record, line)
        if trusted:
            if not count:  # the first in full, the rest in bulk at flush
                self._check.check(record, line, None)
            self._tally[meta.get("bp_window_tag"), action, tuple(action_mask)] += 1  # _tally_keys
        else:  # the rule, as validate applies it (see _LineCheck)
            shape = line.translate(_ZEROS)
            last_shape, counts = self._last  # (a memcmp: cheaper than hashing the shape)
            if shape != last_shape:
                counts = self._shapes.get(shape)
                if counts is None:
                    counts = self._check.check(record, line, shape)
                if counts is not None:
                    self._last = shape, counts
            if counts is not None:  # (the shape's window tag and mask are the tally's)
                counts[action + 1] += 1
            else:
                self._tally[meta.get("bp_window_tag"), action, tuple(action_mask)] += 1
        self.transition_count = count = count + 1
        if self._linker is not None:
            held = self._linker.push(record)
            if held is None:
                return
            # Both parts were checked when they were logged: no NaN can hide in this line.
            line = _DUMPS(held, option=_OPT)
            next_state = held["next_state"]
        if trusted and next_state is None:  # (what a trusted writer's bulk check expects)
            self._nulls += 1
        buffer = self._buffer
        buffer += line  # (in place)
        self._buffered_lines += 1
        if count >= self._next_flush or len(buffer) > _MAX_BUFFER:
            self.flush()

    def record_summary(self, stats: Mapping[str, Any]) -> None:
        """Add caller's summary stats (e.g. the simulator's) to the shard's manifest entry.

        :param stats: Plain JSON values, merged into the entry's ``stats``.
        """
        self._extra_stats.update(stats)

    def flush(self) -> None:
        """Hash and write out the buffered lines (whole lines only).

        :raises ShardWriteError: when the file refuses them; what was written before stays,
            the partial buffer is cut off again so the file ends on a whole line.
        """
        if self._write_error is not None:
            raise ShardWriteError(f"{self.output_path}: an earlier write failed") from None
        refused = self._check_nulls() if self._trusted else None
        if self._buffer:
            buffer, self._buffer = self._buffer, bytearray()
            try:
                self._sink.write(buffer)
            except OSError as exc:
                self._fail_write(exc, buffer)
            self.lines_written += self._buffered_lines
            self._buffered_lines = 0
        self._next_flush = self.transition_count + self._flush_every
        if refused is not None:
            raise refused

    def _check_nulls(self) -> ValueError | None:
        """A trusted writer's bulk check of its buffer: a null beyond those of missing next
        states is a NaN or infinity (orjson writes them as null); the buffer is then cut before
        that line (it and the lines after it are dropped) and the error returned."""
        expected, self._nulls = self._nulls, 0
        buffer = self._buffer
        if _count_nulls(buffer) == expected:
            return None
        start = 0
        lines = buffer.splitlines(keepends=True)
        for index, line in enumerate(lines):
            if line.count(b"null") > line.count(b'"next_state":null'):
                record = orjson.loads(line)
                dropped = [orjson.loads(later) for later in lines[index:]]
                if self._linker is not None:
                    dropped += self._linker.drain()
                self._untally(dropped)
                del buffer[start:]
                self._buffered_lines = index
                self.transition_count = record["t"]  # it and all after it are dropped
                return ValueError(
                    f"transition t={record['t']}: {_null_field(record)} is null, a NaN or "
                    "infinity as orjson writes them; a trusted writer's transitions hold finite "
                    "numbers and no null but a missing next_state"
                )
            start += len(line)
        return None

    def _fail_write(self, exc: OSError, lost: bytearray) -> None:
        """Cut the file back to the last whole buffer and raise the error with the path; the
        ``lost`` buffer's transitions leave the tally (the statistics count what was written)."""
        self._buffer = bytearray()
        self._untally([orjson.loads(line) for line in lost.splitlines()])
        with contextlib.suppress(OSError):
            os.ftruncate(self._file.fileno(), self._sink.size)  # frees the partial buffer
        self._write_error = ShardWriteError(
            f"{self.output_path}: writing the shard failed ({exc.strerror or exc}); its "
            f"{self.lines_written} whole lines before that stay readable"
        )
        raise self._write_error from exc

    def _untally(self, records: list[dict[str, Any]]) -> None:
        """Take transitions that never reach the file out of the tally (those of a failed
        write or a trusted writer's refused buffer, and all logged after them): the shard's
        statistics describe its lines."""
        for key in _tally_keys(records):
            self._tally[key] -= 1
            if not self._tally[key]:
                del self._tally[key]

    # -- closing -------------------------------------------------------------------------------
    def close(self, error: BaseException | None = None) -> None:
        """Write out the buffer, fsync, and for a shard publish its sidecar and manifest entry.

        Closing twice is harmless.

        :param error: The exception that ended the writing; the shard is then ``failed``.
        :raises ShardWriteError: when the last write or the fsync fails (the shard is then
            recorded ``failed`` with that error, and its lock released).
        """
        if self._closed:
            return
        self._closed = True
        if self._linker is not None:  # the last transition keeps next_state null
            for held in self._linker.drain():
                self._buffer += _DUMPS(held, option=_OPT)
                self._buffered_lines += 1
                self._nulls += 1
        if self._write_error is not None:  # what is buffered now is never written
            self._untally([orjson.loads(line) for line in self._buffer.splitlines()])
        failure: BaseException | None = None
        try:
            if self._write_error is None:
                self.flush()
                os.fsync(self._file.fileno())
        except (ShardWriteError, ValueError) as exc:  # (a trusted writer's bulk check)
            failure = exc
        except OSError as exc:  # fsync: the data may not be on disk
            failure = ShardWriteError(f"{self.output_path}: fsync failed ({exc.strerror or exc})")
            failure.__cause__ = exc
        finally:
            self._sink.close()
            self._file.close()
        failure = error or failure or self._write_error
        logger.info("dataset logger closed: %d transitions logged", self.transition_count)
        if self._shard is not None:
            self._shard.publish(self, failure)
        if failure is not None and error is None:
            raise failure

    def stats(self) -> dict[str, Any]:
        """The summary stats of what was logged so far, plus any recorded by the caller."""
        tally = defaultdict(int, self._tally)
        if not self._trusted:  # (what _untally took off may be counted by shape)
            for key, count in self._check.tally().items():
                tally[key] += count
        stats = summarise({key: count for key, count in tally.items() if count})
        stats.update(self._extra_stats)
        return stats

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    @property
    def sha256(self) -> str:
        """sha256 of the bytes written out so far."""
        self._sink.drain()
        return self._sink.hexdigest()

    @property
    def bytes_written(self) -> int:
        """Bytes handed to the file so far."""
        return self._sink.size

    def __enter__(self) -> DatasetLogger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        self.close(error=exc_val)

    def __reduce__(self) -> Any:
        raise TypeError(
            "a DatasetLogger holds an open file and a lock and cannot be pickled: "
            "build it inside the worker process (DatasetLogger.open_shard)"
        )

    def __del__(self) -> None:
        if not getattr(self, "_closed", True) and self._shard is None:
            self.close()


class _ShardContext:
    """What a shard writer needs beyond its file: directory, lock, dataset identity, entry."""

    def __init__(
        self,
        directory: Path,
        lock: FileLock,
        manifest: Mapping[str, Any],
        entry: dict[str, Any],
        compress: str | None,
        commit: bool,
        owner: Lease | None,
    ) -> None:
        self.directory = directory
        self.owner = owner
        self.lock = lock
        self.compress = compress
        self.commit = commit
        self.record: dict[str, Any] | None = None
        self.identity = {k: manifest[k] for k in ("config", "config_sha256", "stem")}
        self.identity.update(format=mf.FORMAT_NAME, schema_version=mf.SCHEMA_VERSION)
        self.identity[mf.PATH_FEATURES_FIELD] = manifest.get(mf.PATH_FEATURES_FIELD)
        self.entry = entry

    def publish(self, log: DatasetLogger, error: BaseException | None) -> None:
        """Publish the closed shard's sidecar, then its manifest entry; release the lock.

        :raises RunConflictError: when the run lost its directory: nothing is published.
        """
        try:
            if self.owner is not None:
                self.owner.check()  # another run's directory now: publish nothing there
            entry = dict(self.entry)
            entry.update(
                status=STATUS_FAILED if error is not None else STATUS_COMPLETE,
                transitions=log.lines_written,
                bytes=log.bytes_written,
                sha256=log.sha256,
                finished=now_iso(),
                stats=log.stats(),
            )
            if error is not None:
                entry["error"] = f"{type(error).__name__}: {error}"
            if self.identity[mf.PATH_FEATURES_FIELD] is None:  # a hand-fed writer's
                held = first_path_features(log.output_path)
                if held is not None:
                    entry[mf.PATH_FEATURES_FIELD] = list(held)
            published = log.output_path
            if error is None and self.compress is not None:
                published = self._compressed(log, entry)
            self.record = entry
            publish_sidecar(published, sidecar_record(self.identity, entry))
            if self.commit:
                mf.put_shard_entry(self.directory, entry)
            if published != log.output_path:
                log.output_path.unlink()
        except OSError as exc:
            if error is None:
                raise ShardWriteError(
                    f"{log.output_path}: publishing the shard's record failed ({exc})"
                ) from exc
            logger.error("%s: could not record the failure (%s): %s", log.output_path, exc, error)
        finally:
            self.lock.release()
            if self.record is not None and self.record["status"] == STATUS_COMPLETE:
                # a complete shard leaves no lock file (10,000 seeds would leave 10,000): a
                # writer racing for it meanwhile is what the lock never guaranteed against
                with contextlib.suppress(OSError):
                    Path(self.lock.lock_file).unlink()

    def _compressed(self, log: DatasetLogger, entry: dict[str, Any]) -> Path:
        """Compress the complete shard beside itself; on failure keep the plain one (and say so)."""
        assert self.compress is not None
        target = log.output_path.with_name(log.output_path.name + SUFFIXES[self.compress])
        try:
            sha, size = compress_file(log.output_path, target, self.compress)
        except (OSError, DatasetError) as exc:
            logger.warning("%s: kept uncompressed: %s", log.output_path, exc)
            entry["compression_error"] = f"{type(exc).__name__}: {exc}"
            return log.output_path
        entry.update(
            file=target.name,
            compression=self.compress,
            raw_bytes=entry["bytes"],
            raw_sha256=entry["sha256"],
            bytes=size,
            sha256=sha,
        )
        return target


def _refuse_existing(
    listed: Sequence[Mapping[str, Any]], seed: int, shard_path: Path, overwrite: bool
) -> None:
    if overwrite:
        return
    sidecar = read_sidecar(sidecar_path(shard_path))
    complete = (sidecar is not None and sidecar.get("status") == STATUS_COMPLETE) or any(
        e.get("status") == STATUS_COMPLETE for e in listed
    )
    if complete:
        raise ShardExistsError(
            f"{shard_path}: the shard of seed {seed} is already complete; "
            "pass overwrite=True (or --overwrite / --resume) to write it again"
        )


__all__ = ["DatasetLogger"]
