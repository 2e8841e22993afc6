"""Offline-RL dataset logging: the line writer of a shard (or of a lone JSON Lines file).

The writer knows nothing of the simulator: the simulator builds a transition and calls
:meth:`DatasetLogger.log_transition`. Each line is one transition
``{t, seed, state, action, reward, next_state, action_mask, meta}`` written with orjson into
an in-memory buffer that is hashed (:mod:`~fusion.storage.sink`) and written out every
``flush_every`` transitions and at close; the writer tallies each line's window, action and
mask for the shard's statistics (:mod:`~fusion.storage.shard_stats`) and, if asked, fills each
``next_state`` (:mod:`~fusion.storage.successors`). A crash can only lose buffered lines or
leave a last line without its newline, which no loader takes for a transition. A hand-fed
writer refuses at once every transition that ``fusion validate`` would refuse (the one rule,
:class:`~fusion.storage.schema.RecordRule`, applied to the line it serialised:
:mod:`~fusion.storage.line_check`); the engine's (``trusted``) checks its first in full and
the rest in bulk at each flush. A shard's life in a dataset directory around its lines (lock,
manifest entry, sidecar, compression) is :mod:`~fusion.storage.shard_lifecycle`'s.

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
import io
import logging
import os
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import orjson

from fusion.config.features import ALL_PATH_FEATURES
from fusion.errors import ShardWriteError
from fusion.storage.line_check import (
    HandFedCheck,
    count_nulls,
    first_stray_null,
    given,
    null_field,
    refuse_long_line,
)
from fusion.storage.manifest import PATH_FEATURES_FIELD
from fusion.storage.ownership import Lease
from fusion.storage.schema import MAX_LINE_BYTES, RecordRule
from fusion.storage.shard_lifecycle import ShardContext, open_shard_context
from fusion.storage.shard_names import DEFAULT_STEM
from fusion.storage.shard_stats import TallyKey, summarise, tally_keys
from fusion.storage.sink import HashingSink
from fusion.storage.successors import NextStateLinker

logger = logging.getLogger(__name__)

_DUMPS = orjson.dumps
_OPT = orjson.OPT_APPEND_NEWLINE | orjson.OPT_SERIALIZE_NUMPY
_MAX_BUFFER = 4 << 20


def _no_follow(path: str, flags: int) -> int:
    """``open``'s opener that refuses to follow a symbolic link at ``path``."""
    return os.open(path, flags | os.O_NOFOLLOW, 0o666)


def _seed_of(engine_props: Mapping[str, Any]) -> int:
    """The seed every line carries, from ``engine_props``."""
    seed = engine_props.get("seed")
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)):
        raise ValueError(
            f"engine_props['seed'] must be an integer (every line carries it), got {seed!r}"
        )
    return int(seed)


def _open_in_place(path: Path) -> io.FileIO:
    """``path`` opened to write, unbuffered, never through a symbolic link."""
    try:
        return open(path, "wb", buffering=0, opener=_no_follow)
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        raise ShardWriteError(
            f"{path}: is a symbolic link; a shard is written in place, never "
            "through a link (remove the link, or write elsewhere)"
        ) from None


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
        ``fusion validate`` refuses (every field's kind included): a line equal to the last
        one accepted but for its ``t`` costs a comparison, one shaped like a line already
        accepted (the same but for its numbers' digits) a byte translation and a lookup,
        another one is parsed back and checked in full
        (:class:`~fusion.storage.line_check.HandFedCheck`).

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
        self._seed = _seed_of(engine_props)
        self._check = HandFedCheck(self._seed)
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
        self._shard: ShardContext | None = None
        self._linker = NextStateLinker() if link_next else None
        self._file = _open_in_place(self.output_path)
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
        record_edition: str | None = None,
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
            the sidecar. ``None`` (a hand-fed writer): the manifest's list when it records one,
            else the sidecar records the declared path features of the first transition's first
            path, which the manifest then takes (:mod:`fusion.storage.manifest`). Every path of
            every transition must hold exactly the list (a transition that does not is refused,
            as ``fusion validate`` would refuse its line).
        :param record_edition: The record edition the engine writes
            (:data:`fusion.config.features.RECORD_EDITION`): recorded in the manifest (with
            ``commit``) and the sidecar, and a dataset whose manifest records another (or none)
            refused. ``None`` (a hand-fed writer): neither recorded nor checked.
        :raises ShardBusyError: when another writer holds this seed's shard.
        :raises DirectoryBusyError: when a run holds the directory and ``owner`` is not its.
        :raises RunConflictError: when ``owner`` no longer holds the directory.
        :raises ShardExistsError: when the shard is complete and ``overwrite`` is false.
        :raises ManifestConflictError: when the directory holds a dataset of another config
            (or record edition), or is a study (a dataset there would be shadowed by it: write into a point).
        """
        shard = open_shard_context(
            dataset_dir,
            seed,
            engine_props,
            stem=stem,
            overwrite=overwrite,
            compress=compress,
            commit=commit,
            owner=owner,
            path_features=path_features,
            record_edition=record_edition,
        )
        try:
            log = cls(
                shard.path,
                shard.props,
                flush_every=flush_every,
                link_next=link_next,
                trusted=trusted,
            )
        except BaseException:
            shard.lock.release()
            raise
        listed = shard.identity[PATH_FEATURES_FIELD]  # given, or what the manifest records
        if listed is not None:  # every path must hold exactly it, as validate requires
            log._check.rule = RecordRule(listed)
        log._shard = shard
        return log

    @property
    def path_features(self) -> tuple[str, ...] | None:
        """The path features every path of the shard holds, in declaration order (as given
        or recorded, else learnt from the first transition with paths; ``None`` before one)."""
        held = self._check.rule.path_features
        return None if held is None else tuple(n for n in ALL_PATH_FEATURES if n in held)

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
            refuse_long_line(record, line)
        if trusted and count:  # the first in full, the rest in bulk at flush
            self._tally[meta.get("bp_window_tag"), action, tuple(action_mask)] += 1  # tally_keys
        else:
            size, rest, counts = self._check.last
            if len(line) != size or not line.endswith(rest):  # (see HandFedCheck.last)
                line, action, counts = self._checked(record, line)
            if counts is not None:  # (the shape's window tag and mask are the tally's)
                counts[action + 1] += 1
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

    def _checked(self, record: dict[str, Any], line: bytes) -> tuple[bytes, int, list[int] | None]:
        """Refuse a transition (its action, reward and mask by value, then its line by the
        rule: :class:`~fusion.storage.line_check.HandFedCheck`), or accept it.

        :param record: The transition as serialised; numpy values of its action, reward and
            mask become Python ones (a reward of 1 is written 1.0), and it is serialised again.
        :param line: The serialised transition.
        :return: The line, the action, and the counts its shape's lines are tallied in
            (``None``: it is tallied here).
        :raises ValueError: naming the transition and the field.
        """
        action, reward, mask = record["action"], record["reward"], record["action_mask"]
        meta = record["meta"]
        values = given(action, reward, mask, meta, record["t"])
        if values[0] is not action or values[1] is not reward or values[2] is not mask:
            action, reward, mask = values
            record.update(action=action, reward=reward, action_mask=mask)
            line = _DUMPS(record, None, _OPT)
            if len(line) > MAX_LINE_BYTES:
                refuse_long_line(record, line)
        if self._trusted:
            counts = self._check.check(record, line, None)
        else:
            counts = self._check.accepted(record, line)
        if counts is None:
            self._tally[meta.get("bp_window_tag"), action, tuple(mask)] += 1
        return line, action, counts

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
        if count_nulls(buffer) == expected:
            return None
        lines = buffer.splitlines(keepends=True)
        index = first_stray_null(lines)
        if index is None:
            return None
        record = orjson.loads(lines[index])
        dropped = [orjson.loads(later) for later in lines[index:]]
        if self._linker is not None:
            dropped += self._linker.drain()
        self._untally(dropped)
        del buffer[sum(len(line) for line in lines[:index]) :]
        self._buffered_lines = index
        self.transition_count = record["t"]  # it and all after it are dropped
        return ValueError(
            f"transition t={record['t']}: {null_field(record)} is null, a NaN or "
            "infinity as orjson writes them; a trusted writer's transitions hold finite "
            "numbers and no null but a missing next_state"
        )

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
        for key in tally_keys(records):
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


__all__ = ["DatasetLogger"]
