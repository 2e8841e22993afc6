"""Studies: grids over loads and policies, one pool, per-point datasets, readers, table, figure."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import orjson
import pyarrow.parquet as pq
import pytest

from fusion.cli import main
from fusion.config.config import load_config
from fusion.config.grid import apply_sets, parse_grid
from fusion.datasets.arrays import to_arrays
from fusion.errors import DatasetError
from fusion.interop.export import export_dataset
from fusion.report.study_inspection import inspect_study
from fusion.run import study as study_runner
from fusion.run.study import run_study
from fusion.run.sweep import run_sweep
from fusion.storage import manifest as mf
from fusion.storage.loader import load_dataset
from fusion.storage.merge import merge_shards
from fusion.storage.shard_names import merged_sidecar_path
from fusion.storage.study_layout import read_study
from fusion.storage.validate import validate_dataset

GRID = ["general_settings.erlang=200,300,400", "policy_settings.policy=ksp_ff,shortest_feasible"]
N = 2000


def _cfg(n: int = N):
    cfg = load_config().replace("general_settings", num_requests=n)
    return cfg.replace("failure_settings", t_repair_after_arrivals=n // 4)


def _strip(records):
    out = []
    for record in records:
        record["meta"].pop("decision_time_ms")
        record.pop("point", None)
        out.append(record)
    return out


@pytest.fixture(scope="module")
def study(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("study") / "s"
    result = run_study(
        _cfg(), parse_grid(_cfg(), GRID), seeds=range(4), workers=2, out=out, quiet=True
    )
    assert result.ok
    return out


def test_study_when_grid_is_3_loads_x_2_policies_runs_24_tasks_in_one_pool(tmp_path, monkeypatch):
    pools = []
    original = study_runner.run_jobs

    def counting(jobs, **kwargs):
        pools.append(len(jobs))
        return original(jobs, **kwargs)

    monkeypatch.setattr(study_runner, "run_jobs", counting)
    args = ["sweep", *(a for g in GRID for a in ("--grid", g)), "--seeds", "0-3"]
    args += ["--set", "general_settings.num_requests=300", "--out", str(tmp_path / "s")]
    assert main([*args, "--quiet", "--workers", "2"]) == 0
    assert pools == [24]
    record = read_study(tmp_path / "s")
    assert [p["dir"] for p in record["points"]] == [
        f"erlang={e}/policy={p}" for e in (200, 300, 400) for p in ("ksp_ff", "shortest_feasible")
    ]
    assert {p["status"] for p in record["points"]} == {"complete"}
    assert record["seeds"] == [0, 1, 2, 3]


def test_study_when_each_point_is_swept_alone_gives_the_same_dataset(study, tmp_path):
    for point in read_study(study)["points"]:
        cfg = _cfg().replace("general_settings", erlang=point["point"]["erlang"])
        cfg = cfg.replace("policy_settings", policy=point["point"]["policy"])
        alone = tmp_path / point["dir"].replace("/", "_")
        run_sweep(cfg, seeds=range(4), workers=2, out=alone, quiet=True)
        here = study / point["dir"]
        assert mf.read_manifest(here)["config"] == mf.read_manifest(alone)["config"]
        assert point["config_sha256"] == mf.read_manifest(alone)["config_sha256"]
        assert _strip(load_dataset(here)) == _strip(load_dataset(alone))


def test_study_when_given_by_fusion_erlang_start_stop_step_equals_the_matching_grid(tmp_path):
    ini = tmp_path / "study.ini"
    ini.write_text(
        "[general_settings]\nerlang_start = 200\nerlang_stop = 500\nerlang_step = 100\n"
        "num_requests = 300\nseeds = 0-1\n"
        f"[dataset_logging]\ndataset_output_path = {tmp_path / 'range' / 'offline_data.jsonl'}\n"
    )
    assert main(["sweep", "--config", str(ini), "--quiet", "--workers", "2"]) == 0
    grid = ["--grid", "general_settings.erlang=400,200,300", "--out", str(tmp_path / "grid")]
    assert main(["sweep", "--config", str(ini), "--set", "general_settings.erlang_start=0",
                 "--set", "general_settings.erlang_stop=0", "--set", "general_settings.erlang_step=0",
                 *grid, "--quiet", "--workers", "2"]) == 0  # fmt: skip
    by_range, by_grid = read_study(tmp_path / "range"), read_study(tmp_path / "grid")
    assert (
        by_range["axes"]
        == by_grid["axes"]
        == [{"section": "general_settings", "key": "erlang", "values": [200.0, 300.0, 400.0]}]
    )
    assert [p["config_sha256"] for p in by_range["points"]] == [
        p["config_sha256"] for p in by_grid["points"]
    ]
    assert _strip(load_dataset(tmp_path / "range")) == _strip(load_dataset(tmp_path / "grid"))


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--grid", "general_settings.erlangg=1,2"], "erlangg"),
        (["--grid", "nosection.erlang=1,2"], "nosection"),
        (["--grid", "general_settings.erlang=200,abc"], "'abc'"),
        (["--grid", "general_settings.erlang=-5"], "erlang"),
        (["--grid", "general_settings.erlang="], "list of values"),
        (["--grid", "general_settings.erlang=1,,2"], "list of values"),
        (["--grid", "general_settings.erlang=1,1"], "twice"),
        (["--grid", "general_settings.seeds=1,2"], "--seeds"),
        (["--grid", "policy_settings.policy=ksp_ff,nope"], "nope"),
        (["--grid", "general_settings.erlang"], "SECTION.KEY=VALUE"),
        (
            ["--grid", "general_settings.k_paths=2", "--grid", "general_settings.k_paths=3"],
            "already",
        ),
        (["--set", "general_settings.num_requests=zero"], "num_requests"),
        (["--set", "general_settings.erlang_start=300"], "erlang_step"),
    ],
)
def test_sweep_when_grid_or_set_is_bad_exits_2_naming_it(tmp_path, capsys, args, named):
    assert main(["sweep", *args, "--out", str(tmp_path / "s"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert named in err
    assert not (tmp_path / "s").exists() or not any((tmp_path / "s").iterdir())


def test_inspect_study_json_when_load_rises_blocking_rises_for_each_policy(study, capsys):
    assert main(["inspect", str(study), "--json"]) == 0
    report = orjson.loads(capsys.readouterr().out)
    assert len(report["points"]) == 6
    for policy in ("ksp_ff", "shortest_feasible"):
        curve = [p["bp"]["mean"] for p in report["points"] if p["point"]["policy"] == policy]
        assert curve == sorted(curve) and curve[0] < curve[-1], (policy, curve)
        assert all(p["bp"]["n"] == 4 for p in report["points"])
        row = next(p for p in report["points"] if p["point"]["policy"] == policy)
        assert row["bp"]["ci95_low"] <= row["bp"]["mean"] <= row["bp"]["ci95_high"]


def test_inspect_study_csv_when_written_has_one_row_per_point(study, tmp_path):
    assert main(["inspect", str(study), "--csv", str(tmp_path / "t.csv")]) == 0
    rows = (tmp_path / "t.csv").read_text().splitlines()
    assert rows[0].startswith("erlang,policy,status,bp_n,bp_mean,bp_std,bp_ci95_low")
    assert len(rows) == 7 and rows[1].startswith("200.0,ksp_ff,complete,4,")


def test_inspect_study_plot_when_drawn_shows_load_log_y_and_a_line_per_policy(study, tmp_path):
    pytest.importorskip("matplotlib")
    from fusion.report.study_inspection import plot_study

    fig = plot_study(inspect_study(study), tmp_path / "s.png")
    assert (tmp_path / "s.png").stat().st_size > 10_000
    main_ax, fail_ax = fig.axes  # the study has a failure: a second panel for its window
    for ax in (main_ax, fail_ax):
        assert ax.get_xlabel() == "Offered load (Erlang)"
        assert ax.get_yscale() == "log"
        assert "Blocking probability" in ax.get_ylabel()
        assert len(ax.containers) == 2  # one errorbar line per policy
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert labels == ["policy=ksp_ff", "policy=shortest_feasible"]
        xs = ax.containers[0].lines[0].get_xdata()
        assert list(xs) == [200.0, 300.0, 400.0]
    assert "fail" in fail_ax.get_title()


def test_readers_when_given_a_study_read_its_points_in_order_with_their_axes(study):
    rows = list(load_dataset(study, points={"erlang": [300]}, seeds=[1]))
    assert [r["point"] for r in rows[:1]] == [{"erlang": 300.0, "policy": "ksp_ff"}]
    assert rows[-1]["point"] == {"erlang": 300.0, "policy": "shortest_feasible"}
    assert len(rows) == 2 * N and {r["seed"] for r in rows} == {1}
    alone = list(load_dataset(study / "erlang=300/policy=ksp_ff", seeds=[1]))
    assert rows[:N] == [dict(r, point={"erlang": 300.0, "policy": "ksp_ff"}) for r in alone]
    arrays = to_arrays(study, cache=False)
    assert len(arrays) == 6 * 4 * N
    assert np.array_equal(np.unique(arrays.columns["erlang"]), [200.0, 300.0, 400.0])
    assert set(arrays.columns["policy"]) == {"ksp_ff", "shortest_feasible"}
    some = arrays.take(arrays.columns["erlang"] == 300.0)
    part = to_arrays(study, points={"erlang": [300]}, cache=False)
    assert np.array_equal(some.observations, part.observations)
    assert np.array_equal(some.columns["policy"], part.columns["policy"])
    assert validate_dataset(study).ok
    with pytest.raises(ValueError, match="axes are"):
        list(load_dataset(study, points={"load": [300]}))
    with pytest.raises(ValueError, match="no such point"):
        to_arrays(study, points={"erlang": [250]})


def test_study_when_resumed_with_other_axes_exits_2(study, tmp_path, capsys):
    args = ["sweep", "--grid", "general_settings.erlang=200,300", "--out", str(study)]
    args += ["--set", f"general_settings.num_requests={N}"]
    args += ["--set", f"failure_settings.t_repair_after_arrivals={N // 4}"]
    assert main([*args, "--resume", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "cannot resume: its axes differ" in err


def test_study_when_sigkilled_mid_run_then_resumed_equals_a_clean_study(tmp_path):
    ini = tmp_path / "s.ini"
    ini.write_text(
        "[general_settings]\nnum_requests = 20000\nseeds = 0-1\n"
        "[failure_settings]\nt_repair_after_arrivals = 5000\n"
        f"[dataset_logging]\ndataset_output_path = {tmp_path / 'data' / 'offline_data.jsonl'}\n"
    )
    cmd = [sys.executable, "-m", "fusion.cli", "sweep", "--config", str(ini)]
    cmd += ["--grid", "general_settings.erlang=200,300", "--workers", "2", "--quiet"]
    proc = subprocess.Popen(
        cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    data = tmp_path / "data"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        shards = list(data.glob("*/*.jsonl")) if data.exists() else []
        if len(shards) >= 2 and sum(p.stat().st_size for p in shards) > 2_000_000:
            break
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not validate_dataset(data).ok
    assert main([*cmd[3:], "--resume"]) == 0
    clean = tmp_path / "clean"
    assert main([*cmd[3:], "--out", str(clean)]) == 0
    assert validate_dataset(data).ok
    assert [p["status"] for p in read_study(data)["points"]] == ["complete", "complete"]
    assert _strip(load_dataset(data)) == _strip(load_dataset(clean))


def test_merge_study_when_per_point_gives_each_points_own_merge(study, tmp_path, capsys):
    out = tmp_path / "merged"
    assert main(["merge", str(study), "-o", str(out)]) == 0
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.jsonl"))
    assert len(files) == 6 and files[0] == "erlang=200/policy=ksp_ff.jsonl"
    alone = merge_shards(study / "erlang=300/policy=ksp_ff", tmp_path / "alone.jsonl")
    point = out / "erlang=300/policy=ksp_ff.jsonl"
    assert point.read_bytes() == (tmp_path / "alone.jsonl").read_bytes()
    assert orjson.loads(merged_sidecar_path(point).read_bytes())["sha256"] == alone["sha256"]


@pytest.fixture(scope="module")
def merged_all(study, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("merged") / "study.jsonl"
    assert main(["merge", str(study), "-o", str(out), "--all"]) == 0
    return out


def test_merge_study_all_when_read_back_equals_the_study(study, merged_all):
    record = orjson.loads(merged_sidecar_path(merged_all).read_bytes())
    assert record["format"] == "fusion-study-merge" and record["axes"] == ["erlang", "policy"]
    assert [p["dir"] for p in record["points"]] == [p["dir"] for p in read_study(study)["points"]]
    assert record["transitions"] == 6 * 4 * N == record["points"][-1]["line_start"] + 4 * N
    want = {"erlang": [300], "policy": ["shortest_feasible"]}
    rows = list(load_dataset(merged_all, points=want, seeds=[2, 3]))
    assert rows == list(load_dataset(study, points=want, seeds=[2, 3]))
    assert rows[0]["point"] == {"erlang": 300.0, "policy": "shortest_feasible"}
    assert rows == list(load_dataset(merged_all, points=want, seeds=[2, 3], verify=True))
    flat, by_point = to_arrays(merged_all, cache=False), to_arrays(study, cache=False)
    assert np.array_equal(flat.observations, by_point.observations)
    assert np.array_equal(flat.actions, by_point.actions)
    for axis in ("erlang", "policy"):
        assert np.array_equal(flat.columns[axis], by_point.columns[axis])
    parquet = merged_all.parent / "all.parquet"
    assert export_dataset(merged_all, parquet, "parquet") == record["transitions"]
    assert pq.read_table(parquet).column("action").to_pylist() == flat.actions.tolist()
    report = validate_dataset(merged_all)
    assert report.ok, report.problems
    assert len(report.shards) == 6 and report.shards[0]["point"]["erlang"] == 200.0
    with pytest.raises(ValueError, match="no such point"):
        list(load_dataset(merged_all, points={"erlang": [250]}))


def test_merge_study_all_when_points_are_swapped_or_changed_is_refused(merged_all, tmp_path):
    record = orjson.loads(merged_sidecar_path(merged_all).read_bytes())
    first, second = record["points"][0], record["points"][1]
    data = merged_all.read_bytes()
    a = data[first["byte_start"] : first["byte_end"]]
    b = data[second["byte_start"] : second["byte_end"]]
    swapped = tmp_path / "swapped.jsonl"
    swapped.write_bytes(b + a + data[second["byte_end"] :])
    # The record still tiles the file (ranges moved to the new sizes): only the hashes can tell.
    points = [dict(first, byte_end=len(b)), dict(second, byte_start=len(b)), *record["points"][2:]]
    tampered = dict(record, output=swapped.name, points=points)
    merged_sidecar_path(swapped).write_bytes(orjson.dumps(tampered))
    with pytest.raises(DatasetError, match="sha256"):
        list(load_dataset(swapped, verify=True))
    report = validate_dataset(swapped)
    assert any("sha256" in p for p in report.problems), report.problems
    cut = tmp_path / "cut.jsonl"
    cut.write_bytes(data[:-10])
    merged_sidecar_path(cut).write_bytes(orjson.dumps(dict(record, output=cut.name)))
    with pytest.raises(DatasetError, match="record disagree"):
        list(load_dataset(cut))
    assert not validate_dataset(cut).ok


def test_merge_study_all_when_compressed_exits_2(study, tmp_path, capsys):
    out = tmp_path / "all.jsonl.gz"
    assert main(["merge", str(study), "-o", str(out), "--all", "--compress", "gzip"]) == 2
    assert "--compress" in capsys.readouterr().err and not out.exists()


def test_set_erlang_when_preset_has_a_load_range_replaces_the_range():
    preset = load_config("gcn-rmsa-nsfnet")
    assert [axis.key for axis in parse_grid(preset, [])] == ["erlang"]  # the paper's loads
    one = apply_sets(preset, ["general_settings.erlang=250"])
    assert one.general.erlang == 250 and parse_grid(one, []) == []
    again = apply_sets(
        one,
        [
            "general_settings.erlang_start=150",
            "general_settings.erlang_stop=250",
            "general_settings.erlang_step=50",
        ],
    )  # a range set after it wins
    assert [axis.values for axis in parse_grid(again, [])] == [(150, 200)]
