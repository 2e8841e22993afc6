"""Reading datasets: a lone ``.jsonl`` file, a dataset directory, or its ``manifest.json``.

Transitions come out in ``(seed, t)`` order, seeds compared as integers (seed 2 before seed 10,
whatever a glob says). Shards that are not ``complete`` are skipped with a warning unless
``include_incomplete``, which yields their whole lines only. Readers are strict: a corrupt line
raises :class:`~fusion.errors.DatasetError` naming the file and line number.

    >>> import tempfile
    >>> from fusion.storage.shard_writer import DatasetLogger
    >>> d = tempfile.mkdtemp()
    >>> for seed in (10, 2):
    ...     with DatasetLogger.open_shard(d, seed, {}) as log:
    ...         log.log_transition({"src": 0, "dst": 1, "paths": []}, -1, -1.0, None, [], {})
    >>> [(tr["seed"], tr["t"]) for tr in load_dataset(d)]
    [(2, 0), (10, 0)]
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from fusion.errors import DatasetError
from fusion.storage.compression import open_binary
from fusion.storage.integrity import LineCheck, check_line_count
from fusion.storage.schema import check_window
from fusion.storage.sources import Part, Source, resolve, resolve_parts, warn_skipped
from fusion.storage.successors import NextStateLinker

logger = logging.getLogger(__name__)


def complete_shard_files(
    path: str | os.PathLike[str], seeds: Iterable[int] | None = None
) -> list[Path]:
    """The files of a dataset's complete shards, in seed order: what to hand another reader.

    DuckDB, Polars or pandas then read exactly the shards the manifest vouches for (a glob
    would also take a shard still being written, or one whose writer died mid-line).

    :param path: A dataset directory or its ``manifest.json``.
    :param seeds: Only these seeds.
    """
    return [source.path for source in resolve(path, seeds=seeds).sources]


def iter_json_lines(
    path: Path,
    *,
    whole_only: bool = False,
    handle: BinaryIO | None = None,
    first_line: int = 0,
) -> Iterator[dict[str, Any]]:
    """Parse every line of a JSON Lines file strictly.

    :param path: The file (plain, ``.gz`` or ``.zst``).
    :param whole_only: Drop a last line that has no newline (a writer died mid-line).
    :param handle: An already open binary file to read instead of opening ``path``.
    :param first_line: Lines of ``path`` before what ``handle`` reads (for messages).
    :raises DatasetError: naming the file and line number of a line that is not JSON.
    """
    loads = orjson.loads
    with handle if handle is not None else open_binary(path) as stream:
        for lineno, line in enumerate(stream, first_line + 1):
            try:
                record = loads(line)
            except orjson.JSONDecodeError as exc:
                if whole_only and not line.endswith(b"\n"):
                    return
                raise DatasetError(f"{path}:{lineno}: not a JSON object ({exc})") from exc
            if whole_only and not line.endswith(b"\n"):
                return
            yield record


def read_source(source: Source, *, verify: bool = False) -> Iterator[dict[str, Any]]:
    """The records of one source, checked as they are read.

    Always: every line's ``seed`` and ``t`` (:class:`~fusion.storage.integrity.LineCheck`),
    then at the end the line count and the stored size against the record. With ``verify``,
    the sha256 of the stored bytes too, before the first record.

    :param source: What :func:`~fusion.storage.sources.resolve` found.
    :param verify: Also check the sha256.
    :raises DatasetError: naming the file (and line) of whatever does not match.
    """
    if source.complete and verify:
        source.check_sha256()
    check = LineCheck(
        source.path, source.seed, None if source.per_seed is None else source.per_seed
    )
    line = check.line
    select = source.select
    point = source.point
    first = source.first_line
    lineno = first
    for lineno, record in enumerate(
        iter_json_lines(
            source.path,
            whole_only=not source.complete,
            handle=source.open(),
            first_line=first,
        ),
        first + 1,
    ):
        try:
            seed, t = record["seed"], record["t"]
        except (KeyError, TypeError):
            raise DatasetError(
                f"{source.path}:{lineno}: a transition needs 'seed' and 't'"
            ) from None
        line(seed, t, lineno)
        if select is None or seed in select:
            if point is not None:
                record["point"] = dict(point)
            yield record
    if source.complete:
        check_line_count(source.path, lineno - first, source.lines, source.promised_by)
        check.finish(source.per_seed, source.promised_by)
        source.check_size()


def _link_next(records: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Fill ``next_state`` from the next record of the same seed
    (:class:`~fusion.storage.successors.NextStateLinker`), never across seeds.

    Each record is held until its successor (or the end) is read, so a shard's records come out
    in order, and a merged file keeps the order in which the records complete.
    """
    linker = NextStateLinker()
    for record in records:
        previous = linker.push(record)
        if previous is not None:
            yield previous
    yield from linker.drain()


def load_dataset(
    path: str | os.PathLike[str],
    *,
    seeds: Iterable[int] | None = None,
    window: str | None = None,
    include_incomplete: bool = False,
    link_next: bool = False,
    verify: bool = False,
    points: Mapping[str, Sequence[Any]] | None = None,
) -> Iterator[dict[str, Any]]:
    """The transitions as a lazy iterator: a dataset in ``(seed, t)`` order, a lone file in
    its own order (a ``t``-order merge stays interleaved; ``t`` ascends within each seed), a
    study in (point, seed, t) order, each record with its ``"point"`` (axis -> value).

    :param path: A ``.jsonl`` file, a dataset directory, a ``manifest.json``, or a study
        directory (or its ``study.json``).
    :param seeds: Only these seeds (of a dataset, or of a merged file).
    :param window: Only transitions whose ``meta.bp_window_tag`` is this (pre, fail, post).
    :param include_incomplete: Also read shards not ``complete`` (their whole lines only).
    :param link_next: Fill ``next_state`` with the state of the next transition of the same
        shard, or of the same seed in a merged file (``None`` for a seed's last transition).
    :param verify: Check every file's sha256 against its record before reading it (sizes,
        line counts and each line's ``seed`` and ``t`` are always checked).
    :param points: A study's points to read: axis -> values (``{"erlang": [300]}``); also
        for a study merged into one file (``fusion merge STUDY --all``), whose records carry
        their ``"point"`` as well.
    :raises ValueError: for ``points`` on what is not a study, or naming no point of it.
    :raises DatasetError: naming the file and line of a corrupt line, a line whose seed or
        ``t`` does not belong where it is, or a file whose size or line count differs from
        its record.

    Example::

        >>> import tempfile, os
        >>> from fusion.storage.shard_writer import DatasetLogger
        >>> p = os.path.join(tempfile.mkdtemp(), "one.jsonl")
        >>> with DatasetLogger(p, {"seed": 1}) as log:
        ...     log.log_transition({"src": 0, "dst": 1, "paths": []}, 0, 1.0, None, [True], {})
        >>> next(load_dataset(p))["action"]
        0
    """
    check_window(window)
    parts = resolve_parts(
        path, seeds=seeds, include_incomplete=include_incomplete, points=points
    )  # the points are checked now; each part is resolved and read when the reader gets there
    # Lazily, source after source: a file's problem surfaces when the reader reaches it.
    records = itertools.chain.from_iterable(_read_part(part, verify, link_next) for part in parts)
    if window is None:
        return records
    return (record for record in records if record["meta"].get("bp_window_tag") == window)


def _read_part(part: Part, verify: bool, link_next: bool) -> Iterator[dict[str, Any]]:
    """A part's records, source after source (each linked on its own with ``link_next``); a
    study directory's points carry their ``"point"`` (a merged study's sources carry theirs)."""
    resolved = part.resolved
    warn_skipped(resolved)
    for source in resolved.sources:
        records = read_source(source, verify=verify)
        if link_next:
            records = _link_next(records)
        if part.of_study_dir:
            coords = part.coords or {}
            for record in records:
                record["point"] = dict(coords)
                yield record
        else:
            yield from records


def filter_by_window(dataset_path: str | os.PathLike[str], window_tag: str) -> list[dict[str, Any]]:
    """All transitions of one BP window (``pre``, ``fail`` or ``post``).

    :param dataset_path: A ``.jsonl`` file, a dataset directory, or a ``manifest.json``.
    :param window_tag: The window tag.
    :return: The transitions, in ``(seed, t)`` order.
    """
    return list(load_dataset(dataset_path, window=window_tag))
