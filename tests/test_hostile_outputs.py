"""A hostile tester's cases of issue #30: outputs that replace special files or write through
links, merged names that lie about their compression, figures of no data, study points of
other seeds, tracebacks, wrong exit codes, ``~`` in paths, and exports of partial data."""

from __future__ import annotations

import csv
import logging
import os
import shutil
import socket
import stat
from pathlib import Path

import pytest
from conftest import mark_status, write_shard

from fusion.cli import main

SMALL = ["--set", "general_settings.num_requests=300", "--quiet", "--workers", "1"]


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A dataset D (seeds 0-1) and a study S (erlang 200, 300; seeds 0-1), made once."""
    root = tmp_path_factory.mktemp("hostile")
    d, s = root / "D", root / "S"
    assert main(["sweep", "--seeds", "0-1", "--out", str(d), *SMALL]) == 0
    grid = ["--grid", "general_settings.erlang=200,300"]
    assert main(["sweep", "--seeds", "0-1", "--out", str(s), *grid, *SMALL]) == 0
    return {"D": d, "S": s}


@pytest.fixture
def data(made: dict[str, Path], tmp_path: Path) -> dict[str, Path]:
    return {name: Path(shutil.copytree(path, tmp_path / name)) for name, path in made.items()}


# 1. special files and symlinks


@pytest.mark.parametrize("flags", [[], ["--overwrite"]])
def test_export_when_output_is_a_fifo_exits_2_and_keeps_it(data, tmp_path, flags):
    fifo = tmp_path / "f"
    os.mkfifo(fifo)
    argv = ["export", str(data["D"]), "--format", "parquet", "-o", str(fifo), *flags]
    assert main(argv) == 2
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_inspect_plot_when_output_is_a_socket_exits_2_even_with_overwrite(data, tmp_path):
    path = tmp_path / "s.png"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        assert main(["inspect", str(data["D"]), "--plot", str(path), "--overwrite"]) == 2
        assert stat.S_ISSOCK(os.lstat(path).st_mode)


def test_merge_when_output_is_a_dangling_symlink_exits_2_without_overwrite(data, tmp_path):
    link = tmp_path / "m.jsonl"
    link.symlink_to(tmp_path / "nowhere.jsonl")
    assert main(["merge", str(data["D"]), "-o", str(link)]) == 2
    assert link.is_symlink() and not (tmp_path / "nowhere.jsonl").exists()
    assert main(["merge", str(data["D"]), "-o", str(link), "--overwrite"]) == 0
    assert not link.is_symlink() and not (tmp_path / "nowhere.jsonl").exists()


# 2. the merged file's name and its compression


@pytest.mark.parametrize(("name", "compress"), [("m.jsonl", "gzip"), ("x.jsonl.zst", "gzip")])
def test_merge_when_compress_disagrees_with_the_name_exits_2_naming_the_suffix(
    data, tmp_path, capsys, name, compress
):
    out = tmp_path / name
    assert main(["merge", str(data["D"]), "-o", str(out), "--compress", compress]) == 2
    assert ".gz" in capsys.readouterr().err and not out.exists()


def test_merge_when_name_ends_gz_without_compress_writes_gzip_that_validates(data, tmp_path):
    out = tmp_path / "x.jsonl.gz"
    assert main(["merge", str(data["D"]), "-o", str(out)]) == 0
    assert out.read_bytes()[:2] == b"\x1f\x8b"
    assert main(["validate", str(out)]) == 0


# 3. no figure for no data


@pytest.mark.damages
def test_inspect_study_when_a_point_has_no_complete_seed_leaves_it_blank_and_out_of_the_plot(
    data, tmp_path, capsys
):
    point = data["S"] / "erlang=300"
    for seed in (0, 1):
        mark_status(point, seed, "failed")
    table, plot = tmp_path / "t.csv", tmp_path / "p.png"
    assert main(["inspect", str(data["S"]), "--csv", str(table), "--plot", str(plot)]) == 0
    rows = {float(r["erlang"]): r for r in csv.DictReader(table.open())}
    assert rows[300.0]["bp_n"] == "0" and rows[300.0]["bp_mean"] == ""
    assert rows[200.0]["bp_mean"] != ""
    assert plot.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.damages
def test_inspect_study_plot_when_no_point_has_a_complete_seed_exits_nonzero_without_png(
    data, tmp_path
):
    for point in ("erlang=200", "erlang=300"):
        for seed in (0, 1):
            mark_status(data["S"] / point, seed, "failed")
    plot = tmp_path / "p.png"
    assert main(["inspect", str(data["S"]), "--plot", str(plot)]) in (1, 2)
    assert not plot.exists()


def test_inspect_plot_when_dataset_has_no_transition_exits_nonzero_without_png(tmp_path):
    write_shard(tmp_path / "E", 0, 0)
    plot = tmp_path / "p.png"
    assert main(["inspect", str(tmp_path / "E"), "--plot", str(plot)]) in (1, 2)
    assert not plot.exists()


# 4. a study point of other seeds


@pytest.mark.damages
def test_validate_study_when_a_point_was_rewritten_with_other_seeds_exits_1_naming_them(
    data, capsys
):
    point = data["S"] / "erlang=300"
    argv = ["sweep", "--out", str(point), "--overwrite", "--seeds", "7", *SMALL]
    assert main([*argv, "--set", "general_settings.erlang=300"]) == 0
    capsys.readouterr()
    assert main(["validate", str(data["S"])]) == 1
    out = capsys.readouterr()
    assert "erlang=300" in out.out + out.err and "7" in out.out + out.err
    assert main(["inspect", str(data["S"])]) != 0


# 5. one line per failed seed, the traceback only with -v


def test_sweep_when_a_seed_fails_logs_no_traceback_above_debug(tmp_path, monkeypatch, caplog):
    from fusion.config.config import load_config
    from fusion.run import sweep

    def boom(*args, **kwargs):
        try:
            raise OSError("file too large")
        except OSError as exc:
            raise RuntimeError("shard write failed") from exc

    monkeypatch.setattr(sweep, "run_simulation", boom)
    caplog.set_level(logging.DEBUG)
    outcome = sweep.run_seed_task(load_config(None), 0, str(tmp_path / "x"))
    assert outcome.status == "failed" and "shard write failed" in outcome.error
    assert not [r for r in caplog.records if r.exc_info and r.levelno > logging.DEBUG]


# 6. exit 2 for usage errors, before any work


def test_inspect_when_plot_suffix_is_unsupported_exits_2_before_work(data, tmp_path, capsys):
    assert main(["inspect", str(data["D"]), "--plot", str(tmp_path / "p.txt")]) == 2
    assert capsys.readouterr().out == "" and not (tmp_path / "p.txt").exists()


@pytest.mark.parametrize("dataset_id", ["t/x-v0", "fusion/ab.c-v0"])
def test_export_minari_when_minari_refuses_the_id_exits_2_and_makes_nothing(
    data, tmp_path, dataset_id
):
    root = tmp_path / "m"
    argv = ["export", str(data["D"]), "--format", "minari", "--id", dataset_id, "-o", str(root)]
    assert main(argv) == 2
    assert not root.exists()


def test_export_when_seeds_are_none_of_the_datasets_exits_2(data, tmp_path):
    argv = ["export", str(data["D"]), "--format", "npz", "-o", str(tmp_path / "x.npz")]
    assert main([*argv, "--seeds", "5"]) == 2


def test_sweep_when_logging_is_off_exits_2_and_writes_nothing(tmp_path):
    out = tmp_path / "D"
    argv = ["sweep", "--seeds", "0", "--out", str(out), *SMALL]
    assert main([*argv, "--set", "dataset_logging.log_offline_dataset=false"]) == 2
    assert not out.exists()


def test_sweep_when_config_is_not_utf8_exits_2_naming_it(tmp_path, capsys):
    config = tmp_path / "bad.ini"
    config.write_bytes(b"[general_settings]\nerlang = 3\xff\n")
    assert main(["sweep", "--config", str(config), "--out", str(tmp_path / "D"), *SMALL]) == 2
    assert "bad.ini" in capsys.readouterr().err


def test_export_when_parent_is_not_writable_exits_2_before_work(data, capsys):
    argv = ["export", str(data["D"]), "--format", "npz", "-o", "/proc/x.npz"]
    assert main(argv) == 2
    assert "/proc" in capsys.readouterr().err


def test_validate_when_stdout_pipe_closes_exits_quietly(data, monkeypatch, capsys):
    class Closed:
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

        def flush(self) -> None:
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr("sys.stdout", Closed())
    main(["validate", str(data["D"])])
    monkeypatch.undo()
    assert "Broken pipe" not in capsys.readouterr().err


# 7. ~ in paths


def test_merge_export_inspect_when_paths_start_with_tilde_expand_home(data, tmp_path, monkeypatch):
    home, work = tmp_path / "home", tmp_path / "work"
    home.mkdir()
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    shutil.move(data["D"], home / "D")
    assert main(["merge", "~/D", "-o=~/m.jsonl"]) == 0
    assert main(["export", "~/D", "--format", "npz", "-o=~/e.npz"]) == 0
    assert main(["inspect", "~/D", "--plot=~/p.png"]) == 0
    assert main(["validate", "~/m.jsonl"]) == 0
    assert {"m.jsonl", "e.npz", "p.png"} <= {p.name for p in home.iterdir()}
    assert not (work / "~").exists()


# 8. export refuses partial data as merge does


@pytest.mark.damages
@pytest.mark.parametrize("status", ["failed", "writing"])
def test_export_when_a_shard_is_not_complete_exits_1_naming_it_unless_include_incomplete(
    data, tmp_path, capsys, status
):
    mark_status(data["D"], 1, status)
    out = tmp_path / "x.parquet"
    argv = ["export", str(data["D"]), "--format", "parquet", "-o", str(out)]
    assert main(argv) == 1
    assert "seed 1" in capsys.readouterr().err and not out.exists()
    assert main([*argv, "--include-incomplete"]) == 0


def test_export_when_seeds_exceed_the_dataset_exits_2_naming_them(data, tmp_path, capsys):
    out = tmp_path / "x.npz"
    argv = ["export", str(data["D"]), "--format", "npz", "-o", str(out), "--seeds", "0-5"]
    assert main(argv) == 2
    assert "2-5" in capsys.readouterr().err and not out.exists()


@pytest.mark.damages  # (a failed shard on purpose)
def test_minari_export_when_a_shard_is_unfinished_refuses_naming_it_like_every_export(tmp_path):
    pytest.importorskip("minari")
    from fusion.storage import manifest as mf
    from fusion.storage.shard_names import shard_file_name, sidecar_path

    d = tmp_path / "d"
    assert main(["sweep", "--seeds", "0-1", "--out", str(d), *SMALL]) == 0
    mf.update_manifest(d, lambda m: m["shards"][1].update(status="failed"))
    (d / sidecar_path(d / shard_file_name(1)).name).unlink()
    argv = [
        "export",
        str(d),
        "--format",
        "minari",
        "--id",
        "fusion/p-v0",
        "-o",
        str(tmp_path / "m"),
    ]
    assert main(argv) == 1
    assert not (tmp_path / "m").exists()
    assert main([*argv, "--include-incomplete"]) == 0
