"""A config resolved against its network: topology, modulation table, bit rates, traffic
matrix, checked across keys once, before any worker starts.

:func:`build_scenario` is what the engine runs on and what every command calls first
(:func:`check_scenario`): a failed link that is not in the topology, bit rates FUSION's table
does not know, a path order that needs spectral efficiencies the table has not, or a traffic
matrix naming unknown nodes is a :class:`~fusion.errors.ConfigError` naming the keys. So is
what would fail every seed later: a pair of nodes the traffic draws with no path between them,
a ``k_paths`` (or spectrum log) whose lines would outgrow
:data:`~fusion.storage.schema.MAX_LINE_BYTES` (:func:`line_bytes`), an arrival rate or a
request's slot count that overflows, more requests than a seed can hold.

    >>> from fusion.config.config import load_config
    >>> s = build_scenario(load_config())
    >>> s.topology.num_links, s.modulation.kind, s.rates.values
    (22, 'fusion', (25, 50, 100, 200, 400))
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import math
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import numpy as np
import orjson

from fusion.config.config import MAX_REQUESTS, MAX_SLOTS, RUN_K_PATHS, Config
from fusion.config.features import STATE_FEATURES, feature_bounds, path_features
from fusion.config.heuristics import HEURISTICS, SPECTRUM_RULES
from fusion.config.vocabulary import BIT_RATES, MAX_LINE_BYTES
from fusion.errors import ConfigError
from fusion.sim.failures import plan_failure
from fusion.sim.modulation import ModulationTable
from fusion.sim.policies import POLICIES
from fusion.sim.topology import Topology, load_topology


@dataclass(frozen=True)
class BitRates:
    """What ``[general_settings] bit_rates`` draws from.

    :param values: The rates (or slot counts) a request may have.
    :param mix: Their probabilities (``None``: each list entry equally likely).
    :param uniform: ``(low, high)`` for ``uniform:A-B`` (then ``values`` is that range).
    """

    values: tuple[int, ...]
    mix: tuple[float, ...] | None
    uniform: tuple[int, int] | None = None


@dataclass(frozen=True)
class Scenario:
    """A config resolved against its network.

    :param topology: The network (directed or not).
    :param modulation: The modulation table.
    :param rates: The bit rates requests draw from.
    :param pairs: ``(src, dst, weight)`` of a traffic matrix, or ``None`` (uniform).
    """

    topology: Topology
    modulation: ModulationTable
    rates: BitRates
    pairs: tuple[np.ndarray, np.ndarray, np.ndarray] | None


def _where(config: Config, *keys: str) -> str:
    return f"{config.source}: " + " with ".join(keys)


def _rates(config: Config) -> BitRates:
    spec = config.general.bit_rates
    modulation = config.topology.modulation
    if spec == "fusion":
        if modulation == "none":
            raise ConfigError(
                f"{_where(config, '[topology_settings] modulation = none', '[general_settings] bit_rates = fusion')}: "
                "without modulation the bit rates are slot counts; give them, e.g. bit_rates = 1,1,2,4"
            )
        return BitRates(BIT_RATES, config.general.bandwidth_mix)
    if spec.startswith("uniform:"):
        low, high = (int(x) for x in spec.removeprefix("uniform:").split("-"))
        rates = BitRates(tuple(range(low, high + 1)), None, (low, high))
    else:
        rates = BitRates(tuple(int(x) for x in spec.split(",")), None)
    unknown = sorted(set(rates.values) - set(BIT_RATES))
    if modulation == "fusion" and unknown:
        raise ConfigError(
            f"{_where(config, f'[general_settings] bit_rates = {spec}', '[topology_settings] modulation = fusion')}: "
            f"FUSION's table knows the bit rates {list(BIT_RATES)}, not {unknown[:5]}; use "
            "modulation = deeprmsa (or a .csv of spectral efficiencies)"
        )
    return rates


def _pairs(config: Config, topology: Topology) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    spec = config.general.traffic_matrix
    if spec == "uniform":
        return None
    where = f"{config.source}: [general_settings] traffic_matrix = {spec!r}"
    try:
        rows = [r for r in csv.reader(Path(spec).read_text("utf-8").splitlines()) if r]
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read it ({exc.strerror})") from None
    if rows and rows[0][0].strip() == "src":
        rows = rows[1:]
    src, dst, weight = [], [], []
    for number, row in enumerate(rows, 1):
        try:
            u, v = topology.node_id(row[0]), topology.node_id(row[1])
            w = float(row[2])
            if u == v or not w >= 0 or w == float("inf"):
                raise ValueError
        except (KeyError, ValueError, IndexError):
            raise ConfigError(
                f"{where}: row {number} {','.join(row)!r}: expected src,dst,weight with two "
                f"different nodes of {topology.name} and a weight >= 0"
            ) from None
        src.append(u)
        dst.append(v)
        weight.append(w)
    if not weight or sum(weight) <= 0:
        raise ConfigError(f"{where}: no pair has a weight > 0")
    if not math.isfinite(sum(weight)):
        raise ConfigError(
            f"{where}: the weights sum to {sum(weight):g}, which is not a finite number "
            "(they are shares of the traffic: scale them down, e.g. to sum to 1)"
        )
    return np.array(src), np.array(dst), np.array(weight)


def _check_counts(config: Config) -> None:
    """Refuse more requests than a seed holds, and an arrival rate that overflows."""
    g = config.general
    if g.num_requests + g.warmup_requests > MAX_REQUESTS:
        raise ConfigError(
            f"{_where(config, f'[general_settings] num_requests = {g.num_requests}', f'warmup_requests = {g.warmup_requests}')}: "
            f"{g.num_requests + g.warmup_requests} requests per seed; a seed's requests are "
            f"drawn up front and it takes at most {MAX_REQUESTS} in all: run more seeds"
        )
    if not math.isfinite(g.erlang / g.holding_time):
        raise ConfigError(
            f"{_where(config, f'[general_settings] erlang = {g.erlang:g}', f'holding_time = {g.holding_time:g}')}: "
            "the arrival rate erlang / holding_time overflows (every request would arrive at "
            "once); give a smaller erlang or a longer holding_time"
        )


def _check_connected(
    config: Config, topology: Topology, pairs: tuple[np.ndarray, np.ndarray, np.ndarray] | None
) -> None:
    """Refuse a network where a pair the traffic draws (or, with a failure, any pair: paths
    measure their distance to its centre) has no path, naming a few such pairs."""
    graph = topology.graph
    whole = pairs is None or config.failure.failure_type != "none"
    connected = nx.is_strongly_connected(graph) if topology.directed else nx.is_connected(graph)
    if connected:
        return
    if whole:
        wanted = [
            (u, v) for u in range(topology.num_nodes) for v in range(topology.num_nodes) if u != v
        ]
    else:
        assert pairs is not None
        wanted = [(int(u), int(v)) for u, v, w in zip(*pairs, strict=True) if w > 0]
    missing = [(u, v) for u, v in wanted if not nx.has_path(graph, u, v)]
    if not missing:
        return
    label = topology.node_label
    shown = ", ".join(f"{label(u)}-{label(v)}" for u, v in missing[:3])
    more = f" and {len(missing) - 3} more pairs" if len(missing) > 3 else ""
    components = nx.weakly_connected_components if topology.directed else nx.connected_components
    parts = sorted(components(graph), key=min)

    def named(part: set[int]) -> str:
        nodes = [label(n) for n in sorted(part)]
        return "{" + ", ".join(nodes[:5]) + (", ..." if len(nodes) > 5 else "") + "}"

    islands = "; ".join(named(part) for part in parts[:4]) + ("; ..." if len(parts) > 4 else "")
    if pairs is None:
        why, other = "uniform traffic draws every pair", ""
    elif whole:
        why = f"[failure_settings] failure_type = {config.failure.failure_type}: every path's "
        why += "distance to the failure is measured"
        other = ", or set failure_type = none"
    else:
        why, other = "the traffic_matrix draws them", ", or leave them out of the traffic_matrix"
    raise ConfigError(
        f"{_where(config, f'[topology_settings] network = {config.topology.network}')}: no path "
        f"between {shown}{more} ({why}): the network falls apart into {len(parts)} parts "
        f"({islands}); add links joining them{other}"
    )


def _check_slots(config: Config, modulation: ModulationTable, rates: BitRates) -> None:
    """Refuse a slot width (or spectral efficiency) so small that a request would need more
    slots than any link has (and more than a record's integers hold)."""
    if modulation.kind != "efficiency":
        return
    lowest = min(f[2] for f in modulation.formats)
    rate = max(rates.values)
    need = rate / (lowest * modulation.slot_ghz)
    if math.isfinite(need) and need <= MAX_SLOTS:
        return
    smallest = rate / (lowest * MAX_SLOTS)
    raise ConfigError(
        f"{_where(config, f'[topology_settings] slot_ghz = {modulation.slot_ghz:g}', f'modulation = {config.topology.modulation}')}: "
        f"a {rate} Gb/s request at spectral efficiency {lowest:g} would need {need:g} slots, more "
        f"than any link has (c_band <= {MAX_SLOTS}); use slot_ghz >= {smallest:.3g}"
    )


#: The longest text a double takes in JSON (``-2.2250738585072014e-308``).
_WIDEST_FLOAT = -2.2250738585072014e-308
#: Features that are floats (the rest are integers); the rounded ones have 4 decimals.
_FLOATS = {"frag_indicator", "mean_block_size", "length_km", "spectral_efficiency"}
_ROUNDED = {"frag_indicator", "mean_block_size"}


#: ``meta.behaviour`` at its longest: a heuristic's name and a spectrum rule.
_WIDEST_BEHAVIOUR = "/".join(
    max(names, key=len) for names in ([h.name for h in HEURISTICS], SPECTRUM_RULES)
)


def _widest(names: tuple[str, ...], nodes: int, slots: int) -> dict[str, float | int]:
    """Each feature at its longest JSON text within its range (the catalogue's bounds)."""
    low, high = feature_bounds(names, nodes=nodes, slots=slots)
    values: dict[str, float | int] = {}
    for name, a, b in zip(names, low, high, strict=True):
        if name in _ROUNDED:
            values[name] = b - 0.0001 if b >= 1 else 0.1234
        elif name in _FLOATS or not math.isfinite(b):
            values[name] = _WIDEST_FLOAT
        else:
            values[name] = max(int(a), int(b), key=lambda v: len(str(v)))
    return values


def line_bytes(config: Config, topology: Topology) -> tuple[int, int]:
    """The longest line the engine can log with this config: ``(fixed, per_path)`` bytes, so a
    line is at most ``fixed + k_paths x per_path`` (every state is padded to K paths; each
    feature is taken at its widest value, the spectrum log and a linked ``next_state``
    included).

    :param config: The config.
    :param topology: Its network.

        >>> from fusion.config.config import load_config
        >>> fixed, per_path = line_bytes(load_config(), load_topology("NSFNet"))
        >>> 300 < per_path < 500, fixed < 1000
        (True, True)
    """
    g, d = config.general, config.dataset
    nodes, slots, links = topology.num_nodes, config.topology.c_band, topology.num_links
    path: dict[str, object] = dict(_widest(path_features(d.path_features), nodes, slots))
    state: dict[str, object] = dict(_widest(STATE_FEATURES, nodes, slots))
    state["est_remaining_time"] = _WIDEST_FLOAT
    if d.log_spectrum:
        path["links"] = [links - 1] * max(nodes - 1, 1)  # a loop-free path: < nodes hops
        state["spectrum"] = ["f" * (2 * ((slots + 7) // 8))] * links
    state["paths"] = []
    total = g.num_requests + g.warmup_requests
    meta = {
        "decision_time_ms": _WIDEST_FLOAT,
        "restoration_latency_ms": _WIDEST_FLOAT,
        "bp_window_tag": "fail",
        "backup_available": False,
        "was_groomed": False,
        "request_id": total,
        "arrival_time": _WIDEST_FLOAT,
        "bit_rate": MAX_SLOTS,
        "start_slot": slots,
        "behaviour": _WIDEST_BEHAVIOUR,
        "explored": False,
        "propensity": _WIDEST_FLOAT,
    }
    record = {
        "t": total,
        "seed": 2**31 - 1,
        "state": state,
        "action": g.k_paths,
        "reward": -1.0,
        "next_state": state if d.link_next_state else None,
        "action_mask": [],
        "meta": meta,
    }
    copies = 2 if d.link_next_state else 1
    per_path = copies * (len(orjson.dumps(path)) + 1) + len(b"false,")
    return len(orjson.dumps(record)) + 1, per_path


@functools.lru_cache(maxsize=16)  # (per engine otherwise: a sweep's workers build many)
def _check_line(config: Config, topology: Topology) -> None:
    """Refuse a ``k_paths`` (or a spectrum log) whose lines would outgrow the line limit."""
    fixed, per_path = line_bytes(config, topology)
    k = config.general.k_paths
    if fixed + k * per_path <= MAX_LINE_BYTES:
        return
    d, t = config.dataset, config.topology
    what = f"path_features = {d.path_features}" + (", log_spectrum" if d.log_spectrum else "")
    what += ", link_next_state" if d.link_next_state else ""
    fits = min((MAX_LINE_BYTES - fixed) // per_path, RUN_K_PATHS)  # and what a run finishes
    if fits >= 1:
        raise ConfigError(
            f"{_where(config, f'[general_settings] k_paths = {k}', f'[dataset_logging] {what}')}: "
            f"every logged state holds k_paths paths (padded), up to {per_path} bytes each, so a "
            f"line could reach {fixed + k * per_path} bytes, over the {MAX_LINE_BYTES} a line may "
            f"hold: every seed would fail; use k_paths <= {fits}"
            + ("" if d.path_features == "seed" else " (path_features = seed fits more)")
        )
    low, high = 1, t.c_band  # the largest c_band whose spectrum log leaves room for K paths
    while low < high:
        middle = (low + high + 1) // 2
        trial = dataclasses.replace(config, topology=dataclasses.replace(t, c_band=middle))
        f, p = line_bytes(trial, topology)
        low, high = (middle, high) if f + k * p <= MAX_LINE_BYTES else (low, middle - 1)
    raise ConfigError(
        f"{_where(config, f'[topology_settings] c_band = {t.c_band}', f'[dataset_logging] {what}')}: "
        f"with log_spectrum every line holds each of the {topology.num_links} links' "
        f"{t.c_band} slots, so a line could reach {fixed + k * per_path} bytes, over the "
        f"{MAX_LINE_BYTES} a line may hold: every seed would fail; set log_spectrum = false, or "
        f"c_band <= {low}"
    )


def build_scenario(config: Config) -> Scenario:
    """The config resolved against its network (topologies are cached per process).

    :raises ConfigError: naming the keys of a value that does not fit another.
    """
    t = config.topology
    g = config.general
    _check_counts(config)
    try:
        topology = load_topology(t.network, t.directed)
        modulation = ModulationTable.build(t.modulation, t.slot_ghz)
    except ConfigError as exc:
        raise ConfigError(f"{config.source}: {exc}") from None
    pairs = _pairs(config, topology)
    _check_connected(config, topology, pairs)
    try:
        plan_failure(config.failure, topology, np.arange(float(g.num_requests)))
    except ConfigError as exc:
        raise ConfigError(f"{config.source}: {exc}") from None
    span = (g.num_requests + g.warmup_requests) * g.holding_time / g.erlang
    if not math.isfinite(span) or span > 1e15:
        raise ConfigError(
            f"{_where(config, f'[general_settings] erlang = {g.erlang:g}', f'holding_time = {g.holding_time:g}')}: "
            f"the run would last {span:g} time units: the load is too small to simulate"
        )
    if config.general.path_order == "spectral_resources" and modulation.kind == "fusion":
        raise ConfigError(
            f"{_where(config, '[general_settings] path_order = spectral_resources', '[topology_settings] modulation = fusion')}: "
            "the order divides hops by a path's spectral efficiency, which FUSION's per-rate "
            "table does not give; use modulation = deeprmsa, none or a .csv"
        )
    own = POLICIES[config.policy.policy].spectrum
    if own is not None and config.policy.spectrum != "first_fit":
        path_only = [h.name for h in HEURISTICS if h.spectrum is None]
        same_rule = [h.name for h in HEURISTICS if h.spectrum == config.policy.spectrum]
        raise ConfigError(
            f"{_where(config, f'[policy_settings] policy = {config.policy.policy}', f'spectrum = {config.policy.spectrum}')}: "
            f"{config.policy.policy} brings its own spectrum rule ({own}); the spectrum key is "
            f"for path-only policies ({', '.join(path_only)}, learned models), or pick one with "
            f"that rule ({', '.join(same_rule) or 'none has it'})"
        )
    rates = _rates(config)
    _check_slots(config, modulation, rates)
    if config.dataset.log_offline_dataset:
        _check_line(config, topology)
    if g.k_paths > RUN_K_PATHS:
        raise ConfigError(
            f"{_where(config, f'[general_settings] k_paths = {g.k_paths}')}: a run takes at most "
            f"{RUN_K_PATHS} candidate paths per request: the k-shortest search and every "
            f"decision grow with k, and {g.k_paths} would take minutes per few requests on a "
            f"large network ({topology.name}: {topology.num_nodes} nodes); use k_paths <= "
            f"{RUN_K_PATHS}"
        )
    return Scenario(topology, modulation, rates, pairs)


def check_scenario(config: Config) -> None:
    """Run every cross-key check (:func:`build_scenario`); call it before starting workers.

    :raises ConfigError: naming the keys.
    """
    build_scenario(config)
