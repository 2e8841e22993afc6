"""`fusion export --format minari`: a round trip through minari.load_dataset is exact."""

from __future__ import annotations

import numpy as np
import pytest

minari = pytest.importorskip("minari", reason="the minari extra is not installed")

from fusion.cli import main  # noqa: E402
from fusion.config.config import load_config  # noqa: E402
from fusion.datasets.arrays import to_arrays  # noqa: E402
from fusion.run.simulation import run_simulation  # noqa: E402


@pytest.fixture
def dataset(tmp_path):
    cfg = load_config().replace("general_settings", num_requests=1500)
    cfg = cfg.replace("failure_settings", t_repair_after_arrivals=400)
    for seed in (3, 4):
        run_simulation(cfg, seed, dataset_dir=str(tmp_path / "ds"))
    return tmp_path / "ds"


def test_export_minari_when_loaded_back_gives_same_counts_actions_and_masks(
    dataset, tmp_path, monkeypatch
):
    root = tmp_path / "minari"
    argv = [
        "export",
        str(dataset),
        "--format",
        "minari",
        "--id",
        "fusion/small-v0",
        "-o",
        str(root),
    ]
    assert main(argv) == 0
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    loaded = minari.load_dataset("fusion/small-v0")
    arrays = to_arrays(dataset)
    k = arrays.action_masks.shape[1]
    assert loaded.total_episodes == 2 and loaded.total_steps == len(arrays) == 3000
    for episode, seed in zip(loaded.iterate_episodes(), (3, 4), strict=True):
        rows = arrays.seeds == seed
        np.testing.assert_array_equal(episode.observations[:-1], arrays.observations[rows])
        np.testing.assert_array_equal(
            episode.actions, np.where(arrays.actions[rows] < 0, k, arrays.actions[rows])
        )
        np.testing.assert_array_equal(episode.rewards, arrays.rewards[rows])
        mask = episode.infos["action_mask"]
        assert mask.shape == (rows.sum() + 1, k + 1)
        np.testing.assert_array_equal(mask[:-1, :k], arrays.action_masks[rows])
        np.testing.assert_array_equal(mask[:-1, k], ~arrays.action_masks[rows].any(axis=1))
        assert episode.truncations[-1] and not episode.truncations[:-1].any()
        assert not episode.terminations.any()
    env = loaded.recover_environment()
    assert env.unwrapped.config.general.num_requests == 1500
    obs, info = env.reset(seed=3)
    first = next(loaded.iterate_episodes())
    np.testing.assert_array_equal(obs, first.observations[0])
    np.testing.assert_array_equal(info["action_mask"], first.infos["action_mask"][0])
    # Minari never overwrites an id: a second export under it is a usage error.
    assert main(argv) == 2


def test_export_minari_when_id_is_malformed_exits_2(dataset, tmp_path, capsys):
    code = main(
        ["export", str(dataset), "--format", "minari", "--id", "small", "-o", str(tmp_path)]
    )
    assert code == 2 and "NAMESPACE/NAME-vN" in capsys.readouterr().err


def test_minari_export_when_killed_midway_publishes_nothing_and_the_next_export_works(
    tmp_path, monkeypatch
):
    import fusion.interop.minari_export as minari_export
    from fusion.config.config import load_config as load
    from fusion.run.simulation import run_simulation as run

    cfg = load().replace("general_settings", num_requests=300)
    run(cfg, 1, dataset_dir=str(tmp_path / "d"))
    root = tmp_path / "minari"

    def killed(*args, **kwargs):  # the process dies while Minari writes
        raise KeyboardInterrupt

    monkeypatch.setattr(minari_export, "_create", killed)
    with pytest.raises(KeyboardInterrupt):
        minari_export.export_minari(tmp_path / "d", "fusion/killed-v0", root=root)
    assert not (root / "fusion" / "killed-v0").exists()
    monkeypatch.undo()
    leftover = root.parent / ".minari.fusion-staging-fusion--killed-v0"
    leftover.mkdir()  # what a SIGKILL would leave
    assert minari_export.export_minari(tmp_path / "d", "fusion/killed-v0", root=root) == 300
    assert (root / "fusion" / "killed-v0").is_dir() and not leftover.exists()
