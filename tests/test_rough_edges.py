"""The same kind of fault gets the same exit code and a message, never a traceback."""

from __future__ import annotations

import pytest
from conftest import write_shard

from fusion.cli import main
from fusion.storage.loader import load_dataset


@pytest.mark.parametrize(
    "argv",
    [
        ["sweep", "--workers", "-2"],
        ["evaluate", "--workers", "-1"],
        ["evaluate", "--erlang", "200,200", "--seeds", "1"],
        ["evaluate", "--erlang", "1e-307", "--seeds", "1"],
    ],
)
def test_cli_when_an_option_is_impossible_exits_2_with_a_message(argv, tmp_path, capsys):
    with pytest.raises(SystemExit) as raised:
        code = main([*argv, "--set", "general_settings.num_requests=50"])
        raise SystemExit(code)
    assert raised.value.code == 2
    err = capsys.readouterr().err
    assert "error" in err and "Traceback" not in err


def test_inspect_when_given_a_merged_file_exits_2_saying_what_it_takes(dataset, tmp_path, capsys):
    out = tmp_path / "all.jsonl"
    assert main(["merge", str(dataset), "-o", str(out)]) == 0
    assert main(["inspect", str(out)]) == 2
    assert "inspect takes a dataset directory" in capsys.readouterr().err


@pytest.mark.damages
def test_export_when_no_shard_is_complete_exits_1_and_writes_nothing(tmp_path, capsys):
    from conftest import mark_status

    write_shard(tmp_path, 3, 4)
    mark_status(tmp_path, 3, "failed")
    out = tmp_path / "x.npz"
    assert main(["export", str(tmp_path), "--format", "npz", "-o", str(out)]) == 1
    assert "no complete shard" in capsys.readouterr().err and not out.exists()


@pytest.mark.parametrize("seeds", [[True], 5, "12", [1.0]])
def test_load_dataset_when_seeds_are_not_integers_says_so(dataset, seeds):
    with pytest.raises(ValueError, match="seeds must be"):
        list(load_dataset(dataset, seeds=seeds))


def test_complete_shard_when_closed_leaves_no_lock_file(dataset):
    assert not list(dataset.glob("*.seed*.jsonl.lock"))


def test_inspect_when_the_runs_had_no_failure_shows_no_window_that_repeats_bp(tmp_path, capsys):
    out = tmp_path / "nf"
    argv = ["sweep", "--seeds", "1-2", "--out", str(out), "--quiet", "--workers", "1"]
    argv += [
        "--set",
        "general_settings.num_requests=300",
        "--set",
        "failure_settings.failure_type=none",
    ]
    assert main(argv) == 0
    table = capsys.readouterr().out
    assert "BP pre" not in table and "bp_pre" not in table and "bp_fail" not in table
    assert "  bp  " in table and "reach" in table
