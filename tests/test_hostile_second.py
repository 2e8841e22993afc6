"""The second hostile pass: writes through links, foreign shard names, checks before the first
unlink, merge records, hand-edited leases, seeds run into a study's point, long names."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import orjson
import pytest

from fusion.cli import main
from fusion.storage import manifest as mf
from fusion.storage.ownership import lease_path
from fusion.storage.shard_names import merged_sidecar_path, shard_file_name
from fusion.storage.validate import validate_dataset

RUN = ["--set", "general_settings.num_requests=300", "--quiet", "--workers", "1"]
GRID = ["--grid", "general_settings.erlang=200,300"]


def _sweep(out: Path, *extra: str, seeds: str = "0-1") -> int:
    return main(["sweep", "--seeds", seeds, "--out", str(out), *RUN, *extra])


def _files(directory: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


def test_run_when_a_shard_is_a_link_into_another_dataset_replaces_the_link_not_its_target(
    tmp_path,
):
    a, b = tmp_path / "a", tmp_path / "b"
    assert _sweep(a) == 0
    shutil.copytree(a, b)
    (b / shard_file_name(1)).unlink()
    (b / shard_file_name(1)).symlink_to(a / shard_file_name(1))
    before = _files(a)
    argv = ["run", "--seed", "1", "--out", str(b), "--overwrite", *RUN[:2]]
    argv += ["--set", "general_settings.erlang=250"]  # (another config: refused, nothing written)
    assert main(argv) == 2
    assert main(["run", "--seed", "1", "--out", str(b), "--overwrite", *RUN[:2]]) == 0
    assert _files(a) == before and validate_dataset(a).ok
    assert not (b / shard_file_name(1)).is_symlink() and validate_dataset(b).ok


@pytest.mark.parametrize("flag", ["--overwrite", "--resume"])
def test_sweep_when_a_new_seeds_shard_name_holds_a_users_file_exits_2_and_keeps_it(
    tmp_path, flag, capsys
):
    d = tmp_path / "d"
    assert _sweep(d) == 0
    mine = d / shard_file_name(5)
    mine.write_text("mine\n")
    before = _files(d)
    assert _sweep(d, flag, seeds="0-1,5") == 2
    assert "no record of a fusion dataset here names them" in capsys.readouterr().err
    assert _files(d) == before


@pytest.mark.damages
def test_study_overwrite_when_a_points_manifest_is_unreadable_exits_2_removing_nothing(tmp_path):
    s = tmp_path / "s"
    assert _sweep(s, *GRID) == 0
    (s / "erlang=200" / mf.MANIFEST_NAME).write_text('{"format": "x", broken')
    before = _files(s)
    assert _sweep(s, *GRID, "--overwrite") == 2
    assert _sweep(s, "--overwrite") == 2  # a plain dataset over the study: the same
    assert _files(s) == before


def test_study_overwrite_when_a_point_is_a_link_out_of_it_exits_2_removing_nothing(tmp_path):
    s, outside = tmp_path / "s", tmp_path / "outside"
    assert _sweep(s, *GRID) == 0
    assert _sweep(outside) == 0
    shutil.rmtree(s / "erlang=200")
    (s / "erlang=200").symlink_to(outside)
    before, kept = _files(s), _files(outside)
    assert _sweep(s, *GRID, "--overwrite") == 2
    assert _files(s) == before and _files(outside) == kept
    (s / "erlang=200").unlink()  # (the study is incomplete now: no dataset left to validate)
    assert _sweep(s, *GRID, "--resume") == 0


def test_merge_overwrite_when_it_fails_keeps_the_old_output_and_its_record(tmp_path):
    d, bad = tmp_path / "d", tmp_path / "bad"
    assert _sweep(d) == 0
    out = tmp_path / "m.jsonl"
    assert main(["merge", str(d), "-o", str(out)]) == 0
    record = merged_sidecar_path(out).read_bytes()
    shutil.copytree(d, bad)
    shard = bad / shard_file_name(1)
    shard.write_bytes(shard.read_bytes().replace(b'"src":', b'"src" :', 1))
    assert main(["merge", str(bad), "-o", str(out), "--overwrite"]) == 1
    assert merged_sidecar_path(out).read_bytes() == record
    assert validate_dataset(out).ok
    shutil.rmtree(bad)  # (damaged on purpose)


def test_lease_when_edited_by_hand_is_no_traceback(tmp_path, capsys):
    d = tmp_path / "d"
    assert _sweep(d, seeds="0") == 0
    record = {"run_id": "x", "host": socket.gethostname(), "pid": 4194305000}
    lease_path(d).write_bytes(orjson.dumps(record))
    assert _sweep(d, "--resume") == 0  # no process has that pid: gone, taken over
    lease_path(d).mkdir()
    assert _sweep(d, "--resume") == 2
    assert "unreadable lease" in capsys.readouterr().err
    lease_path(d).rmdir()


def test_run_when_out_is_a_study_point_exits_2_and_the_study_stays_valid(tmp_path, capsys):
    s = tmp_path / "s"
    assert _sweep(s, *GRID) == 0
    argv = ["run", "--seed", "5", "--out", str(s / "erlang=200"), *RUN[:2]]
    assert main([*argv, "--set", "general_settings.erlang=200"]) == 2
    assert "is a point of study" in capsys.readouterr().err
    assert validate_dataset(s).ok


def test_outputs_when_the_name_is_too_long_for_its_temp_file_exit_2_before_work(tmp_path):
    d = tmp_path / "d"
    assert _sweep(d, seeds="0") == 0
    long = tmp_path / ("x" * 240 + ".jsonl")
    assert main(["merge", str(d), "-o", str(long)]) == 2
    assert main(["export", str(d), "--format", "npz", "-o", str(long) + ".npz"]) == 2
    assert _sweep(tmp_path / ("y" * 230), seeds="0") == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def test_study_resume_when_made_with_older_point_names_keeps_its_directories(tmp_path):
    import orjson as _orjson

    topos = tmp_path / "topos"
    topos.mkdir()
    for name in ("a.txt", "b.txt"):
        (topos / name).write_text("0 1 400\n1 2 400\n2 0 500\n2 3 300\n")
    (topos / "b.txt").write_text("0 1 400\n1 2 400\n2 0 500\n2 3 301\n")
    s = tmp_path / "s"
    grid = ["--grid", f"topology_settings.network={topos / 'a.txt'},{topos / 'b.txt'}"]
    grid += ["--set", "failure_settings.failure_type=none"]
    assert _sweep(s, *grid, seeds="0") == 0
    # as an older fusion named the points: the value as written, nested by its slashes
    record = _orjson.loads((s / "study.json").read_bytes())
    for point in record["points"]:
        old = "network=" + point["point"]["network"].lstrip("/")
        (s / old).parent.mkdir(parents=True, exist_ok=True)
        (s / point["dir"]).rename(s / old)
        point["dir"] = old
    (s / "study.json").write_bytes(_orjson.dumps(record))
    before = {p.relative_to(s) for p in s.rglob("*.jsonl")}
    assert _sweep(s, *grid, "--resume", seeds="0-1") == 0
    after = {p.relative_to(s) for p in s.rglob("*.jsonl")}
    assert before < after and len(after) == 4  # seed 1 added beside seed 0, in the old dirs
    assert validate_dataset(s).ok


def test_output_when_another_command_writes_it_meanwhile_is_not_replaced_without_overwrite(
    tmp_path, monkeypatch, capsys
):
    import fusion.storage.merge as merge

    d = tmp_path / "d"
    assert _sweep(d, seeds="0") == 0
    out = tmp_path / "x.jsonl"
    real = merge.write_merge

    def another_command_first(*args, **kwargs):  # type: ignore[no-untyped-def]
        out.write_text("the other command's output\n")  # appears after the up-front check
        return real(*args, **kwargs)

    monkeypatch.setattr(merge, "write_merge", another_command_first)
    assert main(["merge", str(d), "-o", str(out)]) == 2
    assert "appeared while this command ran" in capsys.readouterr().err
    assert out.read_text() == "the other command's output\n"
    assert not list(tmp_path.glob(".*.tmp"))
    monkeypatch.setattr(merge, "write_merge", real)
    assert main(["merge", str(d), "-o", str(out), "--overwrite"]) == 0
    assert validate_dataset(out).ok
