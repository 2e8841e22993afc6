"""One JSON Lines file parsed into typed columns with pyarrow's multi-threaded JSON reader.

Only the fields an array view needs are typed (``t``, ``seed``, the state's features, ``action``,
``reward``, ``action_mask``, ``meta.bp_window_tag`` and what produced the action,
``meta.behaviour``, ``meta.explored``, ``meta.propensity``); the rest of each line is parsed and
dropped. pyarrow reads ``.gz`` and ``.zst`` itself. A line that is not JSON is reported with
its file and line number (found by a strict re-read); a required field that is missing or of
the wrong type is reported with the file and field.

    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "a.jsonl")
    >>> line = (b'{"t":0,"seed":7,"state":{"src":0,"dst":1,"slots_needed":2,"est_remaining_time":1.5,'
    ...         b'"is_disaster":0,"paths":[]},"action":-1,"reward":-1.0,"action_mask":[false],"meta":{}}\\n')
    >>> _ = open(p, "wb").write(line)
    >>> cols = read_columns(p)
    >>> len(cols), cols.seeds.tolist(), cols.mask_counts.tolist()
    (1, [7], [1])
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from fusion.config.features import FEATURES, feature_set_holding
from fusion.datasets.arrow_types import only, record_schema
from fusion.errors import DatasetError
from fusion.storage.compression import compression_of, open_binary
from fusion.storage.integrity import check_columns, check_line_count
from fusion.storage.loader import iter_json_lines
from fusion.storage.observation import STATE_FEATURES
from fusion.storage.schema import WINDOW_TAGS
from fusion.storage.sources import Source

BLOCK_SIZE = 4 << 20
#: The ``meta`` fields that say what produced each action (engine records since the
#: ``behaviour`` edition); the array view carries each under its own name.
BEHAVIOUR_FIELDS = ("behaviour", "explored", "propensity")

#: The fields the array view reads, typed by the declaration (:mod:`.arrow_types`); the
#: features (the request's, and every feature a path may hold) as float64, an observation's type.
SCHEMA = record_schema(
    only(
        {
            "record": ("t", "seed", "state", "action", "reward", "action_mask", "meta"),
            "state": (*STATE_FEATURES, "paths"),
            "path": FEATURES,
            "meta": ("bp_window_tag", *BEHAVIOUR_FIELDS),
        }
    ),
    as_float=("state", "path"),
)
_WINDOW_SET = pa.array(WINDOW_TAGS)


@dataclass(frozen=True)
class Columns:
    """The typed columns of one file, rows in file order.

    :param t: ``t`` per row.
    :param seeds: ``seed`` per row.
    :param state: ``(n, 5)`` float64, the request features in :data:`STATE_FEATURES` order.
    :param path_values: ``(sum of path counts, F)`` float64, every path's features
        (:attr:`path_features`), row after row.
    :param path_counts: Paths listed per row.
    :param actions: ``action`` per row.
    :param rewards: ``reward`` per row.
    :param mask_values: Every row's mask entries, row after row.
    :param mask_counts: Mask length per row.
    :param windows: Index of ``meta.bp_window_tag`` in :data:`WINDOW_TAGS`, -1 when absent.
    :param behaviour: :data:`BEHAVIOUR_FIELDS` -> its column (``behaviour`` str, ``explored``
        bool, ``propensity`` float64; a row without it ``""``, false, NaN), for each field some
        row holds (none: data made before the fields existed).
    :param path_features: The path features the file's paths hold (the seed card's five, or
        the extended set); ``None`` when it lists no path.
    :param source: The file, for messages.
    """

    t: np.ndarray
    seeds: np.ndarray
    state: np.ndarray
    path_values: np.ndarray
    path_counts: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    mask_values: np.ndarray
    mask_counts: np.ndarray
    windows: np.ndarray
    behaviour: dict[str, np.ndarray] = field(default_factory=dict)
    path_features: tuple[str, ...] | None = None
    source: str = ""

    def __len__(self) -> int:
        return len(self.t)


def _first_null(array: pa.Array) -> int:
    return int(pc.index(pc.is_null(array), True).as_py())


def _required(path: Path, name: str, array: pa.Array) -> pa.Array:
    if array.null_count:
        line = _first_null(array) + 1
        raise DatasetError(f"{path}:{line}: field {name!r} is missing or null (expected a value)")
    return array


def _list_parts(path: Path, name: str, array: pa.Array) -> tuple[pa.Array, np.ndarray]:
    _required(path, name, array)
    counts = pc.list_value_length(array).to_numpy(zero_copy_only=False).astype(np.int64)
    return array.flatten(), counts


def read_table(
    path: Path,
    schema: pa.Schema,
    *,
    whole_lines_only: bool = False,
    byte_range: tuple[int, int] | None = None,
    unexpected: str = "ignore",
) -> pa.Table:
    """Parse a JSON Lines file (plain, ``.gz`` or ``.zst``) into a table of ``schema``'s fields.

    Fields not in the schema are parsed and dropped (or refused). Errors are pyarrow's
    (:func:`read_columns` turns them into messages that name the line).

    :param path: The file.
    :param schema: The fields to keep and their types.
    :param whole_lines_only: Drop a last line without a newline.
    :param byte_range: Only these bytes of a plain file (a point of a merged study).
    :param unexpected: ``ignore`` a field not in ``schema``, or refuse it (``error``).
    """
    options = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior=unexpected)
    read = pj.ReadOptions(block_size=BLOCK_SIZE)
    if byte_range is not None:
        start, end = byte_range
        with pa.memory_map(str(path)) as mapped:
            stream = mapped.get_stream(start, end - start)
            return pj.read_json(stream, read_options=read, parse_options=options)
    if whole_lines_only or compression_of(path) is not None:
        # Decompress here, not in pyarrow: our reader names a cut stream (and pyarrow's JSON
        # reader was seen to crash the process when its input stream failed mid-read).
        with open_binary(path) as handle:
            data = handle.read()
        if whole_lines_only:
            data = data[: data.rfind(b"\n") + 1]
        return pj.read_json(pa.BufferReader(data), read_options=read, parse_options=options)
    return pj.read_json(str(path), read_options=read, parse_options=options)


def explain(
    path: Path, whole_lines_only: bool, exc: Exception, source: Source | None = None
) -> DatasetError:
    """A :class:`DatasetError` for pyarrow's ``exc``: the bad line's number when a strict
    re-read finds one, else the file and pyarrow's reason.

    :param path: The file that failed to parse.
    :param whole_lines_only: As it was read.
    :param exc: pyarrow's error.
    :param source: The source read (for a point's range of a merged study).
    """
    try:
        handle = source.open() if source is not None else None
        first = source.first_line if source is not None else 0
        for _ in iter_json_lines(
            path, whole_only=whole_lines_only, handle=handle, first_line=first
        ):
            pass
    except DatasetError as strict:
        return strict
    return DatasetError(
        f"{path}: {exc} (a field has the wrong type; expected the seed card's schema)"
    )


def check_table(path: Path, table: pa.Table) -> None:
    """The schema checks every reader of parsed records makes: the fields a transition must
    hold are present and not null, and window tags are ``pre``, ``fail`` or ``post``.

    :param path: The file, for messages.
    :param table: Parsed with :data:`SCHEMA`'s fields (or more).
    :raises DatasetError: naming the file, line and field.
    """
    for name in ("t", "seed", "action", "reward", "action_mask"):
        _required(path, name, table.column(name).combine_chunks())
    state = _required(path, "state", table.column("state").combine_chunks())
    for name in STATE_FEATURES:
        _required(path, f"state.{name}", state.field(name))
    tags = table.column("meta").combine_chunks().field("bp_window_tag")
    known = pc.is_in(tags, value_set=_WINDOW_SET)
    bad = pc.and_(pc.is_valid(tags), pc.invert(known))
    if pc.any(bad).as_py():
        line = int(pc.index(bad, True).as_py()) + 1
        raise DatasetError(
            f"{path}:{line}: meta.bp_window_tag is {tags[line - 1].as_py()!r}, expected one of "
            f"{list(WINDOW_TAGS)}"
        )


def check_parsed(source: Source, seeds: np.ndarray, t: np.ndarray) -> None:
    """The checks every columnar reader makes of a parsed source: each line's seed and ``t``
    where they belong, and a complete file's line count and size against its record.

    :param source: What was read.
    :param seeds: Its lines' ``seed``.
    :param t: Its lines' ``t``.
    :raises DatasetError: naming the file and line.
    """
    allowed = None if source.per_seed is None else list(source.per_seed)
    check_columns(source.path, seeds, t, source.seed, allowed, first_line=source.first_line)
    if source.complete:
        check_line_count(source.path, len(t), source.lines, source.promised_by)
        source.check_size()


def read_columns(
    path: str | os.PathLike[str], *, whole_lines_only: bool = False, part: Source | None = None
) -> Columns:
    """Parse a ``.jsonl`` (or ``.jsonl.gz`` / ``.jsonl.zst``) file into :class:`Columns`.

    :param path: The file.
    :param whole_lines_only: Drop a last line without a newline (a writer died mid-line).
    :param part: The resolved source, when only its byte range is to be read.
    :raises DatasetError: naming the file (and line, where there is one) of bad input.
    """
    source = Path(path)
    byte_range = part.byte_range if part is not None else None
    try:
        table = read_table(source, SCHEMA, whole_lines_only=whole_lines_only, byte_range=byte_range)
    except (pa.ArrowInvalid, OSError) as exc:
        if isinstance(exc, FileNotFoundError):
            raise DatasetError(f"{source}: no such file") from exc
        raise explain(source, whole_lines_only, exc, part) from exc
    check_table(source, table)
    state = table.column("state").combine_chunks()
    paths, path_counts = _list_parts(source, "state.paths", state.field("paths"))
    masks, mask_counts = _list_parts(
        source, "action_mask", table.column("action_mask").combine_chunks()
    )
    _required(source, "action_mask[]", masks)

    def column(name: str) -> np.ndarray:
        array = _required(source, name, table.column(name).combine_chunks())
        return np.asarray(array.to_numpy(zero_copy_only=False))

    state_matrix = np.empty((len(table), len(STATE_FEATURES)), dtype=np.float64)
    for j, name in enumerate(STATE_FEATURES):
        state_matrix[:, j] = _required(source, f"state.{name}", state.field(name)).to_numpy(
            zero_copy_only=False
        )
    features = _feature_set(source, paths, part)
    path_matrix = np.empty((len(paths), len(features)), dtype=np.float64)
    for j, name in enumerate(features):
        field = paths.field(name)
        if field.null_count:
            row = int(np.searchsorted(np.cumsum(path_counts), _first_null(field), side="right"))
            raise DatasetError(
                f"{source}:{row + 1}: field 'state.paths[].{name}' is missing or null "
                "(expected a number)"
            )
        path_matrix[:, j] = field.to_numpy(zero_copy_only=False)
    meta = table.column("meta").combine_chunks()
    windows: Any = pc.fill_null(pc.index_in(meta.field("bp_window_tag"), value_set=_WINDOW_SET), -1)
    return Columns(
        t=column("t"),
        seeds=column("seed"),
        state=state_matrix,
        path_values=path_matrix,
        path_counts=path_counts,
        actions=column("action"),
        rewards=column("reward"),
        mask_values=np.asarray(masks.to_numpy(zero_copy_only=False), dtype=bool),
        mask_counts=mask_counts,
        windows=windows.to_numpy(zero_copy_only=False).astype(np.int8),
        behaviour=behaviour_columns(meta),
        path_features=features if len(paths) or (part and part.path_features) else None,
        source=str(source),
    )


#: What a row without a :data:`BEHAVIOUR_FIELDS` field holds in its column.
BEHAVIOUR_FILL: dict[str, Any] = {"behaviour": "", "explored": False, "propensity": np.nan}
_BEHAVIOUR_DTYPES = {"behaviour": np.str_, "explored": np.bool_, "propensity": np.float64}


def behaviour_columns(meta: pa.StructArray) -> dict[str, np.ndarray]:
    """The :data:`BEHAVIOUR_FIELDS` some row of ``meta`` holds, as numpy columns (rows without
    one take :data:`BEHAVIOUR_FILL`).

    :param meta: The parsed ``meta`` column (a struct holding those fields).

        >>> meta = pa.array([{"behaviour": "ksp_ff/first_fit", "explored": None},
        ...                  {"behaviour": None, "explored": None}],
        ...                 pa.struct([("behaviour", pa.string()), ("explored", pa.bool_())]))
        >>> behaviour_columns(meta)
        {'behaviour': array(['ksp_ff/first_fit', ''], dtype='<U16')}
    """
    columns: dict[str, np.ndarray] = {}
    for name in BEHAVIOUR_FIELDS:
        if meta.type.get_field_index(name) < 0:
            continue
        values = meta.field(name)
        if values.null_count == len(values):
            continue
        filled = pc.fill_null(values, BEHAVIOUR_FILL[name]).to_numpy(zero_copy_only=False)
        columns[name] = np.asarray(filled).astype(_BEHAVIOUR_DTYPES[name])
    return columns


def _feature_set(source: Path, paths: pa.Array, part: Source | None) -> tuple[str, ...]:
    """The path features the file holds: the list its manifest (or merge record) records,
    else (data made before) the feature set holding every feature some path holds; a path
    that lacks one is then refused by the column read, naming its line.

    :raises DatasetError: naming the file, when a path holds a feature the recorded list
        does not (or no set holds).
    """
    held = (
        field.name
        for field, values in zip(paths.type, paths.flatten(), strict=True)
        if values.null_count < len(values)
    )
    recorded = part.path_features if part is not None else None
    try:
        return feature_set_holding(held, recorded=recorded)
    except ValueError as exc:
        raise DatasetError(f"{source}: state.paths[]: {exc}") from None
