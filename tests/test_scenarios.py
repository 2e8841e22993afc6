"""Scenarios from the literature: config keys, topologies, path orders, traffic, presets."""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pytest

from fusion.cli import main
from fusion.config.config import load_config
from fusion.config.presets import PRESETS, preset_config
from fusion.errors import ConfigError
from fusion.run.simulation import run_simulation
from fusion.sim.engine import SimulationEngine
from fusion.sim.scenario import build_scenario
from fusion.sim.topology import load_topology
from fusion.sim.writer import InMemoryWriter
from fusion.storage.dataset_identity import config_sha256
from fusion.storage.loader import load_dataset
from fusion.storage.validate import validate_dataset


def test_default_dataset_when_every_new_key_has_its_earlier_value_is_byte_for_byte_todays(
    tmp_path,
):
    # the sha256 of the commit before the scenario keys (decision_time_ms stripped); the
    # seed card's features and the true holding time are what the default logged then
    cfg = load_config().replace("general_settings", num_requests=3000)
    cfg = cfg.replace("dataset_logging", path_features="seed", holding_time_known="true")
    earlier = load_config().replace(
        "dataset_logging", path_features="seed", holding_time_known="true"
    )
    assert config_sha256(earlier.identity()).startswith("df97e4687107637d")  # the old identity
    assert not config_sha256(load_config().identity()).startswith("df97e468")  # new default
    cfg = cfg.replace("failure_settings", t_fail_arrival_index=1000, t_repair_after_arrivals=1000)
    run_simulation(cfg, 7, dataset_dir=str(tmp_path))
    data = (tmp_path / "offline_data.seed7.jsonl").read_bytes()
    stripped = re.sub(rb'"decision_time_ms":[^,}]*', b"", data)
    # and what every record holds since (issue #32): ksp_ff's start slot and its behaviour
    added = rb',"start_slot":-?\d+,"behaviour":"ksp_ff/first_fit","explored":(?:true|false),'
    stripped, count = re.subn(added + rb'"propensity":[^,}]*', b"", stripped)
    assert count == 3000
    assert (
        hashlib.sha256(stripped).hexdigest()
        == "2e9c82b099ffa2e30758cb6b7821f7f9b118304ee0a74555b2d22199dcc19ad8"
    )


def _small(name: str, requests: int = 300) -> object:
    cfg = preset_config(name).replace("general_settings", num_requests=requests)
    return cfg.replace("general_settings", warmup_requests=100)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_when_swept_evaluated_stepped_and_read_works_end_to_end(name, tmp_path):
    gymnasium = pytest.importorskip("gymnasium")
    from gymnasium.utils.env_checker import check_env

    from fusion.datasets.arrays import to_arrays
    from fusion.env import EONRoutingEnv
    from fusion.run.evaluate import evaluate_policies

    out = tmp_path / name
    argv = ["sweep", "--config", name, "--seeds", "0", "--workers", "1", "--out", str(out)]
    argv += [
        "--set",
        "general_settings.num_requests=200",
        "--set",
        "general_settings.warmup_requests=50",
    ]
    assert main([*argv, "--quiet"]) == 0
    assert validate_dataset(out).ok
    arrays = to_arrays(out)
    loads = PRESETS[name].loads
    assert len(arrays) == 200 * len(loads)
    if len(loads) > 1:
        assert sorted(set(arrays.columns["erlang"].tolist())) == [float(v) for v in loads]
    report = evaluate_policies(_small(name), ["ff_ksp", "kca_ff"], seeds=[0], workers=1)
    assert [p["name"] for p in report["policies"]] == ["ksp_ff", "ff_ksp", "kca_ff"]
    env = EONRoutingEnv(config=name, overrides={"general_settings": {"num_requests": 100}})
    check_env(env.unwrapped, skip_render_check=True)
    assert isinstance(gymnasium.make("fusion/EONRouting-v0", config=name).unwrapped, EONRoutingEnv)


def test_deeprmsa_preset_when_built_has_directed_fibres_and_the_reach_table():
    scenario = build_scenario(preset_config("deeprmsa-nsfnet"))
    assert scenario.topology.num_links == 44 and scenario.topology.directed
    # 100 Gb/s over 2,000 km: QPSK (SE 2) -> ceil(100 / 25) = 4 slots; 500 km: 16QAM -> 2
    assert scenario.modulation.slots(100, 2000.0) == 4
    assert scenario.modulation.slots(100, 500.0) == 2
    assert scenario.rates.uniform == (25, 100)


def test_topology_when_directed_gives_each_direction_its_own_link_and_a_fibre_cut_both():
    topo = load_topology("toy", directed=True)
    undirected = load_topology("toy")
    assert topo.num_links == 2 * undirected.num_links
    u, v = undirected.links[0]
    assert topo.link_index(u, v) != topo.link_index(v, u)
    assert set(topo.fibre_links(u, v)) == {topo.link_index(u, v), topo.link_index(v, u)}
    cfg = load_config().replace("topology_settings", network="toy", directed="true")
    cfg = cfg.replace("failure_settings", failed_link=f"{u}-{v}")
    cfg = cfg.replace("general_settings", num_requests=2000)
    engine = SimulationEngine(cfg, 1)
    assert engine.failure is not None and engine.failure.links == frozenset(topo.fibre_links(u, v))
    assert engine.run()["requests"] == 2000


def test_topology_file_when_nodes_are_named_runs_and_fails_a_link_by_name(tmp_path):
    net = tmp_path / "cities.txt"
    net.write_text(
        "Copenhagen London 1310\nLondon Paris 390\nParis Berlin 1050\n"
        "Berlin Copenhagen 440\nLondon Berlin 1100\n"
    )
    topo = load_topology(str(net))
    assert topo.node_names == ["Copenhagen", "London", "Paris", "Berlin"]
    cfg = load_config().replace("topology_settings", network=str(net))
    cfg = cfg.replace("failure_settings", failed_link="London-Paris", t_fail_arrival_index=100)
    cfg = cfg.replace("general_settings", num_requests=500, k_paths=2)
    engine = SimulationEngine(cfg, 3)
    assert engine.failure is not None
    assert engine.failure.links == frozenset({topo.link_index(1, 2)})
    cfg = cfg.replace("failure_settings", failure_type="node", failed_node="Berlin")
    assert SimulationEngine(cfg, 3).run()["requests"] == 500


def test_truncated_holding_when_set_keeps_every_holding_time_below_f_times_the_mean():
    cfg = load_config().replace("general_settings", num_requests=20_000, holding_time=25)
    cfg = cfg.replace("general_settings", holding_time_truncation=2)
    holding = SimulationEngine(cfg, 1).traffic.holding
    assert holding.max() < 50.0
    assert 0.6 * 25 < holding.mean() < 0.78 * 25  # about 0.69 x the nominal mean


def test_warmup_when_set_is_simulated_but_kept_out_of_the_shard_and_the_figures(tmp_path):
    cfg = load_config().replace("general_settings", num_requests=400, warmup_requests=300)
    cfg = cfg.replace("failure_settings", failure_type="none")
    writer = InMemoryWriter(seed=1)
    stats = SimulationEngine(cfg, 1, writer=writer).run()
    assert stats["requests"] == len(writer.records) == 400
    assert [r["meta"]["request_id"] for r in writer.records] == list(range(400))
    engine = SimulationEngine(cfg, 1)
    assert len(engine.traffic.arrival) == 700
    assert writer.records[0]["meta"]["arrival_time"] == engine.traffic.arrival[300]


@pytest.mark.parametrize("order", ["hops", "hops_length", "spectral_resources"])
def test_path_order_when_hop_based_sorts_the_fewest_hop_candidates_by_its_key(order):
    cfg = preset_config("deeprmsa-nsfnet").replace("general_settings", path_order=order)
    engine = SimulationEngine(cfg, 0)
    for src, dst in [(0, 13), (2, 9), (5, 12)]:
        paths = engine._pairs.candidates(src, dst)
        hops = [p.hops for p in paths]
        assert set(p.nodes for p in paths) == set(
            p.nodes for p in engine.topology.k_paths(src, dst, 5, by="hops")
        )
        if order == "spectral_resources":
            table = engine._modulation
            keys = [p.hops / table.efficiency(p.length_km) for p in paths]
        elif order == "hops_length":
            keys = [(p.hops, p.length_km) for p in paths]
        else:
            keys = hops
        assert keys == sorted(keys)


def test_traffic_matrix_when_given_draws_only_its_pairs_by_weight(tmp_path):
    matrix = tmp_path / "tm.csv"
    matrix.write_text("src,dst,weight\n0,5,3\n5,0,1\n2,9,0\n")
    cfg = load_config().replace("general_settings", num_requests=4000, traffic_matrix=str(matrix))
    traffic = SimulationEngine(cfg, 2).traffic
    pairs = set(zip(traffic.src.tolist(), traffic.dst.tolist(), strict=True))
    assert pairs == {(0, 5), (5, 0)}
    assert 0.7 < float(np.mean(traffic.src == 0)) < 0.8


def test_bit_rates_when_a_list_without_modulation_are_slot_counts():
    cfg = preset_config("ptrnet-rsa-80-nsfnet").replace("general_settings", num_requests=2000)
    engine = SimulationEngine(cfg, 1)
    counts = np.bincount(engine.traffic.bit_rate, minlength=5)[1:]
    assert counts.argmax() == 0 and set(engine.traffic.bit_rate.tolist()) <= {1, 2, 3, 4}
    writer = InMemoryWriter(seed=1)
    SimulationEngine(cfg, 1, writer=writer).run()
    assert {r["state"]["slots_needed"] for r in writer.records} <= {1, 2, 3, 4}


@pytest.mark.parametrize(
    ("setting", "named"),
    [
        ("topology_settings.directed=maybe", "directed"),
        ("topology_settings.slot_ghz=0", "slot_ghz"),
        ("topology_settings.modulation=qam", "modulation"),
        ("general_settings.bit_rates=uniform:50-25", "bit_rates"),
        ("general_settings.bit_rates=1,0", "bit_rates"),
        ("general_settings.holding_time_truncation=-1", "holding_time_truncation"),
        ("general_settings.warmup_requests=-5", "warmup_requests"),
        ("general_settings.path_order=shortest", "path_order"),
        ("general_settings.traffic_matrix=matrix", "traffic_matrix"),
        ("policy_settings.spectrum=random_fit", "spectrum"),
        ("policy_settings.policy=ksp_xx", "policy"),
    ],
)
def test_new_key_when_bad_exits_2_naming_it(setting, named, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["run", "--set", setting, "--out", str(out)]) == 2
    assert named in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        (["failure_settings.failed_link=0-13"], "failed_link"),
        (["general_settings.bit_rates=uniform:25-100"], "bit_rates"),
        (["topology_settings.modulation=none"], "modulation"),
        (["general_settings.path_order=spectral_resources"], "path_order"),
        (["policy_settings.policy=ff_ksp", "policy_settings.spectrum=last_fit"], "spectrum"),
        (
            [
                "topology_settings.network=cost239_deeprmsa",
                "failure_settings.failed_node=20",
                "failure_settings.failure_type=node",
            ],
            "failed_node",
        ),
    ],
)
def test_cross_key_problem_when_swept_exits_2_before_any_worker(settings, named, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["sweep", "--seeds", "0-1", "--out", str(out), "--quiet"]
    for setting in settings:
        argv += ["--set", setting]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert named in err and "Traceback" not in err
    assert not out.exists()


def test_load_config_when_name_is_neither_file_nor_preset_says_both(tmp_path):
    with pytest.raises(ConfigError, match="not a preset either"):
        load_config(tmp_path / "nope.ini")


def test_scenarios_command_when_listed_names_every_preset(capsys):
    assert main(["scenarios"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in PRESETS)
    assert main(["scenarios", "--json"]) == 0


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_scenarios_command_when_named_prints_every_key_and_loads_back_to_the_same_config(
    name, tmp_path, capsys
):
    import dataclasses

    from fusion.config.config import SECTIONS

    assert main(["scenarios", name]) == 0
    text = capsys.readouterr().out
    for section, cls in SECTIONS.items():  # every key, those at their default included
        assert f"[{section}]" in text
        for spec in dataclasses.fields(cls):
            assert re.search(rf"^{spec.name} = ", text, re.MULTILINE), (section, spec.name)
    saved = tmp_path / f"{name}.ini"
    saved.write_text(text)
    loaded, preset = load_config(saved), preset_config(name)
    assert loaded.to_dict() == preset.to_dict()
    assert config_sha256(loaded.identity()) == config_sha256(preset.identity())
    assert main(["scenarios", name, "--json"]) == 0
    import orjson

    assert orjson.loads(capsys.readouterr().out) == preset.to_dict()


def test_scenarios_command_when_name_is_unknown_exits_2_naming_the_choices(capsys):
    assert main(["scenarios", "deeprmsa-nsfnett"]) == 2
    err = capsys.readouterr().err
    assert "deeprmsa-nsfnett" in err and all(name in err for name in PRESETS)
    assert "Traceback" not in err


def test_evaluate_when_path_orders_given_compares_them_in_one_table(capsys):
    argv = ["evaluate", "--config", "ptrnet-rsa-40-nsfnet", "--seeds", "0-1", "--erlang", "240"]
    argv += ["--set", "general_settings.num_requests=1500", "--workers", "1"]
    argv += ["--policy", "ksp_ff:path_order=hops", "--policy", "ksp_ff:path_order=bogus"]
    assert main(argv) == 2
    assert "path_order" in capsys.readouterr().err
    assert main(argv[:-2]) == 0
    out = capsys.readouterr().out
    assert "ksp_ff:path_order=hops" in out and "blocked by reach" in out


def test_blocked_by_reach_when_fusion_table_cannot_reach_shows_in_every_report(tmp_path, capsys):
    out = tmp_path / "d"
    argv = ["sweep", "--seeds", "0", "--workers", "1", "--out", str(out), "--quiet"]
    argv += ["--set", "general_settings.num_requests=2000", "--set", "general_settings.erlang=5"]
    assert main(argv) == 0
    table = capsys.readouterr().out
    assert "reach" in table
    from fusion.report.inspection import inspect_dataset

    reach = inspect_dataset(out)["across_seeds"]["reach"]["mean"]
    assert 0.05 < reach < 0.2  # 400G over 1,385 km: no format of FUSION's table reaches
    bp = inspect_dataset(out)["across_seeds"]["bp"]["mean"]
    assert reach <= bp + 1e-12
    assert len(list(load_dataset(out))) == 2000


def test_evaluate_when_config_is_a_preset_runs_its_papers_loads(capsys):
    import orjson

    argv = ["evaluate", "--config", "ptrnet-rsa-40-nsfnet", "--seeds", "0", "--workers", "1"]
    argv += ["--set", "general_settings.num_requests=150", "--policy", "ksp_ff", "--json"]
    assert main(argv) == 0
    rows = orjson.loads(capsys.readouterr().out)
    assert sorted({row["erlang"] for row in rows}) == [
        float(v) for v in PRESETS["ptrnet-rsa-40-nsfnet"].loads
    ]
