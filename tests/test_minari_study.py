"""A study over behaviours (a benchmark's `mixed`) exports as ONE Minari dataset: every point's
seeds in the study's order, each episode's point and what chose each action in its infos;
a study that differs in more than the behaviour is refused before anything is created."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

minari = pytest.importorskip("minari", reason="the minari extra is not installed")

from fusion.cli import main  # noqa: E402
from fusion.config.config import load_config  # noqa: E402
from fusion.errors import MinariStudyError  # noqa: E402
from fusion.interop.minari_export import export_minari  # noqa: E402
from fusion.storage.loader import load_dataset  # noqa: E402
from fusion.storage.shard_writer import DatasetLogger  # noqa: E402
from fusion.storage.study_layout import read_study  # noqa: E402

SEEDS = (0, 1)
GRID = ["policy_settings.policy=ksp_ff,lf_ksp", "general_settings.path_order=hops,length"]
SMALL = ["--set", "general_settings.num_requests=200", "--quiet", "--workers", "1"]


def _sweep(out: Path, grid: list[str], seeds: str = "0-1", *extra: str) -> Path:
    argv = ["sweep", "--seeds", seeds, "--out", str(out), *SMALL, *extra]
    for axis in grid:
        argv += ["--grid", axis]
    assert main(argv) == 0
    return out


def _loaded(root: Path, dataset_id: str) -> Any:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MINARI_DATASETS_PATH", str(root))
        return minari.load_dataset(dataset_id)


def _episodes(dataset: Any) -> Iterator[tuple[int, Any]]:
    """``(seed, episode)`` in the dataset's order."""
    for episode in dataset.iterate_episodes():
        (metadata,) = dataset.storage.get_episode_metadata([episode.id])
        yield int(metadata["seed"]), episode


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A study of 2 policies x 2 path orders (epsilon 0.2, 2 seeds) exported whole, and each
    of its points exported on its own, into one Minari root."""
    base = tmp_path_factory.mktemp("study")
    study = _sweep(base / "s", GRID, "0-1", "--set", "dataset_logging.epsilon_mix=0.2")
    root = base / "minari"
    steps = export_minari(study, "fusion/study-v0", root=root)
    points = read_study(study)["points"]
    for number, point in enumerate(points):
        export_minari(study / point["dir"], f"fusion/point{number}-v0", root=root)
    return {"study": study, "root": root, "steps": steps, "points": points}


def test_minari_export_when_a_study_differs_only_in_behaviour_gives_points_x_seeds_in_order(
    exported,
):
    dataset = _loaded(exported["root"], "fusion/study-v0")
    points = exported["points"]
    episodes = list(_episodes(dataset))
    # every point's seeds, points in the study's order, seeds ascending
    assert [(int(e.infos["point"][0]), seed) for seed, e in episodes] == [
        (number, seed) for number in range(len(points)) for seed in SEEDS
    ]
    metadata = dataset.storage.metadata
    assert [p["point"] for p in metadata["fusion_points"]] == [p["point"] for p in points]
    assert [p["dir"] for p in metadata["fusion_points"]] == [p["dir"] for p in points]
    assert dataset.total_steps == exported["steps"] == sum(len(e.actions) for _, e in episodes)
    for seed, episode in episodes:
        number = int(episode.infos["point"][0])
        assert (episode.infos["point"] == number).all()
        alone = _loaded(exported["root"], f"fusion/point{number}-v0")
        own = dict(_episodes(alone))[seed]
        np.testing.assert_array_equal(episode.observations, own.observations)
        np.testing.assert_array_equal(episode.actions, own.actions)
        np.testing.assert_array_equal(episode.rewards, own.rewards)
        for key in ("action_mask", "window_tag", "explored", "propensity"):
            np.testing.assert_array_equal(episode.infos[key], own.infos[key], err_msg=key)
        named = [  # each dataset's behaviour index is into its own list
            [names[i] for i in e.infos["behaviour"][:-1]]
            for names, e in (
                (metadata["fusion_behaviours"], episode),
                (alone.storage.metadata["fusion_behaviours"], own),
            )
        ]
        assert named[0] == named[1]
    assert metadata["fusion_points"][0]["dir"] in metadata["description"]


def test_minari_export_of_a_study_when_loaded_carries_what_chose_each_action(exported):
    dataset = _loaded(exported["root"], "fusion/study-v0")
    behaviours = dataset.storage.metadata["fusion_behaviours"]
    records: dict[tuple[int, int], list[dict[str, Any]]] = {}
    dirs = [p["dir"] for p in exported["points"]]
    for record in load_dataset(exported["study"]):
        number = dirs.index("/".join(f"{k}={v}" for k, v in record["point"].items()))
        records.setdefault((number, record["seed"]), []).append(record["meta"])
    explored = 0
    for seed, episode in _episodes(dataset):
        metas = records[int(episode.infos["point"][0]), seed]
        infos = episode.infos
        assert [behaviours[i] for i in infos["behaviour"][:-1]] == [m["behaviour"] for m in metas]
        assert infos["explored"][:-1].tolist() == [m["explored"] for m in metas]
        assert infos["propensity"][:-1].tolist() == [m["propensity"] for m in metas]
        # the terminal observation has no action: -1, false, NaN
        assert infos["behaviour"][-1] == -1 and not infos["explored"][-1]
        assert np.isnan(infos["propensity"][-1])
        assert infos["behaviour"].dtype == np.int32 and infos["propensity"].dtype == np.float64
        explored += int(infos["explored"].sum())
    assert explored > 0  # epsilon 0.2: the mix took its second choice somewhere
    assert sorted(behaviours) == sorted({m["behaviour"] for ms in records.values() for m in ms})
    assert all(b in dataset.storage.metadata["description"] for b in behaviours)


def test_recovered_env_of_a_study_when_no_eval_config_is_the_first_points_and_replays_it(
    exported,
):
    dataset = _loaded(exported["root"], "fusion/study-v0")
    first = exported["points"][0]["point"]
    for eval_env in (False, True):
        config = dataset.recover_environment(eval_env=eval_env).unwrapped.config
        assert (config.policy.policy, config.general.path_order) == (
            first["policy"],
            first["path_order"],
        )
    env = dataset.recover_environment(eval_env=True)
    seed, episode = next(_episodes(dataset))
    obs, info = env.reset(seed=seed)
    done = False
    for step, action in enumerate(episode.actions):
        np.testing.assert_array_equal(obs, episode.observations[step])
        np.testing.assert_array_equal(info["action_mask"], episode.infos["action_mask"][step])
        obs, reward, _, done, info = env.step(int(action))
        assert reward == episode.rewards[step]
    assert done


def test_recovered_env_of_a_study_when_an_eval_config_is_given_is_it_and_steps(exported, tmp_path):
    config = load_config().replace("general_settings", num_requests=50, seeds="1000-1001")
    config = config.replace("general_settings", path_order="hops")
    config = config.replace("dataset_logging", log_offline_dataset=False)
    root = tmp_path / "minari"
    export_minari(exported["study"], "fusion/eval-v0", root=root, eval_config=config.to_dict())
    dataset = _loaded(root, "fusion/eval-v0")
    for eval_env in (False, True):  # a study's env spec is the eval config too
        env = dataset.recover_environment(eval_env=eval_env)
        assert env.unwrapped.config.general.seeds == (1000, 1001)
        assert env.unwrapped.config.general.path_order == "hops"
    obs, info = env.reset(seed=1000)
    done, steps = False, 0
    while not done:
        legal = np.flatnonzero(info["action_mask"])
        obs, _, _, done, info = env.step(int(legal[0]))
        steps += 1
    assert steps == 50 and obs.shape == env.observation_space.shape


def test_minari_export_when_the_eval_config_has_another_k_is_refused_before_any_work(
    exported, tmp_path
):
    k = load_config().general.k_paths
    config = load_config().replace("general_settings", k_paths=k + 1)
    root = tmp_path / "minari"
    with pytest.raises(ValueError, match=rf"eval_config.*Discrete\({k + 2}\).*Discrete\({k + 1}\)"):
        export_minari(exported["study"], "fusion/k-v0", root=root, eval_config=config.to_dict())
    assert not root.exists()


def test_minari_export_when_a_study_differs_in_erlang_is_refused_before_anything_is_created(
    tmp_path,
):
    study = _sweep(
        tmp_path / "loads",
        ["general_settings.erlang=200,300", "policy_settings.policy=ksp_ff,lf_ksp"],
        "0",
    )
    root = tmp_path / "minari"
    with pytest.raises(MinariStudyError) as caught:
        export_minari(study, "fusion/loads-v0", root=root)
    message = str(caught.value)
    assert "general_settings.erlang differs" in message
    assert "200.0 at point erlang=200/policy=ksp_ff" in message
    assert "300.0 at point erlang=300/policy=ksp_ff" in message
    assert not root.exists()
    assert not list(tmp_path.glob(".minari*"))  # no staging either


def test_minari_export_when_a_study_is_merged_into_one_file_is_refused_naming_its_directory(
    exported, tmp_path
):
    merged = tmp_path / "all.jsonl"
    assert main(["merge", str(exported["study"]), "--all", "-o", str(merged)]) == 0
    root = tmp_path / "minari"
    with pytest.raises(MinariStudyError, match="export the study's directory instead"):
        export_minari(merged, "fusion/merged-v0", root=root)
    assert not root.exists()


def _hand_fed(directory: Path, lines: dict[int, list[dict[str, Any]]]) -> Path:
    """A dataset written through the logger, one shard per seed, each line's extra meta given."""
    config = load_config().replace("dataset_logging", path_features="seed")
    k = config.general.k_paths
    path = {
        "path_hops": 2,
        "min_residual_slots": 9,
        "frag_indicator": 0.0,
        "failure_mask": 0,
        "dist_to_disaster_centroid": -1,
    }
    state = {
        "src": 0,
        "dst": 1,
        "slots_needed": 3,
        "est_remaining_time": 1.0,
        "is_disaster": 0,
        "paths": [path] * k,
    }
    for seed, metas in lines.items():
        with DatasetLogger.open_shard(directory, seed, config.identity()) as log:
            for meta in metas:
                mask = [True] * k
                log.log_transition(state, 0, 1.0, None, mask, {"bp_window_tag": "pre", **meta})
    return directory


def test_minari_export_when_records_lack_the_behaviour_fields_writes_no_such_infos(tmp_path):
    chosen = {"behaviour": "lf_ksp/last_fit", "explored": True, "propensity": 0.2}
    data = _hand_fed(
        tmp_path / "d",
        {
            1: [{}, {}],  # made before the fields existed
            2: [
                {"behaviour": "ksp_ff/first_fit", "explored": False, "propensity": 0.8},
                chosen,
                {},  # one line without them
                {**chosen, "explored": False, "propensity": 0.8},
            ],
        },
    )
    root = tmp_path / "minari"
    assert export_minari(data, "fusion/old-v0", root=root) == 6
    dataset = _loaded(root, "fusion/old-v0")
    (old, new) = [episode for _, episode in _episodes(dataset)]
    assert set(old.infos) == {"action_mask", "window_tag"}  # no point: not a study
    assert dataset.storage.metadata["fusion_behaviours"] == ["ksp_ff/first_fit", "lf_ksp/last_fit"]
    assert new.infos["behaviour"].tolist() == [0, 1, -1, 1, -1]
    assert new.infos["explored"].tolist() == [False, True, False, False, False]
    np.testing.assert_array_equal(new.infos["propensity"], [0.8, 0.2, np.nan, 0.8, np.nan])


def test_minari_export_of_a_study_when_written_reads_one_shard_per_episode_written(
    exported, tmp_path, monkeypatch
):
    import minari.dataset._storages.hdf5_storage as hdf5

    import fusion.interop.minari_export as minari_export

    events: list[tuple[str, Any]] = []
    read, write = minari_export.shard_arrays, hdf5._add_episode_to_group

    def reading(*args: Any, **kwargs: Any) -> Any:
        data = read(*args, **kwargs)
        events.append(("read", sorted(set(data.seeds.tolist()))))
        return data

    def writing(buffer: dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        if "observations" in buffer:  # an episode (not its infos, written by a nested call)
            events.append(("write", None))
        return write(buffer, *args, **kwargs)

    monkeypatch.setattr(minari_export, "shard_arrays", reading)
    monkeypatch.setattr(hdf5, "_add_episode_to_group", writing)
    export_minari(exported["study"], "fusion/memory-v0", root=tmp_path / "minari")
    # one shard read, then written, before the next is read: never the whole study at once
    one_point = [event for seed in SEEDS for event in (("read", [seed]), ("write", None))]
    assert events == one_point * len(exported["points"])
