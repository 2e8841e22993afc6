"""Validation: what it flags, and the CLI's exit codes."""

from __future__ import annotations

import re

import orjson
import pytest

from fusion.cli import main
from fusion.storage.schema import check_record
from fusion.storage.shard_names import shard_file_name
from fusion.storage.validate import validate_dataset


def _rewrite_line(path, index, change):
    lines = path.read_bytes().splitlines(keepends=True)
    record = orjson.loads(lines[index])
    change(record)
    lines[index] = orjson.dumps(record) + b"\n"
    path.write_bytes(b"".join(lines))


def test_validate_when_dataset_clean_is_ok(dataset, capsys):
    assert validate_dataset(dataset).ok
    assert main(["validate", str(dataset)]) == 0
    assert "valid" in capsys.readouterr().out


@pytest.mark.damages
@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda r: r.update(t=7), "t is 7, expected 2"),
        (lambda r: r.update(reward=0.5), "reward 0.5 does not match"),
        (lambda r: r.update(action_mask=[True]), "action_mask has 1 entries"),
        (lambda r: r.update(action=2), "action 2 is not -1"),
        (lambda r: r.update(seed=99), "seed is 99"),
        (lambda r: r.pop("meta"), "missing ['meta']"),
        (lambda r: r["state"].pop("dst"), "state lacks ['dst']"),
    ],
)
def test_validate_when_line_breaks_schema_names_file_line_and_problem(dataset, change, expected):
    shard = dataset / shard_file_name(2)
    _rewrite_line(shard, 2, change)
    report = validate_dataset(dataset)
    assert not report.ok
    assert any(f"{shard.name}:3" in p and expected in p for p in report.problems), report.problems
    assert main(["validate", str(dataset)]) == 1


@pytest.mark.damages
def test_validate_when_shard_changed_flags_checksum_and_unlisted_file(dataset):
    shard = dataset / shard_file_name(1)
    shard.write_bytes(shard.read_bytes().replace(b'"src":1', b'"src":2', 1))
    (dataset / "offline_data.seed77.jsonl").write_bytes(b"")
    report = validate_dataset(dataset)
    assert any("sha256" in p and shard.name in p for p in report.problems)
    # a file no record names is not the dataset's: said, not counted against it
    assert any("seed77" in w and "no manifest entry or sidecar" in w for w in report.warnings)


def test_validate_when_manifest_missing_reports_it(tmp_path):
    report = validate_dataset(tmp_path)
    assert not report.ok and "no manifest" in report.problems[0]


def test_check_record_when_valid_example_has_no_problems():
    from conftest import example

    kw = example(0)
    record = {"t": 0, "seed": 1, **kw}
    assert check_record(record, 0, 1) == []


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda kw: kw["state"].pop("dst"), "state lacks ['dst']"),
        (lambda kw: kw["state"].update(slots_needed="3"), "state.slots_needed is '3'"),
        (lambda kw: kw["state"]["paths"][1].update(path_hops=None), "paths[1].path_hops is None"),
        (lambda kw: kw["state"]["paths"].__setitem__(0, 7), "paths[0] is int"),
    ],
)
def test_writer_and_validate_when_state_breaks_the_rule_refuse_it_alike(tmp_path, change, expected):
    from conftest import example

    from fusion.storage.shard_writer import DatasetLogger

    kw = example(0)
    change(kw)
    with (
        DatasetLogger(tmp_path / "x.jsonl", {"seed": 1}) as log,
        pytest.raises(ValueError, match=re.escape(expected)),
    ):
        log.log_transition(**kw)
    record = {"t": 0, "seed": 1, **kw}
    assert any(expected in p for p in check_record(record, 0, 1))
