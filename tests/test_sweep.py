"""Sweeps: parallel local processes, Ray, resume after SIGKILL, refusal, failures, CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest

from fusion.cli import main
from fusion.config.config import load_config
from fusion.run.simulation import run_simulation
from fusion.run.sweep import run_sweep
from fusion.storage import manifest as mf
from fusion.storage.integrity import file_sha256
from fusion.storage.loader import load_dataset
from fusion.storage.validate import validate_dataset

N = 1500


def _cfg(n: int = N):
    cfg = load_config().replace("general_settings", num_requests=n)
    return cfg.replace("failure_settings", t_repair_after_arrivals=n // 4)


def _ini(tmp_path: Path, n: int = N, erlang: float = 300.0) -> Path:
    path = tmp_path / "sweep.ini"
    path.write_text(
        f"[general_settings]\nnum_requests = {n}\nerlang = {erlang}\nseeds = 0-3\n"
        f"[failure_settings]\nt_repair_after_arrivals = {n // 4}\n"
        f"[dataset_logging]\ndataset_output_path = {tmp_path / 'data' / 'offline_data.jsonl'}\n"
    )
    return path


def _strip(transitions):
    out = []
    for tr in transitions:
        tr["meta"].pop("decision_time_ms")
        out.append(tr)
    return out


def test_sweep_when_four_seeds_on_two_workers_each_shard_equals_its_seed_run_alone(tmp_path):
    result = run_sweep(_cfg(), seeds=[3, 0, 2, 1], workers=2, out=tmp_path / "d", quiet=True)
    assert result.ok and [s.seed for s in result.seeds] == [0, 1, 2, 3]
    manifest = mf.read_manifest(tmp_path / "d")
    assert [e["seed"] for e in manifest["shards"]] == [0, 1, 2, 3]
    assert all(e["status"] == "complete" and e["transitions"] == N for e in manifest["shards"])
    assert validate_dataset(tmp_path / "d").ok
    for seed in (0, 3):
        run_simulation(_cfg(), seed, dataset_dir=str(tmp_path / f"alone{seed}"))
        assert _strip(load_dataset(tmp_path / f"alone{seed}")) == _strip(
            load_dataset(tmp_path / "d", seeds=[seed])
        )


def test_sweep_when_directory_exists_without_flags_exits_2_and_leaves_it_untouched(
    tmp_path, capsys
):
    ini = _ini(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    (data / "notes.txt").write_text("mine")
    assert main(["sweep", "--config", str(ini), "--quiet"]) == 2
    # no fusion record there: --resume or --overwrite would not help either
    assert "use an empty or new directory" in capsys.readouterr().err
    assert [p.name for p in data.iterdir()] == ["notes.txt"]


def test_sweep_when_resumed_with_another_config_is_refused_naming_both_hashes(tmp_path, capsys):
    ini = _ini(tmp_path)
    assert main(["sweep", "--config", str(ini), "--seeds", "0-1", "--quiet", "--workers", "1"]) == 0
    other = _ini(tmp_path, erlang=400.0)
    assert main(["sweep", "--config", str(other), "--resume", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert (
        err.count("sha256") >= 1 and len([w for w in err.split() if len(w.strip(",")) == 64]) == 2
    )
    assert "[general_settings] erlang is 300.0 there, 400.0 here" in err
    assert "--set general_settings.erlang=300.0" in err


@pytest.mark.damages
def test_sweep_when_a_seed_raises_reports_it_and_the_others_complete(tmp_path):
    import _workers

    result = run_sweep(
        _cfg(),
        seeds=[1, 2, 3],
        workers=2,
        out=tmp_path / "d",
        quiet=True,
        task=_workers.failing_seed_task,
    )
    status = {s.seed: s.status for s in result.seeds}
    assert status == {1: "complete", 2: "failed", 3: "complete"}
    assert "injected failure" in result.seeds[1].error
    entries = {e["seed"]: e for e in mf.read_manifest(tmp_path / "d")["shards"]}
    assert entries[2]["status"] == "failed" and "injected failure" in entries[2]["error"]
    assert {tr["seed"] for tr in load_dataset(tmp_path / "d")} == {1, 3}


def test_sweep_when_sigkilled_mid_run_then_resumed_equals_a_clean_run(tmp_path):
    ini = _ini(tmp_path, n=30_000)
    cmd = [
        sys.executable,
        "-m",
        "fusion.cli",
        "sweep",
        "--config",
        str(ini),
        "--workers",
        "2",
        "--quiet",
    ]
    proc = subprocess.Popen(
        cmd, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    data = tmp_path / "data"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        shards = list(data.glob("*.jsonl")) if data.exists() else []
        if len(shards) >= 2 and sum(p.stat().st_size for p in shards) > 2_000_000:
            break
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not validate_dataset(data).ok
    assert main(["sweep", "--config", str(ini), "--resume", "--quiet", "--workers", "2"]) == 0
    assert validate_dataset(data).ok
    clean = tmp_path / "clean"
    assert (
        main(["sweep", "--config", str(ini), "--out", str(clean), "--quiet", "--workers", "2"]) == 0
    )
    assert _strip(load_dataset(data)) == _strip(load_dataset(clean))


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _start_sweep_and_wait_for_shards(tmp_path: Path, ini: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "fusion.cli", "sweep", "--config", str(ini)]
    proc = subprocess.Popen(
        [*cmd, "--workers", "2", "--quiet"],
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    data = tmp_path / "data"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        shards = list(data.glob("*.jsonl")) if data.exists() else []
        if len(shards) >= 2 and sum(p.stat().st_size for p in shards) > 2_000_000:
            break
        time.sleep(0.1)
    return proc


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads children from /proc")
@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL])
def test_sweep_when_driver_alone_is_signalled_leaves_no_child_and_resumes(tmp_path, how):
    ini = _ini(tmp_path, n=120_000)  # a seed takes seconds: a worker left running would show
    proc = _start_sweep_and_wait_for_shards(tmp_path, ini)
    children = _children(proc.pid)
    assert children, "the sweep should have started its workers"
    proc.send_signal(how)  # the driver only, not its process group
    assert proc.wait(60) != 0
    deadline = time.monotonic() + 3
    while any(_alive(c) for c in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [c for c in children if _alive(c)], "orphan worker processes"
    data = tmp_path / "data"
    if how == signal.SIGTERM:  # committed on the way out: nothing unfinished looks complete
        entries = mf.read_manifest(data)["shards"]
        assert entries and all(e["status"] in ("complete", "failed") for e in entries)
    assert main(["sweep", "--config", str(ini), "--resume", "--quiet", "--workers", "2"]) == 0
    assert validate_dataset(data).ok
    assert len(list(load_dataset(data))) == 4 * 120_000


@pytest.mark.slow
def test_sweep_when_ray_backend_gives_the_same_dataset_as_local(tmp_path):
    pytest.importorskip("ray", reason="the ray backend needs the ray extra")
    cfg = _cfg(800)
    local = run_sweep(cfg, seeds=[0, 1, 2], workers=2, out=tmp_path / "local", quiet=True)
    ray_run = run_sweep(
        cfg, seeds=[0, 1, 2], workers=2, out=tmp_path / "ray", backend="ray", quiet=True
    )
    assert local.ok and ray_run.ok
    assert _strip(load_dataset(tmp_path / "ray")) == _strip(load_dataset(tmp_path / "local"))
    a, b = mf.read_manifest(tmp_path / "local"), mf.read_manifest(tmp_path / "ray")
    assert a["config_sha256"] == b["config_sha256"]
    assert [e["sha256"] for e in a["shards"]] != [] and len(b["shards"]) == 3


def test_inspect_when_json_and_plot_asked_reports_aggregates_and_draws(tmp_path, capsys):
    import json

    pytest.importorskip("matplotlib", reason="--plot needs matplotlib (the dev or plot extra)")
    run_sweep(_cfg(), seeds=[0, 1, 2], workers=2, out=tmp_path / "d", quiet=True)
    assert main(["inspect", str(tmp_path / "d"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [r["seed"] for r in report["shards"]] == [0, 1, 2]
    agg = report["across_seeds"]["bp"]
    assert agg["n"] == 3 and agg["ci95_low"] <= agg["mean"] <= agg["ci95_high"]
    png = tmp_path / "bp.png"
    assert main(["inspect", str(tmp_path / "d"), "--plot", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_open_shard_when_lock_never_excludes_many_processes_lose_no_entry(tmp_path):
    import multiprocessing

    from _workers import write_shards_without_exclusion

    context = multiprocessing.get_context("spawn")
    groups = [list(range(start, 48, 6)) for start in range(6)]
    procs = [
        context.Process(target=write_shards_without_exclusion, args=(str(tmp_path), g, 4))
        for g in groups
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    # Readers see every closed shard whatever updates the lock failed to serialise ...
    assert sorted({r["seed"] for r in load_dataset(tmp_path)}) == list(range(48))
    # ... and the next commit writes every one back into the manifest.
    entries = mf.commit_entries(tmp_path)["shards"]
    assert [e["seed"] for e in entries] == list(range(48))
    assert all(e["status"] == "complete" for e in entries)
    assert validate_dataset(tmp_path).ok


def test_sweep_when_lock_never_excludes_every_shard_is_complete_and_checks_out(
    tmp_path, monkeypatch
):
    from _workers import NeverExcludes

    monkeypatch.setattr(mf, "manifest_lock", lambda _d: NeverExcludes())
    seeds = list(range(200))
    result = run_sweep(_cfg(20), seeds=seeds, workers=2, out=tmp_path, quiet=True)
    assert result.ok
    entries = mf.read_manifest(tmp_path)["shards"]
    assert [e["seed"] for e in entries] == seeds
    assert all(e["status"] == "complete" for e in entries)
    assert all(file_sha256(tmp_path / e["file"]) == e["sha256"] for e in entries)
    assert max(len(orjson.dumps(e)) for e in entries) < 1024  # compact: series in sidecars
