"""The record's declaration (:mod:`fusion.config.features`) as Arrow types.

A field's Arrow type follows from its kind and range: ``float`` is float64, ``bool`` bool,
``str`` and ``hex`` string; an ``int`` is int8 when its range is numbers within -128 .. 127
(the flags), int64 when it is unbounded (``t``, ``seed``, ``request_id``, ``bit_rate``) and
int32 otherwise (a size of the scenario bounds it: nodes, slots, links, paths); ``<kind> list``
is a list of those, and an object (``state``, ``path``, ``meta``) a struct of its group's
fields in the declared order. ``keep`` narrows the objects to some of their fields
(:func:`only` names them), and ``as_float`` reads the numbers of some objects as float64 (the
array view's, whose observations are floats whatever a hand-fed writer gave). Every Arrow
schema of a record (the column reader, the spectrum view, the Parquet export) is built here.

    >>> from fusion.config.features import FEATURES
    >>> arrow_type(FEATURES["failure_mask"]), arrow_type(FEATURES["path_hops"])
    (DataType(int8), DataType(int32))
    >>> group_type("meta", lambda group, name: name in ("bp_window_tag", "start_slot"))
    StructType(struct<bp_window_tag: string, start_slot: int32>)
    >>> record_schema().names
    ['t', 'seed', 'state', 'action', 'reward', 'next_state', 'action_mask', 'meta']
    >>> record_schema(only({"record": ["seed", "state"], "state": ["src"]}), as_float=["state"])
    seed: int64
    state: struct<src: double>
      child 0, src: double
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping

import pyarrow as pa

from fusion.config.features import GROUP_KINDS, RECORD_FIELDS, Feature

__all__ = ["Keep", "arrow_type", "group_type", "only", "record_schema"]

#: ``keep(group, name)``: whether an object of ``group`` keeps its field ``name``.
Keep = Callable[[str, str], bool]

_SCALARS = {"float": pa.float64(), "bool": pa.bool_(), "str": pa.string(), "hex": pa.string()}
_NUMBERS = ("int", "float")


def only(fields: Mapping[str, Collection[str]]) -> Keep:
    """A ``keep`` that keeps the named fields of each group (none of a group not named).

    :param fields: Group -> the names of the fields to keep.

        >>> keep = only({"meta": ["start_slot"]})
        >>> keep("meta", "start_slot"), keep("meta", "bp_window_tag"), keep("path", "links")
        (True, False, False)
    """
    named = {group: frozenset(names) for group, names in fields.items()}
    return lambda group, name: name in named.get(group, ())


def _int_type(field: Feature) -> pa.DataType:
    """int8, int32 or int64, by the field's range."""
    if field.high == "inf":
        return pa.int64()
    try:
        low, high = int(field.low), int(field.high)
    except ValueError:  # a scenario's size: nodes, slots, links, paths
        return pa.int32()
    return pa.int8() if low >= -128 and high <= 127 else pa.int32()


def arrow_type(
    field: Feature, keep: Keep | None = None, as_float: Collection[str] = ()
) -> pa.DataType:
    """The Arrow type of a declared field's values.

    :param field: A field of :data:`~fusion.config.features.RECORD_FIELDS`.
    :param keep: Which fields of the objects inside to keep (``None``: all).
    :param as_float: Groups whose ``int`` and ``float`` fields are read as float64.
    """
    base = field.kind.removesuffix(" list")
    if base in GROUP_KINDS:
        kind: pa.DataType = group_type(base, keep, as_float)
    elif base == "int":
        kind = _int_type(field)
    else:
        kind = _SCALARS[base]
    return pa.list_(kind) if field.kind.endswith(" list") else kind


def group_type(
    group: str, keep: Keep | None = None, as_float: Collection[str] = ()
) -> pa.StructType:
    """An object of ``group`` (``state``, ``path``, ``meta``) as a struct.

    :param group: A key of :data:`~fusion.config.features.RECORD_FIELDS`.
    :param keep: Which fields to keep (``None``: all).
    :param as_float: Groups whose ``int`` and ``float`` fields are read as float64.
    """
    return pa.struct(
        [
            pa.field(
                f.name,
                pa.float64()
                if group in as_float and f.kind in _NUMBERS
                else arrow_type(f, keep, as_float),
            )
            for f in RECORD_FIELDS[group]
            if keep is None or keep(group, f.name)
        ]
    )


def record_schema(keep: Keep | None = None, as_float: Collection[str] = ()) -> pa.Schema:
    """A whole line as an Arrow schema: every field the record declares, or those kept.

    :param keep: Which fields to keep, ``keep("record", name)`` for the line's own.
    :param as_float: Groups whose ``int`` and ``float`` fields are read as float64.
    """
    return pa.schema(group_type("record", keep, as_float))
