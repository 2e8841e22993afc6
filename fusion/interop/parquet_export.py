"""The Parquet export: one row per transition, a column per field of the record.

Rows are in ``(seed, t)`` order, with a column per field of the record (:func:`parquet_schema`,
derived from :data:`~fusion.config.features.RECORD_FIELDS`), in the line's order with
``state`` and ``meta`` flattened: ``t``, ``seed``, the request features (``src`` ...
``is_disaster``), ``paths`` (a list of structs holding the dataset's path features, and
``links`` when logged), ``spectrum`` when logged, ``action``, ``reward``, ``next_state`` (a
struct as the line has it, null unless ``link_next_state``), ``action_mask``, each ``meta``
field the data holds (``decision_time_ms`` ... ``start_slot``, ``behaviour``, ``explored``,
``propensity``), ``meta_extra`` when some row holds meta keys of the caller's own, then
``done`` (true at each seed's last transition); a study's axes follow, one column each. A
field a line lacks is null in its row.

``meta`` is the record's one open group (:data:`~fusion.storage.schema.OPEN_GROUPS`): a
hand-fed transition's ``meta`` may hold keys the record does not declare, and the writer and
``fusion validate`` accept them. Those go into one string column, ``meta_extra``: the row's
undeclared ``meta`` keys as one JSON object, as orjson writes it with keys sorted (null on a
row that has none). The column exists only when some exported row holds such a key, so data
without them exports exactly as before it existed. A field the record does not declare
anywhere else (the line, its state, a path) is refused, naming it and its line: nothing is
dropped. Shards are written one at a time, so memory holds one shard (a study whose points
hold different fields is written twice).

    >>> import json, os, tempfile
    >>> p = os.path.join(tempfile.mkdtemp(), "one.jsonl")
    >>> state = {"src": 0, "dst": 1, "slots_needed": 2, "est_remaining_time": 1.0,
    ...          "is_disaster": 0, "paths": []}
    >>> line = {"t": 0, "seed": 7, "state": state, "action": -1, "reward": -1.0,
    ...         "next_state": None, "action_mask": [False], "meta": {"colour": "red", "n": 2}}
    >>> _ = open(p, "w").write(json.dumps(line) + "\\n")
    >>> write(ExportJob(p, p + ".parquet"))
    1
    >>> pq.read_table(p + ".parquet").column("meta_extra").to_pylist()
    ['{"colour":"red","n":2}']
    >>> line["state"] = dict(state, colour="red")
    >>> _ = open(p, "w").write(json.dumps(line) + "\\n")
    >>> try:
    ...     write(ExportJob(p, p + ".parquet", overwrite=True))
    ... except DatasetError as exc:
    ...     print(str(exc).split(": ", 1)[1])
    state.colour is not a field the record declares (fusion.config.features), so the export would lose it
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Collection, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.json as pj
import pyarrow.parquet as pq

from fusion.config.features import (
    FEATURES,
    GROUP_KINDS,
    RECORD_FIELDS,
    STATE_FEATURES,
    Feature,
    feature_set_holding,
)
from fusion.datasets.arrow_types import arrow_type, record_schema
from fusion.datasets.columns import BLOCK_SIZE, check_table, explain, read_table
from fusion.errors import DatasetError
from fusion.interop.export import prepare
from fusion.interop.formats import ExportJob
from fusion.storage.atomic import atomic_output
from fusion.storage.integrity import check_columns, check_line_count
from fusion.storage.loader import iter_json_lines
from fusion.storage.schema import OPEN_GROUPS
from fusion.storage.sources import Part, Source, warn_skipped
from fusion.storage.successors import episode_ends

#: The JSON fields read for Parquet: every field the record declares
#: (:data:`~fusion.config.features.RECORD_FIELDS`), so a field it does not declare is refused.
RECORD_SCHEMA = record_schema()
#: Objects whose fields become top-level columns (``next_state`` stays one struct column).
_FLATTENED = ("state", "meta")
#: The group whose undeclared keys the export carries: the record's one open group
#: (:data:`~fusion.storage.schema.OPEN_GROUPS`; a second one would need its own column).
(_OPEN,) = OPEN_GROUPS
#: The column of a row's undeclared ``meta`` keys (a JSON object).
EXTRA_COLUMN = f"{_OPEN}_extra"
#: ``held``'s entry for :data:`EXTRA_COLUMN` (some row holds a key of the caller's own).
EXTRA_HELD = (_OPEN, EXTRA_COLUMN)
_DECLARED_OPEN = frozenset(f.name for f in RECORD_FIELDS[_OPEN])
#: Fields every file has a column for (the readers refuse a line without them).
_REQUIRED = {
    "record": frozenset(RECORD_SCHEMA.names),
    "state": frozenset((*STATE_FEATURES, "paths")),
}


def parquet_schema(
    held: Collection[tuple[str, str]] = (), recorded: Sequence[str] | None = None
) -> pa.Schema:
    """The Parquet file's columns for data that holds the ``held`` fields, in the record's
    order with ``state`` and ``meta`` flattened, then ``done``.

    Every field of the line, of its state and the state's request features is a column; a path
    holds the features of its feature set (:func:`~fusion.config.features.feature_set_holding`)
    and ``links`` when held; the state's ``spectrum`` and each ``meta`` field are columns when
    held, and :data:`EXTRA_COLUMN` (a string) after ``meta``'s when :data:`EXTRA_HELD` is.
    Types are the declaration's (:mod:`fusion.datasets.arrow_types`).

    :param held: ``(group, name)`` of each field the data holds (not null somewhere), and
        :data:`EXTRA_HELD` when some row holds an undeclared ``meta`` key.
    :param recorded: The path features the data's manifest records (``None``: data made
        before manifests recorded them, or parts recording different lists).

        >>> parquet_schema([("meta", "start_slot")]).names[-3:]
        ['action_mask', 'start_slot', 'done']
        >>> parquet_schema().field("paths").type.value_type.num_fields
        5
        >>> parquet_schema([EXTRA_HELD]).names[-3:]
        ['action_mask', 'meta_extra', 'done']
    """
    held = set(held)
    features = feature_set_holding(
        (name for group, name in held if group == "path" and name in FEATURES),
        recorded=recorded,
    )

    def keep(group: str, name: str) -> bool:
        if name in _REQUIRED.get(group, ()) or (group, name) in held:
            return True
        return group == "path" and name in features

    columns: list[pa.Field] = []
    for field in record_schema(keep):
        columns.extend(field.type if field.name in _FLATTENED else [field])
        if field.name == _OPEN and EXTRA_HELD in held:
            columns.append(pa.field(EXTRA_COLUMN, pa.string()))
    return pa.schema([*columns, pa.field("done", pa.bool_())])


def held_fields(table: pa.Table) -> set[tuple[str, str]]:
    """``(group, name)`` of each declared field that is not null in every row of ``table``
    (parsed with :data:`RECORD_SCHEMA`); a ``next_state`` holds ``state`` fields. With
    :data:`EXTRA_HELD` when its :data:`EXTRA_COLUMN` is not null in every row.

    :param table: Parsed records (and :data:`EXTRA_COLUMN`, when :func:`_read` made one).
    """
    held: set[tuple[str, str]] = set()
    extra = table.column(EXTRA_COLUMN) if EXTRA_COLUMN in table.column_names else None
    if extra is not None and extra.null_count < len(extra):
        held.add(EXTRA_HELD)

    def visit(group: str, children: Iterable[pa.Array]) -> None:
        for field, child in zip(RECORD_FIELDS[group], children, strict=True):
            if child.null_count == len(child):
                continue
            held.add((group, field.name))
            inner = field.kind.removesuffix(" list")
            if inner in GROUP_KINDS:
                objects = child.flatten() if inner != field.kind else child  # a list's entries
                visit(inner, objects.flatten())  # (a struct's flatten: its fields, nulls kept)

    visit("record", (table.column(f.name).combine_chunks() for f in RECORD_FIELDS["record"]))
    return held


#: A whole line, as a field (for :func:`_field_problems`).
_LINE = Feature("line", "", "", "", "a transition record", kind="record")


class _Wider(Exception):
    """A source holds fields the file's columns lack: write it again with them."""

    def __init__(self, held: set[tuple[str, str]]) -> None:
        self.held = held


def _flat(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``schema``'s columns of parsed records, sorted by ``(seed, t)``, with ``done``."""
    table = table.sort_by([("seed", "ascending"), ("t", "ascending")])
    columns: dict[str, Any] = {}
    for name in RECORD_SCHEMA.names:
        column = table.column(name)
        if name in _FLATTENED:
            struct = column.combine_chunks()
            for field, child in zip(struct.type, struct.flatten(), strict=True):
                if field.name in schema.names:
                    columns[field.name] = child
        else:
            columns[name] = column
    if EXTRA_COLUMN in schema.names:  # (null in each row of a source that has none)
        extra = EXTRA_COLUMN in table.column_names
        columns[EXTRA_COLUMN] = table.column(EXTRA_COLUMN) if extra else pa.nulls(len(table))
    columns["done"] = pa.array(episode_ends(table.column("seed").to_numpy()))
    return pa.table(
        {field.name: columns[field.name].cast(field.type) for field in schema}, schema=schema
    )


def _field_problems(value: Any, field: Feature, where: str) -> list[str]:
    """What in a parsed value does not match its declared field: a field the record does not
    declare (outside ``meta``, whose undeclared keys the export carries), a value of another
    kind, a required field missing (JSON null passes, as it parses)."""
    if value is None:
        return []
    kind = field.kind.removesuffix(" list")
    if kind != field.kind:
        if not isinstance(value, list):
            return [f"{where} is {value!r}, not a list"]
        single = dataclasses.replace(field, kind=kind)
        for index, item in enumerate(value):
            problems = _field_problems(item, single, f"{where}[{index}]")
            if problems:
                return problems
        return []
    if kind in RECORD_FIELDS:
        if not isinstance(value, dict):
            return [f"{where} is {value!r}, not an object"]
        declared = {f.name: f for f in RECORD_FIELDS[kind]}
        prefix = f"{where}." if where else ""
        problems = [
            f"{prefix}{name} is not a field the record declares (fusion.config.features), "
            "so the export would lose it"
            for name in value
            if name not in declared and kind != _OPEN
        ]
        problems += [
            f"{prefix}{name} is missing"
            for name in sorted(_REQUIRED.get(kind, ()))
            if name not in value and field.name != "next_state"
        ]
        for name, item in value.items():
            if name in declared:
                problems += _field_problems(item, declared[name], f"{prefix}{name}")
        return problems
    expected = arrow_type(field)
    if pa.types.is_integer(expected):
        fits = type(value) is int and -(1 << (expected.bit_width - 1)) <= value < 1 << (
            expected.bit_width - 1
        )
    elif pa.types.is_floating(expected):
        fits = type(value) in (int, float)
    else:
        fits = type(value) is (bool if pa.types.is_boolean(expected) else str)
    return [] if fits else [f"{where} is {value!r}, not {field.kind} ({expected})"]


def _refusal(source: Source, exc: pa.ArrowInvalid) -> DatasetError:
    """Why pyarrow refused a source: the first line holding a field the record does not
    declare or a value of another kind, named field by field; else :func:`explain`'s."""
    for number, line in _lines(source):
        problems = _field_problems(line, _LINE, "")
        if problems:
            return DatasetError(f"{source.path}:{number}: {'; '.join(problems)}")
    return explain(source.path, source.whole_lines_only, exc, source)


def _lines(source: Source) -> Iterator[tuple[int, Any]]:
    """Each line of a source, parsed strictly, with its number in the file."""
    with source.open() as handle:  # (closed here, even when the caller stops before the end)
        lines = iter_json_lines(
            source.path,
            whole_only=source.whole_lines_only,
            handle=handle,
            first_line=source.first_line,
        )
        yield from enumerate(lines, source.first_line + 1)


def _split_extra(source: Source) -> tuple[bytes, list[str | None]] | None:
    """The source's lines without their undeclared ``meta`` keys (as orjson writes each
    line), and per line those keys as one JSON object (keys sorted), or ``None``; ``None``
    for all when no line holds one.

    Read with orjson, not inferred by pyarrow: inference would turn a key a row lacks into a
    null, promote ``1`` to ``1.0`` beside a float, read a date as a timestamp and refuse a key
    whose type varies between rows.
    """
    lines: list[bytes] = []
    extras: list[str | None] = []
    for _, line in _lines(source):
        own = None
        meta = line.get(_OPEN) if isinstance(line, dict) else None
        if isinstance(meta, dict):
            own = {name: meta.pop(name) for name in list(meta) if name not in _DECLARED_OPEN}
        extras.append(orjson.dumps(own, option=orjson.OPT_SORT_KEYS).decode() if own else None)
        lines.append(orjson.dumps(line) + b"\n")
    if all(extra is None for extra in extras):
        return None
    return b"".join(lines), extras


def _parse_carrying_extra(source: Source, exc: pa.ArrowInvalid) -> pa.Table:
    """A source pyarrow refused (``exc``) parsed again without its lines' undeclared ``meta``
    keys, which become :data:`EXTRA_COLUMN`; refused as before when no line holds one or when
    the rest still does not parse (a field the record does not declare elsewhere, named)."""
    split = _split_extra(source)
    if split is None:
        raise _refusal(source, exc) from exc
    data, extras = split
    options = pj.ParseOptions(explicit_schema=RECORD_SCHEMA, unexpected_field_behavior="error")
    read = pj.ReadOptions(block_size=BLOCK_SIZE)
    try:
        table = pj.read_json(pa.BufferReader(data), read_options=read, parse_options=options)
    except pa.ArrowInvalid as again:
        raise _refusal(source, again) from again
    return table.append_column(pa.field(EXTRA_COLUMN, pa.string()), pa.array(extras, pa.string()))


def _read(source: Source) -> pa.Table:
    """One source's records, checked as every reader checks them (the schema, each line's
    seed and ``t``, the line count and size, then the sha256 of a complete source's stored
    bytes, as ``fusion merge`` does), only the selected seeds; with :data:`EXTRA_COLUMN`
    when some line's ``meta`` holds a key the record does not declare."""
    try:
        table = read_table(
            source.path,
            RECORD_SCHEMA,
            whole_lines_only=source.whole_lines_only,
            byte_range=source.byte_range,
            unexpected="error",
        )
    except pa.ArrowInvalid as exc:
        table = _parse_carrying_extra(source, exc)
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


def _write_parquet(parts: list[Part], out: str | os.PathLike[str], overwrite: bool) -> int:
    """Write every part's sources; the columns are those the first source holds, and when a
    later one holds more (a study whose points log different fields), all are written again
    with them."""
    for part in parts:
        warn_skipped(part.resolved)
    held: set[tuple[str, str]] = set()
    while True:
        try:
            return _write_parquet_holding(parts, out, held, overwrite)
        except _Wider as wider:
            held = wider.held


def _write_parquet_holding(
    parts: list[Part], out: str | os.PathLike[str], held: set[tuple[str, str]], overwrite: bool
) -> int:
    rows = 0
    axes = _axis_fields(parts)
    lists = {s.path_features for part in parts for s in part.resolved.sources}
    recorded = lists.pop() if len(lists) == 1 else None  # one list, or let the data say
    writer: pq.ParquetWriter | None = None
    schema = pa.schema([])
    with atomic_output(out, replace=overwrite) as handle:
        try:
            for part in parts:
                for source in part.resolved.sources:
                    parsed = _read(source)
                    found = held_fields(parsed)
                    if writer is None:
                        held = held | found
                        schema = _schema_of(source, held, recorded)
                        writer = pq.ParquetWriter(handle, pa.schema([*schema, *axes]))
                    elif not found <= held:
                        if _schema_of(source, held | found, recorded) != schema:
                            raise _Wider(held | found)
                        held = held | found
                    table = _flat(parsed, schema)
                    for field in axes:  # a study's point coordinates, one column per axis
                        value = (part.coords or {})[field.name]
                        table = table.append_column(
                            field, pa.array([value] * len(table), field.type)
                        )
                    writer.write_table(table)
                    rows += len(table)
            if writer is None:  # nothing to write: the columns of what is held, no row
                writer = pq.ParquetWriter(
                    handle, pa.schema([*parquet_schema(held, recorded), *axes])
                )
        finally:
            if writer is not None:
                writer.close()
    return rows


def _schema_of(
    source: Source, held: set[tuple[str, str]], recorded: Sequence[str] | None
) -> pa.Schema:
    """:func:`parquet_schema`, its refusal naming the file whose data it read last."""
    try:
        return parquet_schema(held, recorded)
    except ValueError as exc:
        raise DatasetError(f"{source.path}: state.paths[]: {exc}") from None


def _axis_fields(parts: list[Part]) -> list[pa.Field]:
    """A study's axes as Parquet columns (bool for booleans, float64 for numbers, string
    otherwise)."""
    coords = [part.coords for part in parts if part.coords is not None]
    if not coords:
        return []
    fields = []
    for name in coords[0]:
        values = [c[name] for c in coords]
        if all(isinstance(v, bool) for v in values):
            kind = pa.bool_()
        elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            kind = pa.float64()
        else:
            kind = pa.string()
        fields.append(pa.field(name, kind))
    return fields


def write(job: ExportJob) -> int:
    """Write one Parquet file, a row per transition (the registry's writer,
    :mod:`fusion.interop.formats`); return the rows written.

    :param job: The job; ``job.output`` is the Parquet file.
    :raises OutputConflictError: for an output the guard refuses, before any work.
    :raises SeedsNotFoundError: for seeds the input does not hold, before any work.
    :raises DatasetError: naming a shard that would be left out (before any work), a file
        that is malformed, has other lines than promised, or holds a line whose seed or ``t``
        does not belong there, or a field the record does not declare (naming the field).
    """
    assert job.output is not None  # (the registry checks it: needs_output)
    return _write_parquet(prepare(job), job.output, job.overwrite)
