"""The Gymnasium environment is the simulator: check_env passes and KSP-FF replays `fusion run`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

gymnasium = pytest.importorskip("gymnasium", reason="the rl extra (gymnasium) is not installed")

import fusion.env  # noqa: E402
from fusion.cli import main  # noqa: E402
from fusion.datasets.arrays import to_arrays  # noqa: E402
from fusion.env import ENV_ID, EONRoutingEnv  # noqa: E402
from fusion.env.routing_env import HELD_OUT_SEEDS  # noqa: E402
from fusion.sim.policies import KSPFFPolicy  # noqa: E402

SMALL = {
    "general_settings": {"num_requests": 3000},
    "failure_settings": {"t_repair_after_arrivals": 800},
}


def _ini(tmp_path: Path) -> Path:
    path = tmp_path / "small.ini"
    path.write_text(
        "[general_settings]\nnum_requests = 3000\nseeds = 7\n"
        "[failure_settings]\nt_repair_after_arrivals = 800\n"
        f"[dataset_logging]\nepsilon_mix = 0\ndataset_output_path = {tmp_path}/ds/offline_data.jsonl\n"
    )
    return path


def test_env_when_checked_by_gymnasium_passes():
    from gymnasium.utils.env_checker import check_env

    env = EONRoutingEnv(overrides={"general_settings": {"num_requests": 300}})
    check_env(env, skip_render_check=True)


def test_env_when_made_by_id_with_a_config_path_uses_that_config(tmp_path):
    env = gymnasium.make(ENV_ID, config=str(_ini(tmp_path)))
    obs, info = env.reset(seed=7)
    assert info["seed"] == 7 and env.unwrapped.config.general.num_requests == 3000
    assert env.observation_space.contains(obs)
    assert env.action_space.n == 5 and info["action_mask"].dtype == bool
    assert fusion.env.EONRoutingEnv is EONRoutingEnv


def test_env_when_driven_by_ksp_ff_reproduces_fusion_run_transitions(tmp_path):
    ini = _ini(tmp_path)
    assert main(["run", "--config", str(ini), "--seed", "7"]) == 0
    logged = to_arrays(tmp_path / "ds")
    env = EONRoutingEnv(config=ini)
    k = env.k_paths
    obs, info = env.reset(seed=7)
    observations, actions, rewards, masks = [], [], [], []
    done = False
    while not done:
        path = KSPFFPolicy().select_path(env.state, info["action_mask"][:k])
        assert info["action_mask"][k] == (path < 0)
        action = path if path >= 0 else k
        observations.append(obs)
        masks.append(info["action_mask"])
        actions.append(action)
        obs, reward, terminated, done, info = env.step(action)
        assert info["legal"] and not terminated
        rewards.append(reward)
    assert len(actions) == len(logged) == 3000
    np.testing.assert_array_equal(np.array(observations), logged.observations)
    np.testing.assert_array_equal(
        np.array(actions), np.where(logged.actions < 0, k, logged.actions)
    )
    np.testing.assert_array_equal(np.array(rewards, np.float32), logged.rewards)
    np.testing.assert_array_equal(np.array(masks)[:, :k], logged.action_masks)
    assert info["stats"]["blocked"] == int((logged.actions < 0).sum())


def test_env_when_action_is_illegal_blocks_and_says_so():
    env = EONRoutingEnv(overrides=SMALL)
    _, info = env.reset(seed=1)
    assert info["action_mask"][0]
    _, reward, _, _, info = env.step(env.k_paths)  # block while a path fits
    assert reward == -1.0 and not info["legal"] and not info["routed"]
    assert env.action_masks().tolist() == info["action_mask"].tolist()


def test_env_when_reset_without_seed_draws_a_seed_outside_the_configs_and_held_out_range():
    env = EONRoutingEnv(overrides=SMALL)
    assert env.reset(seed=5)[1]["seed"] == 5
    drawn = [env.reset()[1]["seed"] for _ in range(20)]
    low, high = HELD_OUT_SEEDS
    assert all(low <= s <= high for s in drawn) and len(set(drawn)) == 20
    assert not set(drawn) & set(env.config.general.seeds)
    again = EONRoutingEnv(overrides=SMALL)
    again.reset(seed=5)
    assert [again.reset()[1]["seed"] for _ in range(20)] == drawn  # seeded: reproducible
    with pytest.raises(ValueError, match=r"action must lie in 0 \.\. 4"):
        env.step(9)


@pytest.mark.parametrize("action", [3.99, -0.5, "0", True, -1, 99])
def test_step_when_action_is_not_an_integer_of_the_space_refuses_it(action):
    env = EONRoutingEnv(overrides={"general_settings": {"num_requests": 50}})
    env.reset(seed=1)
    with pytest.raises(ValueError, match="action"):
        env.step(action)
    env.step(np.int64(0))  # numpy integers are integers


def test_reset_when_options_given_refuses_them():
    env = EONRoutingEnv(overrides={"general_settings": {"num_requests": 50}})
    with pytest.raises(ValueError, match="no options"):
        env.reset(seed=1, options={"erlang": 200})


def test_array_view_when_env_encoding_asked_gives_k_for_blocked_and_a_k_plus_1_mask(tmp_path):
    from fusion.config.config import load_config
    from fusion.run.simulation import run_simulation

    cfg = load_config().replace("general_settings", num_requests=1500, erlang=900)
    run_simulation(cfg, 1, dataset_dir=str(tmp_path))
    data = to_arrays(tmp_path)
    k = data.action_masks.shape[1]
    blocked = data.actions < 0
    assert blocked.any() and (data.env_actions[blocked] == k).all()
    assert (data.env_actions[~blocked] == data.actions[~blocked]).all()
    masks = data.env_action_masks
    assert masks.shape == (len(data), k + 1)
    assert (masks[np.arange(len(data)), data.env_actions]).all()  # every logged action legal
    assert (masks[:, k] == ~data.action_masks.any(axis=1)).all()


@pytest.mark.parametrize("features", ["seed", "extended"])
def test_env_spaces_when_built_are_the_declarations_ranges_laid_out_by_name(features):
    from fusion.config.features import feature_bounds, path_features
    from fusion.datasets.actions import env_action_count
    from fusion.sim.scenario import build_scenario
    from fusion.storage.observation import observation_names

    overrides = {"dataset_logging": {"path_features": features}}
    env = EONRoutingEnv(overrides={**SMALL, **overrides})
    k = env.k_paths
    assert env.observation_names == observation_names(k, path_features(features))
    assert env.action_space.n == env_action_count(k)
    space = env.observation_space
    assert len(env.observation_names) == space.shape[0]
    sizes = {
        "nodes": build_scenario(env.config).topology.num_nodes,
        "slots": env.config.topology.c_band,
    }
    top = np.finfo(np.float32).max
    for index, name in enumerate(env.observation_names):
        (low,), (high,) = feature_bounds([name.rpartition(".")[2]], **sizes)
        assert space.low[index] == np.float32(low), name
        assert space.high[index] == np.float32(min(high, top)), name
    obs, _ = env.reset(seed=1)
    assert space.contains(obs)
