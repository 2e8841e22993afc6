"""One rule for the hand-fed writer and ``fusion validate``: what one refuses, the other does.

Records are generated from the declaration (:data:`fusion.config.features.RECORD_FIELDS`: its
fields' kinds, the feature sets), then mutated (a field dropped, a kind changed, NaN, a bad
tag, a mask of another width, an action outside the mask, a key the declaration lacks, a path
short of its set, another set than the file's ...). The writer logs a valid record and then
the candidate; the validator reads a file holding the same two records as JSON lines written
here, with no check. NaN reaches the validator as the null orjson writes for it, so NaN is put
only where null is refused too (a declared number, not a caller's own meta field).
"""

from __future__ import annotations

import copy
import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fusion.config.features import PATH_FEATURE_SETS, RECORD_FIELDS
from fusion.datasets.arrays import to_arrays
from fusion.errors import DatasetError
from fusion.storage.schema import REQUIRED, WINDOW_TAGS
from fusion.storage.shard_writer import DatasetLogger
from fusion.storage.validate import validate_dataset

KINDS = {group: {f.name: f.kind for f in fields} for group, fields in RECORD_FIELDS.items()}
_OPT = orjson.OPT_APPEND_NEWLINE | orjson.OPT_SERIALIZE_NUMPY
_HEX = "0123456789abcdef"


def _value(kind: str, name: str) -> st.SearchStrategy[Any]:
    """A valid value of a declared scalar (or scalar list) kind."""
    if name == "bp_window_tag":
        return st.sampled_from(WINDOW_TAGS)
    scalars: dict[str, st.SearchStrategy[Any]] = {
        "int": st.integers(-3, 5000),
        "float": st.floats(-1e6, 1e6, allow_nan=False) | st.integers(0, 99),
        "bool": st.booleans(),
        "str": st.text(max_size=5),
        "hex": st.text(_HEX, min_size=1, max_size=8),
    }
    if kind.endswith(" list"):
        return st.lists(scalars[kind.removesuffix(" list")], max_size=3)
    return scalars[kind]


@st.composite
def _path(draw: st.DrawFn, features: tuple[str, ...], links: bool) -> dict[str, Any]:
    path = {name: draw(_value(KINDS["path"][name], name)) for name in features}
    if links:
        path["links"] = draw(_value(KINDS["path"]["links"], "links"))
    return path


@st.composite
def _state(draw: st.DrawFn, features: tuple[str, ...], k: int) -> dict[str, Any]:
    state: dict[str, Any] = {}
    for name, kind in KINDS["state"].items():
        if name == "paths":
            links = draw(st.booleans())
            state["paths"] = [draw(_path(features, links)) for _ in range(k)]
        elif name in REQUIRED["state"] or draw(st.booleans()):
            state[name] = draw(_value(kind, name))
    return state


@st.composite
def _record(draw: st.DrawFn, features: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Keyword arguments of ``log_transition``: a valid transition."""
    features = features or PATH_FEATURE_SETS[draw(st.sampled_from(sorted(PATH_FEATURE_SETS)))]
    k = draw(st.integers(0, 4))
    width = k if k else draw(st.integers(0, 3))
    mask = draw(st.lists(st.booleans(), min_size=width, max_size=width))
    feasible = [i for i, ok in enumerate(mask) if ok]
    action = draw(st.sampled_from([-1, *feasible]))
    meta = {
        name: draw(_value(kind, name))
        for name, kind in KINDS["meta"].items()
        if draw(st.booleans())
    }
    if draw(st.booleans()):  # a caller's own fact
        meta["note"] = draw(st.none() | st.text(max_size=4) | st.integers(0, 9))
    next_state = draw(st.none() | _state(features, k))
    return {
        "state": draw(_state(features, k)),
        "action": action,
        "reward": 1.0 if action >= 0 else -1.0,
        "next_state": next_state,
        "action_mask": mask,
        "meta": meta,
    }


def _objects(kw: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every object of a record with its group, to mutate."""
    found = [("state", kw["state"]), ("meta", kw["meta"])]
    found += [("path", path) for path in kw["state"]["paths"]]
    return found


_WRONG = [None, "3", True, 2.5, [], {}]


@st.composite
def _mutated(draw: st.DrawFn, kw: dict[str, Any]) -> dict[str, Any]:
    bad = copy.deepcopy(kw)
    how = draw(
        st.sampled_from(
            [
                "drop",
                "kind",
                "nan",
                "tag",
                "width",
                "action",
                "reward",
                "undeclared",
                "digit key",
                "numpy",
                "digits",
                "other set",
                "sign",
                "exponent",
                "int to float",
                "string digits",
                "none",
            ]
        )
    )
    group, target = draw(st.sampled_from(_objects(bad)))
    declared = [key for key in target if key in KINDS[group]]
    if how == "drop" and target:
        target.pop(draw(st.sampled_from(sorted(target))))
    elif how == "kind" and declared:
        target[draw(st.sampled_from(declared))] = draw(st.sampled_from(_WRONG))
    elif how == "nan":
        numbers = [k for k in declared if KINDS[group][k] in ("int", "float")]
        if numbers:
            target[draw(st.sampled_from(numbers))] = draw(st.sampled_from([math.nan, -math.inf]))
    elif how == "tag":
        bad["meta"]["bp_window_tag"] = draw(st.sampled_from(["bogus", "pre1", "", "PRE"]))
    elif how == "width":
        bad["action_mask"] = bad["action_mask"] + [draw(st.booleans())]
        if draw(st.booleans()) and len(bad["action_mask"]) > 1:
            bad["action_mask"] = bad["action_mask"][:-2]
            if bad["action"] >= len(bad["action_mask"]):
                bad["action"] = -1
                bad["reward"] = -1.0
    elif how == "action":
        mask = bad["action_mask"]
        infeasible = [i for i, ok in enumerate(mask) if not ok] + [len(mask), -2]
        bad["action"] = draw(st.sampled_from(infeasible))
        bad["reward"] = 1.0 if bad["action"] >= 0 else -1.0
    elif how == "reward":
        bad["reward"] = -bad["reward"]
    elif how == "undeclared":
        target[draw(st.sampled_from(["foo", "path_hops1", "links2"]))] = 1
    elif how == "digit key" and declared:  # a declared key with a digit: another key, in place
        key = draw(st.sampled_from(declared))
        renamed = {(name + "1" if name == key else name): value for name, value in target.items()}
        target.clear()
        target.update(renamed)
    elif how == "numpy":  # numpy scalars are written as the numbers they are
        for key in declared:
            value = target[key]
            if type(value) is int:
                target[key] = np.int64(value)
            elif type(value) is float:
                target[key] = np.float64(value)
            elif type(value) is bool:
                target[key] = np.bool_(value)
    elif how == "digits":  # other numbers of the same kinds (fewer or more digits)
        for key in declared:
            value = target[key]
            if type(value) is int:
                target[key] = value * 1000 + 7 if draw(st.booleans()) else value // 10
            elif type(value) is float:
                target[key] = value * 1.37 + 0.001
    elif how == "other set":  # every path of the state holds the other set
        for index, path in enumerate(bad["state"]["paths"]):
            others = [f for f in PATH_FEATURE_SETS.values() if set(f) != set(path) - {"links"}]
            bad["state"]["paths"][index] = {name: 0 for name in others[0]}
    else:
        _renumber(draw, how, group, target, declared)
    return bad


def _renumber(
    draw: st.DrawFn, how: str, group: str, target: dict[str, Any], declared: list[str]
) -> None:
    """Mutations a line's *shape* (its digits made 0) may hide: a number's sign or exponent,
    an integer written as a float, the digits of a string (a hex spectrum, a window tag)."""
    for key in declared:
        value, kind = target[key], KINDS[group][key]
        if how == "sign" and type(value) in (int, float):
            target[key] = -value
        elif how == "exponent" and type(value) is float:
            target[key] = value * draw(st.sampled_from([1e-30, 1e30, 1e-7]))
        elif how == "int to float" and type(value) is int:
            target[key] = float(value)
        elif how == "string digits" and kind in ("str", "hex", "hex list"):
            digits = st.text("0123456789", min_size=1, max_size=2)
            if type(value) is str:
                target[key] = value + draw(digits)
            elif value:
                target[key] = [*value[:-1], draw(st.sampled_from(["", "g"])) + draw(digits)]


def _writer_refuses(first: dict[str, Any], candidate: dict[str, Any], where: Path) -> bool:
    with DatasetLogger(where / "written.jsonl", {"seed": 1}) as log:
        log.log_transition(**first)
        try:
            log.log_transition(**candidate)
        except ValueError:
            return True
    return False


def _validate_refuses(first: dict[str, Any], candidate: dict[str, Any], where: Path) -> bool:
    path = where / "unchecked.jsonl"
    lines = [
        orjson.dumps({"t": t, "seed": 1, **kw}, option=_OPT)
        for t, kw in enumerate((first, candidate))
    ]
    path.write_bytes(b"".join(lines))
    report = validate_dataset(path)
    assert all(":1:" not in p for p in report.problems), report.problems  # the valid one
    return not report.ok


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_writer_and_validate_when_record_mutated_refuse_it_alike(data):
    first = data.draw(_record())
    features = tuple(k for k in (first["state"]["paths"] or [{}])[0] if k != "links") or None
    # the candidate is shaped like the first (the writer then has its shape at hand) or not
    base = first if data.draw(st.booleans()) else data.draw(_record(features))
    candidate = data.draw(_mutated(base))
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(tmp)
        writer = _writer_refuses(first, candidate, where)
        validator = _validate_refuses(first, candidate, where)
    assert writer == validator, (writer, validator, candidate)


def _redigit(line: bytes, edits: list[tuple[int, int, int]]) -> bytes:
    """``line`` with digits changed, dropped or put in (anywhere: numbers, strings, keys)."""
    text = bytearray(line)
    for how, where, digit in edits:
        positions = [i for i, c in enumerate(text) if 48 <= c <= 57]
        if how < 2 and positions:
            at = positions[where % len(positions)]
            if how == 0:
                text[at] = 48 + digit
            else:
                del text[at]
        else:
            text.insert(1 + where % (len(text) - 2), 48 + digit)
    return bytes(text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_writer_and_validate_when_line_redigited_refuse_it_alike(data):
    # What the writer's shortcuts (the last line, a line's shape, its loose shape) rest on:
    # digits alone never turn a line the rule refuses into one it takes. Lines made from a
    # valid one by changing, dropping or adding digits, anywhere, with t and seed kept.
    first = data.draw(_record())
    line = orjson.dumps({"t": 1, "seed": 1, **first}, option=_OPT)
    edits = st.tuples(st.integers(0, 2), st.integers(0, 10**6), st.integers(0, 9))
    try:
        parsed = orjson.loads(_redigit(line, data.draw(st.lists(edits, min_size=1, max_size=3))))
    except orjson.JSONDecodeError:
        return
    if not isinstance(parsed, dict) or (parsed.get("t"), parsed.get("seed")) != (1, 1):
        return
    if parsed.keys() != {"t", "seed", *first}:
        return
    candidate = {key: value for key, value in parsed.items() if key not in ("t", "seed")}
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(tmp)
        writer = _writer_refuses(first, candidate, where)
        validator = _validate_refuses(first, candidate, where)
    assert writer == validator, (writer, validator, candidate)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda kw: kw["state"]["paths"][1].pop("frag_indicator"), "state.paths[1]"),
        (lambda kw: kw["meta"].update(bp_window_tag="bogus"), "meta.bp_window_tag"),
    ],
)
def test_writer_and_validate_when_issue_31_records_refuse_them_as_to_arrays_does(
    tmp_path, change, field
):
    from conftest import example

    first, bad = example(0), example(1)
    change(bad)
    with (
        DatasetLogger(tmp_path / "w.jsonl", {"seed": 1}) as log,
        pytest.raises(ValueError, match=r"transition t=1: " + field.replace("[", r"\[")),
    ):
        log.log_transition(**first)
        log.log_transition(**bad)
    unchecked = tmp_path / "u.jsonl"
    unchecked.write_bytes(
        b"".join(
            orjson.dumps({"t": t, "seed": 1, **kw}, option=_OPT)
            for t, kw in enumerate((first, bad))
        )
    )
    assert any(field in p for p in validate_dataset(unchecked).problems)
    with pytest.raises(DatasetError, match=r"frag_indicator|bp_window_tag"):
        to_arrays(unchecked, cache=False)


def test_writer_when_paths_change_feature_set_refuses_naming_the_file_first(tmp_path):
    from conftest import example

    first, other = example(0), example(1)
    extended = PATH_FEATURE_SETS["extended"]
    other["state"]["paths"] = [dict.fromkeys(extended, 0) for _ in range(4)]
    with DatasetLogger(tmp_path / "w.jsonl", {"seed": 1}) as log:
        log.log_transition(**first)
        with pytest.raises(ValueError, match=r"t=1: .*the file's first transition with paths"):
            log.log_transition(**other)
        log.log_transition(**example(2))  # the file's set again: taken
    assert log.transition_count == 2


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_to_arrays_when_validate_passes_reads_every_line(data):
    every = PATH_FEATURE_SETS["extended"]
    features = data.draw(
        st.sampled_from(sorted(PATH_FEATURE_SETS.values()))
        | st.sets(st.sampled_from(every), min_size=1).map(
            lambda some: tuple(n for n in every if n in some)  # any declared list
        )
    )
    records = data.draw(st.lists(_record(features), min_size=1, max_size=4))
    for kw in records:  # the array view needs the request's features, which hand-fed may omit
        for state in (kw["state"], kw["next_state"]):
            if state is not None:
                state.update(
                    {n: 0 for n in KINDS["state"] if KINDS["state"][n] in ("int", "float")}
                )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "d.jsonl"
        path.write_bytes(
            b"".join(
                orjson.dumps({"t": t, "seed": 1, **kw}, option=_OPT) for t, kw in enumerate(records)
            )
        )
        assert validate_dataset(path).ok
        arrays = to_arrays(path, cache=False)
    assert len(arrays) == len(records)
    if any(kw["state"]["paths"] for kw in records):  # (no path: nothing says which)
        assert tuple(arrays.metadata["path_features"]) == features
