"""The simulator: topology, spectrum, failures, masks, policies, determinism, load."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fusion.config.config import Config, load_config
from fusion.run.simulation import run_simulation
from fusion.sim.engine import SimulationEngine
from fusion.sim.modulation import MODULATION_TABLE, slots_for
from fusion.sim.policies import KSPFFPolicy, PathPolicy
from fusion.sim.spectrum import SpectrumState, first_fit, longest_run
from fusion.sim.topology import load_topology
from fusion.storage.loader import load_dataset
from fusion.storage.validate import validate_dataset


def small(tmp: Path, n: int = 3000, **general: object) -> Config:
    cfg = load_config().replace("general_settings", num_requests=n, **general)
    cfg = cfg.replace("failure_settings", t_repair_after_arrivals=n // 4)
    return cfg.replace("dataset_logging", dataset_output_path=str(tmp / "offline_data.jsonl"))


def test_topology_when_shipped_has_published_sizes():
    assert (load_topology("NSFNet").num_nodes, load_topology("NSFNet").num_links) == (14, 22)
    assert (load_topology("toy").num_nodes, load_topology("toy").num_links) == (5, 6)
    assert (load_topology("USNet").num_nodes, load_topology("USNet").num_links) == (24, 43)


def test_k_paths_when_asked_are_loop_free_and_sorted_by_length():
    topo = load_topology("NSFNet")
    for src, dst in [(0, 13), (3, 9), (7, 10)]:
        paths = topo.k_paths(src, dst, 4)
        assert len(paths) == 4
        assert [p.length_km for p in paths] == sorted(p.length_km for p in paths)
        assert all(
            len(set(p.nodes)) == len(p.nodes) and p.nodes[0] == src and p.nodes[-1] == dst
            for p in paths
        )
    assert topo.k_paths(0, 13, 4) is topo.k_paths(0, 13, 4)


def _brute_first_fit(mask: int, n: int, slots: int) -> int:
    for start in range(slots - n + 1):
        if all(mask >> (start + i) & 1 for i in range(n)):
            return start
    return -1


@given(st.integers(min_value=0, max_value=2**40 - 1), st.integers(min_value=1, max_value=12))
@settings(max_examples=300, deadline=None)
def test_first_fit_when_random_spectrum_matches_brute_force(mask, n):
    assert first_fit(mask, n) == _brute_first_fit(mask, n, 40)
    runs = [len(r) for r in bin(mask)[2:].split("0")] if mask else [0]
    assert longest_run(mask) == max(runs)


@given(st.lists(st.tuples(st.integers(0, 5), st.integers(1, 6)), min_size=1, max_size=30))
@settings(max_examples=100, deadline=None)
def test_release_when_after_allocations_restores_exact_prior_state(requests):
    spectrum = SpectrumState(num_links=6, slots=32)
    taken = []
    for first_link, n in requests:
        links = (first_link, (first_link + 1) % 6)
        before = (list(spectrum.free), list(spectrum.free_count))
        start = first_fit(spectrum.common_free(links), n)
        if start < 0:
            continue
        spectrum.allocate(links, start, n)
        taken.append((links, start, n, before))
    for links, start, n, before in reversed(taken):
        spectrum.release(links, start, n)
        assert (spectrum.free, spectrum.free_count) == before
    with pytest.raises(ValueError):
        spectrum.release((0,), 0, 1)


def test_slots_for_when_table_looked_up_picks_most_efficient_reaching_format():
    assert slots_for(100, 900) == ("64-QAM", 2)
    assert slots_for(100, 2000) == ("16-QAM", 2)
    assert slots_for(100, 5000) == ("QPSK", 4)
    assert slots_for(400, 1400) is None
    for rate, formats in MODULATION_TABLE.items():
        for _name, reach, slots in formats:
            assert slots_for(rate, reach)[1] <= slots


class BruteForceChecker(PathPolicy):
    """KSP-FF that first checks the engine's mask against a slot-by-slot search."""

    name = "checker"

    def __init__(self) -> None:
        self.engine: SimulationEngine | None = None
        self.checked = 0

    def rank(self, state, action_mask):
        engine = self.engine
        assert engine is not None
        src, dst = state["src"], state["dst"]
        paths = engine.topology.k_paths(src, dst, engine.config.general.k_paths)
        rate = engine.traffic.bit_rate[engine._stats.requests].item()
        for index, path in enumerate(paths):
            fit = slots_for(rate, path.length_km)
            down = bool(engine._pairs.failed_links.intersection(path.links))
            need = fit[1] + engine.config.topology.guard_slots if fit else 0
            feasible = (
                bool(need)
                and not down
                and any(
                    all(
                        engine.spectrum.free[link] >> (s + i) & 1
                        for link in path.links
                        for i in range(need)
                    )
                    for s in range(engine.config.topology.c_band - need + 1)
                )
            )
            assert action_mask[index] == feasible
            assert state["paths"][index]["failure_mask"] == int(down)
            free_counts = [bin(engine.spectrum.free[link]).count("1") for link in path.links]
            assert state["paths"][index]["min_residual_slots"] == min(free_counts)
        self.checked += 1
        return KSPFFPolicy().rank(state, action_mask)


def test_engine_when_logging_masks_equal_brute_force_and_failed_paths_are_infeasible(tmp_path):
    cfg = small(tmp_path, 1500, erlang=600.0).replace("dataset_logging", epsilon_mix=0.0)
    checker = BruteForceChecker()
    from fusion.storage.shard_writer import DatasetLogger

    with DatasetLogger.open_shard(tmp_path, 5, {**cfg.identity(), "seed": 5}) as log:
        engine = SimulationEngine(cfg, 5, writer=log, policy=checker)
        checker.engine = engine
        engine.run()
    assert checker.checked == 1500
    plan = engine.failure
    transitions = list(load_dataset(tmp_path))
    assert len(transitions) == 1500 and validate_dataset(tmp_path).ok
    for tr in transitions:
        arrival, tag = tr["meta"]["arrival_time"], tr["meta"]["bp_window_tag"]
        expected = "pre" if arrival < plan.t_fail else "fail" if arrival < plan.t_repair else "post"
        assert tag == expected
        for feature, ok in zip(tr["state"]["paths"], tr["action_mask"], strict=True):
            if feature["failure_mask"]:  # down only between t_fail and t_repair, never usable
                assert tag == "fail" and not ok
        assert tr["action"] == (tr["action_mask"].index(True) if any(tr["action_mask"]) else -1)
    tags = {tr["meta"]["bp_window_tag"] for tr in transitions}
    assert tags == {"pre", "fail", "post"}
    assert any(f["failure_mask"] for tr in transitions for f in tr["state"]["paths"])


def test_engine_when_epsilon_is_point_three_takes_second_choice_thirty_percent(tmp_path):
    cfg = small(tmp_path, 8000).replace("dataset_logging", epsilon_mix=0.3)
    run_simulation(cfg, 3)
    two_or_more = [tr for tr in load_dataset(tmp_path) if sum(tr["action_mask"]) >= 2]
    second = sum(1 for tr in two_or_more if tr["action"] != tr["action_mask"].index(True))
    assert len(two_or_more) > 3000
    assert abs(second / len(two_or_more) - 0.3) <= 0.03


def _without_timing(transitions):
    for tr in transitions:
        tr["meta"].pop("decision_time_ms")
    return transitions


def test_engine_when_same_seed_twice_gives_identical_transitions_and_other_seeds_differ(tmp_path):
    cfg = small(tmp_path, 2000)
    run_simulation(cfg, 7)
    first = _without_timing(list(load_dataset(tmp_path)))
    run_simulation(cfg, 7, overwrite=True)
    assert _without_timing(list(load_dataset(tmp_path))) == first
    other = small(tmp_path / "other", 2000)
    run_simulation(other, 8)
    assert _without_timing(list(load_dataset(tmp_path / "other")))[:50] != first[:50]


def test_engine_when_load_rises_blocking_rises(tmp_path):
    bps = [
        SimulationEngine(
            small(tmp_path, 4000, erlang=e).replace("failure_settings", failure_type="none"), 1
        ).run()["blocking_probability"]
        for e in (100.0, 400.0, 1200.0)
    ]
    assert bps[0] < bps[1] < bps[2]


def test_engine_when_failure_types_vary_restores_or_drops_and_reports(tmp_path):
    for kind in ("link", "node", "srlg", "geo"):
        cfg = small(tmp_path, 2000, erlang=500.0).replace("failure_settings", failure_type=kind)
        stats = SimulationEngine(cfg, 2).run()
        (event,) = stats["failure_history"]
        assert event["kind"] == kind and event["links"]
        assert set(stats["per_window"]) == {"pre", "fail", "post"}


@pytest.mark.parametrize("policy", ["ksp_ff", "ksp_lf", "ksp_bf", "ksp_mu"])
@pytest.mark.parametrize("failure", ["none", "link", "geo"])
def test_engine_when_first_feasible_policy_unlogged_stops_early_with_the_same_stats(
    tmp_path, policy, failure
):
    cfg = small(tmp_path, 3000, erlang=600.0).replace("failure_settings", failure_type=failure)
    cfg = cfg.replace("policy_settings", policy=policy)
    fast = SimulationEngine(cfg, 4)
    assert fast._first_only  # the arrival that stops at the first path that fits
    full = SimulationEngine(cfg, 4, eager_state=True)  # every path looked at, as when logged
    assert not full._first_only
    fast_stats, full_stats = fast.run(), full.run()
    assert fast_stats["blocked"] > 0
    assert fast_stats == full_stats
    assert fast.spectrum.free == full.spectrum.free


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[general_settings]\nerlang = lots\n", "[general_settings] erlang = 'lots'"),
        ("[general_settings]\nseeds = 0-2147483648\n", "seeds"),
        ("[general_settings]\nk_path = 3\n", "unknown key 'k_path'"),
        ("[simulation]\nx = 1\n", "unknown section [simulation]"),
        ("[topology_settings]\nnetwork = Atlantis\n", "network = 'Atlantis'"),
        ("[failure_settings]\nfailed_link = 0-13\n", "failed_link = '0-13'"),
        ("[failure_settings]\nfailure_type = flood\n", "failure_type = 'flood'"),
        ("[dataset_logging]\nepsilon_mix = 1.5\n", "epsilon_mix = '1.5'"),
        (
            "[general_settings]\nrequest_distribution = 100:0.5\n",
            "request_distribution = '100:0.5'",
        ),
        ("[general_settings]\nrequest_distribution = 30:1\n", "unknown bit rates [30]"),
        ("[dataset_logging]\nshard_compression = lz4\n", "shard_compression = 'lz4'"),
    ],
)
def test_config_when_bad_fails_naming_the_key(tmp_path, text, named):
    from fusion.errors import ConfigError

    path = tmp_path / "bad.ini"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        cfg = load_config(path)
        SimulationEngine(cfg.replace("general_settings", num_requests=10), 0)
    assert named in str(info.value) and str(path) in str(info.value)


def test_config_when_request_distribution_set_draws_only_those_bit_rates(tmp_path):
    path = tmp_path / "mix.ini"
    path.write_text('[general_settings]\nrequest_distribution = {"50": 0.25, "100": 0.75}\n')
    cfg = load_config(path).replace("general_settings", num_requests=4000)
    assert cfg.general.bandwidth_mix == (0.0, 0.25, 0.75, 0.0, 0.0)
    rates = SimulationEngine(cfg, 3).traffic.bit_rate
    assert set(rates.tolist()) == {50, 100} and 0.22 < float((rates == 50).mean()) < 0.28


def test_config_when_upstream_section_name_used_is_accepted(tmp_path):
    path = tmp_path / "up.ini"
    path.write_text("[dataset_logging_settings]\nepsilon_mix = 0.2\n")
    assert load_config(path).dataset.epsilon_mix == 0.2


def test_default_ini_when_read_lists_every_key_with_a_comment():
    import dataclasses

    from fusion.config.config import SECTIONS, default_ini_text

    text = default_ini_text()
    for section, cls in SECTIONS.items():
        assert f"[{section}]" in text
        for f in dataclasses.fields(cls):
            line = next(line for line in text.splitlines() if line.startswith(f"{f.name} = "))
            previous = text.splitlines()[text.splitlines().index(line) - 1]
            assert previous.startswith("# ")
    assert load_config() == Config(source=load_config().source)


def test_engine_when_link_next_state_at_log_time_agrees_with_load_time_linking(tmp_path):
    plain = small(tmp_path / "plain", 600)
    linked = small(tmp_path / "linked", 600).replace("dataset_logging", link_next_state="true")
    run_simulation(plain, 4)
    run_simulation(linked, 4)
    at_log = _without_timing(list(load_dataset(tmp_path / "linked")))
    at_load = _without_timing(list(load_dataset(tmp_path / "plain", link_next=True)))
    assert len(at_log) == 600 and at_log[-1]["next_state"] is None
    assert at_log == at_load


def test_engine_when_given_in_memory_writer_logs_what_a_shard_holds(tmp_path):
    from fusion.sim.engine import SimulationEngine
    from fusion.sim.writer import InMemoryWriter, TransitionWriter

    cfg = load_config().replace("general_settings", num_requests=300)
    writer = InMemoryWriter(seed=5)
    assert isinstance(writer, TransitionWriter)
    stats = SimulationEngine(cfg, 5, writer=writer).run()
    assert len(writer.records) == stats["requests"] == 300
    run_simulation(cfg, 5, dataset_dir=str(tmp_path))
    on_disk = list(load_dataset(tmp_path))

    def strip(records):
        return [
            {**r, "meta": {k: v for k, v in r["meta"].items() if k != "decision_time_ms"}}
            for r in records
        ]

    assert strip(writer.records) == strip(on_disk)


def test_simulation_module_when_imported_knows_no_file_format():
    import fusion.sim.engine as simulation

    source = Path(simulation.__file__).read_text(encoding="utf-8")
    assert "reporting.manifest" not in source and "select_path_with_epsilon_mix" not in source
