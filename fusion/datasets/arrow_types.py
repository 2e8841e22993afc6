"""The record's declaration (:mod:`fusion.config.features`) as Arrow types.

A field's Arrow type follows from its kind and range: ``float`` is float64, ``bool`` bool,
``str`` and ``hex`` string; an ``int`` is int8 when its range is numbers within -128 .. 127
(the flags), int64 when it is unbounded (``t``, ``seed``, ``request_id``, ``bit_rate``) and
int32 otherwise (a size of the scenario bounds it: nodes, slots, links, paths); ``<kind> list``
is a list of those, and an object (``state``, ``path``, ``meta``) a struct of its group's
fields in the declared order. ``keep`` narrows the objects to some of their fields.

    >>> from fusion.config.features import FEATURES
    >>> arrow_type(FEATURES["failure_mask"]), arrow_type(FEATURES["path_hops"])
    (DataType(int8), DataType(int32))
    >>> group_type("meta", lambda group, name: name in ("bp_window_tag", "start_slot"))
    StructType(struct<bp_window_tag: string, start_slot: int32>)
    >>> record_schema().names
    ['t', 'seed', 'state', 'action', 'reward', 'next_state', 'action_mask', 'meta']
"""

from __future__ import annotations

from collections.abc import Callable

import pyarrow as pa

from fusion.config.features import GROUP_KINDS, RECORD_FIELDS, Feature

__all__ = ["Keep", "arrow_type", "group_type", "record_schema"]

#: ``keep(group, name)``: whether an object of ``group`` keeps its field ``name``.
Keep = Callable[[str, str], bool]

_SCALARS = {"float": pa.float64(), "bool": pa.bool_(), "str": pa.string(), "hex": pa.string()}


def _int_type(field: Feature) -> pa.DataType:
    """int8, int32 or int64, by the field's range."""
    if field.high == "inf":
        return pa.int64()
    try:
        low, high = int(field.low), int(field.high)
    except ValueError:  # a scenario's size: nodes, slots, links, paths
        return pa.int32()
    return pa.int8() if low >= -128 and high <= 127 else pa.int32()


def arrow_type(field: Feature, keep: Keep | None = None) -> pa.DataType:
    """The Arrow type of a declared field's values.

    :param field: A field of :data:`~fusion.config.features.RECORD_FIELDS`.
    :param keep: Which fields of the objects inside to keep (``None``: all).
    """
    base = field.kind.removesuffix(" list")
    if base in GROUP_KINDS:
        kind: pa.DataType = group_type(base, keep)
    elif base == "int":
        kind = _int_type(field)
    else:
        kind = _SCALARS[base]
    return pa.list_(kind) if field.kind.endswith(" list") else kind


def group_type(group: str, keep: Keep | None = None) -> pa.StructType:
    """An object of ``group`` (``state``, ``path``, ``meta``) as a struct.

    :param group: A key of :data:`~fusion.config.features.RECORD_FIELDS`.
    :param keep: Which fields to keep (``None``: all).
    """
    return pa.struct(
        [
            pa.field(f.name, arrow_type(f, keep))
            for f in RECORD_FIELDS[group]
            if keep is None or keep(group, f.name)
        ]
    )


def record_schema(keep: Keep | None = None) -> pa.Schema:
    """A whole line as an Arrow schema: every field the record declares, or those kept.

    :param keep: Which fields to keep, ``keep("record", name)`` for the line's own.
    """
    return pa.schema(group_type("record", keep))
