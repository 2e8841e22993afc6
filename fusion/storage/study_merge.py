"""Merging a study: one merged file per point, or (``all_points``) one file for the whole study.

Per point, ``OUT/<point dir>.jsonl`` is exactly what :func:`~fusion.storage.merge.merge_shards`
writes for that point's dataset (with its own ``.manifest.json``). With ``all_points`` the
points' merges are written back to back, in the study's point order, into one uncompressed
file whose sidecar ``OUT.manifest.json`` (format ``fusion-study-merge``) records each point's
coordinates, byte and line range, sha256 and seeds; readers then serve it point by point
(:func:`~fusion.storage.loader.load_dataset` with ``points=``, ``to_arrays`` with one column
per axis, ``validate``). It stays uncompressed so the ranges are byte offsets a reader can seek.

Every point is planned (and, for order ``t``, verified) before a byte is written, so a refusal
leaves nothing behind; the file and its sidecar are published by rename.

    >>> merge_study("/nonexistent", "/tmp/out.jsonl", all_points=True)
    Traceback (most recent call last):
    ...
    fusion.errors.DatasetError: /nonexistent: not a study (no study.json)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson

from fusion import __version__
from fusion.config.vocabulary import SUFFIXES
from fusion.errors import DatasetError, OutputConflictError
from fusion.storage import manifest as mf
from fusion.storage.atomic import atomic_output, write_bytes_atomic
from fusion.storage.compression import check_compression
from fusion.storage.merge import output_compression, plan_merge, write_merge, write_planned
from fusion.storage.outputs import check_output
from fusion.storage.shard_entries import now_iso
from fusion.storage.shard_names import merged_sidecar_path
from fusion.storage.sink import HashingSink
from fusion.storage.sources import STUDY_MERGE_FORMAT
from fusion.storage.study_layout import axis_names, read_study, study_points, study_root


def merge_study(
    study: str | os.PathLike[str],
    out: str | os.PathLike[str],
    order: str = "seed",
    *,
    all_points: bool = False,
    include_incomplete: bool = False,
    compress: str | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Merge every point of ``study``.

    :param study: The study directory (or its ``study.json``).
    :param out: With ``all_points``, the one merged file; otherwise a directory that receives
        ``<point dir>.jsonl`` (``.gz`` / ``.zst`` with ``compress``) per point.
    :param order: ``"seed"`` or ``"t"``, within each point.
    :param all_points: Write one file for the whole study (see the module docstring).
    :param include_incomplete: As for :func:`~fusion.storage.merge.merge_shards`, per point.
    :param compress: Per-point files only; ``None`` with ``all_points``.
    :param overwrite: Replace existing output files (and their records) that belong to no
        dataset or study (see :func:`~fusion.storage.outputs.check_output`).
    :raises ValueError: for ``compress`` with ``all_points`` (ranges are byte offsets).
    :raises OutputConflictError: for an output the guard refuses, before any work.
    :raises DatasetError: for a point that cannot be merged (nothing is written).
    :return: With ``all_points`` the sidecar's record, otherwise ``{"points": [...]}`` with
        each point's coordinates, output and merge record.
    """
    record = read_study(study)
    root = study_root(study)
    assert root is not None
    points = study_points(study)
    if all_points:
        if compress is not None:
            raise ValueError(
                "--all writes one uncompressed file (its points are byte ranges a reader seeks); "
                "compress the per-point files instead, or the whole file afterwards"
            )
        if output_compression(out, None) is not None:
            raise OutputConflictError(
                f"{out}: --all writes one uncompressed file (its points are byte ranges a "
                "reader seeks); give a name without .gz/.zst"
            )
        check_output(out, overwrite=overwrite, inputs=[study], merge_record=True)
        return _merge_all(root, record, points, Path(out), order, include_incomplete, overwrite)
    check_compression(compress)
    check_output(out, kind="dir")
    suffix = ".jsonl" + ("" if compress is None else SUFFIXES[compress])
    targets = [Path(out) / (point.record["dir"] + suffix) for point in points]
    check_output(*targets, overwrite=overwrite, inputs=[study], merge_record=True)
    plans = [plan_merge(point.path, order, include_incomplete) for point in points]  # refuse first
    merged = []
    for point, plan, target in zip(points, plans, targets, strict=True):
        target.parent.mkdir(parents=True, exist_ok=True)
        info = write_planned(plan, target, compress, replace=overwrite)
        merged.append({"point": point.coords, "output": str(target), "merge": info})
    return {"points": merged}


def _merge_all(
    root: Path,
    record: dict[str, Any],
    points: list[Any],
    out: Path,
    order: str,
    include_incomplete: bool,
    overwrite: bool,
) -> dict[str, Any]:
    if not points:
        raise DatasetError(f"{root}: the study has no points to merge")
    plans = [plan_merge(point.path, order, include_incomplete) for point in points]
    parts: list[dict[str, Any]] = []
    with atomic_output(out, buffering=0, replace=overwrite) as handle:
        writer = HashingSink(handle)
        try:
            line = 0
            for point, plan in zip(points, plans, strict=True):
                start = writer.size
                segment = HashingSink(writer)  # type: ignore[arg-type]  # a sink takes bytes
                try:
                    shards = write_merge(plan, segment, out.parent)
                finally:
                    segment.close()
                for shard in shards:
                    if "byte_start" in shard:  # counted from the segment: make them the file's
                        shard["byte_start"] += start
                        shard["byte_end"] += start
                lines = sum(s["lines"] for s in shards)
                parts.append(
                    {
                        "point": point.coords,
                        "dir": point.record["dir"],
                        "config_sha256": plan.manifest.get("config_sha256"),
                        mf.PATH_FEATURES_FIELD: plan.manifest.get(mf.PATH_FEATURES_FIELD),
                        "byte_start": start,
                        "byte_end": writer.size,
                        "line_start": line,
                        "lines": lines,
                        "sha256": segment.hexdigest(),
                        "shards": shards,
                        "partial": bool(plan.problems),
                        "left_out_or_cut": {
                            str(s): why for s, why in sorted(plan.problems.items())
                        },
                    }
                )
                line += lines
        finally:
            writer.close()
    merged_sidecar_path(out).unlink(missing_ok=True)  # the new file is out: its old record goes
    info = {
        "format": STUDY_MERGE_FORMAT,
        "schema_version": mf.SCHEMA_VERSION,
        "fusion_version": __version__,
        "created": now_iso(),
        "source": str(root.resolve()),
        "output": out.name,
        "axes": axis_names(record),
        "order": order,
        "compression": None,
        "sha256": writer.hexdigest(),
        "bytes": writer.size,
        "transitions": sum(p["lines"] for p in parts),
        "points": parts,
        "partial": any(p["partial"] for p in parts),
    }
    write_bytes_atomic(merged_sidecar_path(out), orjson.dumps(info, option=orjson.OPT_INDENT_2))
    return info
