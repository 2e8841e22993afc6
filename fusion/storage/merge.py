"""Merging a dataset's shards into one JSON Lines file, in an order fixed by the data alone.

Order ``seed`` concatenates the shards' bytes by ascending seed without parsing JSON; order
``t`` takes line ``t`` of every shard, ties by seed. Every shard's sha256 and line count are
checked against the manifest while it is copied; the output is written to a temp file and
renamed, and a sidecar ``OUT.manifest.json`` records the sources, the order, each seed's line
and byte range, and the output's sha256.

    >>> import tempfile, os
    >>> from fusion.storage.shard_writer import DatasetLogger
    >>> d = tempfile.mkdtemp()
    >>> for seed in (3, 1):
    ...     with DatasetLogger.open_shard(d, seed, {}) as log:
    ...         log.log_transition({"src": 0, "dst": 1, "paths": []}, -1, -1.0, None, [], {})
    >>> info = merge_shards(d, os.path.join(d, "merged.jsonl"))
    >>> [s["seed"] for s in info["shards"]], info["transitions"]
    ([1, 3], 2)
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from array import array
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from fusion import __version__
from fusion.config.vocabulary import SUFFIXES
from fusion.errors import DatasetError, OutputConflictError
from fusion.storage import manifest as mf
from fusion.storage.atomic import atomic_output, write_bytes_atomic
from fusion.storage.compression import (
    check_compression,
    compressed_writer,
    compression_of,
    open_binary,
)
from fusion.storage.integrity import file_sha256
from fusion.storage.outputs import check_output
from fusion.storage.shard_entries import now_iso
from fusion.storage.shard_names import merged_sidecar_path
from fusion.storage.sink import HashingSink
from fusion.storage.sources import MERGE_FORMAT, Source, resolve

ORDERS = ("seed", "t")
_CHUNK = 1 << 20
_MERGE_BUFFER = 1 << 16  # per open file in a t-order pass: 128 of them hold 8 MiB


def _iter_chunks(path: Path) -> Iterator[bytes]:
    """The file's stored bytes (what its sha256 covers) in chunks."""
    with open(path, "rb", buffering=0) as raw:
        while chunk := raw.read(_CHUNK):
            yield chunk


def _verify(ref: Source, digest: str | None = None) -> str | None:
    """Why a complete shard does not match its record (its sha256), or ``None`` when it does.

    :param digest: The shard's digest when the copy hashed it already.
    """
    problem = ref.sha256_problem(digest)
    return None if problem is None else f"corrupt: {problem}"


def _copy_seed_order(
    ref: Source, out: HashingSink, hasher: ThreadPoolExecutor, whole_lines_only: bool
) -> tuple[int, str | None]:
    """Append one shard's bytes; return ``(lines, problem)``. Plain shards are copied as bytes
    (see :func:`_copy_mapped`); compressed ones are decompressed, their sha256 checked first.
    """
    lines = 0
    if compression_of(ref.path) is None:
        if not whole_lines_only:
            return _copy_pipelined(ref, out, hasher)
        tail = b""
        for chunk in _iter_chunks(ref.path):
            data = tail + chunk
            cut = data.rfind(b"\n") + 1
            out.write(data[:cut])
            lines += data.count(b"\n", 0, cut)
            tail = data[cut:]
        return lines, None
    if not whole_lines_only:
        problem = _verify(ref)
        if problem:
            return 0, problem
    buffer = bytearray()
    with open_binary(ref.path) as stream:
        for line in stream:
            if not line.endswith(b"\n"):
                break
            buffer += line
            lines += 1
            if len(buffer) >= _CHUNK:
                out.write(buffer)
                buffer = bytearray()
    out.write(buffer)
    if not whole_lines_only and ref.lines != lines:
        return lines, f"corrupt: {lines} lines, manifest {ref.lines}"
    return lines, None


def _copy_pipelined(
    ref: Source, out: HashingSink, hasher: ThreadPoolExecutor
) -> tuple[int, str | None]:
    """Append a whole plain shard, checking its sha256 on the way.

    Chunk ``i`` is hashed (the shard's sha256 on ``hasher``'s thread, the output's on
    ``out``'s) while chunk ``i + 1`` is read and written: hashlib drops the GIL, so both hashes
    run beside the copy on the second core.
    """
    sha = hashlib.sha256()
    hashed: Future[None] | None = None
    for chunk in _iter_chunks(ref.path):
        if hashed is not None:
            hashed.result()
        hashed = hasher.submit(sha.update, chunk)
        out.write(chunk)
    if hashed is not None:
        hashed.result()
    problem = _verify(ref, sha.hexdigest())
    if problem:
        return 0, problem
    # The bytes are exactly those the writer hashed at close, so are its line count.
    return int(ref.lines or 0), None


def fan_in() -> int:
    """How many files one ``t``-order pass opens at once: well inside the process's limit on
    open files (``ulimit -n``), whatever else the process holds, and at most 128."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (ImportError, OSError, ValueError):  # not POSIX
        return 64
    if soft == resource.RLIM_INFINITY:
        return 128
    return max(2, min(128, (soft - 64) // 2))


def _round_robin(refs: list[Source], emit: Callable[[bytes], None]) -> tuple[dict[int, int], array]:
    """Line ``t`` of every shard in ``refs`` (ascending seeds), then line ``t + 1``; whole
    lines only. Returns the lines taken per seed and the lines emitted per ``t``."""
    streams = [(ref.shard_seed, open_binary(ref.path, _MERGE_BUFFER)) for ref in refs]
    counts = {ref.shard_seed: 0 for ref in refs}
    per_t = array("Q")
    try:
        active = streams
        while active:
            still = []
            for seed, stream in active:
                line = stream.readline()
                if line.endswith(b"\n"):
                    emit(line)
                    counts[seed] += 1
                    still.append((seed, stream))
            if still:
                per_t.append(len(still))
            active = still
    finally:
        for _, stream in streams:
            stream.close()
    return counts, per_t


def _round_robin_runs(runs: list[tuple[Path, array]], emit: Callable[[bytes], None]) -> array:
    """Interleave run files of consecutive seed groups: at each ``t``, each run's lines of that
    ``t`` (its ``per_t`` says how many), runs in seed order. Returns the lines per ``t``."""
    per_t = array("Q")
    with contextlib.ExitStack() as stack:
        streams = [
            (stack.enter_context(open(path, "rb", buffering=_MERGE_BUFFER)), counts)
            for path, counts in runs
        ]
        for t in range(max(len(counts) for _, counts in runs)):
            total = 0
            for stream, counts in streams:
                if t < len(counts):
                    for _ in range(counts[t]):
                        emit(stream.readline())
                    total += counts[t]
            per_t.append(total)
    return per_t


class _Buffered:
    """Lines gathered into ~1 MiB writes."""

    def __init__(self, write: Callable[[bytes], Any]) -> None:
        self._write = write
        self._buffer = bytearray()

    def add(self, line: bytes) -> None:
        self._buffer += line
        if len(self._buffer) >= _CHUNK:
            self.flush()

    def flush(self) -> None:
        self._write(bytes(self._buffer))
        self._buffer.clear()


def _interleave_by_t(
    refs: list[Source], out: HashingSink, tmp_dir: Path, width: int | None = None
) -> dict[int, int]:
    """Round-robin by line (``t``), ties by seed; whole lines only. Returns lines per seed.

    At most ``width`` (default :func:`fan_in`) files are open at once. With more shards, each
    group of ``width`` consecutive shards is interleaved into a run file, remembering how many
    of its lines each ``t`` has; since the groups are consecutive seed ranges, interleaving the
    runs ``t`` by ``t`` in group order gives the same bytes as interleaving the shards. Runs of
    runs are merged the same way until ``width`` are left, so each pass reads and writes the
    data once (two passes up to ``width ** 2`` shards). Runs live in a temp directory beside
    the output (``tmp_dir``), removed at the end.
    """
    width = width or fan_in()
    buffered = _Buffered(out.write)
    if len(refs) <= width:
        taken, _ = _round_robin(refs, buffered.add)
        buffered.flush()
        return taken
    counts: dict[int, int] = {}
    with tempfile.TemporaryDirectory(prefix=".merge-runs.", dir=tmp_dir) as tmp:
        runs: list[tuple[Path, array]] = []
        for start in range(0, len(refs), width):
            path = Path(tmp) / f"0.{start}"
            with _run_file(path) as run:
                taken, per_t = _round_robin(refs[start : start + width], run.add)
            counts.update(taken)
            runs.append((path, per_t))
        level = 0
        while len(runs) > width:
            level += 1
            merged = []
            for start in range(0, len(runs), width):
                path = Path(tmp) / f"{level}.{start}"
                with _run_file(path) as run:
                    per_t = _round_robin_runs(runs[start : start + width], run.add)
                merged.append((path, per_t))
            for path, _ in runs:
                path.unlink()
            runs = merged
        _round_robin_runs(runs, buffered.add)
        buffered.flush()
    return counts


@contextlib.contextmanager
def _run_file(path: Path) -> Iterator[_Buffered]:
    """A run file being written, its lines buffered."""
    with open(path, "wb") as handle:
        lines = _Buffered(handle.write)
        yield lines
        lines.flush()


def merge_shards(
    dataset_dir: str | os.PathLike[str],
    out_path: str | os.PathLike[str],
    order: str = "seed",
    include_incomplete: bool = False,
    *,
    compress: str | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Merge a dataset's shards into ``out_path`` and write ``OUT.manifest.json`` beside it.

    :param dataset_dir: The dataset directory (or its ``manifest.json``).
    :param out_path: The merged JSON Lines file.
    :param order: ``"seed"`` (shards by ascending seed) or ``"t"`` (round-robin by ``t``).
    :param include_incomplete: Merge what can be merged: whole lines of incomplete shards; missing
        and corrupt shards are left out. Everything left out or cut is recorded.
    :param compress: ``None``, ``"gzip"`` or ``"zstd"``: must agree with ``out_path``'s suffix
        (see :func:`output_compression`); ``None`` takes it from the suffix.
    :param overwrite: Replace an existing ``out_path`` (and its record) that belongs to no
        dataset or study (see :func:`~fusion.storage.outputs.check_output`).
    :raises OutputConflictError: for an output the guard refuses, or a name that disagrees with
        ``compress``, before any work.
    :raises DatasetError: naming every seed that is missing, incomplete or corrupt (unless
        ``include_incomplete``); the output is then not written.
    :return: The merge record written to ``OUT.manifest.json``.
    """
    compress = output_compression(out_path, compress)
    check_output(out_path, overwrite=overwrite, inputs=[dataset_dir], merge_record=True)
    plan = plan_merge(dataset_dir, order, include_incomplete)
    return write_planned(plan, out_path, compress, replace=overwrite)


def output_compression(out_path: str | os.PathLike[str], compress: str | None) -> str | None:
    """The compression a merged file is written with: its name decides (``.gz`` gzip, ``.zst``
    zstd, anything else none), and ``compress``, when given, must agree, so that every reader
    (``validate``, ``export``, ``load_dataset``) reads the file back by its name.

        >>> output_compression("all.jsonl.gz", None), output_compression("all.jsonl", None)
        ('gzip', None)
        >>> try:
        ...     output_compression("all.jsonl", "gzip")
        ... except OutputConflictError as exc:
        ...     print(str(exc).split(": ", 1)[1])
        --compress gzip writes a .gz file, and the name ends otherwise; name it all.jsonl.gz

    :raises OutputConflictError: for a name that disagrees with ``compress`` (exit 2).
    :raises ValueError: for an unknown compression.
    """
    check_compression(compress)
    out = Path(out_path)
    by_name = next((kind for kind, end in SUFFIXES.items() if out.name.endswith(end)), None)
    if compress is None or compress == by_name:
        check_compression(by_name)
        return by_name
    stem = out.name.removesuffix(SUFFIXES[by_name]) if by_name else out.name
    raise OutputConflictError(
        f"{out}: --compress {compress} writes a {SUFFIXES[compress]} file, and the name ends "
        f"otherwise; name it {stem}{SUFFIXES[compress]}"
        + (f" (or drop --compress: a {SUFFIXES[by_name]} name is {by_name})" if by_name else "")
    )


def write_planned(
    plan: MergePlan,
    out_path: str | os.PathLike[str],
    compress: str | None = None,
    *,
    replace: bool = True,
) -> dict[str, Any]:
    """Write a planned merge to ``out_path`` and its record beside it (see :func:`merge_shards`).

    :param replace: Replace an earlier output (``False``: refuse one that appeared meanwhile).
    :return: The merge record written to ``OUT.manifest.json``.
    """
    out = Path(out_path)
    with atomic_output(out, buffering=0, replace=replace) as handle:
        stream, finish = compressed_writer(handle, compress)
        writer = HashingSink(stream)
        try:
            records = write_merge(plan, writer, out.parent)
        finally:
            writer.close()
        finish()
    # The new output is out: its old record goes (a failed merge left both as they were; a
    # kill between the two leaves the new file beside the old record, which readers refuse by
    # size and sha256), then the new record is published.
    merged_sidecar_path(out).unlink(missing_ok=True)
    info = _merge_record(plan, out, writer, records, compress)
    info["sha256_file"] = file_sha256(out) if compress else info["sha256"]
    info["bytes_file"] = out.stat().st_size
    write_bytes_atomic(merged_sidecar_path(out), orjson.dumps(info, option=orjson.OPT_INDENT_2))
    return info


@dataclass
class MergePlan:
    """What one dataset's merge will copy, checked before anything is written.

    :param dataset_dir: The dataset, as given.
    :param manifest: Its manifest.
    :param order: ``"seed"`` or ``"t"``.
    :param usable: The shards to copy, in seed order.
    :param problems: Seed -> why it is left out or cut (only with ``include_incomplete``).
    """

    dataset_dir: str | os.PathLike[str]
    manifest: dict[str, Any]
    order: str
    usable: list[Source]
    problems: dict[int, str]


def plan_merge(
    dataset_dir: str | os.PathLike[str], order: str = "seed", include_incomplete: bool = False
) -> MergePlan:
    """Resolve a dataset's shards for merging and refuse what cannot be merged.

    :raises ValueError: for an unknown order.
    :raises DatasetError: naming every seed that is missing, incomplete or corrupt (unless
        ``include_incomplete``; corrupt shards are then found here only for order ``t`` or
        ``include_incomplete``, otherwise while copying).
    """
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    resolved = resolve(dataset_dir, include_incomplete=include_incomplete, missing="skip")
    if resolved.manifest is None:
        raise DatasetError(f"{dataset_dir}: merge takes a dataset directory or its manifest.json")
    refs = resolved.sources
    problems = dict(resolved.skipped)
    problems.update(
        (ref.shard_seed, f"incomplete: status {ref.status}, whole lines only")
        for ref in refs
        if not ref.complete
    )
    if problems and not include_incomplete:
        raise DatasetError(_refusal(dataset_dir, problems))
    if include_incomplete or order == "t":
        # Verify before writing: a corrupt shard found mid-copy could not be taken back out.
        for ref in refs:
            if ref.complete and ref.path.exists() and (problem := _verify(ref)):
                problems[ref.shard_seed] = problem
        if problems and not include_incomplete:
            raise DatasetError(_refusal(dataset_dir, problems))
    usable = [ref for ref in refs if not (ref.complete and ref.seed in problems)]
    return MergePlan(dataset_dir, resolved.manifest, order, usable, problems)


def write_merge(plan: MergePlan, writer: HashingSink, tmp_dir: Path) -> list[dict[str, Any]]:
    """Copy a planned merge's lines into ``writer``; return each seed's record (lines, and
    for order ``seed`` its byte range, counted from ``writer``'s start).

    :param tmp_dir: Where order ``t`` may keep its run files (beside the output).
    :raises DatasetError: for a shard found corrupt while copied (nothing is then valid).
    """
    records: list[dict[str, Any]] = []
    with ThreadPoolExecutor(1) as hasher:
        if plan.order == "seed":
            for ref in plan.usable:
                start = writer.size
                lines, problem = _copy_seed_order(
                    ref, writer, hasher, whole_lines_only=not ref.complete
                )
                if problem:  # only without include_incomplete: it verified every shard first
                    raise DatasetError(_refusal(plan.dataset_dir, {ref.shard_seed: problem}))
                records.append(_range(ref, lines, start, writer.size))
        else:
            counts = _interleave_by_t(plan.usable, writer, tmp_dir)
            records = [_range(ref, counts[ref.shard_seed], None, None) for ref in plan.usable]
    return records


def _range(ref: Source, lines: int, start: int | None, end: int | None) -> dict[str, Any]:
    record: dict[str, Any] = {
        "seed": ref.seed,
        "file": ref.path.name,
        "status": ref.status,
        "sha256": ref.sha256 if ref.complete else ref.entry.get("sha256"),
        "lines": lines,
    }
    if start is not None:
        record["byte_start"] = start
        record["byte_end"] = end
    return record


def _refusal(dataset_dir: str | os.PathLike[str], problems: dict[int, str]) -> str:
    listed = "; ".join(f"seed {seed}: {why}" for seed, why in sorted(problems.items()))
    return f"{dataset_dir}: cannot merge ({listed}); pass include_incomplete / --include-incomplete to merge the rest"


def _merge_record(
    plan: MergePlan,
    out: Path,
    writer: HashingSink,
    records: list[dict[str, Any]],
    compress: str | None,
) -> dict[str, Any]:
    return {
        "format": MERGE_FORMAT,
        "schema_version": mf.SCHEMA_VERSION,
        "fusion_version": __version__,
        "created": now_iso(),
        "source": str(Path(plan.dataset_dir).resolve()),
        "config_sha256": plan.manifest.get("config_sha256"),
        "config": plan.manifest.get("config"),
        mf.PATH_FEATURES_FIELD: plan.manifest.get(mf.PATH_FEATURES_FIELD),
        "order": plan.order,
        "output": out.name,
        "compression": compress,
        "sha256": writer.hexdigest(),
        "bytes": writer.size,
        "transitions": sum(r["lines"] for r in records),
        "shards": records,
        "partial": bool(plan.problems),
        "left_out_or_cut": {str(seed): why for seed, why in sorted(plan.problems.items())},
    }
