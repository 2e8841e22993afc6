"""Behaviour cloning on a simulated dataset: it learns KSP-FF and runs in the simulator."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fusion.config.config import load_config
from fusion.datasets.arrays import to_arrays
from fusion.rl.bc import BCModel, BCPolicy, agreement, train_bc
from fusion.run.simulation import run_simulation
from fusion.sim.engine import SimulationEngine

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def sim_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bc")
    cfg = load_config().replace("general_settings", num_requests=4000)
    cfg = cfg.replace("failure_settings", t_repair_after_arrivals=1000)
    for seed in (1, 2, 3, 4):
        run_simulation(cfg, seed, dataset_dir=str(out))
    return out


def test_train_bc_when_trained_on_three_seeds_agrees_with_ksp_ff_on_the_fourth(
    sim_dataset, tmp_path
):
    data = to_arrays(sim_dataset, cache=False)
    train = np.isin(data.seeds, [1, 2, 3])
    model = train_bc(
        data.observations[train], data.actions[train], data.action_masks[train], seed=0
    )
    test = data.seeds == 4
    masks = data.action_masks[test]
    first = np.where(masks.any(axis=1), masks.argmax(axis=1), -1)
    assert agreement(model, data.observations[test], masks, first) >= 0.95
    chosen = model.act(data.observations[test], masks)
    assert np.all(masks[np.arange(len(chosen)), chosen][chosen >= 0])  # never infeasible
    assert np.all((chosen == -1) == ~masks.any(axis=1))
    model.save(tmp_path / "w.npz")
    again = BCModel.load(tmp_path / "w.npz")
    np.testing.assert_array_equal(
        again.logits(data.observations[:10]), model.logits(data.observations[:10])
    )
    cfg = load_config().replace("general_settings", num_requests=1500)
    cfg = cfg.replace("dataset_logging", log_offline_dataset="false")
    stats = SimulationEngine(cfg, 4, policy=BCPolicy(tmp_path / "w.npz")).run()
    assert stats["requests"] == 1500 and 0.0 <= stats["blocking_probability"] < 1.0


def test_train_bc_when_same_data_and_seed_gives_same_weights(sim_dataset):
    data = to_arrays(sim_dataset, cache=False).take(np.arange(3000))
    a = train_bc(data.observations, data.actions, data.action_masks, epochs=1, seed=3)
    b = train_bc(data.observations, data.actions, data.action_masks, epochs=1, seed=3)
    np.testing.assert_array_equal(a.w1, b.w1)


def test_train_bc_when_no_decisions_raises():
    with pytest.raises(ValueError, match="no decisions"):
        train_bc(np.zeros((3, 10), np.float32), np.full(3, -1), np.zeros((3, 1), bool))


def test_train_bc_script_when_run_prints_agreement_and_simulated_blocking(sim_dataset, tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "train_bc.py"),
            str(sim_dataset),
            "--out",
            str(tmp_path / "bc.npz"),
            "--simulate",
            "--requests",
            "1000",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    out = result.stdout
    assert "held-out seed 4" in out and "agreement with KSP-FF" in out
    share = float(out.split("agreement with KSP-FF")[1].split(":")[1].split()[0])
    assert share >= 0.95
    assert "ksp_ff  blocking probability" in out and "bc      blocking probability" in out
    assert (tmp_path / "bc.npz").exists()


def test_bc_model_when_saved_says_its_kind_and_evaluate_loads_it(tmp_path):
    from conftest import zero_bc_model

    from fusion.rl.model_file import model_kind
    from fusion.run.evaluate import PolicySpecError, load_policy

    model = zero_bc_model()
    path = tmp_path / "bc.npz"
    model.save(path)
    assert model_kind(path) == "bc"
    assert isinstance(load_policy(str(path)), BCPolicy)
    for name, data in (("empty.npz", b""), ("cut.npz", path.read_bytes()[:100])):
        (tmp_path / name).write_bytes(data)
        with pytest.raises(PolicySpecError, match=name):
            load_policy(str(tmp_path / name))
