"""A config resolved against its network: topology, modulation table, bit rates, traffic
matrix, checked across keys once, before any worker starts.

:func:`build_scenario` is what the engine runs on and what every command calls first
(:func:`check_scenario`): a failed link that is not in the topology, bit rates FUSION's table
does not know, a path order that needs spectral efficiencies the table has not, or a traffic
matrix naming unknown nodes is a :class:`~fusion.errors.ConfigError` naming the keys.

    >>> from fusion.config.config import load_config
    >>> s = build_scenario(load_config())
    >>> s.topology.num_links, s.modulation.kind, s.rates.values
    (22, 'fusion', (25, 50, 100, 200, 400))
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fusion.config.config import Config
from fusion.config.vocabulary import BIT_RATES
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
    return np.array(src), np.array(dst), np.array(weight)


def build_scenario(config: Config) -> Scenario:
    """The config resolved against its network (topologies are cached per process).

    :raises ConfigError: naming the keys of a value that does not fit another.
    """
    t = config.topology
    try:
        topology = load_topology(t.network, t.directed)
        modulation = ModulationTable.build(t.modulation, t.slot_ghz)
        plan_failure(config.failure, topology, np.arange(float(config.general.num_requests)))
    except ConfigError as exc:
        raise ConfigError(f"{config.source}: {exc}") from None
    g = config.general
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
        raise ConfigError(
            f"{_where(config, f'[policy_settings] policy = {config.policy.policy}', f'spectrum = {config.policy.spectrum}')}: "
            f"{config.policy.policy} brings its own spectrum rule ({own}); the spectrum key is "
            "for path-only policies (shortest_feasible, least_congested, random_feasible, "
            "learned models), or pick the family member with that rule (ksp_lf, ksp_bf, ...)"
        )
    return Scenario(topology, modulation, _rates(config), _pairs(config, topology))


def check_scenario(config: Config) -> None:
    """Run every cross-key check (:func:`build_scenario`); call it before starting workers.

    :raises ConfigError: naming the keys.
    """
    build_scenario(config)
