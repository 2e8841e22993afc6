"""Nothing a user writes is lost, shadowed or mislabelled: overwrite, outputs, concurrent runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from fusion.cli import main
from fusion.datasets.arrays import to_arrays
from fusion.storage.loader import load_dataset
from fusion.storage.study_layout import is_study
from fusion.storage.validate import validate_dataset

SMALL = ["--set", "general_settings.num_requests=200", "--quiet", "--workers", "1"]


def _sweep(out: Path, *extra: str) -> int:
    return main(["sweep", "--seeds", "0-1", "--out", str(out), *SMALL, *extra])


def _study(out: Path, *extra: str) -> int:
    grid = ["--grid", "general_settings.erlang=200,300"]
    return main(["sweep", "--seeds", "0-1", "--out", str(out), *grid, *SMALL, *extra])


def test_study_overwrite_when_points_hold_caches_and_notes_replaces_the_study_keeps_the_notes(
    tmp_path,
):
    out = tmp_path / "ov"
    assert _study(out) == 0
    to_arrays(out)  # an array cache in every point directory
    (out / "erlang=200" / "my_notes.txt").write_text("a point's extra file")
    (out / "README.txt").write_text("the study's notes, at its top")
    assert _study(out, "--overwrite") == 0
    assert validate_dataset(out).ok
    assert (out / "erlang=200" / "my_notes.txt").exists()  # no record names it: it stays
    assert (out / "README.txt").exists()  # the top level's other files are kept
    assert _study(out, "--resume") == 0
    assert len(list(load_dataset(out))) == 2 * 2 * 200


def test_study_overwrite_when_the_grid_changes_leaves_no_old_point_directory(tmp_path):
    out = tmp_path / "ov"
    assert _study(out) == 0
    grid = ["--grid", "general_settings.k_paths=2,3"]
    argv = ["sweep", "--seeds", "0", "--out", str(out), *grid, *SMALL, "--overwrite"]
    assert main(argv) == 0
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["k_paths=2", "k_paths=3"]


def test_plain_sweep_overwrite_when_directory_holds_a_study_replaces_it(tmp_path):
    out = tmp_path / "d"
    assert _study(out) == 0
    assert _sweep(out, "--overwrite") == 0
    assert not is_study(out) and not (out / "erlang=200").exists()
    assert {r["seed"] for r in load_dataset(out)} == {0, 1}
    assert validate_dataset(out).ok


def test_study_overwrite_when_directory_holds_a_dataset_replaces_it(tmp_path, capsys):
    out = tmp_path / "d"
    assert _sweep(out) == 0
    assert _study(out, "--resume") == 2  # a dataset is not a study to resume
    assert "holds a dataset" in capsys.readouterr().err
    assert _study(out, "--overwrite") == 0
    assert not (out / "manifest.json").exists() and is_study(out)
    assert validate_dataset(out).ok


def test_plain_resume_when_directory_holds_a_study_exits_2(tmp_path, capsys):
    out = tmp_path / "d"
    assert _study(out) == 0
    assert _sweep(out, "--resume") == 2
    assert "holds a study" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["merge", "{d}", "-o", "{d}/offline_data.seed1.jsonl"],
        ["merge", "{d}", "-o", "{d}/offline_data.seed0.jsonl.shard.json"],
        ["export", "{d}", "--format", "npz", "-o", "{d}/offline_data.seed0.jsonl"],
        ["export", "{d}", "--format", "parquet", "-o", "{d}/manifest.json"],
    ],
)
def test_output_when_it_names_a_file_the_command_reads_exits_2_and_changes_nothing(
    tmp_path, argv, capsys
):
    d = tmp_path / "d"
    assert _sweep(d) == 0
    before = {p.name: p.read_bytes() for p in d.iterdir()}
    assert main([a.format(d=d) for a in argv]) == 2
    assert "reads" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in d.iterdir()} == before
    assert validate_dataset(d).ok


def test_study_merge_when_output_is_inside_a_point_over_its_shards_exits_2(tmp_path):
    out = tmp_path / "s"
    assert _study(out) == 0
    target = out / "erlang=200" / "offline_data.seed0.jsonl"
    assert main(["merge", str(out), "--all", "-o", str(target)]) == 2
    assert validate_dataset(out).ok


def _same_size_edit(shard: Path, old: bytes, new: bytes) -> None:
    """Change a shard's bytes without changing its size (nor its mtime)."""
    assert len(old) == len(new)
    stat = shard.stat()
    data = shard.read_bytes()
    assert old in data
    shard.write_bytes(data.replace(old, new, 1))
    import os

    os.utime(shard, ns=(stat.st_atime_ns, stat.st_mtime_ns))


@pytest.mark.damages
def test_exports_when_a_shard_was_edited_to_the_same_size_refuse_it(tmp_path):
    from fusion.errors import DatasetError
    from fusion.interop.export import export_dataset

    d = tmp_path / "d"
    assert _sweep(d) == 0
    to_arrays(d)  # a cache made before the edit
    shard = d / "offline_data.seed0.jsonl"
    _same_size_edit(shard, b'"action":0,', b'"action":3,')
    for fmt in ("npz", "parquet"):
        with pytest.raises(DatasetError, match="sha256"):
            export_dataset(d, tmp_path / f"x.{fmt}", fmt)
        assert not (tmp_path / f"x.{fmt}").exists()
    with pytest.raises(DatasetError, match="sha256"):
        to_arrays(d, verify=True)  # the cache does not vouch for the bytes


def test_parquet_export_when_a_line_breaks_the_schema_refuses_naming_it(tmp_path):
    from conftest import example

    from fusion.errors import DatasetError
    from fusion.interop.export import export_dataset
    from fusion.storage.shard_writer import DatasetLogger

    for change, field in (
        (lambda line: line.replace(b'"bp_window_tag":"pre"', b'"bp_window_tag":"pry"'), "pry"),
        (lambda line: line.replace(b'"src":', b'"srk":'), "state.src"),
    ):
        path = tmp_path / "x.jsonl"
        with DatasetLogger(path, {"seed": 0}) as log:
            log.log_transition(**example(0))
        path.write_bytes(change(path.read_bytes()))
        with pytest.raises(DatasetError, match=field):
            export_dataset(path, tmp_path / "x.parquet", "parquet")


def test_exports_of_a_study_and_its_merge_carry_the_axis_columns(tmp_path):
    import numpy as np
    import pyarrow.parquet as pq

    from fusion.interop.export import export_dataset

    s = tmp_path / "s"
    assert _study(s) == 0
    merged = tmp_path / "all.jsonl"
    assert main(["merge", str(s), "--all", "-o", str(merged)]) == 0
    for source in (s, merged):
        rows = export_dataset(source, tmp_path / "x.parquet", "parquet", overwrite=True)
        table = pq.read_table(tmp_path / "x.parquet")
        assert rows == 800 and sorted(set(table.column("erlang").to_pylist())) == [200.0, 300.0]
        export_dataset(source, tmp_path / "x.npz", "npz", overwrite=True)
        with np.load(tmp_path / "x.npz") as npz:
            assert sorted(set(npz["point.erlang"].tolist())) == [200.0, 300.0]
            assert len(npz["point.erlang"]) == len(npz["actions"]) == 800


def test_grid_when_logging_is_an_axis_exits_2(tmp_path, capsys):
    grid = ["--grid", "dataset_logging.log_offline_dataset=true,false"]
    assert main(["sweep", "--out", str(tmp_path / "s"), *grid, *SMALL]) == 2
    assert "log_offline_dataset cannot be an axis" in capsys.readouterr().err


def test_set_when_the_key_is_an_axis_exits_2(tmp_path, capsys):
    grid = ["--grid", "general_settings.erlang=200,300"]
    argv = ["sweep", "--out", str(tmp_path / "s"), *grid, *SMALL]
    assert main([*argv, "--set", "general_settings.erlang=250"]) == 2
    assert "is an axis" in capsys.readouterr().err


def test_study_resumed_with_fewer_seeds_records_every_seed_it_holds(tmp_path):
    from fusion.report.study_inspection import inspect_study
    from fusion.storage.study_layout import read_study

    s = tmp_path / "s"
    grid = ["--grid", "general_settings.erlang=200,300"]
    assert main(["sweep", "--seeds", "0-3", "--out", str(s), *grid, *SMALL]) == 0
    assert main(["sweep", "--seeds", "0-2", "--out", str(s), *grid, *SMALL, "--resume"]) == 0
    assert read_study(s)["seeds"] == [0, 1, 2, 3]
    assert inspect_study(s)["seeds"] == [0, 1, 2, 3]
    assert all(p["bp"]["n"] == 4 for p in inspect_study(s)["points"])


def test_statistics_when_one_seed_have_no_interval_and_probabilities_stay_in_0_1(tmp_path):
    from fusion.report.inspection import format_inspection, inspect_dataset
    from fusion.report.intervals import PROBABILITY, interval

    d = tmp_path / "d"
    assert main(["sweep", "--seeds", "0", "--out", str(d), *SMALL]) == 0
    report = inspect_dataset(d)
    assert report["across_seeds"]["bp"]["std"] is None
    assert "no interval" in format_inspection(report)
    two = interval([0.001, 0.05], PROBABILITY)
    assert 0.0 <= two["ci95_low"] <= two["ci95_high"] <= 1.0


def test_seeds_option_when_empty_exits_2_instead_of_the_default(tmp_path, capsys):
    assert main(["sweep", "--seeds", "", "--out", str(tmp_path / "d"), *SMALL]) == 2
    assert main(["evaluate", "--seeds", "", *SMALL[:2]]) == 2
    assert "no seeds" in capsys.readouterr().err


def test_run_when_set_given_applies_it(tmp_path):
    out = tmp_path / "r"
    assert (
        main(
            ["run", "--seed", "3", "--out", str(out), "--set", "general_settings.num_requests=120"]
        )
        == 0
    )
    assert len(list(load_dataset(out))) == 120


def test_run_when_out_is_a_study_exits_2_and_writes_nothing_there(tmp_path, capsys):
    s = tmp_path / "s"
    assert _study(s) == 0
    before = sorted(p.name for p in s.iterdir())
    assert main(["run", "--seed", "7", "--out", str(s), *SMALL[:2]]) == 2
    assert "is a study" in capsys.readouterr().err
    assert sorted(p.name for p in s.iterdir()) == before


def test_resume_when_config_changed_names_the_keys_and_the_set_that_resumes(tmp_path, capsys):
    out = tmp_path / "d"
    old = ["--set", "dataset_logging.path_features=seed", "--set", "general_settings.k_paths=3"]
    assert main(["sweep", "--seeds", "0-1", "--out", str(out), *SMALL, *old]) == 0
    capsys.readouterr()
    assert main(["sweep", "--seeds", "0-2", "--out", str(out), *SMALL, "--resume"]) == 2
    err = capsys.readouterr().err
    assert "[dataset_logging] path_features is seed there, extended here" in err
    assert "[general_settings] k_paths is 3 there, 4 here" in err
    hint = "--set dataset_logging.path_features=seed --set general_settings.k_paths=3"
    assert hint in err
    resumed = ["sweep", "--seeds", "0-2", "--out", str(out), *SMALL, "--resume"]
    assert main([*resumed, *hint.split()]) == 0
    assert [r["seed"] for r in load_dataset(out)].count(2) == 200


def test_study_resume_when_base_config_changed_names_the_keys_and_the_set(tmp_path, capsys):
    out = tmp_path / "s"
    grid = ["--grid", "policy_settings.policy=ksp_ff,ff_ksp"]
    old = ["--set", "general_settings.k_paths=3"]
    assert main(["sweep", "--seeds", "0", "--out", str(out), *grid, *SMALL, *old]) == 0
    capsys.readouterr()
    assert main(["sweep", "--seeds", "0-1", "--out", str(out), *grid, *SMALL, "--resume"]) == 2
    err = capsys.readouterr().err
    assert "[general_settings] k_paths is 3 there, 4 here" in err
    assert "--set general_settings.k_paths=3" in err
    assert (
        main(["sweep", "--seeds", "0-1", "--out", str(out), *grid, *SMALL, *old, "--resume"]) == 0
    )
