"""`fusion benchmark publish`: each built dataset in Minari with reference scores in return
units and an evaluation env spec, `mixed` (a study) as one dataset; normalized 0 and 1 at the
references; a second publish keeps what is there, other data under an id is refused."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

minari = pytest.importorskip("minari", reason="the minari extra is not installed")

from fusion.benchmark.build import build_suite  # noqa: E402
from fusion.benchmark.minari_publish import (  # noqa: E402
    episode_return,
    minari_id,
    publish_suite,
)
from fusion.benchmark.suite import load_suite, mixed_grid  # noqa: E402
from fusion.cli import main  # noqa: E402
from fusion.errors import DatasetError, MinariIdExistsError  # noqa: E402
from fusion.interop.minari_export import export_minari  # noqa: E402
from fusion.report.scores import normalized_score  # noqa: E402
from fusion.run.evaluate import evaluate_policies  # noqa: E402
from fusion.sim.policies import KSPFFPolicy  # noqa: E402

PRESET = "gcn-rmsa-nsfnet"  # (--quick: the random and the expert block apart on eval seeds)
SUITE = load_suite(quick=True)
EVAL = SUITE.seeds("eval")


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One preset built with --quick and published into a fresh MINARI_DATASETS_PATH: first
    all but mixed, then all (the three kept, mixed published with references of its own run)."""
    out = tmp_path_factory.mktemp("bench")
    root = tmp_path_factory.mktemp("minari")
    specs = SUITE.datasets([PRESET])
    build_suite(specs, out, workers=1, quiet=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MINARI_DATASETS_PATH", str(root))
        first = [s for s in specs if s.kind != "mixed"]
        results = publish_suite(first, out, EVAL, workers=1)
        again = publish_suite(specs, out, EVAL, workers=1)
        yield {"out": out, "root": root, "results": results, "again": again, "specs": specs}


def _grid_points(spec: Any) -> int:
    """The points of a spec's study (1 for a dataset that is not one)."""
    if spec.kind != "mixed":
        return 1
    return int(np.prod([len(axis.split("=")[1].split(",")) for axis in mixed_grid()]))


def test_publish_when_built_loads_each_dataset_with_its_references(published):
    results = {r.spec.behaviour: r for r in published["results"]}
    assert {b: r.status for b, r in results.items()} == {
        "random": "published",
        "ksp-ff": "published",
        "expert": "published",
    }
    again = {r.spec.behaviour: r for r in published["again"]}
    assert {b: r.status for b, r in again.items()} == {
        "random": "kept",
        "ksp-ff": "kept",
        "expert": "kept",
        "mixed": "published",
    }
    refs = results["random"].references
    assert refs is not None and refs["seeds"] == list(EVAL)
    # mixed's references were run from its own spec: the same figures as the others'
    mixed_refs = again["mixed"].references
    assert mixed_refs is not None
    assert (mixed_refs["ref_min_score"], mixed_refs["ref_max_score"]) == (
        refs["ref_min_score"],
        refs["ref_max_score"],
    )
    for spec in published["specs"]:
        dataset = minari.load_dataset(minari_id(spec))
        assert minari_id(spec) == f"fusion-quick/{PRESET}/{spec.behaviour}-v0"
        episodes = len(spec.seeds) * _grid_points(spec)
        assert dataset.total_episodes == episodes
        assert dataset.total_steps == episodes * spec.requests
        metadata = dataset.storage.metadata
        assert metadata["ref_min_score"] == refs["ref_min_score"]
        assert metadata["ref_max_score"] == refs["ref_max_score"]
        assert metadata["num_episodes_average_score"] == len(EVAL)


def test_publish_mixed_when_loaded_gives_each_episode_its_point_and_behaviour(published):
    spec = next(s for s in published["specs"] if s.kind == "mixed")
    dataset = minari.load_dataset(minari_id(spec))
    metadata = dataset.storage.metadata
    points = metadata["fusion_points"]
    assert len(points) == _grid_points(spec)
    behaviours = metadata["fusion_behaviours"]
    seen = set()
    for number, episode in enumerate(dataset.iterate_episodes()):
        point = points[int(episode.infos["point"][0])]["point"]
        assert int(episode.infos["point"][0]) == number // len(spec.seeds)  # study order
        chose = {behaviours[i] for i in episode.infos["behaviour"][:-1]}
        assert len(chose) == 1 and chose.pop().startswith(point["policy"] + "/")
        assert (
            (episode.infos["propensity"][:-1] > 0) & (episode.infos["propensity"][:-1] <= 1)
        ).all()
        seen.add((point["policy"], point["path_order"]))
    assert len(seen) == len(points)


def test_normalized_score_when_reference_returns_gives_zero_and_one_as_the_report(published):
    refs = published["results"][0].references
    dataset = minari.load_dataset(minari_id(published["specs"][0]))
    means = {role: np.mean(list(refs[role]["returns"].values())) for role in ("random", "expert")}
    assert means["random"] == refs["ref_min_score"] and means["expert"] == refs["ref_max_score"]
    scores = minari.get_normalized_score(dataset, np.array([means["random"], means["expert"]]))
    assert scores.tolist() == [0.0, 1.0]  # Minari's scale: 0 .. 1, not 0 .. 100
    mixed = next(s for s in published["specs"] if s.kind == "mixed")
    ends = np.array([means["random"], means["expert"]])
    assert minari.get_normalized_score(minari.load_dataset(minari_id(mixed)), ends).tolist() == [
        0.0,
        1.0,
    ]
    # a third policy: Minari's score of its mean return is the report's score of its mean
    # blocking against the references' mean blocking, over 100 (N is the same on every seed)
    report = evaluate_policies(published["specs"][0].config(), ["kca_ff"], seeds=EVAL, workers=1)
    blocking = {r["seed"]: r["blocking"] for r in report["policies"][1]["per_seed"]}
    returns = [episode_return(blocking[s], refs["requests"]) for s in EVAL]
    mean_bp = {
        role: np.mean(list(refs[role]["blocking"].values())) for role in ("random", "expert")
    }
    expected = normalized_score(
        np.mean(list(blocking.values())), mean_bp["random"], mean_bp["expert"]
    )
    assert minari.get_normalized_score(dataset, np.mean(returns)) == pytest.approx(expected / 100)


def test_eval_env_when_recovered_steps_and_returns_the_engine_figure(published):
    spec = next(s for s in published["specs"] if s.behaviour == "ksp-ff")
    env = minari.load_dataset(minari_id(spec)).recover_environment(eval_env=True)
    config = env.unwrapped.config
    assert config.general.seeds == EVAL and config.general.erlang == spec.erlang
    assert config.general.num_requests == spec.requests
    assert config.general.path_order == spec.config().general.path_order
    assert config.policy.policy == "ksp_ff" and not config.dataset.log_offline_dataset
    # KSP-FF after its own (KSP-FF) warm-up: the env's return is the engine's N (1 - 2 BP)
    seed, policy, total, done = EVAL[0], KSPFFPolicy(), 0.0, False
    obs, info = env.reset(seed=seed)
    assert obs.shape == env.observation_space.shape
    while not done:
        path = policy.select_path(env.unwrapped.state, info["action_mask"][:-1])
        obs, reward, _, done, info = env.step(path if path >= 0 else env.unwrapped.k_paths)
        total += reward
    engine = evaluate_policies(spec.config(), [], seeds=[seed], workers=1)
    row = engine["policies"][0]["per_seed"][0]
    assert total == episode_return(row["blocking"], row["requests"])
    # mixed (a study over path orders) recovers ksp-ff's eval env: the preset's own path order
    mixed = next(s for s in published["specs"] if s.kind == "mixed")
    recovered = minari.load_dataset(minari_id(mixed)).recover_environment(eval_env=True)
    assert recovered.unwrapped.config.to_dict() == config.to_dict()
    obs, info = recovered.reset(seed=seed)
    obs, reward, _, _, info = recovered.step(int(np.flatnonzero(info["action_mask"])[0]))
    assert obs.shape == recovered.observation_space.shape and reward in (-1.0, 1.0)


def test_publish_when_run_twice_keeps_each_dataset_unchanged(published, capsys):
    root = Path(published["root"])
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}
    argv = ["benchmark", "publish", "--preset", PRESET, "--out", str(published["out"])]
    assert main([*argv, "--quick", "--workers", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[1].split()[0] for line in lines[:4]] == ["kept"] * 4
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()} == before
    # a --quick build is not published as a reference
    assert main(argv) == 1
    assert "built with --quick" in capsys.readouterr().err


def test_publish_when_the_id_holds_other_data_is_refused(published, tmp_path, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path))
    ksp_ff = next(s for s in published["specs"] if s.behaviour == "ksp-ff")
    random = Path(published["out"]) / "v0" / PRESET / "random"
    export_minari(random, minari_id(ksp_ff))  # another dataset under ksp-ff's id
    with pytest.raises(MinariIdExistsError, match=f"{minari_id(ksp_ff)}.*holds other data"):
        publish_suite([ksp_ff], published["out"], EVAL, workers=1)


def test_publish_when_not_built_names_the_build_command(tmp_path):
    spec = SUITE.datasets(["maskrsa-nsfnet"])[0]
    with pytest.raises(DatasetError, match="fusion benchmark build --preset maskrsa-nsfnet"):
        publish_suite([spec], tmp_path, EVAL, workers=1)
    assert not os.listdir(tmp_path)


def test_publish_when_preset_unknown_exits_2_naming_the_choices(capsys):
    assert main(["benchmark", "publish", "--preset", "nope", "--quick"]) == 2
    assert "deeprmsa-nsfnet" in capsys.readouterr().err
