"""The one source resolver: what to read for a path, a seed selection and a status policy.

Every reader (``load_dataset``, ``to_arrays``, the exports, merge, validate, inspect) turns its
input into an ordered list of :class:`Source` here, so that all of them read the same files
with the same promises and give the same rows. Inputs:

- a dataset directory or its ``manifest.json``: one source per shard in ascending integer seed,
  with the line count, size and sha256 the manifest (or a newer sidecar) records;
- a lone ``.jsonl[.gz|.zst]`` file: one source; a merged file's ``OUT.manifest.json`` adds its
  seeds, lines per seed, size and sha256, and is refused when it disagrees with the file.

``seeds`` keeps only those seeds (a merged file's source then keeps only their lines);
shards that are not complete are skipped (listed in :attr:`Resolved.skipped`) unless
``include_incomplete``, which reads their whole lines.

    >>> import tempfile
    >>> from fusion.reporting.dataset_logger import DatasetLogger
    >>> d = tempfile.mkdtemp()
    >>> for seed in (10, 2):
    ...     with DatasetLogger.open_shard(d, seed, {}) as log:
    ...         log.log_transition({"src": 0, "dst": 1, "paths": []}, -1, -1.0, None, [], {})
    >>> [(s.seed, s.lines, s.promised_by) for s in resolve(d).sources]
    [(2, 1, 'the manifest'), (10, 1, 'the manifest')]
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from fusion.errors import DatasetError
from fusion.reporting import manifest as mf
from fusion.reporting.compression import compression_of

logger = logging.getLogger(__name__)

MERGE_FORMAT = "fusion-offline-rl-merge"


@dataclass(frozen=True)
class Source:
    """One file to read and what it must hold.

    :param path: The file.
    :param seed: The shard's seed; ``None`` for a lone (merged) file.
    :param status: ``complete``, ``writing`` or ``failed`` for a shard; ``file`` for a lone file.
    :param lines: Lines promised (``None``: unknown).
    :param size: Stored bytes promised (``None``: unknown).
    :param sha256: The stored bytes' sha256 promised (``None``: unknown).
    :param promised_by: Who promised them, for messages.
    :param per_seed: A merged file's lines per seed, from its record.
    :param select: Keep only these seeds' lines (``None``: all).
    :param entry: The shard's manifest entry (or the merged file's record).
    """

    path: Path
    seed: int | None
    status: str
    lines: int | None = None
    size: int | None = None
    sha256: str | None = None
    promised_by: str = "the manifest"
    per_seed: Mapping[int, int] | None = None
    select: frozenset[int] | None = None
    entry: Mapping[str, Any] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """Whether the file was closed whole (a complete shard, or a lone file)."""
        return self.status in (mf.STATUS_COMPLETE, "file")

    @property
    def shard_seed(self) -> int:
        """The shard's seed (a lone file has none: ``ValueError``)."""
        if self.seed is None:
            raise ValueError(f"{self.path} is a lone file, not the shard of one seed")
        return self.seed

    @property
    def whole_lines_only(self) -> bool:
        """Whether a cut last line is to be dropped (a shard whose writer did not finish)."""
        return not self.complete


@dataclass
class Resolved:
    """What :func:`resolve` found.

    :param path: The input.
    :param directory: The dataset directory (a lone file's own directory).
    :param stem: The shard stem (a lone file's name without ``.jsonl[.gz|.zst]``).
    :param manifest: The manifest, for a dataset.
    :param sources: What to read, in order.
    :param skipped: ``(seed, why)`` of every shard asked for and not read.
    """

    path: Path
    directory: Path
    stem: str
    manifest: dict[str, Any] | None
    sources: list[Source]
    skipped: list[tuple[int, str]] = field(default_factory=list)

    @property
    def is_file(self) -> bool:
        """Whether the input was a lone file."""
        return self.manifest is None

    def only(self, seeds: Iterable[int] | None) -> Resolved:
        """The same, keeping only ``seeds`` (all when ``None``).

        :param seeds: The seeds to keep.
        """
        if seeds is None:
            return self
        wanted = frozenset(int(s) for s in seeds)
        kept: list[Source] = []
        for source in self.sources:
            if source.seed is None:
                if source.per_seed is None or wanted & set(source.per_seed):
                    kept.append(replace(source, select=wanted))
            elif source.seed in wanted:
                kept.append(source)
        skipped = [(seed, why) for seed, why in self.skipped if seed in wanted]
        if self.manifest is not None:
            known = {s.seed for s in self.sources} | {seed for seed, _ in self.skipped}
            skipped += [(seed, "not in this dataset") for seed in sorted(wanted - known)]
        return replace(self, sources=kept, skipped=skipped)


def is_lone_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names a JSON Lines file rather than a dataset or manifest."""
    source = Path(path)
    return source.is_file() and source.name != mf.MANIFEST_NAME


def lone_stem(path: Path) -> str:
    """A lone file's name without ``.jsonl`` and a compression suffix."""
    name = path.name
    for suffix in (".gz", ".zst", ".jsonl", ".json"):
        name = name.removesuffix(suffix)
    return name


def read_merge_record(path: Path) -> dict[str, Any] | None:
    """A merged file's ``OUT.manifest.json``, checked against the file; ``None`` without one.

    :param path: The merged file.
    :raises DatasetError: when the record is unreadable or describes another file (readers
        then compare the file's size and line count with it).
    """
    record_path = mf.merged_sidecar_path(path)
    if not record_path.exists():
        return None
    record = mf.read_sidecar(record_path)
    if record is None or record.get("format") != MERGE_FORMAT:
        raise DatasetError(f"{record_path}: not a readable merge record ({MERGE_FORMAT})")
    if record.get("output") != path.name:
        raise DatasetError(f"{record_path}: describes {record.get('output')!r}, not {path.name}")
    shards = record.get("shards")
    if not isinstance(shards, list) or not all(
        isinstance(s, dict) and isinstance(s.get("seed"), int) and isinstance(s.get("lines"), int)
        for s in shards
    ):
        raise DatasetError(f"{record_path}: field 'shards' is not a list of {{seed, lines}}")
    return record


def _lone(path: Path) -> Resolved:
    record = read_merge_record(path)
    if record is None:
        source = Source(path, None, "file", promised_by="nothing")
    else:
        per_seed: dict[int, int] = {}
        for shard in record["shards"]:
            per_seed[shard["seed"]] = per_seed.get(shard["seed"], 0) + shard["lines"]
        source = Source(
            path,
            None,
            "file",
            lines=record.get("transitions"),
            size=record.get(
                "bytes_file", None if record.get("compression") else record.get("bytes")
            ),
            sha256=record.get("sha256_file"),
            promised_by=mf.merged_sidecar_path(path).name,
            per_seed=per_seed,
            entry=record,
        )
    return Resolved(path, path.parent, lone_stem(path), None, [source])


def _shard(directory: Path, entry: Mapping[str, Any]) -> Source:
    return Source(
        directory / entry["file"],
        int(entry["seed"]),
        str(entry["status"]),
        lines=entry.get("transitions") if entry["status"] == mf.STATUS_COMPLETE else None,
        size=entry.get("bytes") if entry["status"] == mf.STATUS_COMPLETE else None,
        sha256=entry.get("sha256") if entry["status"] == mf.STATUS_COMPLETE else None,
        entry=entry,
    )


def resolve(
    path: str | os.PathLike[str],
    *,
    seeds: Iterable[int] | None = None,
    include_incomplete: bool = False,
    missing: str = "raise",
) -> Resolved:
    """The sources to read for ``path`` (see the module docstring).

    :param path: A dataset directory, its ``manifest.json``, or a lone ``.jsonl[.gz|.zst]``.
    :param seeds: Only these seeds.
    :param include_incomplete: Also read shards that are not complete (whole lines only).
    :param missing: ``"raise"`` for a complete shard whose file is missing, or ``"skip"``
        (it is then listed in ``skipped``).
    :raises DatasetError: naming the file and field of a manifest or record that is wrong.
    """
    source_path = Path(path)
    if is_lone_file(source_path):
        return _lone(source_path).only(seeds)
    if not source_path.exists():
        raise DatasetError(f"{source_path}: no such file or directory")
    directory = source_path if source_path.is_dir() else source_path.parent
    manifest = mf.read_manifest(source_path)
    sources: list[Source] = []
    skipped: list[tuple[int, str]] = []
    listed = set()
    for entry in mf.current_entries(directory, manifest):
        source = _shard(directory, entry)
        listed.add(source.seed)
        exists = source.path.exists()
        if source.complete and exists:
            sources.append(source)
        elif source.complete:
            if missing == "raise":
                raise DatasetError(
                    f"{source.path}: shard of seed {source.seed} is listed complete but missing"
                )
            skipped.append((int(entry["seed"]), f"missing: {source.path.name} does not exist"))
        elif include_incomplete and exists:
            sources.append(source)
        else:
            why = f"incomplete: status {source.status}" if exists else "missing: never written"
            skipped.append((int(entry["seed"]), why))
    for seed in manifest.get("planned_seeds", []):
        if seed not in listed:
            skipped.append((seed, "missing: planned but never started"))
    skipped.sort()
    stem = str(manifest["stem"])
    return Resolved(source_path, directory, stem, manifest, sources, skipped).only(seeds)


def warn_skipped(resolved: Resolved) -> None:
    """Log one warning per shard that a reader leaves out.

    :param resolved: What :func:`resolve` found.
    """
    for seed, why in resolved.skipped:
        logger.warning(
            "%s: seed %d is %s, skipped (include_incomplete=True reads an unfinished shard's "
            "whole lines)",
            resolved.path,
            seed,
            why.removeprefix("incomplete: status "),
        )


def stored_compression(source: Source) -> str | None:
    """The source file's compression, from its name."""
    return compression_of(source.path)
