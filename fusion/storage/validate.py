"""Checking a dataset: manifest against files, checksums, and every line against the schema.

>>> import tempfile
>>> from fusion.storage.shard_writer import DatasetLogger
>>> d = tempfile.mkdtemp()
>>> with DatasetLogger.open_shard(d, 0, {}) as log:
...     log.log_transition({"src": 0, "dst": 1, "paths": []}, 0, 1.0, None, [True],
...                        {"bp_window_tag": "pre"})
>>> validate_dataset(d).ok
True
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson

from fusion.errors import DatasetError
from fusion.storage.clearing import dataset_record_files, is_own_temp
from fusion.storage.integrity import LineCheck
from fusion.storage.schema import MAX_LINE_BYTES, RecordRule
from fusion.storage.shard_names import parse_shard_name, sidecar_path
from fusion.storage.sources import Part, Resolved, Source, resolve_parts

MAX_LINE_PROBLEMS = 20


@dataclass
class ValidationReport:
    """What :func:`validate_dataset` found.

    :param path: What was checked.
    :param problems: One readable sentence per problem (empty when valid).
    :param shards: Per shard: seed, status, lines read, whether it checked out.
    :param warnings: What is odd but harmless (stale temp files left by a killed writer).
    """

    path: str
    problems: list[str] = field(default_factory=list)
    shards: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether nothing is wrong."""
        return not self.problems

    def __str__(self) -> str:
        lines = [f"dataset {self.path}: {'valid' if self.ok else 'INVALID'}"]
        for shard in self.shards:
            mark = "ok" if shard["ok"] else "BAD"
            point = " ".join(f"{k}={v}" for k, v in shard.get("point", {}).items())
            lines.append(
                f"  {point + '  ' if point else ''}seed {shard['seed']:>6}  "
                f"{shard['status']:<9} {shard['lines']:>9} lines  {mark}"
            )
        if self.problems:
            lines.append(f"{len(self.problems)} problem(s):")
            lines.extend(f"  - {p}" for p in self.problems)
        if self.warnings:
            lines.append(f"{len(self.warnings)} warning(s):")
            lines.extend(f"  - {w}" for w in self.warnings)
        return "\n".join(lines)


def _check_lines(source: Source, report: ValidationReport) -> int:
    """Check every line of a file against the record's rule (the writer's: one
    :class:`~fusion.storage.schema.RecordRule` per file, as the file's paths hold one feature
    set) and its ``(seed, t)`` sequence."""
    path, whole_only = source.path, source.whole_lines_only
    recorded = source.path_features  # the manifest's list: every path holds exactly it
    rule = RecordRule(recorded)
    sequence = LineCheck(path, source.seed, None if source.per_seed is None else source.per_seed)
    count = first = source.first_line  # count: the file's line number (a point starts later)
    shown = 0
    try:
        with source.open() as stream:
            for count, line in enumerate(stream, first + 1):
                found: list[str] = []
                if not line.endswith(b"\n"):
                    if whole_only:
                        return count - 1 - first
                    found.append("last line has no newline (cut)")
                if len(line) > MAX_LINE_BYTES:
                    found.append(f"{len(line)} bytes, over the {MAX_LINE_BYTES} a line may hold")
                try:
                    record = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    found.append(f"not JSON ({exc})")
                else:
                    found += rule.problems(record, None, source.seed)
                    seed = record.get("seed") if isinstance(record, dict) else None
                    if not found:
                        try:
                            sequence.line(seed, record.get("t"), count)
                        except DatasetError as exc:
                            found.append(str(exc).split(": ", 1)[1])
                    if found:  # the bad line still takes its place: no cascade of t problems
                        sequence.advance(source.seed if source.seed is not None else seed)
                for problem in found:
                    shown += 1
                    if shown <= MAX_LINE_PROBLEMS:
                        report.problems.append(f"{path}:{count}: {problem}")
    except DatasetError as exc:  # a cut or corrupt compressed stream
        report.problems.append(f"{exc} after line {count}")
    if shown > MAX_LINE_PROBLEMS:
        report.problems.append(f"{path}: {shown - MAX_LINE_PROBLEMS} more line problems not shown")
    if source.complete and not shown:
        try:
            sequence.finish(source.per_seed, source.promised_by)
        except DatasetError as exc:
            report.problems.append(str(exc))
    return count - first


def _check_source(source: Source, report: ValidationReport) -> None:
    before = len(report.problems)
    if not source.complete:
        report.problems.append(f"seed {source.seed}: status {source.status}, not complete")
    else:
        report.problems.extend(
            problem
            for problem in (source.size_problem(), source.sha256_problem())
            if problem is not None
        )
    lines = _check_lines(source, report)
    if source.complete and source.lines is not None and lines != source.lines:
        report.problems.append(
            f"{source.path}: {lines} lines, {source.promised_by} says {source.lines}"
        )
    if source.seed is not None and source.complete and not sidecar_path(source.path).exists():
        report.problems.append(
            f"{sidecar_path(source.path)}: the sidecar of complete seed {source.seed} is "
            "missing (the manifest could not be rebuilt without it)"
        )
    entry: dict[str, Any] = {
        "seed": "-" if source.seed is None else source.seed,
        "status": source.status,
        "lines": lines,
        "ok": len(report.problems) == before,
    }
    if source.point is not None:
        entry["point"] = dict(source.point)
    report.shards.append(entry)


def _stale_temp_files(directory: Path, report: ValidationReport) -> None:
    try:
        names = sorted(entry.name for entry in os.scandir(directory))
    except OSError:
        return
    own = dataset_record_files(directory) or set()
    for name in names:
        if is_own_temp(name, own):
            report.warnings.append(
                f"{directory / name}: a temp file a killed writer left (safe to delete)"
            )


def _check_listing(resolved: Resolved, report: ValidationReport) -> None:
    """Planned or listed seeds that were not read, and shard files nothing lists."""
    for seed, why in resolved.skipped:
        report.problems.append(f"seed {seed}: {why}")
    listed = {s.path.name for s in resolved.sources}
    listed |= {e["file"] for e in (resolved.manifest or {}).get("shards", [])}
    for item in sorted(resolved.directory.iterdir()):
        parsed = parse_shard_name(item.name)  # (another stem's file is not this dataset's)
        if parsed and parsed[0] == resolved.stem and item.name not in listed:
            report.warnings.append(  # (no record names it: not this dataset's, not read)
                f"{item}: named like a shard of this dataset, but no manifest entry or sidecar "
                "records it; it is not read"
            )


def validate_dataset(path: str | os.PathLike[str]) -> ValidationReport:
    """Check a dataset directory, a manifest, or a lone (merged) ``.jsonl`` file.

    Checks: the manifest is readable and well typed; every planned seed has a complete shard
    with its sidecar; files exist and match their record's sha256, size and line count; no
    shard file is unlisted; every line keeps the record's rule (:mod:`fusion.storage.schema`:
    the declared fields and their kinds, one feature set per file, a mask as long as the
    paths, a legal action and a reward of +1 (routed) or -1 (blocked): what the hand-fed
    writer refuses), is no longer than a reader takes, carries its shard's seed, and ``t``
    runs from 0 with no gap per seed (in a merged file too, whichever order merged it). Temp files left by killed writers are
    reported as warnings.

    A study is checked point by point (each point's dataset as above), its problems and
    warnings prefixed with the point's directory.

    :param path: What to check.
    :return: The report; ``report.ok`` tells whether it is valid.
    """
    report = ValidationReport(str(path))
    try:
        parts = resolve_parts(path, include_incomplete=True, missing="skip")
    except DatasetError as exc:
        report.problems.append(str(exc))
        return report
    if len(parts) == 1 or not parts[0].of_study_dir:
        # one dataset or file (a merged study's points are the ranges of one file)
        try:
            resolved = parts[0].resolved if len(parts) == 1 else _whole_file(parts)
        except DatasetError as exc:
            report.problems.append(str(exc))
            return report
        _check_resolved(resolved, report)
        return report
    for part in parts:  # a study directory: each point's dataset, prefixed with its name
        sub = ValidationReport(str(part.path))
        try:
            _check_resolved(part.resolved, sub)
        except DatasetError as exc:
            sub.problems.append(str(exc))
        report.problems += [f"{part.name}: {problem}" for problem in sub.problems]
        report.warnings += [f"{part.name}: {warning}" for warning in sub.warnings]
        report.shards += [{"point": part.coords, **shard} for shard in sub.shards]
    return report


def _whole_file(parts: list[Part]) -> Resolved:
    """A merged study's parts back as the one file they are ranges of."""
    first = parts[0].resolved
    return replace(first, sources=[s for part in parts for s in part.resolved.sources])


def _check_resolved(resolved: Resolved, report: ValidationReport) -> None:
    """One dataset's listing, sources and stray temp files."""
    if not resolved.is_file:
        _check_listing(resolved, report)
    for source in resolved.sources:
        _check_source(source, report)
    _stale_temp_files(resolved.directory, report)


def summary_of(report: ValidationReport) -> Mapping[str, Any]:
    """The report as plain JSON values (for ``--json``)."""
    return {
        "path": report.path,
        "ok": report.ok,
        "problems": report.problems,
        "warnings": report.warnings,
        "shards": report.shards,
    }
