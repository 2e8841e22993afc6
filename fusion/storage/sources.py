"""The one source resolver: what to read for a path, a seed selection and a status policy.

Every reader (``load_dataset``, ``to_arrays``, the exports, merge, validate, inspect) turns its
input into an ordered list of :class:`Source` here, so that all of them read the same files
with the same promises and give the same rows. Inputs:

- a dataset directory or its ``manifest.json``: one source per shard in ascending integer seed,
  with the line count, size and sha256 the manifest (or a newer sidecar) records;
- a lone ``.jsonl[.gz|.zst]`` file: one source; a merged file's ``OUT.manifest.json`` adds its
  seeds, lines per seed, size and sha256, and is refused when it disagrees with the file;
- a study merged with ``fusion merge STUDY --all``: one source per point, each the byte range
  of that point's lines (its own seeds, line counts and sha256) with the point's coordinates,
  so a seed that repeats across points is checked point by point.

``seeds`` keeps only those seeds (a merged file's source then keeps only their lines);
shards that are not complete are skipped (listed in :attr:`Resolved.skipped`) unless
``include_incomplete``, which reads their whole lines.

A study is many datasets: :func:`resolve_parts` is where every reader learns whether it reads
one dataset or a study's points (a study directory's point datasets, or the points of a
study merged into one file), each :class:`Part` with its coordinates and its sources.

    >>> import tempfile
    >>> from fusion.storage.shard_writer import DatasetLogger
    >>> d = tempfile.mkdtemp()
    >>> for seed in (10, 2):
    ...     with DatasetLogger.open_shard(d, seed, {}) as log:
    ...         log.log_transition({"src": 0, "dst": 1, "paths": []}, -1, -1.0, None, [], {})
    >>> [(s.seed, s.lines, s.promised_by) for s in resolve(d).sources]
    [(2, 1, 'the manifest'), (10, 1, 'the manifest')]
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from fusion.config.vocabulary import SUFFIXES
from fusion.errors import DatasetError
from fusion.storage import manifest as mf
from fusion.storage.compression import open_binary
from fusion.storage.integrity import sha256_problem, size_problem
from fusion.storage.shard_entries import read_sidecar
from fusion.storage.shard_names import merged_sidecar_path, shard_file_name, sidecar_path
from fusion.storage.statuses import STATUS_COMPLETE, STATUS_FILE
from fusion.storage.study_layout import (
    StudyPoint,
    check_point_config,
    is_study,
    select_points,
    study_points,
)

logger = logging.getLogger(__name__)

MERGE_FORMAT = "fusion-offline-rl-merge"
STUDY_MERGE_FORMAT = "fusion-study-merge"


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
    :param byte_range: ``(start, end)``: only these stored bytes of ``path`` (a point of a
        study merged into one file); ``size`` and ``sha256`` then describe the range.
    :param point: The study point (axis -> value) these lines belong to.
    :param first_line: Lines of ``path`` before the range, so messages give the file's line.
    :param path_features: The path features its lines hold, as its dataset's manifest (or the
        merge's record) records them; ``None``: not recorded (made before), readers guess.
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
    byte_range: tuple[int, int] | None = None
    point: Mapping[str, Any] | None = None
    first_line: int = 0
    path_features: tuple[str, ...] | None = None

    @property
    def complete(self) -> bool:
        """Whether the file was closed whole (a complete shard, or a lone file)."""
        return self.status in (STATUS_COMPLETE, STATUS_FILE)

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

    def open(self) -> BinaryIO:
        """The source's decompressed bytes as a binary stream (only its range, if it has one)."""
        if self.byte_range is None:
            return open_binary(self.path)
        start, end = self.byte_range
        raw = open(self.path, "rb", buffering=0)  # noqa: SIM115 -- the window owns it
        raw.seek(start)
        return io.BufferedReader(_Window(raw, end - start), buffer_size=1 << 20)

    def size_problem(self) -> str | None:
        """Why the file's size differs from the record, or ``None`` (a range: checked at
        resolve); :func:`fusion.storage.integrity.size_problem`."""
        return size_problem(self.path, self.size, self.promised_by, self.byte_range)

    def sha256_problem(self, digest: str | None = None) -> str | None:
        """Why the stored bytes (of the range, if any) differ from the recorded sha256, or
        ``None``; :func:`fusion.storage.integrity.sha256_problem`.

        :param digest: The bytes' digest, when the caller hashed them already.
        """
        return sha256_problem(self.path, self.sha256, self.promised_by, self.byte_range, digest)

    def check_size(self) -> None:
        """Refuse the file when its size differs from the record.

        :raises DatasetError: naming the file, both sizes and who recorded them.
        """
        if problem := self.size_problem():
            raise DatasetError(problem)

    def check_sha256(self) -> None:
        """Refuse the stored bytes when their sha256 differs from the record.

        :raises DatasetError: naming the file, both digests and who recorded them.
        """
        if problem := self.sha256_problem():
            raise DatasetError(problem)

    def stored_size(self) -> int:
        """The stored bytes the source covers (its range, or the whole file)."""
        if self.byte_range is not None:
            return self.byte_range[1] - self.byte_range[0]
        return self.path.stat().st_size


class _Window(io.RawIOBase):
    """The next ``length`` bytes of an open raw file, as a raw stream of their own."""

    def __init__(self, raw: io.FileIO, length: int) -> None:
        self._raw, self._left = raw, length

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")[: self._left]
        n = self._raw.readinto(view) or 0
        self._left -= n
        return n

    def close(self) -> None:
        self._raw.close()
        super().close()


@dataclass
class Resolved:
    """What :func:`resolve` found.

    :param path: The input.
    :param directory: The dataset directory (a lone file's own directory).
    :param stem: The shard stem (a lone file's name without ``.jsonl[.gz|.zst]``).
    :param manifest: The manifest, for a dataset.
    :param sources: What to read, in order.
    :param skipped: ``(seed, why)`` of every shard asked for and not read.
    :param axes: A merged study's axis names (its sources are its points); else ``None``.
    """

    path: Path
    directory: Path
    stem: str
    manifest: dict[str, Any] | None
    sources: list[Source]
    skipped: list[tuple[int, str]] = field(default_factory=list)
    axes: list[str] | None = None

    @property
    def is_file(self) -> bool:
        """Whether the input was a lone file."""
        return self.manifest is None

    def at_points(self, points: Mapping[str, Sequence[Any]] | None) -> Resolved:
        """The same, keeping only the points ``points`` allows (a merged study's sources).

        :param points: Axis -> the values to keep (``{"erlang": [300]}``).
        :raises ValueError: for ``points`` on what is not a merged study, or naming no point.
        """
        if points is None:
            return self
        if self.axes is None:
            raise ValueError(
                f"{self.path}: points= takes a study (a directory with study.json) "
                "or a study merged with --all"
            )
        coords = [s.point or {} for s in self.sources]
        keep = select_points(coords, self.axes, points, where=str(self.path))
        return replace(self, sources=[s for i, s in enumerate(self.sources) if i in keep])

    def only(self, seeds: Iterable[int] | None) -> Resolved:
        """The same, keeping only ``seeds`` (all when ``None``).

        :param seeds: The seeds to keep.
        """
        if seeds is None:
            return self
        wanted = frozenset(check_seeds(seeds))
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


def check_seeds(seeds: Any) -> list[int]:
    """A reader's ``seeds=`` as a list of ints: an iterable of integers (not bools, not one
    bare integer, not a string).

    :raises ValueError: naming what was given.

        >>> check_seeds(range(2)), check_seeds((3,))
        ([0, 1], [3])
    """
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Iterable):
        raise ValueError(f"seeds must be a list of integers, got {seeds!r}")
    checked = list(seeds)
    for seed in checked:
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise ValueError(f"seeds must be integers, got {seed!r} in {checked!r}")
    return [int(seed) for seed in checked]


def is_lone_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names a JSON Lines file rather than a dataset or manifest."""
    source = Path(path)
    return source.is_file() and source.name != mf.MANIFEST_NAME


def lone_stem(path: Path) -> str:
    """A lone file's name without ``.jsonl`` and a compression suffix."""
    name = path.name
    for suffix in (*SUFFIXES.values(), ".jsonl", ".json"):
        name = name.removesuffix(suffix)
    return name


def read_merge_record(path: Path) -> dict[str, Any] | None:
    """A merged file's ``OUT.manifest.json``, checked against the file; ``None`` without one.

    :param path: The merged file.
    :raises DatasetError: when the record is unreadable or describes another file (readers
        then compare the file's size and line count with it).
    """
    record_path = merged_sidecar_path(path)
    if not record_path.exists():
        return None
    record = read_sidecar(record_path)
    formats = (MERGE_FORMAT, STUDY_MERGE_FORMAT)
    if record is None or record.get("format") not in formats:
        raise DatasetError(f"{record_path}: not a readable merge record ({' or '.join(formats)})")
    if record.get("output") != path.name:
        raise DatasetError(f"{record_path}: describes {record.get('output')!r}, not {path.name}")
    parts = record.get("points") if record["format"] == STUDY_MERGE_FORMAT else [record]
    if not isinstance(parts, list) or not all(isinstance(p, dict) for p in parts):
        raise DatasetError(f"{record_path}: field 'points' is not a list of objects")
    for part in parts:
        if part.get(mf.PATH_FEATURES_FIELD) is not None:
            mf.check_path_features_field(
                record_path, mf.PATH_FEATURES_FIELD, part[mf.PATH_FEATURES_FIELD]
            )
        shards = part.get("shards")
        if not isinstance(shards, list) or not all(
            isinstance(s, dict)
            and isinstance(s.get("seed"), int)
            and isinstance(s.get("lines"), int)
            for s in shards
        ):
            raise DatasetError(f"{record_path}: field 'shards' is not a list of {{seed, lines}}")
    if record["format"] == STUDY_MERGE_FORMAT:
        _check_segments(record_path, record)
    return record


def _check_segments(record_path: Path, record: Mapping[str, Any]) -> None:
    """A study merge's points must tile the file: byte and line ranges back to back."""
    at, line = 0, 0
    for part in record["points"]:
        fields = ("byte_start", "byte_end", "line_start", "lines")
        if not isinstance(part.get("point"), dict) or not all(
            isinstance(part.get(f), int) for f in fields
        ):
            raise DatasetError(
                f"{record_path}: each of 'points' needs 'point' and integer {', '.join(fields)}"
            )
        if part["byte_start"] != at or part["line_start"] != line or part["byte_end"] < at:
            raise DatasetError(
                f"{record_path}: point {part['point']} covers bytes "
                f"{part['byte_start']}-{part['byte_end']} and lines from {part['line_start']}; "
                f"expected them to start at byte {at}, line {line}"
            )
        at, line = part["byte_end"], line + part["lines"]
    if record.get("bytes") != at:
        raise DatasetError(
            f"{record_path}: 'bytes' is {record.get('bytes')}, the points end at {at}"
        )


def _per_seed(shards: list[dict[str, Any]]) -> dict[int, int]:
    per_seed: dict[int, int] = {}
    for shard in shards:
        per_seed[shard["seed"]] = per_seed.get(shard["seed"], 0) + shard["lines"]
    return per_seed


def _lone(path: Path) -> Resolved:
    record = read_merge_record(path)
    by = merged_sidecar_path(path).name
    if record is None:
        sources = [Source(path, None, STATUS_FILE, promised_by="nothing")]
    elif record["format"] == STUDY_MERGE_FORMAT:
        size = path.stat().st_size
        if size != record["bytes"]:
            raise DatasetError(
                f"{path}: {size} bytes, {by} records {record['bytes']}: the file and its "
                "record disagree (changed after merging, or the merge was interrupted)"
            )
        sources = [
            Source(
                path,
                None,
                STATUS_FILE,
                lines=part["lines"],
                size=part["byte_end"] - part["byte_start"],
                sha256=part.get("sha256"),
                promised_by=f"{by} (point {part.get('dir', part['point'])})",
                per_seed=_per_seed(part["shards"]),
                entry=part,
                byte_range=(part["byte_start"], part["byte_end"]),
                point=dict(part["point"]),
                first_line=part["line_start"],
                path_features=mf.recorded_path_features(part),
            )
            for part in record["points"]
        ]
    else:
        sources = [
            Source(
                path,
                None,
                STATUS_FILE,
                lines=record.get("transitions"),
                size=record.get(
                    "bytes_file", None if record.get("compression") else record.get("bytes")
                ),
                sha256=record.get("sha256_file"),
                promised_by=by,
                per_seed=_per_seed(record["shards"]),
                entry=record,
                path_features=mf.recorded_path_features(record),
            )
        ]
    resolved = Resolved(path, path.parent, lone_stem(path), None, sources)
    if record is not None and record["format"] == STUDY_MERGE_FORMAT:
        resolved.axes = [str(a) for a in record.get("axes", [])]
    return resolved


def _shard(
    directory: Path, entry: Mapping[str, Any], path_features: tuple[str, ...] | None
) -> Source:
    return Source(
        directory / entry["file"],
        int(entry["seed"]),
        str(entry["status"]),
        lines=entry.get("transitions") if entry["status"] == STATUS_COMPLETE else None,
        size=entry.get("bytes") if entry["status"] == STATUS_COMPLETE else None,
        sha256=entry.get("sha256") if entry["status"] == STATUS_COMPLETE else None,
        entry=entry,
        path_features=path_features,
    )


def resolve(
    path: str | os.PathLike[str],
    *,
    seeds: Iterable[int] | None = None,
    include_incomplete: bool = False,
    missing: str = "raise",
    points: Mapping[str, Sequence[Any]] | None = None,
) -> Resolved:
    """The sources to read for ``path`` (see the module docstring).

    :param path: A dataset directory, its ``manifest.json``, or a lone ``.jsonl[.gz|.zst]``.
    :param seeds: Only these seeds.
    :param include_incomplete: Also read shards that are not complete (whole lines only).
    :param missing: ``"raise"`` for a complete shard whose file is missing, or ``"skip"``
        (it is then listed in ``skipped``).
    :param points: A merged study's points to keep (see :meth:`Resolved.at_points`).
    :raises ValueError: for ``points`` on what is not a merged study.
    :raises DatasetError: naming the file and field of a manifest or record that is wrong.
    """
    source_path = Path(path)
    if points is not None and not is_lone_file(source_path):
        raise ValueError(
            f"{source_path}: points= takes a study (a directory with study.json) "
            "or a study merged with --all"
        )
    if is_lone_file(source_path):
        return _lone(source_path).at_points(points).only(seeds)
    if not source_path.exists():
        raise DatasetError(f"{source_path}: no such file or directory")
    directory = source_path if source_path.is_dir() else source_path.parent
    manifest = mf.read_manifest(source_path)
    sources: list[Source] = []
    skipped: list[tuple[int, str]] = []
    listed = set()
    recorded = mf.recorded_path_features(manifest)
    for entry in mf.current_entries(directory, manifest):
        source = _shard(directory, entry, recorded)
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


@dataclass
class Part:
    """One dataset a reader walks: the whole input, or one point of a study.

    :param path: The dataset to resolve (a point's directory, or the input itself).
    :param coords: The point's axis -> value (``None``: not a study).
    :param name: The point's directory name in its study (``""``: not a study).
    :param options: :func:`resolve`'s keyword arguments for it.
    :param ranges: For a point of a study merged into one file: that point's sources.
    :param point: For a point of a study directory: the point, whose recorded config its
        dataset's manifest must have (checked when resolved, from the manifest read then).
    """

    path: Path
    coords: dict[str, Any] | None
    name: str
    options: dict[str, Any]
    ranges: Resolved | None = None
    point: StudyPoint | None = None

    @property
    def of_study_dir(self) -> bool:
        """Whether this is a point dataset of a study directory (its own manifest, shards)."""
        return self.coords is not None and self.ranges is None

    @cached_property
    def resolved(self) -> Resolved:
        """Its sources, resolved on first use (a study's points are read one after another).

        :raises DatasetError: for a study point whose dataset is of another config than the
            study recorded for it (:func:`~fusion.storage.study_layout.check_point_config`).
        """
        if self.ranges is not None:
            return self.ranges
        resolved = resolve(self.path, **self.options)
        if self.point is not None and resolved.manifest is not None:
            check_point_config(self.point, resolved.manifest)
        return resolved


def resolve_parts(
    path: str | os.PathLike[str],
    *,
    seeds: Iterable[int] | None = None,
    include_incomplete: bool = False,
    missing: str = "raise",
    points: Mapping[str, Sequence[Any]] | None = None,
) -> list[Part]:
    """The datasets a reader walks for ``path``, in order: one for a dataset or file, one per
    selected point for a study (its directory or ``study.json``) or a study merged into one
    file. The points are checked now; each part's sources are resolved when first used.

    :param path: A study, a dataset directory, its ``manifest.json``, or a lone file.
    :param seeds: Only these seeds (of every part).
    :param include_incomplete: See :func:`resolve`.
    :param missing: See :func:`resolve`.
    :param points: A study's points to keep: axis -> values.
    :raises ValueError: for ``points`` on what is not a study, or naming no point of it.
    """
    options: dict[str, Any] = {
        "seeds": None if seeds is None else check_seeds(seeds),
        "include_incomplete": include_incomplete,
        "missing": missing,
    }
    if is_study(path):
        return [  # each point's config is checked as its part is resolved (one manifest read)
            Part(point.path, point.coords, str(point.record["dir"]), options, point=point)
            for point in study_points(path, points, check=False)
        ]
    resolved = resolve(path, points=points, **options)
    if resolved.axes is None:
        return [Part(Path(path), None, "", options, resolved)]
    return [
        Part(
            Path(path),
            dict(source.point or {}),
            str(source.entry.get("dir", "")),
            options,
            replace(resolved, sources=[source]),
        )
        for source in resolved.sources
    ]


def protected_files(path: str | os.PathLike[str]) -> set[Path]:
    """Every file reading ``path`` depends on: its sources, their sidecars, the manifests,
    merge records and ``study.json`` (resolved, so another spelling of a path matches).

    :param path: What a command reads (see :func:`resolve_parts`).
    """
    files: set[Path] = set()
    source_path = Path(path)
    if is_study(source_path):
        root = source_path if source_path.is_dir() else source_path.parent
        files.add(root / "study.json")
    for part in resolve_parts(path, include_incomplete=True, missing="skip"):
        resolved = part.resolved
        if resolved.manifest is not None:
            files.add(resolved.directory / mf.MANIFEST_NAME)
        for source in resolved.sources:
            files.update({source.path, sidecar_path(source.path)})
            files.add(merged_sidecar_path(source.path))
        for seed, _ in resolved.skipped:
            shard = resolved.directory / shard_file_name(seed, resolved.stem)
            files.update({shard, sidecar_path(shard)})
    return {f.resolve() for f in files}


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
