"""A directory is what its own record says, and one run owns it while it runs.

The races are made deterministic: a task of the first run (a one-worker pool runs its seeds in
order) starts the second run, or takes or removes the directory, before its own seed 1.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from fusion.cli import main
from fusion.config.config import load_config
from fusion.errors import DirectoryBusyError, RunConflictError
from fusion.run.simulation import run_simulation
from fusion.run.study import run_study
from fusion.run.sweep import run_sweep
from fusion.storage import ownership
from fusion.storage.loader import load_dataset
from fusion.storage.manifest import read_manifest
from fusion.storage.ownership import LEASE_NAME, STALE_S, Lease, acquire, holder, lease_path
from fusion.storage.validate import validate_dataset

SMALL = ["--set", "general_settings.num_requests=200", "--quiet", "--workers", "1"]
CFG = load_config().replace("general_settings", num_requests=200)


def _sweep(out: Path, *extra: str, seeds: str = "0-1") -> int:
    return main(["sweep", "--seeds", seeds, "--out", str(out), *SMALL, *extra])


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


def _foreign(directory: Path) -> dict[str, bytes]:
    """What the issue's hostile user keeps in a project directory."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {
        "uv.lock": b"l\n",
        "poetry.lock": b"l\n",
        "Pipfile.lock": b"{}\n",
        "results.seed3.jsonl": b"{}\n",
        "notes.txt": b"keep\n",
        ".hidden.abcdefgh.tmp": b"someone else's temp\n",
    }
    for name, data in files.items():
        (directory / name).write_bytes(data)
    return files


# -- 1. clearing by record ---------------------------------------------------------------------


@pytest.mark.damages  # (its foreign manifest.json is no dataset to validate)
def test_overwrite_when_directory_holds_only_foreign_files_exits_2_and_removes_nothing(
    tmp_path, capsys
):
    project = tmp_path / "p"
    files = _foreign(project)
    (project / "manifest.json").write_bytes(b'{"name":"app"}\n')
    before = _files(project)
    assert _sweep(project, "--overwrite", seeds="0") == 2
    err = capsys.readouterr().err
    assert "no fusion dataset or study records" in err and "Pipfile.lock" in err
    assert _files(project) == before and len(before) == len(files) + 1


def test_overwrite_when_a_dataset_sits_among_foreign_files_removes_only_the_dataset(tmp_path):
    d = tmp_path / "d"
    assert _sweep(d, "--set", "dataset_logging.shard_compression=zstd") == 0
    files = _foreign(d)
    assert _sweep(d, "--overwrite", seeds="0") == 0
    kept = _files(d)
    assert all(kept[name] == data for name, data in files.items())
    assert {r["seed"] for r in load_dataset(d)} == {0}
    assert not (d / "offline_data.seed1.jsonl.zst").exists()  # the old dataset's, recorded
    assert validate_dataset(d).ok


def test_resume_when_directory_holds_no_dataset_exits_2_naming_its_files(tmp_path, capsys):
    d = tmp_path / "d"
    _foreign(d)
    before = _files(d)
    assert _sweep(d, "--resume") == 2
    err = capsys.readouterr().err
    assert "Pipfile.lock" in err and "use an empty or new directory" in err
    assert _files(d) == before


@pytest.mark.damages
def test_study_overwrite_when_study_json_is_unreadable_exits_2_naming_it(tmp_path, capsys):
    s = tmp_path / "s"
    grid = ["--grid", "general_settings.erlang=200,300"]
    assert _sweep(s, *grid) == 0
    (s / "study.json").write_text("{ not json")
    assert _sweep(s, *grid, "--overwrite") == 2
    err = capsys.readouterr().err
    assert "study.json: unreadable" in err and "--resume" not in err
    assert (s / "erlang=200" / "manifest.json").exists()


def test_sweep_when_out_is_a_file_exits_2_before_any_work(tmp_path, capsys):
    f = tmp_path / "f"
    f.write_text("a file")
    assert _sweep(f) == 2
    assert "is a file, not a directory" in capsys.readouterr().err
    assert f.read_text() == "a file"


# -- 2. one run owns a directory ---------------------------------------------------------------


def _meanwhile(tmp_path: Path, argv: list[str]) -> None:
    (tmp_path / "meanwhile.json").write_text(json.dumps(argv))


def _meanwhile_result(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "meanwhile.out").read_text())


def test_sweep_overwrite_while_another_sweep_runs_exits_2_and_the_first_completes(tmp_path):
    from _workers import sweep_meanwhile_task

    d = tmp_path / "d"
    _meanwhile(tmp_path, ["sweep", "--seeds", "3", "--out", str(d), *SMALL, "--overwrite"])
    result = run_sweep(
        CFG, seeds=[0, 1, 2], workers=1, out=d, quiet=True, task=sweep_meanwhile_task
    )
    second = _meanwhile_result(tmp_path)
    assert second["code"] == 2 and "holds this directory" in second["err"]
    assert f"pid {os.getpid()}" in second["err"]  # names the holder
    assert result.ok and {r["seed"] for r in load_dataset(d)} == {0, 1, 2}
    assert validate_dataset(d).ok
    assert not lease_path(d).exists()  # given back at the end


def test_resume_while_another_resume_runs_exits_2_and_the_dataset_stays_valid(tmp_path):
    from _workers import sweep_meanwhile_task

    d = tmp_path / "d"
    assert _sweep(d, seeds="0") == 0
    _meanwhile(tmp_path, ["sweep", "--seeds", "0-2", "--out", str(d), *SMALL, "--resume"])
    cfg = CFG
    run_sweep(cfg, seeds=[0, 1, 2], workers=1, out=d, quiet=True, resume=True,
              task=sweep_meanwhile_task)  # fmt: skip
    assert _meanwhile_result(tmp_path)["code"] == 2
    assert validate_dataset(d).ok
    assert {r["seed"] for r in load_dataset(d)} == {0, 1, 2}


def test_sweep_overwrite_while_a_study_runs_exits_2_and_the_study_stays_a_study(tmp_path):
    from _workers import sweep_meanwhile_task

    from fusion.config.grid import parse_grid

    s = tmp_path / "s"
    _meanwhile(tmp_path, ["sweep", "--seeds", "0", "--out", str(s), *SMALL, "--overwrite"])
    axes = parse_grid(CFG, ["general_settings.erlang=200,300"])
    result = run_study(CFG, axes, seeds=[0, 1], workers=1, out=s, quiet=True,
                       task=sweep_meanwhile_task)  # fmt: skip
    assert _meanwhile_result(tmp_path)["code"] == 2
    assert result.ok and validate_dataset(s).ok
    assert not (s / "manifest.json").exists()


@pytest.mark.damages
def test_sweep_when_another_run_takes_the_directory_over_stops_and_leaves_its_files(tmp_path):
    from _workers import taken_over_meanwhile_task

    d = tmp_path / "d"
    with pytest.raises(RunConflictError, match=r"run other-run .* took it over"):
        run_sweep(CFG, seeds=[0, 1, 2], workers=1, out=d, quiet=True,
                  task=taken_over_meanwhile_task)  # fmt: skip
    # the other run's dataset is whole: its seed 1 of 201 requests, nothing of the first run's
    assert read_manifest(d)["config"]["general_settings"]["num_requests"] == 201
    assert [(r["seed"], r["t"]) for r in load_dataset(d)][-1] == (1, 200)
    assert not (d / "offline_data.seed2.jsonl").exists()
    assert validate_dataset(d).ok
    assert holder(d)["run_id"] == "other-run"  # not released: it was not the first run's


def test_sweep_when_its_directory_is_removed_meanwhile_stops_without_recreating_it(tmp_path):
    from _workers import removed_meanwhile_task

    d = tmp_path / "d"
    with pytest.raises(RunConflictError, match="lease is gone"):
        run_sweep(CFG, seeds=[0, 1, 2], workers=1, out=d, quiet=True,
                  task=removed_meanwhile_task)  # fmt: skip
    assert not d.exists()


def test_sweep_cli_when_the_directory_is_taken_over_exits_1_naming_the_run(
    tmp_path, capsys, monkeypatch
):
    import _workers

    import fusion.run.sweep as sweep

    monkeypatch.setattr(sweep, "run_seed_task", _workers.taken_over_meanwhile_task)
    monkeypatch.setattr(sweep.run_sweep, "__kwdefaults__",
                        {**sweep.run_sweep.__kwdefaults__, "task": _workers.taken_over_meanwhile_task})  # fmt: skip
    assert _sweep(tmp_path / "d", seeds="0-2") == 1
    assert "other-run" in capsys.readouterr().err


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_lease_of_a_dead_run_when_no_flag_exits_2_and_resume_takes_it_over(
    tmp_path, capsys, caplog
):
    d = tmp_path / "d"
    assert _sweep(d, seeds="0") == 0
    record = {"run_id": "crashed", "host": socket.gethostname(), "pid": _dead_pid()}
    lease_path(d).write_bytes(orjson.dumps(record))
    assert _sweep(d, seeds="0-1") == 2
    assert "is gone; to take the directory over, pass --overwrite" in capsys.readouterr().err
    assert _sweep(d, "--resume") == 0
    assert "taking the directory over from run crashed" in caplog.text
    assert not lease_path(d).exists() and validate_dataset(d).ok


def test_lease_of_another_host_when_stale_is_taken_over_and_when_fresh_is_not(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    lease_path(d).write_bytes(orjson.dumps({"run_id": "far", "host": "elsewhere", "pid": 1}))
    with pytest.raises(DirectoryBusyError, match=r"run far .*host elsewhere"):
        acquire(d, "mine", take_over=True)
    old = lease_path(d).stat().st_mtime - STALE_S - 5
    os.utime(lease_path(d), (old, old))
    lease = acquire(d, "mine", take_over=True)
    assert holder(d)["run_id"] == "mine"
    lease.release()
    assert not (d / LEASE_NAME).exists()


def test_hand_fed_writer_when_a_run_holds_the_directory_is_refused(tmp_path):
    from fusion.storage.shard_writer import DatasetLogger

    lease = acquire(tmp_path, "a-run")
    with pytest.raises(DirectoryBusyError, match="run a-run"):
        DatasetLogger.open_shard(tmp_path, 0, {"toy": 1})
    lease.release()
    DatasetLogger.open_shard(tmp_path, 0, {"toy": 1}).close()


def test_ownership_check_when_a_shard_is_written_reads_the_lease_twice_per_shard(
    tmp_path, monkeypatch
):
    calls = []
    real = ownership.holder
    monkeypatch.setattr(ownership, "holder", lambda d: calls.append(d) or real(d))
    lease = acquire(tmp_path, "r")
    calls.clear()
    run_simulation(CFG.replace("general_settings", num_requests=2000), 0,
                   dataset_dir=str(tmp_path), owner=lease)  # fmt: skip
    assert len(calls) == 2  # when the shard opens, before its record is published
    lease.release()


def test_lease_when_a_run_ends_is_released_and_when_lost_is_left_alone(tmp_path):
    lease = Lease(tmp_path, "gone")
    lease.release()  # nothing to release: no error
    acquire(tmp_path, "other")
    lease.release()
    assert holder(tmp_path)["run_id"] == "other"
    with pytest.raises(RunConflictError, match="run other"):
        lease.check()


def test_sweep_into_a_point_while_its_study_runs_exits_2(tmp_path):
    from _workers import sweep_meanwhile_task

    from fusion.config.grid import parse_grid

    s = tmp_path / "s"
    point = s / "erlang=200"
    _meanwhile(tmp_path, ["sweep", "--seeds", "0", "--out", str(point), *SMALL, "--overwrite"])
    axes = parse_grid(CFG, ["general_settings.erlang=200,300"])
    result = run_study(CFG, axes, seeds=[0, 1], workers=1, out=s, quiet=True,
                       task=sweep_meanwhile_task)  # fmt: skip
    second = _meanwhile_result(tmp_path)
    assert second["code"] == 2 and "holds this directory" in second["err"]
    assert result.ok and validate_dataset(s).ok


def test_study_overwrite_when_a_point_is_held_by_another_run_exits_2_and_keeps_it(tmp_path):
    s = tmp_path / "s"
    grid = ["--grid", "general_settings.erlang=200,300"]
    assert _sweep(s, *grid) == 0
    point = s / "erlang=200"
    before = _files(point)
    lease = acquire(point, "a-sweep-into-the-point")
    assert _sweep(s, *grid, "--overwrite") == 2  # the study over its point
    assert _sweep(s, "--overwrite") == 2  # a plain dataset over the study
    assert {k: v for k, v in _files(point).items() if k != LEASE_NAME} == before
    from fusion.storage.shard_writer import DatasetLogger

    with pytest.raises(DirectoryBusyError):  # nor a hand-fed writer into a running study's point
        DatasetLogger.open_shard(point / "deeper", 0, {"toy": 1})
    lease.release()


def test_takeover_when_the_gone_lease_was_replaced_meanwhile_leaves_the_new_one(tmp_path):
    from fusion.storage.ownership import _remove_if

    lease = acquire(tmp_path, "winner")  # took the gone run's lease a moment earlier
    assert not _remove_if(lease_path(tmp_path), "gone-run", "loser")  # the loser's late removal
    assert holder(tmp_path)["run_id"] == "winner" and lease.held()
    assert sorted(p.name for p in tmp_path.iterdir()) == [LEASE_NAME]


def test_lease_refresh_when_the_disk_hiccups_keeps_refreshing(tmp_path, monkeypatch):
    import time

    calls = []

    def flaky(self):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 1:
            raise OSError(116, "Stale file handle")
        return True

    monkeypatch.setattr(ownership, "REFRESH_S", 0.01)
    monkeypatch.setattr(Lease, "refresh", flaky)
    with ownership.holding(tmp_path, "r"):
        deadline = time.monotonic() + 5
        while len(calls) < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert len(calls) >= 3


def test_lease_of_this_host_when_it_rebooted_since_is_gone():
    from fusion.storage.ownership import _machine, is_gone

    here = _machine()
    if "boot_id" not in here:
        pytest.skip("no /proc/sys/kernel/random/boot_id here")
    record = {**here, "boot_id": "another-boot", "pid": os.getpid(), "age_s": 0.0}
    assert is_gone(record)
    assert not is_gone({**here, "pid": os.getpid(), "age_s": 0.0})


def test_study_when_a_point_fails_to_prepare_stays_a_study_overwrite_accepts(tmp_path, monkeypatch):
    import fusion.run.study as study
    from fusion.config.grid import parse_grid

    real = study.prepare_dataset

    def second_fails(config, directory, *args, **kwargs):  # type: ignore[no-untyped-def]
        if "erlang=300" in str(directory):
            raise OSError(5, "Input/output error")
        return real(config, directory, *args, **kwargs)

    monkeypatch.setattr(study, "prepare_dataset", second_fails)
    axes = parse_grid(CFG, ["general_settings.erlang=200,300"])
    with pytest.raises(OSError):
        run_study(CFG, axes, seeds=[0], workers=1, out=tmp_path / "s", quiet=True)
    monkeypatch.setattr(study, "prepare_dataset", real)
    assert (tmp_path / "s" / "study.json").exists()
    assert _sweep(tmp_path / "s", "--grid", "general_settings.erlang=200,300", "--overwrite") == 0


@pytest.mark.damages  # (the folder is another tool's: nothing to validate)
def test_run_when_the_folder_holds_shard_named_files_no_record_names_exits_2_and_keeps_them(
    tmp_path, capsys
):
    folder = tmp_path / "f"
    folder.mkdir()
    files = {"offline_data.seed0.jsonl": b"x\n", "offline_data.seed0.jsonl.gz": b"y\n"}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    argv = ["run", "--out", str(folder), "--seed", "0", *SMALL[:2]]
    assert main(argv) == 2
    assert "no record of a fusion dataset here names them" in capsys.readouterr().err
    assert _files(folder) == files  # nothing replaced, removed, nor a lock left


@pytest.mark.damages
def test_overwrite_when_the_manifest_is_unreadable_exits_2_before_removing_anything(
    tmp_path, capsys
):
    d = tmp_path / "g"
    assert _sweep(d) == 0
    (d / "manifest.json").write_text("{garbage")
    before = _files(d)
    assert _sweep(d, "--overwrite") == 2
    assert "validate --rebuild" in capsys.readouterr().err
    assert _files(d) == before
    assert main(["validate", str(d), "--rebuild"]) == 0  # the sidecars are all still there
    assert _sweep(d, "--overwrite") == 0
