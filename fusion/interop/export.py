"""What every export shares: the front door (:func:`export_dataset`, by format name through
the registry, :mod:`fusion.interop.formats`) and the refusals made before any work.

The formats, each in its own module: ``npz`` (:mod:`fusion.interop.npz_export`, D4RL-style
arrays), ``parquet`` (:mod:`fusion.interop.parquet_export`, a typed row per transition, a
column per field of the record) and ``minari`` (:mod:`fusion.interop.minari_export`). Every
export reads complete shards only (as :func:`~fusion.storage.loader.load_dataset` does), is
refused before any work when it would leave seeds out (:func:`refuse_partial`), and
publishes its output atomically.

    >>> export_dataset("data", None, "parquet")
    Traceback (most recent call last):
    ...
    ValueError: --format parquet needs -o OUT (the .parquet file)
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from fusion.errors import DatasetError
from fusion.errors import SeedsNotFoundError as SeedsNotFoundError  # (its home: errors.py)
from fusion.interop.formats import ExportJob, export_format
from fusion.storage.outputs import check_output
from fusion.storage.sources import Part, resolve_parts


def nothing_to_export(path: str | os.PathLike[str], seeds: Iterable[int] | None) -> str:
    """Why no shard is exported: the seeds asked for are none of the dataset's (which it has is
    named), or none of its shards is complete yet.

    :param path: The dataset (directory, manifest or file).
    :param seeds: The seeds asked for (``None``: all).
    """
    found: dict[int, str] = {}
    for part in resolve_parts(path, include_incomplete=True, missing="skip"):
        for source in part.resolved.sources:
            if source.seed is not None:
                found[source.seed] = source.status
            for seed in source.per_seed or {}:
                found[int(seed)] = source.status
    complete = sorted(seed for seed, status in found.items() if status in ("complete", "file"))
    if seeds is not None and complete:
        return (
            f"{path}: holds none of the seeds asked for ({_spans(sorted(set(seeds)))}); its "
            f"complete seeds are {_spans(complete)}: ask for those, or for all (no --seeds)"
        )
    unfinished = sorted(seed for seed, status in found.items() if seed not in complete)
    if unfinished:
        return (
            f"{path}: no complete shard to export; seeds {_spans(unfinished)} are unfinished "
            "(fusion inspect shows why; a sweep with --resume completes them)"
        )
    return f"{path}: no shard to export (an empty dataset: run a sweep into it first)"


def _spans(seeds: list[int]) -> str:
    """Sorted seeds as ranges: ``0-3,7`` (at most 20 ranges, then ``...``)."""
    spans: list[str] = []
    start = previous = seeds[0]
    for seed in [*seeds[1:], None]:
        if seed is not None and seed == previous + 1:
            previous = seed
            continue
        spans.append(str(start) if start == previous else f"{start}-{previous}")
        if seed is not None:
            start = previous = seed
    return ",".join(spans[:20]) + (",..." if len(spans) > 20 else "")


def export_dataset(
    path: str | os.PathLike[str],
    out: str | os.PathLike[str] | None,
    format: str,
    *,
    seeds: Iterable[int] | None = None,
    overwrite: bool = False,
    include_incomplete: bool = False,
    dataset_id: str | None = None,
) -> int:
    """Export in ``format`` (a name of :data:`~fusion.interop.formats.FORMATS`: ``npz``,
    ``parquet``, ``minari``); return the rows (Minari: steps) written.

    :param path: A dataset directory, its manifest, or a ``.jsonl[.gz|.zst]`` file.
    :param out: The output file (Minari: its datasets directory, ``None`` for its default).
    :param format: The format's name.
    :param seeds: Only these seeds.
    :param overwrite: Replace an existing ``out`` that belongs to no dataset or study (see
        :func:`~fusion.storage.outputs.check_output`).
    :param include_incomplete: Export what is whole of shards not complete (their whole
        lines); without it such shards are refused, as ``fusion merge`` refuses them.
    :param dataset_id: The new dataset's id (Minari's ``NAMESPACE/NAME-vN``).
    :raises ValueError: for an unknown format, or a job it cannot do (no ``out``, no id).
    :raises OutputConflictError: for an output the guard refuses, before any work.
    :raises SeedsNotFoundError: for ``seeds`` the input does not hold, before any work.
    :raises DatasetError: naming the seeds whose shards are not complete (unless
        ``include_incomplete``), before any work.
    """
    job = ExportJob(
        path,
        out,
        None if seeds is None else tuple(seeds),
        overwrite,
        include_incomplete,
        dataset_id,
    )
    return export_format(format).export(job)


def prepare(job: ExportJob) -> list[Part]:
    """What every export of shards checks before any work: the output (the output guard),
    that the seeds asked for are there and something is to be exported, and that no shard
    would be left out (:func:`refuse_partial`); return the parts to export.

    :param job: The job.
    :raises OutputConflictError: for an output the guard refuses.
    :raises SeedsNotFoundError: for seeds the input does not hold.
    :raises DatasetError: when nothing is to be exported, or a shard would be left out.
    """
    if job.output is not None:
        check_output(job.output, overwrite=job.overwrite, inputs=[job.dataset])
    parts = resolve_parts(job.dataset, seeds=job.seeds, include_incomplete=job.include_incomplete)
    if not any(part.resolved.sources for part in parts):
        why = nothing_to_export(job.dataset, job.seeds)
        raise (SeedsNotFoundError if "holds none of the seeds" in why else DatasetError)(why)
    refuse_partial(job.dataset, parts, job.seeds, job.include_incomplete)
    return parts


def refuse_partial(
    path: str | os.PathLike[str],
    parts: list[Part],
    seeds: Iterable[int] | None,
    include_incomplete: bool,
) -> None:
    """Refuse, as ``fusion merge`` does, an export that would leave seeds out: seeds asked for
    that the input does not have (always), and shards not complete (running, failed, missing)
    unless ``include_incomplete``.

    :raises SeedsNotFoundError: naming the seeds asked for that the input lacks.
    :raises DatasetError: naming every seed not complete, and the option that takes the rest.
    """
    absent: dict[int, list[str]] = {}
    unfinished: dict[str, list[str]] = {}
    for part in parts:
        where = f" (point {part.name})" if part.name else ""
        for seed, why in part.resolved.skipped:
            if why == "not in this dataset":
                absent.setdefault(seed, []).append(where)
            elif not include_incomplete:
                unfinished.setdefault(f"seed {seed}{where}", []).append(why)
    if absent and seeds is not None:
        raise SeedsNotFoundError(
            f"{path}: --seeds asks for seeds it does not hold ({_spans(sorted(absent))}); "
            "ask only for its seeds (fusion inspect lists them)"
        )
    if unfinished:
        listed = "; ".join(f"{k}: {', '.join(v)}" for k, v in unfinished.items())
        raise DatasetError(
            f"{path}: cannot export ({listed}); the export would leave them out: finish them "
            "(fusion sweep --resume) or pass --include-incomplete to export the rest"
        )
