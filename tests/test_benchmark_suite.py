"""The declared benchmark suite: the shipped v0 file, its checks, and ``fusion benchmark list``."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import orjson
import pytest

from fusion.benchmark.suite import KINDS, load_suite, suite_path
from fusion.cli import main
from fusion.config.config import parse_seeds
from fusion.config.presets import PRESETS
from fusion.errors import ConfigError

RMSA = [
    "deeprmsa-nsfnet",
    "deeprmsa-cost239",
    "reward-rmsa-nsfnet",
    "gcn-rmsa-nsfnet",
    "gcn-rmsa-cost239",
    "gcn-rmsa-usnet",
    "maskrsa-nsfnet",
    "maskrsa-jpn48",
]


def _shipped() -> dict[str, Any]:
    return orjson.loads(suite_path().read_bytes())


def _write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "suite.json"
    path.write_text(json.dumps(data), "utf-8")
    return path


def test_v0_when_loaded_names_every_rmsa_preset_at_its_top_load_with_four_behaviours():
    suite = load_suite()
    assert suite.presets == RMSA
    for preset in suite.data["presets"]:
        assert preset["erlang"] == max(PRESETS[preset["name"]].loads), preset["name"]
    assert [b["name"] for b in suite.data["behaviours"]] == ["random", "ksp-ff", "expert", "mixed"]
    specs = suite.datasets()
    assert len(specs) == len(RMSA) * 4
    mixed = next(s for s in specs if s.behaviour == "mixed")
    assert mixed.epsilon_mix == 0.2 and mixed.log_spectrum
    assert set(mixed.seeds) <= set(suite.seeds("train"))


def test_v0_seed_ranges_when_read_are_disjoint():
    roles = {role: set(load_suite().seeds(role)) for role in ("train", "tune", "eval")}
    assert not roles["train"] & roles["tune"]
    assert not roles["train"] & roles["eval"]
    assert not roles["tune"] & roles["eval"]


def test_dataset_config_when_built_carries_the_suites_load_sizes_and_logging():
    suite = load_suite()
    spec = suite.datasets(["gcn-rmsa-usnet"])[0]
    cfg = spec.config()
    assert cfg.general.erlang == 400.0
    assert (cfg.general.erlang_start, cfg.general.erlang_stop) == (0, 0)  # one load, no study
    assert cfg.general.num_requests == suite.data["requests"]
    assert cfg.general.warmup_requests == suite.data["warmup_requests"]
    assert cfg.general.seeds == parse_seeds(suite.data["seeds"]["train"])
    assert cfg.policy.policy == "random_feasible"
    assert cfg.dataset.path_features == "extended"


def test_quick_when_asked_shrinks_seeds_and_requests():
    full, quick = load_suite().datasets()[0], load_suite(quick=True).datasets()[0]
    assert quick.quick and not full.quick
    assert len(quick.seeds) < len(full.seeds)
    assert quick.requests < full.requests


@pytest.mark.parametrize(
    ("edit", "key", "words"),
    [
        (lambda d: d["seeds"].update(tune="3-5"), "seeds.train and seeds.tune", "overlap"),
        (lambda d: d["seeds"].update(eval="101"), "seeds.tune and seeds.eval", "overlap"),
        (lambda d: d["presets"][1].update(name="nsfnet-x"), "presets[1].name", "unknown preset"),
        (lambda d: d["presets"][0].update(erlang=999), "presets[0].erlang", "published loads"),
        (lambda d: d["behaviours"][2].update(kind="oracle"), "behaviours[2].kind", "unknown"),
        (lambda d: d["behaviours"][0].update(policy="ksp_zz"), "behaviours[0].policy", "unknown"),
        (lambda d: d["behaviours"][3].update(seeds="0-99"), "behaviours[3].seeds", "outside"),
        (lambda d: d.pop("requests"), "requests", "missing"),
    ],
)
def test_suite_file_when_a_key_is_wrong_raises_naming_the_file_and_key(tmp_path, edit, key, words):
    data = copy.deepcopy(_shipped())
    edit(data)
    path = _write(tmp_path, data)
    with pytest.raises(ConfigError) as caught:
        load_suite(path)
    message = str(caught.value)
    assert str(path) in message and key in message and words in message, message


def test_unknown_kind_when_refused_names_the_kinds(tmp_path):
    data = copy.deepcopy(_shipped())
    data["behaviours"][0]["kind"] = "oracle"
    with pytest.raises(ConfigError, match=", ".join(KINDS)):
        load_suite(_write(tmp_path, data))


def test_benchmark_list_when_run_prints_every_dataset_in_the_files_order(capsys):
    assert main(["benchmark", "list"]) == 0
    out = capsys.readouterr().out
    names = [line.split()[0] for line in out.splitlines() if "/" in line.split()[0]]
    assert names == [s.name for s in load_suite().datasets()]
    assert "extended +spectrum" in out  # the feature set, and mixed's spectrum


def test_benchmark_list_json_when_run_gives_preset_behaviour_load_seeds_requests_features(capsys):
    assert main(["benchmark", "list", "--json"]) == 0
    rows = orjson.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == [s.name for s in load_suite().datasets()]
    first = rows[0]
    assert {
        "preset",
        "behaviour",
        "erlang",
        "seeds",
        "requests",
        "warmup_requests",
        "path_features",
    } <= set(first)
    assert (first["preset"], first["behaviour"], first["erlang"]) == (
        "deeprmsa-nsfnet",
        "random",
        250.0,
    )
