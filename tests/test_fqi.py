"""Masked fitted-Q iteration: masked targets, save/load, determinism, and the evaluate command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn", reason="the rl extra (scikit-learn) is not installed")

from fusion.cli import main
from fusion.config.config import load_config
from fusion.datasets.arrays import to_arrays
from fusion.rl.fqi import (
    FQIModel,
    FQIPolicy,
    behaviour_support,
    bootstrap_targets,
    discounted_returns,
    next_masks,
    supported,
    train_fqi,
    train_fqi_on,
)
from fusion.run.evaluate import load_policy
from fusion.run.simulation import run_simulation
from fusion.sim.engine import SimulationEngine

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("fqi")
    cfg = load_config().replace("general_settings", num_requests=3000)
    cfg = cfg.replace("failure_settings", t_repair_after_arrivals=800)
    cfg = cfg.replace("policy_settings", policy="random_feasible")
    for seed in (1, 2):
        run_simulation(cfg, seed, dataset_dir=str(out))
    return out, to_arrays(out)


def _train(data, **options):
    return train_fqi_on(data, max_trees=20, **options)


def test_bootstrap_targets_when_best_next_action_is_illegal_ignores_it():
    rewards = np.array([1.0, -1.0, 1.0])
    dones = np.array([False, False, True])
    next_q = np.array([[5.0, 100.0, 7.0], [100.0, 100.0, 3.0], [9.0, 9.0, 9.0]])
    successor = np.array([[True, False], [False, False], [True, True]])
    targets = bootstrap_targets(rewards, dones, next_q, successor, 0.5)
    # row 0: path 1 (Q 100) and block (7) are illegal -> 5; row 1: only block is legal -> 3;
    # row 2 ends its episode -> the reward alone.
    np.testing.assert_allclose(targets, [1.0 + 2.5, -1.0 + 1.5, 1.0])


def test_next_masks_when_episode_ends_has_no_successor():
    masks = np.array([[True, False], [False, True], [True, True]])
    out = next_masks(masks, np.array([False, True, False]))
    assert out.tolist() == [[False, True], [False, False], [False, False]]
    assert discounted_returns(
        np.array([1.0, 1.0, 1.0]), np.array([False, True, True]), 0.5
    ).tolist() == [1.5, 1.0, 1.0]


def test_train_fqi_when_same_data_and_seed_gives_same_model(logged):
    _, data = logged
    a, b = _train(data, iterations=2), _train(data, iterations=2)
    for x, y in ((a.state_value, b.state_value), (a.advantage, b.advantage)):
        np.testing.assert_array_equal(x.value, y.value)
        np.testing.assert_array_equal(x.threshold, y.threshold)


def test_fqi_model_when_saved_and_loaded_predicts_the_same_and_acts_legally(logged, tmp_path):
    _, data = logged
    model = _train(data, iterations=2, gamma=0.9)
    path = tmp_path / "fqi.npz"
    model.save(path)
    again = FQIModel.load(path)
    assert again.info == model.info and again.info["gamma"] == 0.9
    q = model.q_values(data.observations[:500], data.action_masks[:500])
    np.testing.assert_array_equal(
        q, again.q_values(data.observations[:500], data.action_masks[:500])
    )
    chosen = again.act(data.observations, data.action_masks)
    feasible = data.action_masks.any(axis=1)
    assert (chosen[~feasible] == -1).all()
    assert data.action_masks[np.flatnonzero(feasible), chosen[feasible]].all()
    assert isinstance(load_policy(str(path)), FQIPolicy)


def test_fqi_policy_when_run_in_the_simulator_routes_only_feasible_paths(logged, tmp_path):
    _, data = logged
    path = tmp_path / "fqi.npz"
    _train(data, iterations=1).save(path)
    cfg = load_config().replace("general_settings", num_requests=1000)
    stats = SimulationEngine(cfg, 9, policy=FQIPolicy(path)).run()
    assert stats["requests"] == 1000 and 0.0 <= stats["blocking_probability"] < 1.0


def test_fqi_model_load_when_file_is_not_a_model_names_it(tmp_path):
    path = tmp_path / "other.npz"
    np.savez(path, x=np.zeros(2))
    with pytest.raises(ValueError, match=r"other\.npz: not an FQI model"):
        FQIModel.load(path)
    with pytest.raises(ValueError, match=r"nope\.npz.*not a heuristic"):
        load_policy(str(tmp_path / "nope.npz"))
    with pytest.raises(ValueError, match=r"other\.npz.*holds no FQI, BC or afterstate model"):
        load_policy(str(path))
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(ValueError, match=r"text\.npz.*not a model file"):
        load_policy(str(tmp_path / "text.npz"))


def test_train_fqi_when_settings_are_bad_raises(logged):
    _, data = logged
    with pytest.raises(ValueError, match="gamma must lie in"):
        _train(data, gamma=1.0)
    with pytest.raises(ValueError, match="iterations must be at least 1"):
        _train(data, iterations=0)


def test_evaluate_cli_when_json_gives_paired_difference_per_policy(logged, tmp_path, capsys):
    _, data = logged
    model = tmp_path / "fqi.npz"
    _train(data, iterations=1).save(model)
    argv = ["evaluate", "--seeds", "5,6", "--set", "general_settings.num_requests=800"]
    code = main(
        [*argv, "--policy", "shortest_feasible", "--policy", str(model), "--json", "--workers", "2"]
    )
    assert code == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == ["ksp_ff", "shortest_feasible", "fqi"]
    base = rows[0]
    assert base["vs_ksp_ff"]["mean"] == 0.0 and base["seeds"] == [5, 6]
    for row in rows:
        assert row["blocking"]["n"] == 2 and set(row["per_window"]) <= {"pre", "fail", "post"}
        low, high = row["vs_ksp_ff"]["ci95_low"], row["vs_ksp_ff"]["ci95_high"]
        assert low <= row["vs_ksp_ff"]["mean"] <= high
    assert main([*argv, "--policy", "no_such_policy"]) == 2
    assert "no_such_policy" in capsys.readouterr().err


def test_train_offline_script_when_run_prints_figures_and_writes_the_model(logged, tmp_path):
    directory, _ = logged
    out = tmp_path / "m.npz"
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "train_offline.py"),
            str(directory),
            "-o",
            str(out),
            "--iterations",
            "2",
            "--trees",
            "10",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "data: 6000 transitions from 2 seed(s)" in result.stdout
    assert "iteration 2/2" in result.stdout and out.exists()


def test_trees_when_flattened_predict_as_scikit_learn_does():
    from sklearn.ensemble import HistGradientBoostingRegressor

    from fusion.rl.fqi import Trees

    rng = np.random.default_rng(1)
    x = rng.normal(size=(3000, 6)).astype(np.float32)
    y = 2 * x[:, 0] + np.sin(3 * x[:, 1]) + (x[:, 2] > 0.5)
    regressor = HistGradientBoostingRegressor(max_iter=30, random_state=0).fit(x, y)
    np.testing.assert_allclose(
        Trees.from_sklearn(regressor).predict(x), regressor.predict(x), rtol=0, atol=1e-9
    )


def test_supported_when_logs_never_took_a_rank_leaves_it_out():
    # Epsilon-mixed KSP-FF: with 3 feasible paths it took the first (8x) or the second (2x).
    masks = np.array([[True, True, True, False]] * 10)
    actions = np.array([0] * 8 + [1] * 2)
    support = behaviour_support(actions, masks)
    np.testing.assert_allclose(support[3], [0.8, 0.2, 0.0, 0.0])
    query = np.array([[True, False, True, True], [True, True, False, False]])
    # Row 0 has 3 feasible paths: ranks 0 and 1 (paths 0 and 2) are candidates, not path 3;
    # row 1 has 2 feasible paths, a count the logs never saw: both are candidates.
    assert supported(query, support, 0.1).tolist() == [
        [True, False, True, False],
        [True, True, False, False],
    ]
    assert supported(query, support, 0.0).tolist() == query.tolist()
    assert supported(query, support, 0.5)[0].tolist() == [True, False, False, False]


def test_fqi_policy_when_trained_on_ksp_ff_logs_never_ranks_an_unseen_path_first(logged, tmp_path):
    _, data = logged
    first = np.where(data.action_masks.any(axis=1), data.action_masks.argmax(axis=1), -1)
    model = train_fqi(
        data.observations, first, data.rewards, data.action_masks, data.dones, max_trees=10
    )
    chosen = model.act(data.observations, data.action_masks)
    np.testing.assert_array_equal(chosen, first)  # only rank 0 was ever taken


def test_evaluate_cli_when_several_loads_reports_each_and_a_bad_load_exits_2(capsys):
    argv = ["evaluate", "--seeds", "3", "--set", "general_settings.num_requests=400"]
    assert main([*argv, "--erlang", "200,300", "--policy", "shortest_feasible", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["erlang"], r["name"]) for r in rows] == [
        (200.0, "ksp_ff"),
        (200.0, "shortest_feasible"),
        (300.0, "ksp_ff"),
        (300.0, "shortest_feasible"),
    ]
    assert main([*argv, "--erlang", "lots"]) == 2
    assert "--erlang 'lots'" in capsys.readouterr().err
    assert main([*argv, "--workers", "1"]) == 0
    table = capsys.readouterr().out
    assert "vs ksp_ff (paired, relative)" in table and "random_feasible" in table


def test_train_offline_script_when_a_flag_is_bad_exits_2_before_reading(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parent.parent / "scripts" / "train_offline.py"
    for flags, named in ((["--gamma", "1.5"], "gamma"), (["--evaluate", "--seeds", "x"], "x")):
        result = subprocess.run(
            [sys.executable, str(script), str(tmp_path / "no-such-dataset"), "-o", "m.npz", *flags],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 2 and named in result.stderr
        assert "no-such-dataset" not in result.stderr  # the data was never read
