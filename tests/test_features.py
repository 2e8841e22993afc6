"""Extended path features, the feature catalogue, holding_time_known, log_spectrum and
model files that know what they were trained on."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from fusion.cli import main
from fusion.config.config import load_config
from fusion.config.features import (
    EXTENDED_PATH_FEATURES,
    FEATURES,
    SEED_PATH_FEATURES,
    feature_table,
    path_features,
)
from fusion.datasets.arrays import to_arrays
from fusion.datasets.spectrum import spectrum_arrays
from fusion.errors import ConfigError, DatasetError
from fusion.rl.model_file import TrainedOn
from fusion.run.simulation import run_simulation
from fusion.sim.engine import SimulationEngine
from fusion.sim.spectrum import free_blocks
from fusion.storage.loader import load_dataset
from fusion.storage.observation import observation_names

README = Path(__file__).resolve().parents[1] / "README.md"


def _config(requests: int = 1500, **logging: str):
    cfg = load_config().replace("general_settings", num_requests=requests, erlang=600)
    third = requests // 3
    cfg = cfg.replace("failure_settings", t_fail_arrival_index=third, t_repair_after_arrivals=third)
    return cfg.replace("dataset_logging", **logging) if logging else cfg


def _expected(path: dict, common: int) -> dict:
    """The extended features recomputed from the path's common free spectrum, block by block."""
    need = path["path_slots_needed"]
    blocks = free_blocks(common)
    fitting = [(s, n) for s, n in blocks if need and n >= need]
    total = sum(n for _, n in blocks)
    return {
        "first_fit_start": fitting[0][0] if fitting else -1,
        "first_fit_block": fitting[0][1] if fitting else 0,
        "fitting_blocks": len(fitting),
        "free_slots": total,
        "mean_block_size": round(total / len(blocks), 4) if blocks else 0.0,
    }


def test_extended_features_when_recomputed_from_the_logged_spectrum_agree(tmp_path):
    cfg = _config(log_spectrum="true")
    run_simulation(cfg, 3, dataset_dir=str(tmp_path))
    full = (1 << cfg.topology.c_band) - 1
    lengths = SimulationEngine(cfg, 3).topology.lengths
    checked = 0
    for record in load_dataset(tmp_path):
        state = record["state"]
        used = [int(h, 16) for h in state["spectrum"]]
        for path in state["paths"]:
            assert list(path) == [*SEED_PATH_FEATURES, *EXTENDED_PATH_FEATURES, "links"]
            if not path["links"]:  # padding
                continue
            common = full
            for link in path["links"]:
                common &= full ^ used[link]
            expected = _expected(path, common)
            assert {k: path[k] for k in expected} == expected
            assert path["length_km"] == sum(lengths[link] for link in path["links"])
            assert path["path_hops"] == len(path["links"])
            assert (path["spectral_efficiency"] > 0) == (path["path_slots_needed"] > 0)
            checked += 1
    assert checked > 4000


def test_path_features_when_seed_logs_the_seed_cards_five_only(tmp_path):
    run_simulation(_config(300, path_features="seed"), 1, dataset_dir=str(tmp_path))
    record = next(iter(load_dataset(tmp_path)))
    assert "spectrum" not in record["state"]
    assert all(list(p) == list(SEED_PATH_FEATURES) for p in record["state"]["paths"])
    arrays = to_arrays(tmp_path)
    assert arrays.observations.shape[1] == 5 + 5 * 4
    assert arrays.metadata["path_features"] == list(SEED_PATH_FEATURES)


def test_array_view_when_extended_names_every_column_from_the_catalogue(tmp_path):
    run_simulation(_config(300), 1, dataset_dir=str(tmp_path))
    arrays = to_arrays(tmp_path)
    features = (*SEED_PATH_FEATURES, *EXTENDED_PATH_FEATURES)
    assert arrays.metadata["observation_names"] == observation_names(4, features)
    assert arrays.observations.shape == (300, 5 + len(path_features("extended")) * 4)
    assert all(name.split(".")[-1] in FEATURES for name in arrays.metadata["observation_names"])


def test_array_view_when_files_hold_different_path_features_refuses_naming_both(tmp_path):
    run_simulation(_config(100), 1, dataset_dir=str(tmp_path / "a"))
    run_simulation(_config(100, path_features="seed"), 2, dataset_dir=str(tmp_path / "b"))
    merged = tmp_path / "both.jsonl"
    merged.write_bytes(
        (tmp_path / "a" / "offline_data.seed1.jsonl").read_bytes()
        + (tmp_path / "b" / "offline_data.seed2.jsonl").read_bytes()
    )
    with pytest.raises(DatasetError, match=r"both\.jsonl:101: field 'state.paths\[\]\.length_km'"):
        to_arrays(merged, cache=False)


def test_holding_time_known_when_false_logs_the_mean_and_when_true_the_requests_own(tmp_path):
    run_simulation(_config(200), 1, dataset_dir=str(tmp_path / "mean"))
    run_simulation(_config(200, holding_time_known="true"), 1, dataset_dir=str(tmp_path / "own"))
    mean = {r["state"]["est_remaining_time"] for r in load_dataset(tmp_path / "mean")}
    own = [r["state"]["est_remaining_time"] for r in load_dataset(tmp_path / "own")]
    assert mean == {load_config().general.holding_time}
    assert len(set(own)) == 200


@pytest.mark.parametrize("packed", [True, False])
def test_spectrum_arrays_when_read_agree_with_the_logged_hex_in_array_view_order(tmp_path, packed):
    cfg = _config(300, log_spectrum="true")
    for seed in (5, 4):
        run_simulation(cfg, seed, dataset_dir=str(tmp_path))
    spectrum = spectrum_arrays(tmp_path, packed=packed)
    arrays = to_arrays(tmp_path)
    np.testing.assert_array_equal(spectrum.seeds, arrays.seeds)
    np.testing.assert_array_equal(spectrum.t, arrays.t)
    records = sorted(load_dataset(tmp_path), key=lambda r: (r["seed"], r["t"]))
    bits = (
        spectrum.occupancy
        if not packed
        else np.unpackbits(spectrum.occupancy, axis=-1, bitorder="little")[..., :320].astype(bool)
    )
    for row in (0, 150, 299, 450, 599):
        for link, text in enumerate(records[row]["state"]["spectrum"]):
            expected = [bool(int(text, 16) >> s & 1) for s in range(320)]
            assert bits[row, link].tolist() == expected
        links = [p["links"] for p in records[row]["state"]["paths"]]
        for j, ids in enumerate(links):
            assert spectrum.path_links[row, j, : len(ids)].tolist() == ids
            assert (spectrum.path_links[row, j, len(ids) :] == -1).all()
    assert spectrum.occupancy.dtype == (np.uint8 if packed else bool)


def test_spectrum_arrays_when_not_logged_says_how_to_log_it(tmp_path):
    run_simulation(_config(50), 1, dataset_dir=str(tmp_path))
    with pytest.raises(DatasetError, match="log_spectrum = true"):
        spectrum_arrays(tmp_path)


def test_feature_catalogue_when_readme_is_built_from_it_matches():
    assert feature_table() in README.read_text("utf-8")


def test_env_bounds_when_built_from_the_catalogue_hold_every_observation():
    pytest.importorskip("gymnasium")
    from fusion.env import EONRoutingEnv

    env = EONRoutingEnv(config=_config(400))
    obs, info = env.reset(seed=2)
    done = False
    while not done:
        assert env.observation_space.contains(obs)
        path = int(np.argmax(info["action_mask"]))
        obs, _, _, done, info = env.step(path)
    names = observation_names(4, (*SEED_PATH_FEATURES, *EXTENDED_PATH_FEATURES))
    low = dict(zip(names, env.observation_space.low.tolist(), strict=True))
    assert low["path0.first_fit_start"] == -1 and low["src"] == 0


def test_trained_on_when_k_features_or_scenario_differ_names_both_sides():
    cfg = load_config()
    on = TrainedOn.of_data(
        {"k_paths": 4, "path_features": list(SEED_PATH_FEATURES), "config": cfg.to_dict()}
    )
    with pytest.raises(ConfigError) as caught:
        on.check(cfg.replace("general_settings", k_paths=5))
    message = str(caught.value)
    assert "k_paths is 5, the model was trained with K = 4" in message
    extended = len(path_features("extended"))
    assert f"path_features = extended gives {extended} features per path" in message
    assert "trained on 5 (seed)" in message
    seed_cfg = cfg.replace("dataset_logging", path_features="seed")
    on.check(seed_cfg)  # the same K, features and scenario: fine
    with pytest.raises(ConfigError, match="network = 'USNet', the model was trained on 'NSFNet'"):
        on.check(seed_cfg.replace("topology_settings", network="USNet"))


def test_evaluate_when_model_meets_another_k_or_feature_set_exits_2_naming_both(tmp_path, capsys):
    pytest.importorskip("sklearn")
    from fusion.rl.fqi import train_fqi_on

    run_simulation(_config(600), 1, dataset_dir=str(tmp_path / "ds"))
    model = tmp_path / "fqi.npz"
    train_fqi_on(to_arrays(tmp_path / "ds"), max_trees=5, min_samples_leaf=20).save(model)
    base = ["evaluate", "--policy", str(model), "--seeds", "1", "--workers", "1"]
    base += ["--set", "general_settings.num_requests=200"]
    assert main([*base, "--set", "general_settings.k_paths=5"]) == 2
    assert "k_paths is 5, the model was trained with K = 4" in capsys.readouterr().err
    assert main([*base, "--set", "dataset_logging.path_features=seed"]) == 2
    assert f"trained on {len(path_features('extended'))} (extended)" in capsys.readouterr().err
    assert main([*base, "--set", "dataset_logging.holding_time_known=true"]) == 2
    assert "holding_time_known = True, the model was trained on False" in capsys.readouterr().err
    assert main(base) == 0


def _spectrum_data(tmp_path: Path, seeds=(1, 2), requests: int = 1500) -> Path:
    cfg = _config(requests, log_spectrum="true").replace("dataset_logging", epsilon_mix=0.3)
    for seed in seeds:
        run_simulation(cfg, seed, dataset_dir=str(tmp_path / "ds"))
    return tmp_path / "ds"


def test_afterstate_when_a_decision_is_logged_takes_the_chosen_paths_slots(tmp_path):
    from fusion.rl.afterstate import afterstate

    data = _spectrum_data(tmp_path, seeds=(1,), requests=300)
    full = (1 << 320) - 1
    records = list(load_dataset(data))
    for before, after in itertools.pairwise(records):
        free = afterstate(before, full)
        used = [full ^ f for f in free]
        logged = [int(h, 16) for h in before["state"]["spectrum"]]
        if before["action"] < 0:
            assert used == logged
            continue
        path = before["state"]["paths"][before["action"]]
        added = [u & ~o for u, o in zip(used, logged, strict=True)]
        for link, bits in enumerate(added):
            expected = path["path_slots_needed"] if link in path["links"] else 0
            assert bits.bit_count() == expected
        if before["meta"]["bp_window_tag"] != after["meta"]["bp_window_tag"]:
            continue  # a failure or repair in between moves lightpaths
        # what the next state logs is the afterstate less the departures in between
        nxt = [int(h, 16) for h in after["state"]["spectrum"]]
        assert all(n & ~u == 0 for n, u in zip(nxt, used, strict=True))


def test_afterstate_model_when_trained_twice_saved_and_loaded_is_the_same_and_routes_feasibly(
    tmp_path,
):
    from fusion.rl.afterstate import AfterstateModel, AfterstatePolicy, train_afterstate

    data = _spectrum_data(tmp_path)
    model = train_afterstate(data, gamma=0.95)
    again = train_afterstate(data, gamma=0.95)
    np.testing.assert_array_equal(model.weights, again.weights)
    model.save(tmp_path / "as.npz")
    loaded = AfterstateModel.load(tmp_path / "as.npz")
    np.testing.assert_array_equal(loaded.weights, model.weights)
    assert loaded.trained_on == model.trained_on and loaded.trained_on.path_features == ()

    class Watch(AfterstatePolicy):
        def rank_decision(self, decision):
            ranked = super().rank_decision(decision)
            assert sorted(ranked) == [i for i, ok in enumerate(decision.mask) if ok]
            return ranked

    stats = SimulationEngine(_config(1500), 9, policy=Watch(loaded)).run()
    assert stats["requests"] == 1500


def test_afterstate_model_when_data_has_no_spectrum_says_how_to_log_it(tmp_path):
    from fusion.rl.afterstate import train_afterstate

    run_simulation(_config(100), 1, dataset_dir=str(tmp_path))
    with pytest.raises(ValueError, match="log_spectrum = true"):
        train_afterstate(tmp_path)


def test_evaluate_when_afterstate_model_meets_another_grid_exits_2(tmp_path, capsys):
    from fusion.rl.afterstate import train_afterstate

    train_afterstate(_spectrum_data(tmp_path, seeds=(1,), requests=600)).save(tmp_path / "a.npz")
    base = ["evaluate", "--policy", str(tmp_path / "a.npz"), "--seeds", "1", "--workers", "1"]
    base += ["--set", "general_settings.num_requests=200"]
    assert main([*base, "--set", "topology_settings.c_band=160"]) == 2
    assert "c_band = 160, the model was trained on 320" in capsys.readouterr().err
    assert main(base) == 0


def test_afterstate_policy_when_supported_by_a_heuristic_chooses_among_its_first_two(tmp_path):
    from fusion.rl.afterstate import AfterstatePolicy, train_afterstate

    model = train_afterstate(_spectrum_data(tmp_path), support_policy="ksp_ff", support=2)
    chosen = []

    class Watch(AfterstatePolicy):
        def rank_decision(self, decision):
            ranked = super().rank_decision(decision)
            feasible = [i for i, ok in enumerate(decision.mask) if ok]
            assert sorted(ranked) == feasible and ranked[2:] == feasible[2:]
            chosen.append((ranked[:1], feasible[:2]))
            return ranked

    SimulationEngine(_config(1500), 9, policy=Watch(model)).run()
    assert all(set(first) <= set(top) for first, top in chosen)
    assert any(first == top[1:2] for first, top in chosen if len(top) == 2)  # it does re-rank


def test_train_afterstate_when_support_is_bad_refuses_naming_it(tmp_path):
    from fusion.rl.afterstate import train_afterstate

    with pytest.raises(ValueError, match="support_policy must be one of"):
        train_afterstate(tmp_path, support_policy="nope")
    with pytest.raises(ValueError, match="support must be at least 1"):
        train_afterstate(tmp_path, support=0)


def _script(name: str):
    from conftest import load_script

    return load_script(name)


def test_training_scripts_when_given_points_read_only_those_points_of_a_study(tmp_path, capsys):
    pytest.importorskip("sklearn")
    study = tmp_path / "study"
    args = ["sweep", "--grid", "policy_settings.policy=ksp_ff,ff_ksp", "--seeds", "1-2"]
    args += [
        "--set",
        "general_settings.num_requests=400",
        "--set",
        "failure_settings.failure_type=none",
    ]
    args += ["--set", "dataset_logging.log_spectrum=true", "--out", str(study), "--quiet"]
    assert main(args) == 0
    capsys.readouterr()
    only = ["--points", "policy_settings.policy=ff_ksp"]
    offline = _script("train_offline")
    assert offline.main([str(study), "-o", str(tmp_path / "f.npz"), "--trees", "3", *only]) == 0
    assert "data: 800 transitions from 2 seed(s)" in capsys.readouterr().out
    after = _script("train_afterstate")
    out = tmp_path / "a.npz"
    assert after.main([str(study), "-o", str(out), "--support-policy", "ff_ksp", *only]) == 0
    assert "from 798 afterstate pairs" in capsys.readouterr().out
    with pytest.raises(SystemExit) as caught:
        after.main([str(study), "-o", str(out), "--points", "policy_settings.policy"])
    assert caught.value.code == 2


@pytest.mark.parametrize("script", ["train_afterstate", "train_offline", "train_bc"])
def test_training_scripts_when_the_model_path_is_data_refuse_and_keep_it(tmp_path, script):
    data = _spectrum_data(tmp_path, seeds=(1, 2), requests=200)
    shard = data / "offline_data.seed1.jsonl"
    other = tmp_path / "other.jsonl"
    other.write_bytes(shard.read_bytes())
    before = shard.read_bytes()
    for target in (shard, data / "manifest.json", other):
        kept = target.read_bytes()
        with pytest.raises(SystemExit) as caught:
            _script(script).main([str(data), "-o", str(target)])
        assert caught.value.code == 2 and target.read_bytes() == kept
    assert shard.read_bytes() == before


def test_write_model_when_the_path_exists_replaces_it_only_with_overwrite(tmp_path):
    from fusion.errors import OutputConflictError
    from fusion.rl.model_file import write_model

    model = tmp_path / "m.npz"
    write_model(model, "bc", {"w1": np.zeros(2)}, TrainedOn(4))
    with pytest.raises(OutputConflictError, match="pass --overwrite"):
        write_model(model, "bc", {"w1": np.ones(2)}, TrainedOn(4))
    write_model(model, "bc", {"w1": np.ones(2)}, TrainedOn(4), overwrite=True)
    assert np.load(model)["w1"].tolist() == [1.0, 1.0]
    data = tmp_path / "x.jsonl"
    data.write_text("{}\n")
    with pytest.raises(OutputConflictError, match="pass --overwrite"):
        write_model(data, "bc", {"w1": np.zeros(2)}, TrainedOn(4))
    assert data.read_text() == "{}\n"


@pytest.mark.damages
def test_spectrum_arrays_when_a_shard_is_cut_refuses_it_as_the_array_view_does(tmp_path):
    data = _spectrum_data(tmp_path, seeds=(1,), requests=100)
    shard = data / "offline_data.seed1.jsonl"
    lines = shard.read_bytes().splitlines(keepends=True)
    shard.write_bytes(b"".join(lines[:-1]))
    with pytest.raises(DatasetError, match=r"offline_data\.seed1\.jsonl") as spectrum:
        spectrum_arrays(data)
    with pytest.raises(DatasetError) as arrays:
        to_arrays(data, cache=False)
    assert str(spectrum.value) == str(arrays.value)
