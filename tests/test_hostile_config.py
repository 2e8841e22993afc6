"""Hostile inputs of issue #30: each refused once, up front, with a message naming the file,
option, parameter, section or key and what was expected; nothing written outside its place."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest

from fusion.cli import main
from fusion.config.config import default_ini_text, load_config
from fusion.config.grid import grid_points, parse_grid

ROOT = Path(__file__).resolve().parent.parent
TINY = ["--set", "general_settings.num_requests=300", "--seeds", "0", "--workers", "1", "--quiet"]
NSFNET = ROOT / "fusion" / "data" / "topologies" / "nsfnet.txt"


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# 1. point directories: one safe component each


def test_study_point_when_value_climbs_out_stays_inside_the_study(tmp_path, monkeypatch, capsys):
    work = tmp_path / "work"
    (work / "q").mkdir(parents=True)
    (tmp_path / "esc").mkdir()
    shutil.copy(NSFNET, work / "t.txt")
    shutil.copy(NSFNET, tmp_path / "esc" / "t.txt")  # q/../../esc/t.txt names this file
    monkeypatch.chdir(work)
    argv = ["sweep", "--grid", "topology_settings.network=t.txt,q/../../esc/t.txt"]
    assert main([*argv, "--out", "S", *TINY]) == 0, capsys.readouterr().err
    assert not (work / "esc").exists()
    assert sorted(p.name for p in (work / "S").iterdir() if p.is_dir()) == [
        "network=q%2F..%2F..%2Fesc%2Ft.txt",
        "network=t.txt",
    ]
    assert main(["inspect", "S"]) == 0  # study.json reads


def test_study_point_when_value_has_a_slash_is_one_directory_level(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(NSFNET, tmp_path / "o1.txt")
    cfg = load_config()
    axes = parse_grid(cfg, ["topology_settings.network=./o1.txt", "general_settings.erlang=200"])
    assert [p.directory for p in grid_points(cfg, axes)] == ["network=.%2Fo1.txt/erlang=200"]
    axes = parse_grid(cfg, ["general_settings.erlang=200,1000", "policy_settings.policy=ksp_ff"])
    assert [p.directory for p in grid_points(cfg, axes)] == [
        "erlang=0200/policy=ksp_ff",
        "erlang=1000/policy=ksp_ff",
    ]


def test_study_grid_when_a_value_makes_a_name_over_255_bytes_exits_2_naming_the_axis(
    tmp_path, capsys
):
    out = tmp_path / "S"
    assert (
        main(["sweep", "--grid", "general_settings.erlang=1e308,300", "--out", str(out), *TINY])
        == 2
    )
    err = capsys.readouterr().err
    assert "erlang" in err and "255" in err and "Traceback" not in err
    assert not out.exists() or not any(out.iterdir())


# 2. equivalent spellings are one point


@pytest.mark.parametrize(
    ("grid", "a", "b"),
    [
        ("topology_settings.network=nsfnet,NSFNet", "nsfnet", "NSFNet"),
        ("failure_settings.failed_link=7-8,8-7", "7-8", "8-7"),
        ("topology_settings.network=o1.txt,./o1.txt", "o1.txt", "./o1.txt"),
    ],
)
def test_study_grid_when_two_values_are_one_config_exits_2_naming_both(
    tmp_path, monkeypatch, capsys, grid, a, b
):
    monkeypatch.chdir(tmp_path)
    shutil.copy(NSFNET, tmp_path / "o1.txt")
    assert main(["sweep", "--grid", grid, "--out", "S", *TINY]) == 2
    err = capsys.readouterr().err
    assert repr(a) in err and repr(b) in err and "one config" in err
    assert not (tmp_path / "S").exists() or not any((tmp_path / "S").iterdir())


# 3. evaluate_policies' arguments


def _cfg():
    return load_config().replace("general_settings", num_requests=100)


def test_evaluate_when_a_seed_repeats_raises_naming_it():
    from fusion.run.evaluate import evaluate_policies

    with pytest.raises(ValueError, match=r"seeds: 1 given more than once"):
        evaluate_policies(_cfg(), ["shortest_feasible"], seeds=[1, 1, 1], workers=1)


@pytest.mark.parametrize(
    ("config", "policies", "seeds", "named"),
    [
        ("cfg", "shortest_feasible", [1], "policies"),
        ("cfg", ["ksp_ff"], "12", "seeds"),
        ("cfg", ["ksp_ff"], 5, "seeds"),
        ("x.ini", ["ksp_ff"], [1], "config"),
        ({"general_settings": {}}, ["ksp_ff"], [1], "config"),
    ],
)
def test_evaluate_when_an_argument_has_the_wrong_type_raises_naming_the_parameter(
    config, policies, seeds, named
):
    from fusion.run.evaluate import evaluate_policies

    cfg = _cfg() if config == "cfg" else config
    with pytest.raises((TypeError, ValueError), match=rf"^{named}: expected"):
        evaluate_policies(cfg, policies, seeds=seeds, workers=1)


def test_evaluate_when_seeds_are_an_array_or_generator_and_spec_sets_k_1_runs():
    from fusion.run.evaluate import evaluate_policies

    report = evaluate_policies(_cfg(), ["ksp_ff:k_paths=1"], seeds=np.array([1, 2]), workers=1)
    assert report["seeds"] == [1, 2] and [type(s) for s in report["seeds"]] == [int, int]
    assert evaluate_policies(_cfg(), [], seeds=(s for s in [3]), workers=1)["seeds"] == [3]


def test_evaluate_cli_when_policy_is_a_text_file_exits_2_saying_not_a_model_file(tmp_path, capsys):
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    assert main(["evaluate", "--policy", str(text), "--seeds", "1", *TINY[:2]]) == 2
    err = capsys.readouterr().err
    assert "not a model file" in err and "pickle" not in err


# 4. the Gymnasium environment's parameters


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"overrides": {"bogus": {}}}, r"overrides.*unknown section \[bogus\]"),
        ({"overrides": {"general_settings": 5}}, r"overrides\['general_settings'\].*dict"),
        (
            {"overrides": {"general_settings.num_requests": 50}},
            r"overrides\['general_settings.num_requests'\].*\"general_settings\": \{\"num_requests\"",
        ),
        ({"overrides": "x"}, r"overrides: expected a dict of sections"),
        ({"config": {"general_settings": 5}}, r"config\['general_settings'\].*dict"),
        ({"config": 5}, r"config: expected a Config"),
        ({"overrides": {"general_settings": {"k_path": 2}}}, r"overrides.*unknown key 'k_path'"),
    ],
)
def test_env_when_config_or_overrides_is_malformed_raises_naming_the_parameter(kwargs, match):
    gymnasium = pytest.importorskip("gymnasium")
    import fusion.env  # noqa: F401

    with pytest.raises(ValueError, match=match):
        gymnasium.make("fusion/EONRouting-v0", **kwargs)


def test_env_when_overrides_use_upstreams_section_name_takes_it():
    pytest.importorskip("gymnasium")
    from fusion.env import config_of

    overrides = {"dataset_logging_settings": {"path_features": "seed"}}
    assert config_of(None, overrides).dataset.path_features == "seed"


# 5. training scripts and learners


@pytest.mark.parametrize("ridge", ["nan", "inf", "1e308", "-1"])
def test_train_afterstate_when_ridge_is_not_a_usable_number_exits_2_naming_it(
    tmp_path, capsys, ridge
):
    script = _script("train_afterstate")
    with pytest.raises(SystemExit) as exit_:
        script.main([str(tmp_path / "none"), "-o", str(tmp_path / "m.npz"), "--ridge", ridge])
    assert exit_.value.code == 2
    assert "--ridge" in capsys.readouterr().err
    assert not (tmp_path / "m.npz").exists()


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--epochs", "0"),
        ("--epochs", "-1"),
        ("--hidden", "0"),
        ("--hidden", "-5"),
        ("--seed", "-1"),
    ],
)
def test_train_bc_when_an_option_is_out_of_range_exits_2_naming_it(tmp_path, capsys, option, value):
    script = _script("train_bc")
    with pytest.raises(SystemExit) as exit_:
        script.main([str(tmp_path / "none"), "-o", str(tmp_path / "m.npz"), option, value])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert option in err and "expected an integer in" in err


def test_write_model_when_weights_are_not_finite_refuses_and_writes_nothing(tmp_path):
    from fusion.rl.model_file import TrainedOn, write_model

    out = tmp_path / "m.npz"
    on = TrainedOn(4, ("path_hops",), {"network": "NSFNet"})
    with pytest.raises(ValueError, match="non-finite"):
        write_model(out, "bc", {"w1": np.array([1.0, np.nan])}, on)
    assert not out.exists()


def test_train_bc_when_hidden_is_zero_raises_value_error_naming_it():
    from fusion.rl.bc import train_bc

    x = np.zeros((4, 3))
    with pytest.raises(ValueError, match="hidden must be an integer >= 1"):
        train_bc(x, np.zeros(4, dtype=int), np.ones((4, 2), dtype=bool), hidden=0)


# 6. numbers the up-front check let through


def test_sweep_when_a_link_length_overflows_path_sums_exits_2_naming_file_and_line(
    tmp_path, capsys
):
    topo = tmp_path / "big.txt"
    lines = [line.split() for line in NSFNET.read_text().splitlines() if not line.startswith("#")]
    topo.write_text("".join(f"{u} {v} 1e308\n" for u, v, _ in lines))  # nsfnet, links 1e308
    out = tmp_path / "d"
    argv = ["sweep", "--set", f"topology_settings.network={topo}", "--out", str(out), *TINY]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{topo}:1:" in err and "km" in err
    assert not list(out.glob("*.jsonl"))


def test_sweep_when_traffic_weights_sum_to_infinity_exits_2_naming_the_file(tmp_path, capsys):
    matrix = tmp_path / "tm.csv"
    matrix.write_text("0,1,1e308\n1,2,1e308\n")
    out = tmp_path / "d"
    argv = ["sweep", "--set", f"general_settings.traffic_matrix={matrix}", "--out", str(out)]
    assert main([*argv, *TINY]) == 2
    err = capsys.readouterr().err
    assert str(matrix) in err and "finite" in err
    assert not list(out.glob("*.jsonl"))


def test_sweep_when_k_paths_would_never_finish_exits_2_naming_the_bound(tmp_path, capsys):
    out = tmp_path / "d"
    sets = ["--set", "topology_settings.network=jpn48", "--set", "general_settings.k_paths=2000"]
    assert main(["sweep", *sets, "--out", str(out), *TINY]) == 2
    err = capsys.readouterr().err
    assert "k_paths = 2000" in err and "at most 100" in err
    assert not list(out.glob("*.jsonl"))
    assert "k_paths" in default_ini_text() and "at most 100" in default_ini_text()
