"""Reading datasets: a lone ``.jsonl`` file, a dataset directory, or its ``manifest.json``.

Transitions come out in ``(seed, t)`` order, seeds compared as integers (seed 2 before seed 10,
whatever a glob says). Shards that are not ``complete`` are skipped with a warning unless
``include_incomplete``, which yields their whole lines only. Readers are strict: a corrupt line
raises :class:`~fusion.errors.DatasetError` naming the file and line number.

    >>> import tempfile
    >>> from fusion.reporting.dataset_logger import DatasetLogger
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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from fusion.errors import DatasetError
from fusion.reporting import manifest as mf
from fusion.reporting.compression import open_binary

logger = logging.getLogger(__name__)

WINDOW_TAGS = ("pre", "fail", "post")


@dataclass(frozen=True)
class ShardRef:
    """One shard as the manifest lists it.

    :param seed: The shard's seed.
    :param path: Its file.
    :param status: ``writing``, ``complete`` or ``failed``.
    :param entry: The whole manifest entry.
    """

    seed: int
    path: Path
    status: str
    entry: dict[str, Any]

    @property
    def complete(self) -> bool:
        """Whether the writer closed this shard without error."""
        return self.status == mf.STATUS_COMPLETE

    @property
    def transitions(self) -> int | None:
        """Lines the manifest promises, when it knows."""
        value = self.entry.get("transitions")
        return int(value) if value is not None else None


def dataset_shards(
    path: str | os.PathLike[str], seeds: Iterable[int] | None = None
) -> tuple[dict[str, Any], list[ShardRef]]:
    """The manifest of a dataset and its shards in seed order, optionally only some seeds.

    :param path: A dataset directory or its ``manifest.json``.
    :param seeds: Keep only these seeds.
    :raises DatasetError: when the manifest is missing or unreadable.
    """
    source = Path(path)
    directory = source if source.is_dir() else source.parent
    manifest = mf.read_manifest(source)
    wanted = None if seeds is None else {int(s) for s in seeds}
    refs = [
        ShardRef(int(e["seed"]), directory / e["file"], str(e.get("status")), e)
        for e in mf.shard_entries(manifest)
        if wanted is None or int(e["seed"]) in wanted
    ]
    return manifest, refs


def complete_shard_files(
    path: str | os.PathLike[str], seeds: Iterable[int] | None = None
) -> list[Path]:
    """The files of a dataset's complete shards, in seed order: what to hand another reader.

    DuckDB, Polars or pandas then read exactly the shards the manifest vouches for (a glob
    would also take a shard still being written, or one whose writer died mid-line).

    :param path: A dataset directory or its ``manifest.json``.
    :param seeds: Only these seeds.
    """
    _, refs = dataset_shards(path, seeds)
    return [ref.path for ref in refs if ref.complete]


def is_lone_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names a JSON Lines file rather than a dataset or manifest."""
    source = Path(path)
    return source.is_file() and source.name != mf.MANIFEST_NAME


def iter_json_lines(
    path: Path,
    *,
    whole_only: bool = False,
    handle: BinaryIO | None = None,
    promised: int | None = None,
    promised_by: str = "the manifest",
) -> Iterator[dict[str, Any]]:
    """Parse every line of a JSON Lines file strictly.

    :param path: The file (plain, ``.gz`` or ``.zst``).
    :param whole_only: Drop a last line that has no newline (a writer died mid-line).
    :param handle: An already open binary file to read instead of opening ``path``.
    :param promised: The number of lines the file must have (checked at its end).
    :param promised_by: Who promised it, for the error message.
    :raises DatasetError: naming the file and line number of a line that is not JSON, or the
        file when it has another number of lines than promised.
    """
    loads = orjson.loads
    with handle if handle is not None else open_binary(path) as stream:
        lineno = 0
        for lineno, line in enumerate(stream, 1):
            try:
                record = loads(line)
            except orjson.JSONDecodeError as exc:
                if whole_only and not line.endswith(b"\n"):
                    return
                raise DatasetError(f"{path}:{lineno}: not a JSON object ({exc})") from exc
            if whole_only and not line.endswith(b"\n"):
                return
            yield record
    check_line_count(path, lineno, promised, promised_by)


def check_line_count(
    path: Path, count: int, promised: int | None, by: str = "the manifest"
) -> None:
    """Refuse a file whose line count differs from the one recorded for it.

    :param path: The file, for the message.
    :param count: Lines read.
    :param promised: Lines recorded (``None``: nothing to check).
    :param by: Who recorded it (the manifest, or a merge's ``OUT.manifest.json``).
    :raises DatasetError: when the counts differ.
    """
    if promised is not None and count != int(promised):
        raise DatasetError(
            f"{path}: {count} lines, {by} promises {promised} "
            "(the file was cut or changed after it was closed)"
        )


def _shard_records(ref: ShardRef, include_incomplete: bool) -> Iterator[dict[str, Any]]:
    """The records of one shard (checked against the manifest), or none with a warning."""
    if ref.complete:
        if not ref.path.exists():
            raise DatasetError(
                f"{ref.path}: shard of seed {ref.seed} is listed complete but missing"
            )
        return iter_json_lines(ref.path, promised=ref.transitions)
    if not include_incomplete or not ref.path.exists():
        logger.warning(
            "%s: shard of seed %d is %s, skipped (include_incomplete=True reads its whole lines)",
            ref.path,
            ref.seed,
            ref.status if ref.path.exists() else "missing",
        )
        return iter(())
    return iter_json_lines(ref.path, whole_only=True)


def merged_transitions(path: Path) -> int | None:
    """The line count a merged file's ``OUT.manifest.json`` records, if it has a readable one.

    :param path: The merged file.
    """
    record = mf.read_sidecar(mf.merged_sidecar_path(path))
    value = None if record is None else record.get("transitions")
    return int(value) if value is not None else None


def _link_next(records: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Fill ``next_state`` from the next record of the same seed, never across seeds.

    Each record is held until its successor (or the end) is read, so a shard's records come out
    in order, and a merged file keeps the order in which the records complete.
    """
    pending: dict[Any, dict[str, Any]] = {}
    for record in records:
        previous = pending.pop(record.get("seed"), None)
        if previous is not None:
            previous["next_state"] = record["state"]
            yield previous
        pending[record.get("seed")] = record
    for previous in pending.values():
        previous["next_state"] = None
        yield previous


def check_window(window: str | None) -> None:
    """Refuse a window tag that is not ``pre``, ``fail``, ``post`` or ``None``."""
    if window is not None and window not in WINDOW_TAGS:
        raise ValueError(f"window must be one of {WINDOW_TAGS} or None, got {window!r}")


def load_dataset(
    path: str | os.PathLike[str],
    *,
    seeds: Iterable[int] | None = None,
    window: str | None = None,
    include_incomplete: bool = False,
    link_next: bool = False,
) -> Iterator[dict[str, Any]]:
    """The transitions, in ``(seed, t)`` order, as a lazy iterator.

    :param path: A ``.jsonl`` file, a dataset directory, or a ``manifest.json``.
    :param seeds: Only these seeds (dataset input only).
    :param window: Only transitions whose ``meta.bp_window_tag`` is this (pre, fail, post).
    :param include_incomplete: Also read shards not ``complete`` (their whole lines only).
    :param link_next: Fill ``next_state`` with the state of the next transition of the same
        shard, or of the same seed in a merged file (``None`` for a seed's last transition).
    :raises DatasetError: naming the file and line of a corrupt line, or a complete shard whose
        line count differs from the manifest's.

    Example::

        >>> import tempfile, os
        >>> from fusion.reporting.dataset_logger import DatasetLogger
        >>> p = os.path.join(tempfile.mkdtemp(), "one.jsonl")
        >>> with DatasetLogger(p, {"seed": 1}) as log:
        ...     log.log_transition({"src": 0, "dst": 1, "paths": []}, 0, 1.0, None, [True], {})
        >>> next(load_dataset(p))["action"]
        0
    """
    check_window(window)
    if is_lone_file(path):
        lone = Path(path)
        streams: Iterator[Iterator[dict[str, Any]]] = iter(
            [
                iter_json_lines(
                    lone,
                    promised=merged_transitions(lone),
                    promised_by=mf.merged_sidecar_path(lone).name,
                )
            ]
        )
    else:
        _, refs = dataset_shards(path, seeds)
        # Lazily, shard after shard: a shard's problem surfaces when the reader reaches it.
        streams = (_shard_records(ref, include_incomplete) for ref in refs)
    if link_next:
        streams = (_link_next(stream) for stream in streams)
    records = itertools.chain.from_iterable(streams)
    if window is None:
        return records
    return (record for record in records if record["meta"].get("bp_window_tag") == window)


def filter_by_window(dataset_path: str | os.PathLike[str], window_tag: str) -> list[dict[str, Any]]:
    """All transitions of one BP window (``pre``, ``fail`` or ``post``).

    :param dataset_path: A ``.jsonl`` file, a dataset directory, or a ``manifest.json``.
    :param window_tag: The window tag.
    :return: The transitions, in ``(seed, t)`` order.
    """
    return list(load_dataset(dataset_path, window=window_tag))
