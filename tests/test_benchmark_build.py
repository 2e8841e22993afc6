"""``fusion benchmark build``: datasets and data cards, skipped when complete, resumed when not,
the same content sha256 whenever built."""

from __future__ import annotations

import shutil

import orjson
import pytest

from fusion.benchmark import build as build_module
from fusion.benchmark.build import CHOICE_FILE, build_suite, choose_expert, dataset_directory
from fusion.benchmark.cards import card_path, content_sha256, read_card
from fusion.benchmark.suite import expert_candidates, load_suite
from fusion.cli import main
from fusion.config.heuristics import HEURISTICS
from fusion.config.vocabulary import PATH_ORDERS
from fusion.errors import DatasetError
from fusion.storage.shard_names import shard_file_name, sidecar_path

PRESET = "maskrsa-nsfnet"  # the smallest network of the suite


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One quick build of one preset through the command: its output directory."""
    out = tmp_path_factory.mktemp("bench")
    argv = ["benchmark", "build", "--preset", PRESET, "--out", str(out), "--quick"]
    assert main([*argv, "--workers", "2", "--quiet"]) == 0
    return out


def _specs():
    return load_suite(quick=True).datasets([PRESET])


def test_quick_build_when_run_makes_four_datasets_and_their_cards(built):
    for spec in _specs():
        directory = dataset_directory(built, spec)
        assert directory == built / "v0" / PRESET / spec.behaviour
        card = read_card(directory)
        assert card is not None, spec.name
        assert card["sha256"] == content_sha256(directory)  # recomputed from the dataset
        for key in ("behaviour", "seeds", "requests", "warmup_requests", "path_features", "size"):
            assert key in card, (spec.name, key)
        assert card["quick"] is True and card["seeds"] == list(spec.seeds)
        assert card["size"]["transitions"] == card["size"]["episodes"] * spec.requests
        assert card["rebuild"] == f"fusion benchmark build --preset {PRESET} --out OUT --quick"


def test_expert_when_built_records_its_choice_from_every_heuristic_and_path_order(built):
    expert = read_card(built / "v0" / PRESET / "expert")
    choice = expert["expert_choice"]
    assert len(choice["candidates"]) == len(HEURISTICS) * len(PATH_ORDERS)
    assert choice["blocking"] == min(choice["candidates"].values())
    assert (expert["policy"], expert["path_order"]) == (choice["policy"], choice["path_order"])
    assert choice["tune_seeds"] == list(load_suite(quick=True).seeds("tune"))
    ranked = sorted(expert_candidates(), key=choice["candidates"].get)  # a tie: registry order
    assert (choice["spec"], choice["runner_up"]) == (ranked[0], ranked[1])
    assert set(choice["vs_runner_up"]) >= {"mean", "ci95_low", "ci95_high"}


def test_expert_choice_when_an_input_changed_is_made_again(built, monkeypatch):
    spec = next(s for s in _specs() if s.kind == "expert")
    kept = choose_expert(spec, built, workers=1)
    assert kept == choose_expert(spec, built, workers=1)  # the same inputs: read back
    calls = []
    real = build_module.evaluate_policies
    monkeypatch.setattr(
        build_module, "evaluate_policies", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    choose_expert(spec, built, workers=1)
    assert calls == []
    path = dataset_directory(built, spec).with_name(CHOICE_FILE)
    for key in ("config_sha256", "warmup_requests", "candidates_sha256", "fusion_version"):
        stale = {**kept, key: "other"}
        path.write_bytes(orjson.dumps(stale))
        assert choose_expert(spec, built, workers=1)[key] == kept[key], key
    assert len(calls) == 4


def test_build_when_the_expert_choice_file_was_lost_restores_it_from_the_card(built, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(built, out)
    path = out / "v0" / PRESET / CHOICE_FILE
    kept = orjson.loads(path.read_bytes())
    path.unlink()
    argv = ["benchmark", "build", "--preset", PRESET, "--out", str(out), "--quick", "--quiet"]
    assert main([*argv, "--workers", "1"]) == 0
    assert orjson.loads(path.read_bytes()) == kept  # evaluate and publish find it again


def test_mixed_when_built_is_a_study_of_every_heuristic_under_every_path_order(built):
    mixed = built / "v0" / PRESET / "mixed"
    study = orjson.loads((mixed / "study.json").read_bytes())
    assert len(study["points"]) == len(HEURISTICS) * len(PATH_ORDERS)
    card = read_card(mixed)
    assert card["epsilon_mix"] == 0.2 and card["log_spectrum"] is True


def test_second_build_when_complete_is_a_no_op_with_the_same_sha256(built, capsys):
    before = {s.behaviour: read_card(dataset_directory(built, s)) for s in _specs()}
    argv = ["benchmark", "build", "--preset", PRESET, "--out", str(built), "--quick", "--quiet"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert out.count(": kept") == 4 and ": built" not in out
    after = {s.behaviour: read_card(dataset_directory(built, s)) for s in _specs()}
    assert after == before


def test_build_when_a_seed_is_missing_resumes_it_and_gives_the_same_sha256(built):
    spec = next(s for s in _specs() if s.behaviour == "random")
    directory = dataset_directory(built, spec)
    sha = read_card(directory)["sha256"]
    first = directory / (shard_file_name(spec.seeds[0], "offline_data") + ".zst")
    last = directory / (shard_file_name(spec.seeds[-1], "offline_data") + ".zst")
    first_mtime = first.stat().st_mtime_ns
    # a build killed after the first seed: the last seed's shard and the card never written
    last.unlink()
    sidecar_path(directory / shard_file_name(spec.seeds[-1], "offline_data")).unlink()
    card_path(directory).unlink()
    with pytest.raises(DatasetError, match="not complete"):
        content_sha256(directory)  # a planned seed is not complete
    [result] = build_suite([spec], built, workers=1, quiet=True)
    assert result.status == "built"
    assert last.exists() and first.stat().st_mtime_ns == first_mtime  # resumed, not redone
    assert result.card["sha256"] == sha == content_sha256(directory)


def test_build_when_run_into_another_directory_gives_the_same_sha256(built, tmp_path):
    spec = next(s for s in _specs() if s.behaviour == "ksp-ff")
    [result] = build_suite([spec], tmp_path, workers=1, quiet=True)
    assert result.card["sha256"] == read_card(dataset_directory(built, spec))["sha256"]


def test_build_when_a_preset_is_unknown_exits_2_naming_the_choices(tmp_path, capsys):
    argv = ["benchmark", "build", "--preset", "nsfnet", "--out", str(tmp_path), "--quick"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "'nsfnet'" in err and "deeprmsa-nsfnet" in err and "maskrsa-jpn48" in err
    assert not any(tmp_path.iterdir())  # refused before anything is written


def test_mixed_when_a_point_lost_its_shard_resumes_that_point_only(built):
    spec = next(s for s in _specs() if s.behaviour == "mixed")
    directory = dataset_directory(built, spec)
    sha = read_card(directory)["sha256"]
    points = orjson.loads((directory / "study.json").read_bytes())["points"]
    lost, other = directory / points[7]["dir"], directory / points[0]["dir"]
    name = shard_file_name(spec.seeds[0], "offline_data")
    (lost / (name + ".zst")).unlink()
    (lost / sidecar_path(name).name).unlink()
    card_path(directory).unlink()
    untouched = (other / (name + ".zst")).stat().st_mtime_ns
    [result] = build_suite([spec], built, workers=1, quiet=True)
    assert result.status == "built" and (lost / (name + ".zst")).exists()
    assert (other / (name + ".zst")).stat().st_mtime_ns == untouched
    assert result.card["sha256"] == sha


def test_build_when_a_shard_changed_since_builds_it_again_not_kept(built):
    spec = next(s for s in _specs() if s.behaviour == "ksp-ff")
    directory = dataset_directory(built, spec)
    sha = read_card(directory)["sha256"]
    shard = directory / (shard_file_name(spec.seeds[-1], "offline_data") + ".zst")
    shard.write_bytes(shard.read_bytes()[:-1] + b"\x00")  # one byte changed, same size
    [result] = build_suite([spec], built, workers=1, quiet=True)
    assert result.status == "built"  # the card vouched for other bytes: not "kept"
    assert result.card["sha256"] == sha == content_sha256(directory)


def test_build_when_a_users_file_has_a_cards_name_exits_2_and_keeps_it(tmp_path, capsys):
    spec = next(s for s in _specs() if s.behaviour == "random")
    mine = card_path(dataset_directory(tmp_path, spec))
    mine.parent.mkdir(parents=True)
    mine.write_text("my notes")
    argv = ["benchmark", "build", "--preset", PRESET, "--out", str(tmp_path), "--quick"]
    assert main([*argv, "--workers", "1", "--quiet"]) == 2
    assert mine.read_text() == "my notes"
    assert "did not write" in capsys.readouterr().err
