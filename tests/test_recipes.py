"""The README's recipes: those that build datasets write zstd shards and their readers take
them; the torch recipes (d3rlpy, sb3-contrib MaskablePPO) run where those are installed.

torch is a recipe, not a dependency (a CUDA build of torch is several GB), so the torch ones
skip in CI; ``pip install torch==<cpu build> d3rlpy sb3-contrib`` beside the project runs them.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np
import pytest
from conftest import load_script

from fusion.cli import main
from fusion.config.config import load_config
from fusion.datasets.arrays import to_arrays
from fusion.run.simulation import run_simulation

README = Path(__file__).resolve().parents[1] / "README.md"
ZSTD = "--set dataset_logging.shard_compression=zstd"


def _readme_commands(after: str = "## Quick start") -> list[str]:
    """The README's shell commands past its Quick start (whose main job keeps plain shards,
    the figures it quotes): each ```bash block's lines, continuations joined."""
    text = README.read_text("utf-8")
    text = text[text.index("\n## ", text.index(after) + len(after)) :]
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.DOTALL):
        commands += [" ".join(line.split()) for line in block.replace("\\\n", " ").splitlines()]
    return [c for c in commands if c]


def _readme_command(*words: str) -> list[str]:
    """The one README command holding every word, as argv without the program's name."""
    (found,) = [c for c in _readme_commands() if all(w in c for w in words)]
    argv = shlex.split(found)
    return argv[1:] if argv[0] == "fusion" else argv[2:]  # fusion X / python scripts/X.py


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("recipes")
    cfg = load_config().replace("general_settings", num_requests=2000)
    cfg = cfg.replace("failure_settings", t_repair_after_arrivals=500)
    cfg = cfg.replace("dataset_logging", shard_compression="zstd")  # as the README's recipes
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


def test_readme_recipes_when_they_build_datasets_write_zstd_shards():
    builders = [c for c in _readme_commands() if re.match(r"fusion (sweep|run)\b", c)]
    assert len(builders) >= 4  # the study, the fitted-Q mix, both afterstate recipes
    for command in builders:
        assert ZSTD in command, f"README.md: {command!r} writes plain shards"


def test_afterstate_recipe_when_shards_are_zstd_trains_what_plain_shards_train(tmp_path, capsys):
    sweep = _readme_command("fusion sweep", "--out behd")
    small = ["--seeds", "0-1", "--workers", "1", "--quiet"]
    small += ["--set", "general_settings.num_requests=300"]
    small += ["--set", "general_settings.warmup_requests=50"]
    plain = " ".join(sweep).replace(ZSTD, "").split()
    assert main([*sweep, *small, "--out", str(tmp_path / "z")]) == 0
    assert main([*plain, *small, "--out", str(tmp_path / "p")]) == 0
    assert list((tmp_path / "z").rglob("*.jsonl.zst"))
    assert not list((tmp_path / "z").rglob("*.jsonl")) and list((tmp_path / "p").rglob("*.jsonl"))
    zstd_arrays, plain_arrays = to_arrays(tmp_path / "z"), to_arrays(tmp_path / "p")
    assert np.array_equal(zstd_arrays.observations, plain_arrays.observations)
    assert np.array_equal(zstd_arrays.actions, plain_arrays.actions)
    train = _readme_command("train_afterstate.py", "behd")
    models = {}
    for name in ("z", "p"):
        argv = [str(tmp_path / name), *train[1:], "-o", str(tmp_path / f"{name}.npz")]
        assert load_script("train_afterstate").main(argv) == 0
        with np.load(tmp_path / f"{name}.npz") as model:
            models[name] = {key: model[key] for key in model.files}
    capsys.readouterr()
    assert models["z"].keys() == models["p"].keys()
    for key, value in models["z"].items():
        assert np.array_equal(value, models["p"][key]), key
