"""Exports for the tools offline-RL and data people already use: D4RL-style ``.npz``, Parquet.

``npz`` holds the D4RL keys (``observations``, ``actions``, ``rewards``, ``terminals``,
``timeouts``, ``next_observations``) plus ``action_masks``, ``seeds``, ``t``, ``window_tags``
and ``observation_names``. A shard ends because its run ran out of requests, not because the
network reached a terminal state, so ``terminals`` is all false and ``timeouts`` marks each
shard's last transition (D4RL's convention for a cut episode).

``parquet`` has one row per transition in ``(seed, t)`` order, with typed columns: ``t``,
``seed``, the request features (``src`` ... ``is_disaster``), ``paths`` (a list of structs),
``action``, ``reward``, ``action_mask`` (a list of booleans), the ``meta`` fields
(``decision_time_ms`` ... ``bit_rate``) and ``done``. ``next_state`` is left out: it is the
next row's state. Shards are written one at a time, so memory holds one shard.

Both read complete shards only (as :func:`~fusion.storage.loader.load_dataset` does) and
publish their file atomically.

    >>> import tempfile, os
    >>> from fusion.storage.shard_writer import DatasetLogger
    >>> d = tempfile.mkdtemp()
    >>> s = {"src": 0, "dst": 1, "slots_needed": 3, "est_remaining_time": 1.0, "is_disaster": 0,
    ...      "paths": []}
    >>> with DatasetLogger.open_shard(d, 4, {}) as log:
    ...     log.log_transition(s, -1, -1.0, None, [False], {"bp_window_tag": "pre"})
    >>> export_dataset(d, os.path.join(d, "x.parquet"), "parquet")
    1
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from fusion.datasets.arrays import to_arrays
from fusion.datasets.columns import check_table, explain, read_table
from fusion.errors import DatasetError
from fusion.storage.atomic import atomic_output
from fusion.storage.integrity import check_columns, check_line_count
from fusion.storage.outputs import check_output
from fusion.storage.sources import Part, Source, resolve_parts, warn_skipped
from fusion.storage.successors import episode_ends

FORMATS = ("npz", "parquet")

_PATH = pa.struct(
    [
        ("path_hops", pa.int32()),
        ("min_residual_slots", pa.int32()),
        ("frag_indicator", pa.float64()),
        ("failure_mask", pa.int8()),
        ("dist_to_disaster_centroid", pa.int32()),
    ]
)
_STATE = [
    ("src", pa.int32()),
    ("dst", pa.int32()),
    ("slots_needed", pa.int32()),
    ("est_remaining_time", pa.float64()),
    ("is_disaster", pa.int8()),
    ("paths", pa.list_(_PATH)),
]
_META = [
    ("decision_time_ms", pa.float64()),
    ("restoration_latency_ms", pa.float64()),
    ("bp_window_tag", pa.string()),
    ("backup_available", pa.bool_()),
    ("was_groomed", pa.bool_()),
    ("request_id", pa.int64()),
    ("arrival_time", pa.float64()),
    ("bit_rate", pa.int32()),
]
#: The JSON fields read for Parquet, with their types.
RECORD_SCHEMA = pa.schema(
    [
        ("t", pa.int64()),
        ("seed", pa.int64()),
        ("state", pa.struct(_STATE)),
        ("action", pa.int32()),
        ("reward", pa.float64()),
        ("action_mask", pa.list_(pa.bool_())),
        ("meta", pa.struct(_META)),
    ]
)
#: The Parquet file's columns.
PARQUET_SCHEMA = pa.schema(
    [
        RECORD_SCHEMA.field("t"),
        RECORD_SCHEMA.field("seed"),
        *(pa.field(name, kind) for name, kind in _STATE),
        RECORD_SCHEMA.field("action"),
        RECORD_SCHEMA.field("reward"),
        RECORD_SCHEMA.field("action_mask"),
        *(pa.field(name, kind) for name, kind in _META),
        pa.field("done", pa.bool_()),
    ]
)


def _flat(table: pa.Table) -> pa.Table:
    """State and meta fields as top-level columns, sorted by ``(seed, t)``, with ``done``."""
    table = table.sort_by([("seed", "ascending"), ("t", "ascending")])
    state, meta = table.column("state").combine_chunks(), table.column("meta").combine_chunks()
    done = episode_ends(table.column("seed").to_numpy())
    columns = {
        "t": table.column("t"),
        "seed": table.column("seed"),
        **{name: state.field(name) for name, _ in _STATE},
        "action": table.column("action"),
        "reward": table.column("reward"),
        "action_mask": table.column("action_mask"),
        **{name: meta.field(name) for name, _ in _META},
        "done": pa.array(done),
    }
    return pa.table(columns, schema=PARQUET_SCHEMA)


def _read(source: Source) -> pa.Table:
    """One source's records, checked as every reader checks them (the schema, each line's
    seed and ``t``, the line count and size, then the sha256 of a complete source's stored
    bytes, as ``fusion merge`` does), only the selected seeds."""
    try:
        table = read_table(
            source.path,
            RECORD_SCHEMA,
            whole_lines_only=source.whole_lines_only,
            byte_range=source.byte_range,
        )
    except pa.ArrowInvalid as exc:
        raise explain(source.path, source.whole_lines_only, exc, source) from exc
    check_table(source.path, table)
    seeds, t = table.column("seed").to_numpy(), table.column("t").to_numpy()
    allowed = None if source.per_seed is None else list(source.per_seed)
    check_columns(source.path, seeds, t, source.seed, allowed, source.first_line)
    if source.complete:
        check_line_count(source.path, len(table), source.lines, source.promised_by)
        source.check_size()
        source.check_sha256()
    if source.select is not None:
        table = table.filter(pa.array(np.isin(seeds, list(source.select))))
    return table


def export_parquet(
    path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    seeds: Iterable[int] | None = None,
    overwrite: bool = False,
) -> int:
    """Write one Parquet file, a row per transition; return the rows written.

    :param path: A dataset directory, its manifest, or a ``.jsonl[.gz|.zst]`` file.
    :param out: The Parquet file.
    :param seeds: Only these seeds (of a dataset or a merged file).
    :param overwrite: Replace an existing ``out`` that belongs to no dataset or study.
    :raises OutputConflictError: for an output the guard refuses, before any work.
    :raises DatasetError: naming a file that is malformed, has other lines than promised, or
        holds a line whose seed or ``t`` does not belong there.
    """
    check_output(out, overwrite=overwrite, inputs=[path])
    return _write_parquet(resolve_parts(path, seeds=seeds), out)


def _write_parquet(parts: list[Part], out: str | os.PathLike[str]) -> int:
    rows = 0
    axes = _axis_fields(parts)
    schema = pa.schema([*PARQUET_SCHEMA, *axes])
    with atomic_output(out) as handle, pq.ParquetWriter(handle, schema) as writer:
        for part in parts:
            warn_skipped(part.resolved)
            for source in part.resolved.sources:
                table = _flat(_read(source))
                for field in axes:  # a study's point coordinates, one column per axis
                    value = (part.coords or {})[field.name]
                    table = table.append_column(field, pa.array([value] * len(table), field.type))
                writer.write_table(table)
                rows += len(table)
    return rows


def _axis_fields(parts: list[Part]) -> list[pa.Field]:
    """A study's axes as Parquet columns (float64 for numbers, string otherwise)."""
    coords = [part.coords for part in parts if part.coords is not None]
    if not coords:
        return []
    fields = []
    for name in coords[0]:
        values = [c[name] for c in coords]
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        fields.append(pa.field(name, pa.float64() if numeric else pa.string()))
    return fields


def export_npz(
    path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    seeds: Iterable[int] | None = None,
    overwrite: bool = False,
) -> int:
    """Write the D4RL-style ``.npz`` (see the module docstring); return the rows written.

    :param path: A dataset directory, its manifest, or a ``.jsonl[.gz|.zst]`` file.
    :param out: The ``.npz`` file.
    :param seeds: Only these seeds.
    :param overwrite: Replace an existing ``out`` that belongs to no dataset or study.
    :raises OutputConflictError: for an output the guard refuses, before any work.
    """
    check_output(out, overwrite=overwrite, inputs=[path])
    return _write_npz(path, out, seeds)


def _write_npz(
    path: str | os.PathLike[str], out: str | os.PathLike[str], seeds: Iterable[int] | None
) -> int:
    data = to_arrays(path, seeds=seeds, verify=True)  # every file's sha256, cache or not
    arrays = {
        "observations": data.observations,
        "actions": data.actions,
        "rewards": data.rewards,
        "terminals": np.zeros(len(data), dtype=bool),
        "timeouts": data.dones,
        "next_observations": data.next_observations,
        "action_masks": data.action_masks,
        "seeds": data.seeds,
        "t": data.t,
        "window_tags": data.window_tags,
        "observation_names": np.array(data.metadata["observation_names"]),
        # a study's (or a study merge's) point coordinates: one column per axis
        **{f"point.{name}": column for name, column in data.columns.items()},
    }
    with atomic_output(out) as handle:
        np.savez(handle, **arrays)  # type: ignore[arg-type]
    return len(data)


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
    out: str | os.PathLike[str],
    format: str,
    *,
    seeds: Iterable[int] | None = None,
    overwrite: bool = False,
) -> int:
    """Export in ``format`` (``npz`` or ``parquet``); return the rows written.

    :param path: A dataset directory, its manifest, or a ``.jsonl[.gz|.zst]`` file.
    :param out: The output file.
    :param format: ``npz`` or ``parquet``.
    :param seeds: Only these seeds.
    :param overwrite: Replace an existing ``out`` that belongs to no dataset or study (see
        :func:`~fusion.storage.outputs.check_output`).
    :raises OutputConflictError: for an output the guard refuses, before any work.
    """
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
    check_output(out, overwrite=overwrite, inputs=[path])
    parts = resolve_parts(path, seeds=seeds)
    if not any(part.resolved.sources for part in parts):
        raise DatasetError(nothing_to_export(path, seeds))
    if format == "npz":
        return _write_npz(path, out, seeds)
    return _write_parquet(parts, out)
