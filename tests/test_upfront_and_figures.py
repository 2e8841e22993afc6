"""Up-front checks cover what fails later, and every figure describes data that exists
(issue #30, items 5 and 6): a config that would fail every seed is refused once, before any
worker, with exit 2 naming the key, its value and what fits; the writer refuses what the
readers refuse; a failed shard's figures count the lines it holds; the environment replays
the logged run, warm-up included."""

from __future__ import annotations

import errno
import json
import re

import numpy as np
import orjson
import pytest
from conftest import example

import fusion.sim.engine
from fusion.cli import main
from fusion.config.config import load_config
from fusion.errors import ShardWriteError
from fusion.report.inspection import format_inspection, inspect_dataset
from fusion.run.simulation import run_simulation
from fusion.sim.scenario import check_scenario
from fusion.storage import manifest as mf
from fusion.storage.loader import load_dataset
from fusion.storage.shard_names import shard_file_name
from fusion.storage.shard_writer import DatasetLogger
from fusion.storage.sink import HashingSink
from fusion.storage.statuses import STATUS_FAILED
from fusion.storage.validate import validate_dataset

TINY = ["--set", "general_settings.num_requests=300", "--seeds", "0", "--workers", "1", "--quiet"]


def _never_run(*args: object, **kwargs: object) -> None:
    raise AssertionError("the run started: the config was not refused up front")


def test_inspect_plot_when_the_failure_is_not_repaired_within_the_run_writes_the_figure(
    tmp_path, capsys
):
    # 300 requests: the default failure (repaired 10,000 arrivals later) is still down at
    # the end, and its sidecar records t_repair = inf as null
    assert main(["sweep", "--out", str(tmp_path / "d"), *TINY]) == 0
    figure = tmp_path / "blocking.png"
    assert main(["inspect", str(tmp_path / "d"), "--plot", str(figure)]) == 0
    assert figure.stat().st_size > 0
    assert "Traceback" not in capsys.readouterr().err


def test_sweep_when_the_topology_is_disconnected_exits_2_naming_the_pairs_without_a_path(
    tmp_path, capsys
):
    network = tmp_path / "two_islands.txt"
    network.write_text("0 1 100\n1 2 100\n3 4 100\n4 5 100\n")
    out = tmp_path / "d"
    argv = ["sweep", "--set", f"topology_settings.network={network}", "--out", str(out), *TINY]
    assert main([*argv, "--set", "failure_settings.failure_type=none"]) == 2
    err = capsys.readouterr().err
    assert "network" in err and "no path between 0-3" in err and "{0, 1, 2}; {3, 4, 5}" in err
    assert "add links" in err and "Traceback" not in err
    assert not list(out.glob("*.jsonl"))  # refused before any worker


def test_sweep_when_k_paths_makes_lines_over_the_limit_exits_2_naming_the_largest_k_that_fits(
    tmp_path, capsys
):
    out = tmp_path / "d"
    argv = ["sweep", "--set", "general_settings.k_paths=5000", "--out", str(out), *TINY]
    assert main(argv) == 2
    err = capsys.readouterr().err
    found = re.search(r"k_paths = 5000.*over the 1048576 a line may hold.*k_paths <= (\d+)", err)
    assert found is not None, err
    assert not list(out.glob("*.jsonl"))
    fits = int(found.group(1))
    config = load_config().replace("general_settings", num_requests=2, k_paths=fits)
    check_scenario(config)  # the k named fits ...
    with pytest.raises(Exception, match="k_paths"):
        check_scenario(config.replace("general_settings", k_paths=fits + 1))  # ... and is largest
    run_simulation(config, 0, dataset_dir=str(tmp_path / "fits"))  # a line of K paths is written
    assert validate_dataset(tmp_path / "fits").ok


_BIG = "100000000000000000000"


@pytest.mark.parametrize(
    ("sets", "said"),
    [
        (
            [f"general_settings.num_requests={_BIG}"],
            f"[general_settings] num_requests = '{_BIG}': expected an integer in 1 .. 100000000",
        ),
        (
            [f"general_settings.warmup_requests={_BIG}"],
            f"[general_settings] warmup_requests = '{_BIG}': expected an integer in 0 .. 100000000",
        ),
        (
            ["general_settings.holding_time_truncation=1e-9"],
            "[general_settings] holding_time_truncation = '1e-9': expected 0 or a finite number >= 0.01",
        ),
        (
            [f"general_settings.k_paths={_BIG}"],
            f"[general_settings] k_paths = '{_BIG}': expected an integer in 1 .. 10000",
        ),
        (
            ["general_settings.bit_rates=uniform:1-1000000000000"],
            "[general_settings] bit_rates = 'uniform:1-1000000000000': expected fusion",
        ),
        (
            [f"general_settings.erlang_stop={_BIG}"],
            f"[general_settings] erlang_stop = '{_BIG}': expected an integer in 0 .. 922337",
        ),
        (
            [
                "general_settings.erlang_start=1",
                "general_settings.erlang_stop=10000000000",
                "general_settings.erlang_step=1",
            ],
            "[general_settings] erlang_start/stop/step = 1/10000000000/1 gives 9999999999 loads",
        ),
        (
            ["topology_settings.c_band=1000000000"],
            "[topology_settings] c_band = '1000000000': expected an integer in 1 .. 1000000",
        ),
        (
            [f"topology_settings.guard_slots={_BIG}"],
            f"[topology_settings] guard_slots = '{_BIG}': expected an integer in 0 .. 1000000",
        ),
        (
            ["failure_settings.t_repair_after_arrivals=1e30"],
            "[failure_settings] t_repair_after_arrivals = '1e30': expected an integer in 1 .. 922",
        ),
        (
            [f"failure_settings.geo_hop_radius={_BIG}"],
            f"[failure_settings] geo_hop_radius = '{_BIG}': expected an integer in 0 .. 922",
        ),
        (
            [f"dataset_logging.flush_every={_BIG}"],
            f"[dataset_logging] flush_every = '{_BIG}': expected an integer in 1 .. 922",
        ),
        (
            ["general_settings.erlang=1e308", "general_settings.holding_time=1e-10"],
            "[general_settings] erlang = 1e+308 with holding_time = 1e-10: the arrival rate",
        ),
        (
            ["topology_settings.modulation=deeprmsa", "topology_settings.slot_ghz=1e-300"],
            "[topology_settings] slot_ghz = 1e-300 with modulation = deeprmsa: a 400 Gb/s request",
        ),
        (
            ["topology_settings.c_band=1000000", "dataset_logging.log_spectrum=true"],
            "[topology_settings] c_band = 1000000 with [dataset_logging] path_features = extended, "
            "log_spectrum: ",
        ),
    ],
)
def test_config_when_a_numeric_value_overflows_or_never_finishes_exits_2_naming_key_and_range(
    tmp_path, capsys, monkeypatch, sets, said
):
    monkeypatch.setattr(fusion.sim.engine, "generate_traffic", _never_run)  # a run would hang
    argv = ["run", "--seed", "0", "--out", str(tmp_path / "d")]
    for item in ["general_settings.num_requests=300", *sets]:
        argv += ["--set", item]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert said in err and "Traceback" not in err, err


@pytest.mark.damages  # a failed shard is left behind on purpose
def test_failed_shard_when_a_write_fails_counts_only_the_transitions_it_wrote(
    tmp_path, monkeypatch
):
    write = HashingSink.write

    def disk_full_after_1_mib(sink: HashingSink, data: bytes) -> None:
        if sink.size + len(data) > 1 << 20:
            raise OSError(errno.ENOSPC, "No space left on device")
        write(sink, data)

    monkeypatch.setattr(HashingSink, "write", disk_full_after_1_mib)
    config = load_config().replace("general_settings", num_requests=3000)
    config = config.replace("dataset_logging", flush_every=200)
    with pytest.raises(ShardWriteError, match="No space left"):
        run_simulation(config, 0, dataset_dir=str(tmp_path))
    lines = [json.loads(line) for line in (tmp_path / shard_file_name(0)).open("rb")]
    blocked = sum(line["action"] < 0 for line in lines)
    entry = mf.read_manifest(tmp_path)["shards"][0]
    stats = entry["stats"]
    assert entry["status"] == STATUS_FAILED and entry["transitions"] == len(lines) > 0
    assert (stats["accepted"], stats["blocked"]) == (len(lines) - blocked, blocked)
    windows = {}
    for line in lines:
        counts = windows.setdefault(line["meta"]["bp_window_tag"], [0, 0])
        counts[0] += 1
        counts[1] += line["action"] < 0
    assert {w: (v["requests"], v["blocked"]) for w, v in stats["per_window"].items()} == {
        w: tuple(c) for w, c in windows.items()
    }
    row = inspect_dataset(tmp_path)["shards"][0]
    assert row["bp"] == pytest.approx(blocked / len(lines))
    assert "count only the transitions written before the failure" in format_inspection(
        inspect_dataset(tmp_path)
    )


def test_hand_fed_logger_when_a_transition_breaks_the_readers_rule_refuses_it_as_validate_does(
    tmp_path,
):
    bogus = example(0)
    bogus["meta"]["bp_window_tag"] = "bogus"
    lacking = example(1)
    del lacking["state"]["paths"][1]["frag_indicator"]
    for number, transition in enumerate((bogus, lacking)):
        # what validate says of the line ...
        lone = tmp_path / f"lone{number}.jsonl"
        lone.write_bytes(orjson.dumps({"t": 0, "seed": 0, **transition}) + b"\n")
        problems = [
            p for p in validate_dataset(lone).problems if "bp_window_tag" in p or "lacks" in p
        ]
        assert len(problems) == 1, validate_dataset(lone).problems
        lone.unlink()
        # ... the writer says before writing it, and its shard stays valid
        with DatasetLogger.open_shard(tmp_path / f"d{number}", 0, {"toy": 1}) as log:
            log.log_transition(**example(2))
            with pytest.raises(ValueError) as refused:
                log.log_transition(**transition)
        # (the writer names the transition first: "transition t=1: <what validate says>")
        assert str(refused.value).split(": ", 1)[1] in problems[0]
        assert validate_dataset(tmp_path / f"d{number}").ok


def test_export_when_seeds_are_not_in_the_dataset_names_the_seeds_it_has(dataset, capsys):
    out = dataset.parent / "out.npz"
    assert (
        main(["export", str(dataset), "--format", "npz", "-o", str(out), "--seeds", "5"]) == 2
    )  # a usage error
    err = capsys.readouterr().err
    assert "seeds asked for (5)" in err and "complete seeds are 1-2,10" in err
    assert "--resume" not in err and not out.exists()


def test_output_paths_when_given_with_a_tilde_are_under_home_not_a_literal_tilde_folder(
    tmp_path, monkeypatch
):
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    assert main(["sweep", "--out=~/swept", *TINY]) == 0
    assert (home / "swept" / mf.MANIFEST_NAME).is_file()
    path = "dataset_logging.dataset_output_path=~/ran/offline_data.jsonl"
    assert (
        main(["run", "--seed", "1", "--set", "general_settings.num_requests=300", "--set", path])
        == 0
    )
    assert (home / "ran" / shard_file_name(1)).is_file()
    assert not (tmp_path / "~").exists()


def test_recovered_minari_env_when_logged_with_epsilon_mix_and_warmup_replays_the_episode(
    tmp_path, monkeypatch
):
    minari = pytest.importorskip("minari", reason="the minari extra is not installed")
    data = tmp_path / "d"
    sets = [
        "general_settings.warmup_requests=400",
        "dataset_logging.epsilon_mix=0.5",
        "failure_settings.t_repair_after_arrivals=100",
    ]
    argv = ["sweep", "--out", str(data), *TINY]
    for item in sets:
        argv += ["--set", item]
    assert main(argv) == 0
    root = tmp_path / "minari"
    export = ["export", str(data), "--format", "minari", "--id", "fusion/mix-v0", "-o", str(root)]
    assert main(export) == 0
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    loaded = minari.load_dataset("fusion/mix-v0")
    episode = next(loaded.iterate_episodes())
    logged = list(load_dataset(data))
    env = loaded.recover_environment()
    obs, info = env.reset(seed=0)
    for step, action in enumerate(episode.actions):
        np.testing.assert_array_equal(obs, episode.observations[step])
        assert info["request_id"] == logged[step]["meta"]["request_id"] == step
        obs, reward, _, done, info = env.step(int(action))
        assert reward == episode.rewards[step]
    assert done


def test_hashing_sink_when_a_write_fails_hashes_only_what_reached_the_file():
    import hashlib

    from fusion.storage.sink import HashingSink

    class FullDisk:
        def __init__(self) -> None:
            self.data = bytearray()

        def write(self, view):  # type: ignore[no-untyped-def]
            if self.data:
                raise OSError(28, "No space left on device")
            self.data += view
            return len(view)

    file = FullDisk()
    sink = HashingSink(file)  # type: ignore[arg-type]
    sink.write(b"first buffer\n")
    with pytest.raises(OSError):
        sink.write(b"second buffer\n")
    sink.close()
    assert sink.size == len(file.data)
    assert sink.hexdigest() == hashlib.sha256(bytes(file.data)).hexdigest()
