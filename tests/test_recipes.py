"""The README's torch recipes (d3rlpy, sb3-contrib MaskablePPO): run where those are installed.

torch is a recipe, not a dependency (a CUDA build of torch is several GB), so these skip in
CI; ``pip install torch==<cpu build> d3rlpy sb3-contrib`` beside the project runs them.
"""

from __future__ import annotations

import numpy as np
import pytest

from fusion.config.config import load_config
from fusion.datasets.arrays import to_arrays
from fusion.run.simulation import run_simulation


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("recipes")
    cfg = load_config().replace("general_settings", num_requests=2000)
    cfg = cfg.replace("failure_settings", t_repair_after_arrivals=500)
    for seed in (1, 2):
        run_simulation(cfg, seed, dataset_dir=str(out))
    return out


def test_d3rlpy_recipe_when_trained_acts_only_on_legal_actions(dataset, tmp_path, monkeypatch):
    d3rlpy = pytest.importorskip("d3rlpy", reason="d3rlpy (and torch) are a recipe, not installed")
    monkeypatch.chdir(tmp_path)  # d3rlpy writes d3rlpy_logs/ into the working directory
    # -- the README's recipe --
    data = to_arrays(dataset)
    k = data.action_masks.shape[1]
    legal = np.hstack([data.action_masks, ~data.action_masks.any(axis=1, keepdims=True)])
    mdp = d3rlpy.dataset.MDPDataset(
        observations=data.observations,
        actions=np.where(data.actions < 0, k, data.actions),
        rewards=data.rewards,
        terminals=np.zeros(len(data), np.float32),  # a run ends by its request budget
        timeouts=data.dones.astype(np.float32),
        action_space=d3rlpy.ActionSpace.DISCRETE,
        action_size=k + 1,
    )
    cql = d3rlpy.algos.DiscreteCQLConfig(gamma=0.99).create(device="cpu")
    cql.fit(mdp, n_steps=200, n_steps_per_epoch=100, show_progress=False, save_interval=10**9)
    q = np.stack(
        [cql.predict_value(data.observations, np.full(len(data), a)) for a in range(k + 1)], axis=1
    )
    actions = np.where(legal, q, -np.inf).argmax(axis=1)  # masked inference
    # -- end --
    assert legal[np.arange(len(data)), actions].all()


def test_maskable_ppo_recipe_when_learning_on_the_env_predicts_legal_actions():
    pytest.importorskip("gymnasium", reason="the rl extra is not installed")
    sb3_contrib = pytest.importorskip("sb3_contrib", reason="sb3-contrib (and torch) are a recipe")
    import gymnasium

    import fusion.env  # noqa: F401  (registers fusion/EONRouting-v0)

    # -- the README's recipe --
    env = gymnasium.make(
        "fusion/EONRouting-v0", overrides={"general_settings": {"num_requests": 2000}}
    )
    model = sb3_contrib.MaskablePPO(
        "MlpPolicy", env, n_steps=256, batch_size=64, seed=0, device="cpu"
    )
    model.learn(total_timesteps=512)
    obs, info = env.reset(seed=1000)
    for _ in range(200):
        action, _ = model.predict(obs, action_masks=info["action_mask"], deterministic=True)
        assert info["action_mask"][int(action)]
        obs, _, _, _, info = env.step(int(action))
    # -- end --
