"""fusion's benchmarks. Each prints figures measured in one run, as ratios to a baseline.

    python scripts/bench.py logger    # DatasetLogger vs the seed's json.dump+flush and a bare orjson loop; merge; load
    python scripts/bench.py sim       # requests/s: default, deeprmsa-nsfnet, ptrnet-rsa-40; logging on/off
    python scripts/bench.py sim-vs    # the same and the env, this tree vs ee70007 (a git worktree); the ceiling of logging on
    python scripts/bench.py features  # bytes and logging speed of the seed features, the extended ones, the spectrum
    python scripts/bench.py literature [--quick]  # KSP-FF on every preset vs published figures
    python scripts/bench.py sweep     # 4 seeds on 1 worker and on 2 workers
    python scripts/bench.py arrays    # to_arrays from JSONL and from the cache
    python scripts/bench.py size      # bytes per transition raw, gzip, zstd
    python scripts/bench.py scale     # tiny sweeps of 100, 1,000, 10,000 seeds; readers over them; the lease check
    python scripts/bench.py scale-vs  # a 2,000-seed sweep's per-seed cost, this tree vs 5cedc5f (before #30)
    python scripts/bench.py study     # a 3-load x 2-policy x 4-seed study vs a flat 24-seed sweep
    python scripts/bench.py rl        # the Gymnasium env and the FQI policy vs the engine loop
    python scripts/bench.py all

Times are wall-clock on a shared machine: compare the ratios, not the absolute figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

SEED_STATE: dict[str, Any] = {
    "src": 3,
    "dst": 9,
    "slots_needed": 2,
    "est_remaining_time": 1.7,
    "is_disaster": 0,
    "paths": [
        {
            "path_hops": 5,
            "min_residual_slots": 8,
            "frag_indicator": 0.42,
            "failure_mask": 0,
            "dist_to_disaster_centroid": 1,
        },
        {
            "path_hops": 6,
            "min_residual_slots": 12,
            "frag_indicator": 0.42,
            "failure_mask": 0,
            "dist_to_disaster_centroid": 1,
        },
        {
            "path_hops": 7,
            "min_residual_slots": 10,
            "frag_indicator": 0.42,
            "failure_mask": 0,
            "dist_to_disaster_centroid": 1,
        },
        {
            "path_hops": 8,
            "min_residual_slots": 5,
            "frag_indicator": 0.42,
            "failure_mask": 0,
            "dist_to_disaster_centroid": 1,
        },
    ],
}
SEED_META: dict[str, Any] = {
    "decision_time_ms": 0.35,
    "restoration_latency_ms": 100,
    "bp_window_tag": "pre",
    "backup_available": True,
    "was_groomed": False,
}
SEED_MASK = [True, True, False, True]


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _line(name: str, value: float, unit: str, ratio: float | None = None, base: str = "") -> None:
    text = f"{name:<38} {value:>12,.0f} {unit:<14}"
    if ratio is not None:
        text += f" {ratio:>7.2f}x {base}"
    print(text, flush=True)


class SeedReferenceLogger:
    """The seed card's implementation: json.dump, a newline and a flush per transition."""

    def __init__(self, output_path: Path, engine_props: dict[str, Any]) -> None:
        self.file_handle = open(output_path, "w", encoding="utf-8")  # noqa: SIM115
        self.engine_props = engine_props
        self.transition_count = 0

    def log_transition(self, state, action, reward, next_state, action_mask, meta) -> None:  # type: ignore[no-untyped-def]
        transition = {
            "t": self.transition_count,
            "seed": self.engine_props.get("seed"),
            "state": state,
            "action": action,
            "reward": reward,
            "next_state": next_state,
            "action_mask": action_mask,
            "meta": meta,
        }
        json.dump(transition, self.file_handle)
        self.file_handle.write("\n")
        self.file_handle.flush()
        self.transition_count += 1

    def close(self) -> None:
        self.file_handle.close()


def bench_logger(n: int, work: Path) -> None:
    """DatasetLogger against the seed's reference; merge against a copy; load."""
    from fusion.storage.loader import load_dataset
    from fusion.storage.merge import merge_shards
    from fusion.storage.shard_writer import DatasetLogger

    state, meta, mask = SEED_STATE, SEED_META, SEED_MASK
    n_ref = max(n // 10, 1000)
    ref = SeedReferenceLogger(work / "ref.jsonl", {"seed": 42})
    t_ref = _timed(
        lambda: [ref.log_transition(state, 0, 1.0, None, mask, meta) for _ in range(n_ref)]
    )
    ref.close()
    ref_rate = n_ref / t_ref
    _line("logger: seed reference", ref_rate, "transitions/s", 1.0, "(json.dump+flush per line)")

    def run_ours(directory: Path, seed: int, trusted: bool = True) -> None:
        # the engine's setting (trusted) first; a hand-fed writer checks every transition
        with DatasetLogger.open_shard(directory, seed, {"bench": True}, trusted=trusted) as log:
            write = log.log_transition
            for _ in range(n):
                write(state, 0, 1.0, None, mask, meta)

    data = work / "dataset"
    t_ours = _timed(lambda: run_ours(data, 0))
    ours = n / t_ours
    _line(
        "logger: DatasetLogger.open_shard",
        ours,
        "transitions/s",
        ours / ref_rate,
        "vs seed reference",
    )
    bench_logger_vs_orjson(n, work)
    for seed in range(1, 4):
        run_ours(data, seed)

    total = sum(p.stat().st_size for p in data.glob("*.jsonl"))
    copies, merges = [], []
    for _ in range(3):  # alternating, best of three each: the same spells of a noisy machine
        copies.append(_timed(lambda: _copy_all(data, work / "copy")))
        merges.append(_timed(lambda: merge_shards(data, work / "merged.jsonl", overwrite=True)))
    copy_rate = total / min(copies) / 1e6
    _line("merge: plain copy of the shards", copy_rate, "MB/s", 1.0, "(shutil.copyfileobj)")
    merge_rate = total / min(merges) / 1e6
    _line(
        "merge: order seed, sha256 checked",
        merge_rate,
        "MB/s",
        merge_rate / copy_rate,
        "vs plain copy",
    )

    count = 0

    def load() -> None:
        nonlocal count
        count = sum(1 for _ in load_dataset(data))

    t_load = _timed(load)
    load_rate = count / t_load
    _line(
        "load: load_dataset (4 shards)",
        load_rate,
        "transitions/s",
        load_rate / ref_rate,
        "vs seed logger",
    )


def _bare_loop(calls: list[tuple[Any, ...]], target: Path) -> None:
    """What a writer cannot do with less: the record dict, ``orjson.dumps``, a buffer written
    out every 1,000 lines, an fsync at the end."""
    import orjson

    option = orjson.OPT_APPEND_NEWLINE | orjson.OPT_SERIALIZE_NUMPY
    dumps, buffer = orjson.dumps, bytearray()
    with open(target, "wb", buffering=0) as out:
        for t, (state, action, reward, next_state, mask, meta) in enumerate(calls):
            record = {
                "t": t,
                "seed": 1,
                "state": state,
                "action": action,
                "reward": reward,
                "next_state": next_state,
                "action_mask": mask,
                "meta": meta,
            }
            buffer += dumps(record, option=option)
            if t % 1000 == 999:
                out.write(buffer)
                buffer = bytearray()
        out.write(buffer)
        os.fsync(out.fileno())


def _logged(calls: list[tuple[Any, ...]], target: Path, trusted: bool) -> None:
    from fusion.storage.shard_writer import DatasetLogger

    with DatasetLogger(target, {"seed": 1}, trusted=trusted) as log:
        write = log.log_transition
        for call in calls:
            write(*call)


def _same_round_ratios(
    calls: list[tuple[Any, ...]], work: Path, writers: dict[str, bool], rounds: int = 5
) -> tuple[float, dict[str, list[float]]]:
    """Each writer's speed as a fraction of the bare loop's, per round: a round times the bare
    loop and then each writer, back to back (the same spell of a shared machine)."""
    ratios: dict[str, list[float]] = {name: [] for name in writers}
    bare: list[float] = []
    for _ in range(rounds):
        base = _timed(lambda: _bare_loop(calls, work / "bare.jsonl"))
        bare.append(base)
        for name, trusted in writers.items():
            took = _timed(lambda trusted=trusted: _logged(calls, work / "ours.jsonl", trusted))
            ratios[name].append(base / took)
    return len(calls) / statistics.median(bare), ratios


def bench_logger_vs_orjson(n: int, work: Path) -> None:
    """The logger against a bare orjson loop writing the same records: the seed card's
    records by hand (the acceptance figure: the hand-fed writer, every line checked, at the
    median of 5 same-round ratios), then the engine's records (default scenario), trusted and
    hand-fed; lone files."""
    from fusion.config.config import load_config
    from fusion.sim.engine import SimulationEngine
    from fusion.sim.writer import InMemoryWriter

    seed_calls = [(SEED_STATE, 0, 1.0, None, SEED_MASK, SEED_META)] * n
    load = os.getloadavg()[0]  # (a shared machine: the ratios move with what else runs)
    rate, ratios = _same_round_ratios(seed_calls, work, {"hand-fed": False})
    _line("logger: bare orjson loop, seed card's", rate, "transitions/s", 1.0, "")
    each = " ".join(f"{r:.2f}" for r in ratios["hand-fed"])
    median = statistics.median(ratios["hand-fed"])
    _line(
        "logger: hand-fed, seed card's records",
        rate * median,
        "transitions/s",
        median,
        f"of bare: median of 5 same-round ratios ({each}); acceptance >= 0.50x; "
        f"load {load:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs",
    )

    cfg = load_config().replace("general_settings", num_requests=min(n, 50_000))
    kept = InMemoryWriter(seed=1)
    SimulationEngine(cfg, 1, writer=kept).run()
    calls = [
        (r["state"], r["action"], r["reward"], r["next_state"], r["action_mask"], r["meta"])
        for r in kept.records
    ]
    calls = (calls * (n // len(calls) + 1))[:n]
    rate, ratios = _same_round_ratios(calls, work, {"trusted": True, "checked": False})
    _line("logger: bare orjson loop, engine's", rate, "transitions/s", 1.0, "")
    for name, label in (("trusted", "trusted (engine)"), ("checked", "hand-fed, every line")):
        median = statistics.median(ratios[name])
        _line(
            f"logger: {label}, engine's",
            rate * median,
            "transitions/s",
            median,
            "of bare (median of 5 same-round ratios)",
        )


def _copy_all(src: Path, dst: Path) -> None:
    dst.mkdir(exist_ok=True)
    with open(dst / "all.jsonl", "wb") as out:
        for path in sorted(src.glob("*.jsonl")):
            with open(path, "rb") as f:
                shutil.copyfileobj(f, out, 1 << 20)


def bench_sim(n: int, work: Path) -> None:
    """Requests/s of one process, logging off and on, on the default scenario (NSFNet, k=4,
    320 slots), ``deeprmsa-nsfnet`` (250 Erlang, 44 directed fibres, 100 slots, k=5) and
    ``ptrnet-rsa-40-nsfnet`` (200 Erlang); ratios against the default with logging off, all
    measured in one run, interleaved, best of three."""
    from fusion.config.config import load_config
    from fusion.run.simulation import run_simulation
    from fusion.sim.engine import SimulationEngine

    scenarios = {
        "default NSFNet k=4": load_config().replace("general_settings", num_requests=n),
        "deeprmsa-nsfnet 250E": load_config("deeprmsa-nsfnet").replace(
            "general_settings", num_requests=n, warmup_requests=0
        ),
        "ptrnet-rsa-40-nsfnet 200E": load_config("ptrnet-rsa-40-nsfnet").replace(
            "general_settings", num_requests=n, warmup_requests=0, erlang=200
        ),
    }
    times: dict[str, tuple[list[float], list[float]]] = {}
    for name, cfg in scenarios.items():
        SimulationEngine(cfg.replace("general_settings", num_requests=min(n, 20_000)), 1).run()
        times[name] = ([], [])  # warmed: every pair's k paths are cached before timing
    for _ in range(3):  # off and on alternate, every scenario each round: the same noisy spells
        for name, cfg in scenarios.items():
            on_cfg = cfg.replace(
                "dataset_logging",
                log_offline_dataset=True,
                dataset_output_path=str(work / name.split()[0] / "offline_data.jsonl"),
            )
            times[name][0].append(_timed(lambda cfg=cfg: SimulationEngine(cfg, 1).run()))
            times[name][1].append(
                _timed(lambda on_cfg=on_cfg: run_simulation(on_cfg, 1, overwrite=True))
            )
    base = min(times["default NSFNet k=4"][0])
    for name, (offs, ons) in times.items():
        off, on = min(offs), min(ons)
        _line(f"sim: {name}, logging off", n / off, "requests/s", base / off, "vs default off")
        _line(f"sim: {name}, logging on", n / on, "requests/s", off / on, "vs its logging off")


def bench_features(n: int, work: Path) -> None:
    """What the observation settings cost on the default scenario: bytes per transition raw
    and zstd, and requests/s of one logging process, for the seed card's features, the
    extended ones, and the extended ones with the spectrum; ratios against the seed set,
    measured in one run, interleaved, best of three."""
    from fusion.config.config import load_config
    from fusion.run.simulation import run_simulation
    from fusion.storage.compression import compress_file
    from fusion.storage.loader import load_dataset
    from fusion.storage.shard_writer import DatasetLogger

    base = load_config().replace("general_settings", num_requests=n)
    settings = {  # name -> (directory, [dataset_logging] keys)
        "seed": ("seed", {"path_features": "seed"}),
        "extended": ("extended", {"path_features": "extended"}),
        "extended + log_spectrum": (
            "spectrum",
            {"path_features": "extended", "log_spectrum": "true"},
        ),
    }
    configs = {
        name: base.replace(
            "dataset_logging", dataset_output_path=str(work / where / "offline_data.jsonl"), **keys
        )
        for name, (where, keys) in settings.items()
    }
    times: dict[str, list[float]] = {name: [] for name in configs}
    for _ in range(3):
        for name, cfg in configs.items():
            times[name].append(_timed(lambda cfg=cfg: run_simulation(cfg, 1, overwrite=True)))
    # the logger alone: the same logged records written again through DatasetLogger
    records = {
        name: list(load_dataset(cfg.dataset_dir, seeds=[1])) for name, cfg in configs.items()
    }
    writes: dict[str, list[float]] = {name: [] for name in configs}

    def rewrite(name: str, round_: int) -> None:
        out = work / "rewrite" / settings[name][0] / str(round_)
        with DatasetLogger.open_shard(out, 1, {}, trusted=True) as log:
            for r in records[name]:
                log.log_transition(
                    r["state"], r["action"], r["reward"], None, r["action_mask"], r["meta"]
                )

    for round_ in range(3):
        for name in configs:
            writes[name].append(_timed(lambda name=name, r=round_: rewrite(name, r)))
    sizes = {}
    for name, cfg in configs.items():
        shard = cfg.dataset_dir / "offline_data.seed1.jsonl"
        target = cfg.dataset_dir / "shard.jsonl.zst"
        compress_file(shard, target, "zstd")
        sizes[name] = (shard.stat().st_size / n, target.stat().st_size / n)
    raw0, zst0 = sizes["seed"]
    best0 = min(times["seed"])
    for name in configs:
        raw, zst = sizes[name]
        _line(f"features: {name}, raw", raw, "bytes/trans.", raw / raw0, "of the seed set's")
        _line(f"features: {name}, zstd", zst, "bytes/trans.", zst / zst0, "of the seed set's")
        _line(
            f"features: {name}, logging on",
            n / min(times[name]),
            "requests/s",
            best0 / min(times[name]),
            "of the seed set's speed",
        )
        _line(
            f"features: {name}, logger alone",
            n / min(writes[name]),
            "transitions/s",
            min(writes["seed"]) / min(writes[name]),
            "of the seed set's speed",
        )


#: The commit before the speed work (#24's): what ``bench.py sim-vs`` measures against.
SPEED_BASELINE = "ee70007"

_SIM_SNIPPET = """
import json, sys, tempfile, time
from fusion.config.config import load_config
from fusion.env import EONRoutingEnv
from fusion.errors import ConfigError
from fusion.run.simulation import run_simulation
from fusion.sim.engine import SimulationEngine
from fusion.sim.writer import InMemoryWriter
from fusion.storage.shard_writer import DatasetLogger
n = int(sys.argv[1])
scenarios = {
    "default": load_config().replace("general_settings", num_requests=n),
    "deeprmsa-nsfnet 250E": load_config("deeprmsa-nsfnet").replace(
        "general_settings", num_requests=n, warmup_requests=0),
    "ptrnet-rsa-40-nsfnet 200E": load_config("ptrnet-rsa-40-nsfnet").replace(
        "general_settings", num_requests=n, warmup_requests=0, erlang=200),
}
out = {}
for name, cfg in scenarios.items():
    try:  # log what the commit before logged: the seed card's features, the true holding time
        cfg = cfg.replace("dataset_logging", path_features="seed", holding_time_known="true")
    except ConfigError:
        pass
    SimulationEngine(cfg.replace("general_settings", num_requests=min(n, 20000)), 1).run()
    started = time.perf_counter()
    SimulationEngine(cfg, 1).run()
    off = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as work:
        on_cfg = cfg.replace("dataset_logging", dataset_output_path=work + "/x/offline_data.jsonl")
        started = time.perf_counter()
        run_simulation(on_cfg, 1, overwrite=True)
        on = time.perf_counter() - started
    env = EONRoutingEnv(cfg)  # driven as an agent would: the first legal action, one step each
    started = time.perf_counter()
    obs, info = env.reset(seed=1)
    done = False
    while not done:
        obs, reward, _, done, info = env.step(int(info["action_mask"].argmax()))
    stepped = time.perf_counter() - started
    kept = InMemoryWriter(seed=1)  # the writer alone, on this run's transitions
    SimulationEngine(cfg, 1, writer=kept).run()
    calls = [(r["state"], r["action"], r["reward"], r["next_state"], r["action_mask"], r["meta"])
             for r in kept.records]
    with tempfile.TemporaryDirectory() as work:
        try:
            log = DatasetLogger(work + "/w.jsonl", {"seed": 1}, trusted=True)
        except TypeError:  # the commit before: its engine's setting
            log = DatasetLogger(work + "/w.jsonl", {"seed": 1}, check_features=False)
        started = time.perf_counter()
        for call in calls:
            log.log_transition(*call)
        log.close()
        written = time.perf_counter() - started
    out[name] = [off, on, stepped, written]
print(json.dumps(out))
"""


def bench_sim_vs(n: int, work: Path, baseline: str = SPEED_BASELINE) -> None:
    """Requests/s of one process, logging off and on, on the default scenario,
    ``deeprmsa-nsfnet`` (250 E) and ``ptrnet-rsa-40-nsfnet`` (200 E), this tree against the
    commit before the speed work (a git worktree of ``SPEED_BASELINE``), each in its own
    interpreter, trees alternating, best of three; both log the same transitions (the seed
    card's features, the true holding time). Also the Gymnasium environment's steps/s (driven
    by the first legal action) and the ceiling of logging on: off plus the writer alone on the
    same transitions, as if the state cost nothing."""
    times = _alternate_trees(_SIM_SNIPPET, [str(n)], work, baseline, "sim-vs")
    if times is None:
        return
    for scenario in times["now"][0]:
        best = {
            name: [min(run[scenario][i] for run in runs) for i in (0, 1, 2, 3)]
            for name, runs in times.items()
        }
        (b_off, b_on, b_env, _), (off, on, env, written) = best["before"], best["now"]
        _line(f"sim-vs: {scenario}, off, {baseline}", n / b_off, "requests/s")
        _line(f"sim-vs: {scenario}, off, now", n / off, "requests/s", b_off / off, "vs before")
        _line(f"sim-vs: {scenario}, on, {baseline}", n / b_on, "requests/s")
        _line(f"sim-vs: {scenario}, on, now", n / on, "requests/s", b_on / on, "vs before")
        _line(f"sim-vs: {scenario}, on/off, now", n / on, "requests/s", off / on, "of off")
        _line(  # the most logging on could reach: a state built for free, only the writer
            f"sim-vs: {scenario}, off + writer alone",
            n / (off + written),
            "requests/s",
            off / (off + written),
            "of off (the ceiling)",
        )
        _line(f"sim-vs: {scenario}, env, {baseline}", n / b_env, "steps/s")
        _line(f"sim-vs: {scenario}, env, now", n / env, "steps/s", b_env / env, "vs before")


def _alternate_trees(
    snippet: str, args: list[str], work: Path, baseline: str, bench: str, rounds: int = 3
) -> dict[str, list[Any]] | None:
    """Run ``snippet`` (which prints one JSON line last) in this tree and in a git worktree of
    ``baseline``, each in its own interpreter, trees alternating, ``rounds`` times; return
    each tree's parsed outputs (``None``, said, when the worktree cannot be made)."""
    import subprocess

    root = Path(__file__).resolve().parents[1]
    before = work / "before"
    made = subprocess.run(
        ["git", "-C", str(root), "worktree", "add", "--detach", str(before), baseline],
        capture_output=True,
        text=True,
    )
    if made.returncode != 0:
        print(f"{bench}: skipped, no worktree of {baseline}: {made.stderr.strip()}")
        return None
    try:
        trees = {"before": before, "now": root}
        times: dict[str, list[Any]] = {name: [] for name in trees}
        for _ in range(rounds):
            for name, tree in trees.items():
                env = {**os.environ, "PYTHONPATH": str(tree)}
                done = subprocess.run(
                    [sys.executable, "-c", snippet, *args],
                    cwd=tree,
                    env=env,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                times[name].append(json.loads(done.stdout.strip().splitlines()[-1]))
        return times
    finally:
        subprocess.run(
            ["git", "-C", str(root), "worktree", "remove", "--force", str(before)],
            capture_output=True,
        )


#: The commit before the ownership work (#30's): what ``bench.py scale-vs`` measures against.
OWNERSHIP_BASELINE = "5cedc5f"

_SWEEP_SNIPPET = """
import json, sys, tempfile, time
from fusion.config.config import load_config
from fusion.run.sweep import run_sweep
seeds = int(sys.argv[1])
cfg = load_config().replace("general_settings", num_requests=100)
with tempfile.TemporaryDirectory() as work:
    started = time.perf_counter()
    result = run_sweep(cfg, seeds=range(seeds), workers=2, out=work + "/d", quiet=True)
    took = time.perf_counter() - started
assert result.ok and len(result.seeds) == seeds
print(json.dumps(took / seeds))
"""


def bench_scale_vs(seeds: int, work: Path, baseline: str = OWNERSHIP_BASELINE) -> None:
    """Per-seed cost of a ``seeds``-seed sweep (100 requests each, 2 workers), this tree
    against the commit before the ownership work (a git worktree of ``OWNERSHIP_BASELINE``),
    each in its own interpreter, alternating, best of three."""
    times = _alternate_trees(_SWEEP_SNIPPET, [str(seeds)], work, baseline, "scale-vs")
    if times is None:
        return
    before, now = min(times["before"]), min(times["now"])
    name = f"scale-vs: {seeds:,} seeds, sweep"
    print(f"{name + ', ' + baseline:<38} {before * 1e3:>12,.2f} ms/seed", flush=True)
    print(f"{name + ', now':<38} {now * 1e3:>12,.2f} ms/seed {before / now:>7.2f}x vs before")


LITERATURE = {  # scenario -> load -> (published, independent re-run) KSP-FF blocking, percent
    "deeprmsa-nsfnet": {250: (5.10, 5.13)},
    "ptrnet-rsa-40-nsfnet": {
        180: (0.80, 0.91),
        190: (1.25, 1.23),
        200: (1.50, 1.67),
        210: (1.90, 1.98),
        220: (2.50, 2.47),
        230: (2.90, 2.99),
        240: (3.50, 3.81),
    },
}
#: Figures of the current XLRON run on this kind of machine (docs/literature.md).
XLRON_NOW = {
    ("deeprmsa-nsfnet", 250, "length"): 4.92,
    ("deeprmsa-nsfnet", 250, "hops"): 3.07,
    ("deeprmsa-nsfnet", 250, "spectral_resources"): 2.61,
    ("ptrnet-rsa-40-cost239", 340, "length"): 3.52,
    ("ptrnet-rsa-40-cost239", 420, "length"): 6.56,
    ("gcn-rmsa-nsfnet", 154, "length"): 0.63,
}


def bench_literature(args: argparse.Namespace, work: Path) -> None:
    """KSP-FF on every preset at its paper's loads (10 seeds x 10,000 requests after 3,000
    warm-up, as published; more seeds at a preset's highest load until the 95 % interval is
    under 10 % of the mean), by km and under the hop-based orders, beside the published and
    re-run figures; ``--quick``: two points, three seeds."""
    from fusion.config.presets import PRESETS, preset_config
    from fusion.run.evaluate import evaluate_policies

    orders = ("hops", "spectral_resources")
    points = [(name, load) for name, preset in PRESETS.items() for load in preset.loads]
    seeds: list[int] = list(range(10))
    if args.quick:
        points, seeds = [("deeprmsa-nsfnet", 250), ("ptrnet-rsa-40-nsfnet", 200)], [0, 1, 2]
    print(
        f"{'scenario':<24} {'load':>5} {'n':>3}  {'KSP-FF by km [95% CI]':<24} {'CI/mean':>7}  "
        f"{'published':>9} {'re-run':>7} {'XLRON':>6}  {'by hops':>8} {'spec.res.':>9}"
    )
    for name, load in points:
        config = preset_config(name).replace("general_settings", erlang=load)
        if args.n:
            config = config.replace("general_settings", num_requests=args.n)
        specs = [f"ksp_ff:path_order={order}" for order in orders]
        used = list(seeds)
        while True:
            report = evaluate_policies(config, specs, seeds=used, workers=2)
            rows = {row["spec"]: row["blocking"] for row in report["policies"]}
            km = rows["ksp_ff"]
            width = (km["ci95_high"] - km["ci95_low"]) / 2 / km["mean"] if km["mean"] else 0.0
            # at a preset's highest load the interval must be under 10 % of the mean: more
            # seeds (10 at a time, up to 40) where 10 runs do not get it there
            if width < 0.1 or load != PRESETS[name].loads[-1] or len(used) >= 40 or args.quick:
                break
            used += list(range(used[-1] + 1, used[-1] + 11))
        published, rerun = LITERATURE.get(name, {}).get(load, (None, None))
        xlron = XLRON_NOW.get((name, load, "length"))

        def pct(value: float | None) -> str:
            return "-" if value is None else f"{value:.2f}"

        print(
            f"{name:<24} {load:>5} {len(used):>3}  {km['mean'] * 100:5.2f} [{km['ci95_low'] * 100:5.2f}, "
            f"{km['ci95_high'] * 100:5.2f}]{'':<4} {width:>6.1%}  {pct(published):>9} "
            f"{pct(rerun):>7} {pct(xlron):>6}  "
            + " ".join(
                f"{rows[f'ksp_ff:path_order={order}']['mean'] * 100:>8.2f}" for order in orders
            ),
            flush=True,
        )


def bench_sweep(n: int, work: Path) -> None:
    """4 seeds on 1 worker and on 2 workers, in one run."""
    from fusion.config.config import load_config
    from fusion.run.sweep import run_sweep

    cfg = load_config().replace("general_settings", num_requests=n)
    one = _timed(lambda: run_sweep(cfg, seeds=range(4), workers=1, out=work / "w1", quiet=True))
    two = _timed(lambda: run_sweep(cfg, seeds=range(4), workers=2, out=work / "w2", quiet=True))
    _line("sweep: 4 seeds, 1 worker", 4 * n / one, "requests/s", 1.0, "")
    _line("sweep: 4 seeds, 2 workers", 4 * n / two, "requests/s", one / two, "vs 1 worker")


def _sim_dataset(work: Path, n: int, seeds: int = 4) -> Path:
    """A default-config dataset of ``seeds`` seeds with ``n`` requests each."""
    from fusion.config.config import load_config
    from fusion.run.sweep import run_sweep

    cfg = load_config().replace("general_settings", num_requests=n)
    out = work / "dataset"
    run_sweep(cfg, seeds=range(seeds), workers=2, out=out, quiet=True)
    return out


def bench_arrays(n: int, work: Path) -> None:
    """to_arrays from JSONL against load_dataset's dicts, and from the npz cache."""
    from fusion.datasets.arrays import to_arrays
    from fusion.storage.loader import load_dataset

    data = _sim_dataset(work, n)
    rows = 4 * n
    t_dicts = _timed(lambda: sum(1 for _ in load_dataset(data)))
    _line(
        "arrays: load_dataset dicts (baseline)",
        rows / t_dicts,
        "transitions/s",
        1.0,
        "(orjson, 4 shards)",
    )
    t_json = min(_timed(lambda: to_arrays(data, cache=False)) for _ in range(3))
    _line(
        "arrays: to_arrays from JSONL",
        rows / t_json,
        "transitions/s",
        t_dicts / t_json,
        "vs load_dataset",
    )
    to_arrays(data)  # writes the cache
    t_cache = min(_timed(lambda: to_arrays(data)) for _ in range(3))
    _line(
        "arrays: to_arrays from the npz cache",
        rows / t_cache,
        "transitions/s",
        t_json / t_cache,
        "vs from JSONL",
    )


def bench_size(n: int, work: Path) -> None:
    """Bytes per transition raw, gzip and zstd (default config); compression MB/s vs a copy."""
    from fusion.storage.compression import compress_file

    data = _sim_dataset(work, n, seeds=1)
    shard = next(data.glob("*.seed0.jsonl"))
    raw = shard.stat().st_size
    lines = n  # one transition per request
    _line("size: raw JSON Lines", raw / lines, "bytes/trans.", 1.0, "(default config, K=4)")
    t_copy = min(_timed(lambda: shutil.copyfile(shard, work / "copy.jsonl")) for _ in range(3))
    for kind, suffix in (("gzip", ".gz"), ("zstd", ".zst")):
        target = work / f"shard.jsonl{suffix}"
        t = min(_timed(lambda k=kind, o=target: compress_file(shard, o, k)) for _ in range(2))
        size = target.stat().st_size
        _line(f"size: {kind}", size / lines, "bytes/trans.", raw / size, "smaller than raw")
        _line(
            f"size: {kind} compression",
            raw / t / 1e6,
            "MB/s",
            t_copy / t,
            "of a plain copy's speed",
        )


def _scale_row(seeds: int, work: Path) -> dict[str, float]:
    """One tiny sweep of ``seeds`` seeds (100 requests each, 2 workers), then every reader over
    it; seconds per seed (per shard for the readers) and manifest bytes per shard."""
    from fusion.config.config import load_config
    from fusion.datasets.arrays import to_arrays
    from fusion.report.inspection import inspect_dataset
    from fusion.run.sweep import run_sweep
    from fusion.storage import manifest as mf
    from fusion.storage.loader import load_dataset
    from fusion.storage.merge import merge_shards
    from fusion.storage.ownership import acquire
    from fusion.storage.statuses import STATUS_COMPLETE
    from fusion.storage.validate import validate_dataset

    cfg = load_config().replace("general_settings", num_requests=100)
    out = work / f"scale{seeds}"
    shutil.rmtree(out, ignore_errors=True)
    result: Any = None

    def sweep() -> None:
        nonlocal result
        result = run_sweep(cfg, seeds=range(seeds), workers=2, out=out, quiet=True)

    row = {"sweep": _timed(sweep) / seeds}
    lease = acquire(out, "bench")  # the ownership check, as a task makes it twice per shard
    row["lease check"] = min(_timed(lease.check) for _ in range(200))
    row["manifest read"] = min(_timed(lambda: mf.read_manifest(out)) for _ in range(5))
    lease.release()
    manifest = mf.read_manifest(out)
    complete = sum(e["status"] == STATUS_COMPLETE for e in manifest["shards"])
    if not result.ok or complete != seeds:
        raise SystemExit(f"scale: {seeds} seeds: only {complete} complete")
    row["manifest"] = (out / mf.MANIFEST_NAME).stat().st_size / seeds
    row["load"] = _timed(lambda: sum(1 for _ in load_dataset(out))) / seeds
    row["to_arrays"] = _timed(lambda: to_arrays(out, cache=False)) / seeds
    row["merge seed"] = _timed(lambda: merge_shards(out, work / "m.jsonl", overwrite=True)) / seeds
    row["merge t"] = (
        _timed(lambda: merge_shards(out, work / "m.jsonl", order="t", overwrite=True)) / seeds
    )
    row["validate"] = _timed(lambda: validate_dataset(out)) / seeds
    row["inspect"] = _timed(lambda: inspect_dataset(out)) / seeds
    shutil.rmtree(out)
    return row


def bench_scale(largest: int, work: Path) -> None:
    """Per-seed sweep cost and per-shard reader costs at 100, 1,000 and ``largest`` seeds.

    The 100-seed row is the baseline: it is measured before each larger row and once after,
    and its best is kept (the same machine spells for both).
    """
    sizes = [size for size in (1_000, largest) if size > 100]
    base_rows = [_scale_row(100, work)]
    rows = {}
    for size in sorted(set(sizes)):
        rows[size] = _scale_row(size, work)
        base_rows.append(_scale_row(100, work))
    base = {key: min(r[key] for r in base_rows) for key in base_rows[0]}
    for size, row in [(100, base), *rows.items()]:
        for key, value in row.items():
            unit = {"manifest": "bytes/shard", "sweep": "ms/seed"}.get(key, "ms/shard")
            if key in ("lease check", "manifest read"):
                unit = "ms/call"
            shown = value if key == "manifest" else value * 1e3
            name = f"scale: {size:>6,} seeds, {key}"
            text = f"{name:<38} {shown:>12,.2f} {unit:<14}"
            text += f" {value / base[key]:>7.2f}x vs 100 seeds"
            print(text, flush=True)
        print(
            f"scale: {size:>6,} seeds, the ownership check (2 per shard) is "
            f"{2 * row['lease check'] / row['sweep']:.2%} of a seed's sweep cost; a manifest "
            f"read would be {row['manifest read'] / row['lease check']:,.0f}x one check",
            flush=True,
        )


def bench_study(n: int, work: Path) -> None:
    """A 3-load x 2-policy x 4-seed study against one flat sweep of 24 seeds (erlang 300,
    ksp_ff: the study's middle), both on 2 workers; alternated, best of three each."""
    from fusion.config.config import load_config
    from fusion.config.grid import parse_grid
    from fusion.run.study import run_study
    from fusion.run.sweep import run_sweep

    cfg = load_config().replace("general_settings", num_requests=n)
    axes = parse_grid(
        cfg,
        ["general_settings.erlang=200,300,400", "policy_settings.policy=ksp_ff,shortest_feasible"],
    )
    flats, studies = [], []
    for i in range(3):
        flats.append(
            _timed(
                lambda i=i: run_sweep(
                    cfg, seeds=range(24), workers=2, out=work / f"f{i}", quiet=True
                )
            )
        )
        studies.append(
            _timed(
                lambda i=i: run_study(
                    cfg, axes, seeds=range(4), workers=2, out=work / f"s{i}", quiet=True
                )
            )
        )
        shutil.rmtree(work / f"f{i}")
        shutil.rmtree(work / f"s{i}")
    flat, study = min(flats), min(studies)
    _line("study: flat sweep, 24 seeds", 24 * n / flat, "requests/s", 1.0, "")
    _line(
        "study: 3 loads x 2 policies x 4 seeds",
        24 * n / study,
        "requests/s",
        flat / study,
        "vs the flat sweep",
    )


def bench_rl(n: int, work: Path) -> None:
    """The Gymnasium env driven by KSP-FF against the engine's own loop; FQI's policy in the
    simulator against KSP-FF's (decisions/s), interleaved, best of three."""
    import numpy as np

    from fusion.config.config import load_config
    from fusion.config.features import path_features
    from fusion.env import EONRoutingEnv
    from fusion.rl.fqi import FQIPolicy, train_fqi
    from fusion.sim.engine import SimulationEngine
    from fusion.sim.policies import KSPFFPolicy
    from fusion.storage.observation import observation_size

    cfg = load_config().replace("general_settings", num_requests=n)
    cfg = cfg.replace("dataset_logging", log_offline_dataset=False)
    env = EONRoutingEnv(cfg)
    policy = KSPFFPolicy()

    def episode() -> None:
        _, info = env.reset(seed=1)
        done = False
        while not done:
            path = policy.select_path(env.state, info["action_mask"][:-1])
            _, _, _, done, info = env.step(path if path >= 0 else env.k_paths)

    rng = np.random.default_rng(0)
    rows, k = 20_000, cfg.general.k_paths
    masks = rng.random((rows, k)) < 0.8
    width = observation_size(k, path_features(cfg.dataset.path_features))  # the config's set
    obs = rng.random((rows, width)).astype(np.float32)
    actions = np.where(masks.any(axis=1), masks.argmax(axis=1), -1)
    dones = np.zeros(rows, bool)
    dones[-1] = True
    model = train_fqi(obs, actions, -np.ones(rows, np.float32), masks, dones, iterations=1)
    fqi = FQIPolicy(model)
    engine, stepped, learned = [], [], []
    for _ in range(3):
        engine.append(_timed(lambda: SimulationEngine(cfg, 1).run()))
        stepped.append(_timed(episode))
        learned.append(_timed(lambda: SimulationEngine(cfg, 1, policy=fqi).run()))
    base = min(engine)
    _line("rl: engine loop, KSP-FF", n / base, "requests/s", 1.0, "")
    _line(
        "rl: Gymnasium env, KSP-FF",
        n / min(stepped),
        "requests/s",
        base / min(stepped),
        "vs engine loop",
    )
    _line(
        "rl: engine loop, FQI policy",
        n / min(learned),
        "requests/s",
        base / min(learned),
        "vs KSP-FF",
    )


BENCHES: dict[str, Callable[[argparse.Namespace, Path], None]] = {
    "logger": lambda a, w: bench_logger(a.n or 200_000, w),
    "sim": lambda a, w: bench_sim(a.n or 50_000, w),
    "sweep": lambda a, w: bench_sweep(a.n or 50_000, w),
    "arrays": lambda a, w: bench_arrays(a.n or 50_000, w),
    "size": lambda a, w: bench_size(a.n or 50_000, w),
    "scale": lambda a, w: bench_scale(a.n or 10_000, w),
    "scale-vs": lambda a, w: bench_scale_vs(a.n or 2_000, w, a.baseline or OWNERSHIP_BASELINE),
    "study": lambda a, w: bench_study(a.n or 5_000, w),
    "rl": lambda a, w: bench_rl(a.n or 20_000, w),
    "features": lambda a, w: bench_features(a.n or 50_000, w),
    "sim-vs": lambda a, w: bench_sim_vs(a.n or 50_000, w, a.baseline or SPEED_BASELINE),
    "literature": bench_literature,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", choices=[*BENCHES, "all"])
    parser.add_argument("-n", type=int, default=0, help="size of the run (bench-specific)")
    parser.add_argument("--quick", action="store_true", help="literature: a few points only")
    parser.add_argument(
        "--baseline",
        metavar="REV",
        help=f"sim-vs, scale-vs: the commit to measure against (default {SPEED_BASELINE}, "
        f"{OWNERSHIP_BASELINE})",
    )
    args = parser.parse_args()
    names = [b for b in BENCHES if b != "literature"] if args.which == "all" else [args.which]
    for name in names:
        print(f"== {name}")
        with tempfile.TemporaryDirectory(prefix=f"fusion-bench-{name}-") as work:
            BENCHES[name](args, Path(work))
    return 0


if __name__ == "__main__":
    sys.exit(main())
