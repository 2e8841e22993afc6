"""The discrete-event EON simulator that makes the decisions a dataset logs.

Events sit in one heap as ``(time, priority, sequence, kind, payload)``: equal times pop by
priority (departure, repair, failure, arrival), then by the order they were scheduled, so a
run is a pure function of its config and seed. :meth:`SimulationEngine.run` is a loop over
:meth:`SimulationEngine.step`. An arrival is two halves, :meth:`SimulationEngine.observe` (the
state and mask) and :meth:`SimulationEngine.decide` (allocate, count, log); the loop puts the
behaviour policy between them, and :meth:`SimulationEngine.next_decision` hands the choice to
a caller instead (the Gymnasium environment, :mod:`fusion.env`).

At each arrival the engine builds the seed card's state from the live spectrum, the mask of
paths that can really carry the request, lets the policy choose (with epsilon-mix when
logging), allocates with the policy's spectrum rule (first-fit unless the policy or
``[policy_settings] spectrum`` says otherwise), and hands the transition to the writer. ``slots_needed`` is the
slots (guard band included) the request takes on the first of its K paths that a modulation
format reaches, 0 when none does; ``est_remaining_time`` is the mean holding time, or with
``[dataset_logging] holding_time_known`` the request's own. Only what is read is built: with
nothing logged the state is never built, and a first-feasible policy (KSP-FF's family) stops
at the first path that fits. Every feature's unit and range is in the catalogue,
:mod:`fusion.config.features`; the seed card's path features:

- ``path_hops``: links on the path.
- ``min_residual_slots``: fewest free slots on any link of the path.
- ``frag_indicator``: ``1 - longest / total`` over the slots free on every link of the path
  (``longest``: the longest contiguous free block; ``total``: all such free slots), rounded
  to 4 decimals; 0.0 when no slot is free on the whole path. 0 means one unbroken block.
- ``failure_mask``: 1 if the path crosses a link that is down now.
- ``dist_to_disaster_centroid``: while a failure is active, the fewest hops from the path to
  the failure's centre (0: it touches it); -1 when no failure is active.

With ``path_features = extended`` (the default) each path also holds ``length_km``,
``path_slots_needed``, ``spectral_efficiency``, ``first_fit_start``, ``first_fit_block``,
``fitting_blocks``, ``free_slots`` and ``mean_block_size``, computed in the same pass over the
path's common free slots; with ``log_spectrum`` the state holds every link's occupied slots
(``spectrum``, hex) and each path its ``links``.

A pair with fewer than K loop-free paths is padded with rows of zeros (``failure_mask`` 1,
distance -1) whose mask entry is false. ``was_groomed`` is always false: there is no
traffic grooming in this simulator. Links are undirected (one spectrum per fibre link)
unless ``[topology_settings] directed``; the candidates follow ``path_order``; requests of
``warmup_requests`` run first and are neither counted nor logged.

    >>> from fusion.config.config import load_config
    >>> cfg = load_config().replace("general_settings", num_requests=2000)
    >>> stats = SimulationEngine(cfg, seed=1).run()
    >>> stats["requests"], 0.0 <= stats["blocking_probability"] < 1.0
    (2000, True)
"""

from __future__ import annotations

import heapq
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from fusion.config.config import Config, check_seed
from fusion.config.vocabulary import ORIGINAL_POLICIES
from fusion.errors import ConfigError
from fusion.sim.failures import FailurePlan, plan_failure
from fusion.sim.modulation import ModulationTable
from fusion.sim.policies import EpsilonMixPolicy, PathPolicy, make_policy
from fusion.sim.scenario import build_scenario
from fusion.sim.spectrum import (
    SpectrumState,
    first_fit,
    longest_run,
    place,
    runs_of,
)
from fusion.sim.stats import RunStats
from fusion.sim.topology import CandidatePath, Topology
from fusion.sim.traffic import generate_traffic
from fusion.sim.writer import TransitionWriter

DEPARTURE, REPAIR, FAILURE, ARRIVAL = 0, 1, 2, 3


@dataclass(frozen=True)
class _Draws:
    """Pre-drawn uniforms served one ``random()`` call at a time."""

    random: Callable[[], float]


class _Efficiency(dict[int, list[float]]):
    """Bit rate -> per path: the format's spectral efficiency (0: out of reach), on first use;
    an efficiency table's formats depend on the length only, so its row is found once."""

    def __init__(self, lengths: list[float], table: ModulationTable) -> None:
        super().__init__()
        self._lengths, self._table = lengths, table
        self._fixed: list[float] | None = None

    def __missing__(self, rate: int) -> list[float]:
        table = self._table
        if table.kind == "efficiency":
            if self._fixed is None:
                self._fixed = [table.request_efficiency(0, km) for km in self._lengths]
            row = self[rate] = self._fixed
        else:
            row = self[rate] = [table.request_efficiency(rate, km) for km in self._lengths]
        return row


class _Needs(dict[int, list[int]]):
    """Bit rate -> per path: slots incl. guard (0: out of reach), filled on first use."""

    def __init__(
        self, lengths: list[float], table: ModulationTable, efficiency: _Efficiency, guard: int
    ) -> None:
        super().__init__()
        self._lengths, self._table, self._guard = lengths, table, guard
        self._efficiency = efficiency

    def __missing__(self, rate: int) -> list[int]:
        table = self._table
        if table.kind == "efficiency":  # ceil(rate / (SE x slot width)), SE per path found once
            step = table.slot_ghz
            slots = [
                math.ceil(rate / (se * step) - 1e-9) if se else 0 for se in self._efficiency[rate]
            ]
        else:
            slots = [table.slots(rate, km) for km in self._lengths]
        row = self[rate] = [n + self._guard if n else 0 for n in slots]
        return row


class _FirstReach(dict[int, int]):
    """Bit rate -> slots on the first path a format reaches (0: none), filled on first use."""

    def __init__(self, needs: _Needs) -> None:
        super().__init__()
        self._needs = needs

    def __missing__(self, rate: int) -> int:
        first = self[rate] = next((n for n in self._needs[rate] if n), 0)
        return first


def fragmentation(longest: int, total: int) -> float:
    """``frag_indicator``: ``1 - longest / total``, rounded to 4 decimals; 0.0 for one block
    or none.

    :param longest: The longest block of slots free on every link of the path.
    :param total: All such free slots.

        >>> fragmentation(3, 4), fragmentation(4, 4), fragmentation(0, 0)
        (0.25, 0.0, 0.0)
    """
    return round(1.0 - longest / total, 4) if longest != total else 0.0


def mean_block_size(total: int, blocks: int) -> float:
    """``mean_block_size``: free slots per free block, rounded to 4 decimals; 0.0 for none.

    :param total: The slots free on every link of the path.
    :param blocks: How many blocks they form.
    """
    return round(total / blocks, 4) if blocks else 0.0


class _Memo(dict[int, float]):
    """``a * base + b`` -> ``figure(a, b)``, computed on first use (a, b below ``base``)."""

    def __init__(self, figure: Callable[[int, int], float], base: int) -> None:
        super().__init__()
        self._figure, self._base = figure, base

    def __missing__(self, key: int) -> float:
        value = self[key] = self._figure(*divmod(key, self._base))
        return value


@dataclass
class _Pair:
    """What every request of one node pair shares: its K paths and their fixed figures."""

    links: list[tuple[int, ...]]
    hops: list[int]
    needs: _Needs  # bit rate -> per path: slots incl. guard (0: out of reach)
    slots_needed: _FirstReach  # bit rate -> slots on the first path that reaches (0: none)
    disjoint: list[list[bool]]
    distance: list[int]  # hops to the failure's centre (-1 without a failure)
    failed: list[bool]
    lengths: list[float]  # km per path
    efficiency: _Efficiency  # bit rate -> per path: spectral efficiency (0: out of reach)
    epoch: int = -1


@dataclass(slots=True)
class Decision:
    """One arrival waiting for its path: what a policy sees, and what allocating it needs.

    :param request: Index into the seed's traffic.
    :param mask: One boolean per path (K of them): feasible now.
    :param started: The clock when the arrival was observed (for ``decision_time_ms``).
    :param pair: The node pair's paths (the engine's own).
    :param commons: Per path, the slots free on every link, as observed.
    :param needs: Per path, the slots the request takes, guard band included (0: out of reach).
    :param spectrum: The live spectrum (for heuristics that weigh it).
    :param lengths: Every link's km.
    :param disaster: Whether a failure was active.
    :param engine: The engine, which builds :attr:`state` when it is first read.

    It holds the spectrum as observed: decide it before the engine runs another event. It is
    what a policy's :meth:`~fusion.sim.policy.PathPolicy.rank_decision` reads
    (:class:`~fusion.sim.policy.DecisionView`). The seed card's state dict (:attr:`state`) is
    built only when something reads it (the writer, a policy that looks at features, the
    environment): KSP-FF without logging never pays for it.
    """

    request: int
    mask: list[bool]
    started: float
    pair: _Pair
    commons: list[int]
    needs: list[int]
    spectrum: SpectrumState
    lengths: list[float]
    disaster: bool
    engine: SimulationEngine
    built: dict[str, Any] | None = None
    runs: list[int] | None = None  # per path, the starts where the request fits (lazy observe)

    @property
    def state(self) -> dict[str, Any]:
        """The seed card's state dict (what is logged), built on first use."""
        if self.built is None:
            self.built = self.engine.state_of(self)
        return self.built

    @property
    def links(self) -> list[tuple[int, ...]]:
        """Per path, its link indices."""
        return self.pair.links


class SimulationEngine:
    """One seed's simulation.

    :param config: The resolved config.
    :param seed: The seed; every random stream of the run derives from it.
    :param writer: Where transitions go, any :class:`~fusion.sim.writer.TransitionWriter`
        (``None``: no logging).
    :param policy: The behaviour policy (default: ``[policy_settings] policy``).
    :param clock: Seconds, for ``decision_time_ms`` (injectable for tests).
    :param eager_state: Build every decision's state as it is observed (one pass with the
        mask) rather than when first read; ``None``: when a writer logs every state or the
        policy reads it (:attr:`~fusion.sim.policy.PathPolicy.reads_state`).
    :param epsilon: The behaviour policy's epsilon-mix; ``None``: ``[dataset_logging]
        epsilon_mix`` with a writer, 0 without. The environment passes the logged run's, so
        that its warm-up (the behaviour policy's) is the logged run's.
    """

    def __init__(
        self,
        config: Config,
        seed: int,
        *,
        writer: TransitionWriter | None = None,
        policy: PathPolicy | None = None,
        clock: Callable[[], float] = time.perf_counter,
        eager_state: bool | None = None,
        epsilon: float | None = None,
    ) -> None:
        self.config = config
        self.seed = check_seed(seed)
        scenario = build_scenario(config)
        self.topology: Topology = scenario.topology
        self._modulation = scenario.modulation
        traffic_seq, epsilon_seq, policy_seq = np.random.SeedSequence(seed).spawn(3)
        self._epsilon_rng = np.random.default_rng(epsilon_seq)
        self.policy = policy or make_policy(config.policy.policy, np.random.default_rng(policy_seq))
        self.policy.check_config(config)
        g = config.general
        self._warmup = g.warmup_requests
        total = g.warmup_requests + g.num_requests
        rates = scenario.rates
        self.traffic = generate_traffic(
            np.random.default_rng(traffic_seq),
            total,
            num_nodes=self.topology.num_nodes,
            erlang=g.erlang,
            holding_time=g.holding_time,
            bit_rates=rates.values,
            mix=rates.mix,
            uniform_rates=rates.uniform,
            truncation=g.holding_time_truncation,
            pairs=scenario.pairs,
        )
        try:  # the failure's arrival indices count the measured requests, after warm-up
            self.failure: FailurePlan | None = plan_failure(
                config.failure, self.topology, self.traffic.arrival[self._warmup :]
            )
        except ConfigError as exc:
            raise ConfigError(f"{config.source}: {exc}") from None
        self.failure_history: list[dict[str, Any]] = []
        self._rule = self.policy.spectrum or config.policy.spectrum
        self.spectrum = SpectrumState(
            self.topology.num_links, config.topology.c_band, track_usage=self._rule == "most_used"
        )
        # meta.start_slot: logged unless an original heuristic allocates first-fit (whose
        # records stay as they were)
        self._log_start = not (self.policy.name in ORIGINAL_POLICIES and self._rule == "first_fit")
        self.writer = writer
        self._eager_state = (
            (writer is not None or self.policy.reads_state) if eager_state is None else eager_state
        )
        self._clock = clock
        self._k = g.k_paths
        what = config.dataset  # what a state holds
        self._extended = what.path_features == "extended"
        self._spectrum_hex = 2 * ((config.topology.c_band + 7) // 8) if what.log_spectrum else 0
        self._hex_format = f"0{self._spectrum_hex}x"  # a link's occupied slots, fixed width
        self._mean_holding = None if what.holding_time_known else g.holding_time
        self._padding: dict[str, Any] = (_PADDING_EXTENDED if self._extended else _PADDING) | (
            {"links": []} if self._spectrum_hex else {}
        )
        self._guard = config.topology.guard_slots
        # the state's two rounded ratios, each computed once per pair of counts (a round()
        # costs a few dict lookups)
        base = self.spectrum.slots + 1
        self._fragmentation = _Memo(fragmentation, base)
        self._mean_block = _Memo(mean_block_size, base)
        self._lengths = self.topology.lengths
        if epsilon is None:
            epsilon = config.dataset.epsilon_mix if writer is not None else 0.0
        self._epsilon = epsilon
        # Epsilon-mix's uniforms, drawn at once: the same stream as one random() per decision
        # with two or more feasible paths, without a numpy call per decision.
        draws = self._epsilon_rng.random(total).tolist() if self._epsilon > 0 else []
        self._epsilon_draws = _Draws(iter(draws).__next__)
        self._behaviour = (
            EpsilonMixPolicy(self.policy, self._epsilon, self._epsilon_draws)
            if self._epsilon > 0.0
            else self.policy
        )
        # KSP-FF's family with nothing logged: an arrival stops at the first path that fits
        self._first_only = (
            self.policy.first_feasible and self._behaviour is self.policy and not self._eager_state
        )
        self._failed: frozenset[int] = frozenset()
        self._disaster = False
        self._epoch = 0
        self._pairs: dict[tuple[int, int], _Pair] = {}
        self._lightpaths: dict[int, tuple[tuple[int, ...], int, int, int, int, int]] = {}
        self._queue: list[tuple[float, int, int, int, int]] = []
        self._sequence = 0
        # One (arrival, holding, src, dst, bit_rate) row of Python numbers per request.
        self._requests = list(
            zip(
                self.traffic.arrival.tolist(),
                self.traffic.holding.tolist(),
                self.traffic.src.tolist(),
                self.traffic.dst.tolist(),
                self.traffic.bit_rate.tolist(),
                strict=True,
            )
        )
        self.now = 0.0
        self._stats = RunStats(g.num_requests)
        if total:
            self._schedule(self._requests[0][0], ARRIVAL, 0)
        if self.failure is not None:
            self._schedule(self.failure.t_fail, FAILURE, 0)
            if self.failure.t_repair != float("inf"):
                self._schedule(self.failure.t_repair, REPAIR, 0)

    # -- the event core -------------------------------------------------------------------------
    def _schedule(self, when: float, kind: int, payload: int) -> None:
        self._sequence += 1
        heapq.heappush(self._queue, (when, kind, self._sequence, kind, payload))

    def step(self) -> bool:
        """Process the next event; ``False`` when none is left."""
        if not self._queue:
            return False
        when, _, _, kind, payload = heapq.heappop(self._queue)
        self.now = when
        if kind == ARRIVAL:  # handle_arrival, inlined on this hot path
            if self._first_only:
                self._arrive_first_feasible(payload)
            else:
                decision = self.observe(payload)
                self.decide(decision, self._behaviour.select_decision(decision))
        elif kind == DEPARTURE:  # handle_release, inlined
            lightpath = self._lightpaths.pop(payload, None)
            if lightpath is not None:
                self.spectrum.release(lightpath[0], lightpath[1], lightpath[2])
        else:
            self._handle_network_event(kind, payload)
        return True

    def _handle_network_event(self, kind: int, payload: int) -> None:
        if kind == DEPARTURE:
            self.handle_release(payload)
        elif kind == FAILURE:
            self._fail()
        else:
            self._repair()

    def run(self) -> dict[str, Any]:
        """Run every event; return the summary stats."""
        while self.step():
            pass
        return self.stats()

    def next_decision(self) -> Decision | None:
        """Run events up to the next arrival and return its decision, still to be made.

        The caller chooses and calls :meth:`decide`; this is how an agent outside the loop
        (:mod:`fusion.env`) drives the engine. ``None`` when no arrival is left (the events
        after the last arrival are run).
        """
        while self._queue:
            when, _, _, kind, payload = heapq.heappop(self._queue)
            self.now = when
            if kind == ARRIVAL:
                if payload >= self._warmup:
                    return self.observe(payload)
                self.handle_arrival(payload)  # warm-up: the behaviour policy decides
            else:
                self._handle_network_event(kind, payload)
        return None

    # -- arrivals and departures ----------------------------------------------------------------
    def _pair(self, src: int, dst: int) -> _Pair:
        key = (src, dst)
        pair = self._pairs.get(key)
        if pair is None:
            pair = self._pairs[key] = self._build_pair(src, dst)
        if pair.epoch != self._epoch:
            failed = self._failed
            pair.failed = [not failed.isdisjoint(links) for links in pair.links]
            pair.epoch = self._epoch
        return pair

    def _candidates(self, src: int, dst: int) -> list[CandidatePath]:
        """The pair's K candidate paths in ``[general_settings] path_order``: ``length`` the k
        shortest by km (networkx's order); the others the k fewest-hop paths, sorted by hops,
        by hops then km, or by hops / spectral efficiency, ties by the node list's sha256."""
        order = self.config.general.path_order
        if order == "length":
            return self.topology.k_paths(src, dst, self._k)
        paths = self.topology.k_paths(src, dst, self._k, by="hops")
        if order == "hops_length":
            return sorted(paths, key=lambda p: (p.hops, p.length_km))
        if order == "spectral_resources":
            efficiency = self._modulation.efficiency
            return sorted(paths, key=lambda p: p.hops / max(efficiency(p.length_km), 1.0))
        return paths

    def _build_pair(self, src: int, dst: int) -> _Pair:
        paths = self._candidates(src, dst)
        lengths = [p.length_km for p in paths]
        efficiency = _Efficiency(lengths, self._modulation)
        needs = _Needs(lengths, self._modulation, efficiency, self._guard)
        slots_needed = _FirstReach(needs)
        distance = [
            self.failure.distance_to_centre(self.topology, p.nodes) if self.failure else -1
            for p in paths
        ]
        link_sets = [set(p.links) for p in paths]
        disjoint = [[a.isdisjoint(b) for b in link_sets] for a in link_sets]
        return _Pair(
            [p.links for p in paths],
            [p.hops for p in paths],
            needs,
            slots_needed,
            disjoint,
            distance,
            [False] * len(paths),
            lengths,
            efficiency,
        )

    def handle_arrival(self, request: int) -> None:
        """Decide, allocate and log request number ``request`` with the behaviour policy.

        :param request: Index into the seed's traffic.
        """
        decision = self.observe(request)
        self.decide(decision, self._behaviour.select_decision(decision))

    def observe(self, request: int) -> Decision:
        """The mask (and, eagerly or when first read, the state) of request number
        ``request`` against the live spectrum.

        :param request: Index into the seed's traffic.
        """
        started = self._clock() if self.writer is not None else 0.0  # decision_time_ms
        _, _, src, dst, rate = self._requests[request]
        pair = self._pairs.get((src, dst))
        if pair is None or pair.epoch != self._epoch:  # first seen, or the failures changed
            pair = self._pair(src, dst)
        needs = pair.needs[rate]
        decision = Decision(
            request,
            [],
            started,
            pair,
            [],
            needs,
            self.spectrum,
            self._lengths,
            self._disaster,
            self,
        )
        if self._eager_state and request >= self._warmup:  # wanted anyway: one pass for both
            decision.built = self._paths(decision, None)
            return decision
        free, full, mask, commons = (
            self.spectrum.free,
            self.spectrum.full,
            decision.mask,
            decision.commons,
        )
        runs = decision.runs = []
        for links, need, failed in zip(pair.links, needs, pair.failed, strict=True):
            common = full
            for link in links:
                common &= free[link]
            commons.append(common)
            # the rule asks whether a block of `need` slots is free: runs_of answers that in
            # fewer operations than the longest block's length, which only the state needs
            # (path_feasible's rule, inlined on this hot path); its starts are kept for
            # first-fit in decide
            starts = (
                runs_of(common, need)
                if need > 0 and not failed and common.bit_count() >= need
                else 0
            )
            runs.append(starts)
            mask.append(starts != 0)
        for _ in range(len(mask), self._k):
            mask.append(False)
        return decision

    def _arrive_first_feasible(self, request: int) -> None:
        """An arrival under a first-feasible policy with nothing logged: the candidates are
        tried in order and the first that can carry the request (:meth:`observe`'s rule) is
        taken; the paths after it are never looked at."""
        _, _, src, dst, rate = self._requests[request]
        pair = self._pairs.get((src, dst))
        if pair is None or pair.epoch != self._epoch:
            pair = self._pair(src, dst)
        free, full = self.spectrum.free, self.spectrum.full
        for action, (links, need, failed) in enumerate(
            zip(pair.links, pair.needs[rate], pair.failed, strict=True)
        ):
            if need and not failed:
                common = full
                for link in links:
                    common &= free[link]
                if common.bit_count() >= need:
                    starts = runs_of(common, need)
                    if starts:
                        rule = self._rule
                        start = (
                            (starts & -starts).bit_length() - 1
                            if rule == "first_fit"
                            else place(rule, common, need, self.spectrum.usage)
                        )
                        self._carry_out(request, pair, action, start, need)
                        return
        self._carry_out(request, pair, -1, -1, 0)

    def state_of(self, decision: Decision) -> dict[str, Any]:
        """The seed card's state of a decision, from the spectrum as observed (read it before
        the decision is carried out: :meth:`decide` does, when it logs).

        :param decision: From :meth:`observe`.
        """
        return self._paths(decision, decision.commons)

    def _paths(self, decision: Decision, commons: list[int] | None) -> dict[str, Any]:
        """The state's path features, in one pass over the candidates; without ``commons``
        (eager) it also fills the decision's commons and mask."""
        _, holding, src, dst, rate = self._requests[decision.request]
        pair = decision.pair
        free, count, full = self.spectrum.free, self.spectrum.free_count, self.spectrum.full
        slots, disaster = self.spectrum.slots, decision.disaster
        mask, found = decision.mask, decision.commons
        extended, hexes = self._extended, self._spectrum_hex
        efficiency = pair.efficiency[rate] if extended else []
        frags, means, base = self._fragmentation, self._mean_block, slots + 1
        features: list[dict[str, Any]] = []
        for index, (links, hops, distance, need, failed) in enumerate(
            zip(pair.links, pair.hops, pair.distance, decision.needs, pair.failed, strict=True)
        ):
            residual = slots
            if commons is None:
                common = full
                for link in links:
                    common &= free[link]
                    if count[link] < residual:
                        residual = count[link]
            else:
                common = commons[index]
                for link in links:
                    if count[link] < residual:
                        residual = count[link]
            total = common.bit_count()
            longest = longest_run(common)
            if extended:  # one dict literal: faster than adding keys one by one
                starts = runs_of(common, need) if need and longest >= need else 0
                if starts:
                    start = (starts & -starts).bit_length() - 1
                    tail = common >> start
                    block = (~tail & (tail + 1)).bit_length() - 1
                else:
                    start, block = -1, 0
                blocks = (common & ~(common << 1)).bit_count()  # block_count, inlined
                path: dict[str, Any] = {
                    "path_hops": hops,
                    "min_residual_slots": residual,
                    "frag_indicator": frags[longest * base + total],
                    "failure_mask": 1 if failed else 0,
                    "dist_to_disaster_centroid": distance if disaster else -1,
                    "length_km": pair.lengths[index],
                    "path_slots_needed": need,
                    "spectral_efficiency": efficiency[index],
                    "first_fit_start": start,
                    "first_fit_block": block,
                    "fitting_blocks": (starts & ~(starts << 1)).bit_count(),
                    "free_slots": total,
                    "mean_block_size": means[total * base + blocks],
                }
            else:
                path = {
                    "path_hops": hops,
                    "min_residual_slots": residual,
                    "frag_indicator": frags[longest * base + total],
                    "failure_mask": 1 if failed else 0,
                    "dist_to_disaster_centroid": distance if disaster else -1,
                }
            if hexes:
                path["links"] = list(links)
            features.append(path)
            if commons is None:
                found.append(common)
                mask.append(need > 0 and not failed and longest >= need)  # path_feasible, inlined
        for _ in range(len(features), self._k):
            features.append(self._padding)
            if commons is None:
                mask.append(False)
        state = {
            "src": src,
            "dst": dst,
            "slots_needed": pair.slots_needed[rate],
            "est_remaining_time": holding if self._mean_holding is None else self._mean_holding,
            "is_disaster": 1 if disaster else 0,
            "paths": features,
        }
        if hexes:
            digits = self._hex_format
            state["spectrum"] = [format(full ^ f, digits) for f in free]
        return state

    def decide(self, decision: Decision, action: int) -> bool:
        """Carry out ``action`` for a decision from :meth:`observe`: allocate, count, log.

        :param decision: The request's decision, from :meth:`observe` or :meth:`next_decision`.
        :param action: A feasible path index, or -1 to block (an infeasible index blocks too).
        :return: Whether the request was routed.
        """
        request, mask, pair = decision.request, decision.mask, decision.pair
        # what is logged is the spectrum as observed: built before allocating changes it (a
        # warm-up request is never logged)
        logged = self.writer is not None and request >= self._warmup
        state = decision.state if logged else None
        if action >= 0 and not (action < len(mask) and mask[action]):
            action = -1
        start = need = -1
        if action >= 0:
            need = decision.needs[action]
            if self._rule == "first_fit":
                runs = decision.runs
                if runs is None:
                    start = first_fit(decision.commons[action], need)
                else:  # the starts observe found: the lowest is first-fit's
                    fits = runs[action]
                    start = (fits & -fits).bit_length() - 1
            else:
                start = place(self._rule, decision.commons[action], need, self.spectrum.usage)
        tag = self._carry_out(request, pair, action, start, need)
        if tag is None or state is None:  # warm-up, or nothing logged: no meta to build
            return action >= 0
        assert self.writer is not None  # (a state is built only when logged)
        arrival, _, _, _, rate = self._requests[request]
        backup = False
        decision_ms = (self._clock() - decision.started) * 1000.0
        if action >= 0:
            row = pair.disjoint[action]
            for j, ok in enumerate(mask):
                if ok and row[j] and j != action:
                    backup = True
                    break
        disaster = decision.disaster
        meta = {
            "decision_time_ms": decision_ms,
            "restoration_latency_ms": self.config.failure.restoration_latency_ms
            if disaster
            else 0.0,
            "bp_window_tag": tag,
            "backup_available": backup,
            "was_groomed": False,
            "request_id": request - self._warmup,
            "arrival_time": arrival,
            "bit_rate": rate,
        }
        if self._log_start:
            meta["start_slot"] = start
        self.writer.log_transition(state, action, 1.0 if action >= 0 else -1.0, None, mask, meta)
        return action >= 0

    def _carry_out(
        self, request: int, pair: _Pair, action: int, start: int, need: int
    ) -> str | None:
        """Allocate path ``action`` (-1: block) at ``start``, schedule its departure and the
        next arrival, count the request; its window tag (``None`` for a warm-up request,
        simulated but never counted nor logged)."""
        arrival, holding, src, dst, rate = self._requests[request]
        if action >= 0:
            links = pair.links[action]
            self.spectrum.allocate(links, start, need)
            self._lightpaths[request] = (links, start, need, src, dst, rate)
            self._sequence += 1  # _schedule, inlined on this hot path
            heapq.heappush(
                self._queue, (arrival + holding, DEPARTURE, self._sequence, DEPARTURE, request)
            )
        if request + 1 < len(self._requests):
            self._sequence += 1
            heapq.heappush(
                self._queue,
                (self._requests[request + 1][0], ARRIVAL, self._sequence, ARRIVAL, request + 1),
            )
        if request < self._warmup:
            return None
        tag = self._get_bp_window_tag(arrival) if self.failure_history else "pre"
        self._stats.arrival(
            request - self._warmup, arrival, tag, rate, action >= 0, pair.slots_needed[rate] > 0
        )
        return tag

    def handle_release(self, request: int) -> None:
        """Free the spectrum of a departing lightpath (if a failure did not drop it first).

        :param request: The request whose lightpath departs.
        """
        lightpath = self._lightpaths.pop(request, None)
        if lightpath is not None:
            links, start, need = lightpath[:3]
            self.spectrum.release(links, start, need)

    # -- failures --------------------------------------------------------------------------------
    def _fail(self) -> None:
        assert self.failure is not None
        plan = self.failure
        self._failed = plan.links
        self._disaster = True
        self._epoch += 1
        restored = dropped = 0
        for request in sorted(self._lightpaths):
            links, start, need, src, dst, rate = self._lightpaths[request]
            if plan.links.isdisjoint(links):
                continue
            self.spectrum.release(links, start, need)
            del self._lightpaths[request]
            pair = self._pair(src, dst)
            for index, candidate in enumerate(pair.links):
                slots = pair.needs[rate][index]
                if pair.failed[index] or not slots:
                    continue
                begin = first_fit(self.spectrum.common_free(candidate), slots)
                if begin >= 0:
                    self.spectrum.allocate(candidate, begin, slots)
                    self._lightpaths[request] = (candidate, begin, slots, src, dst, rate)
                    restored += 1
                    break
            else:
                dropped += 1
        self._stats.restored, self._stats.dropped = restored, dropped
        self.failure_history.append(
            {
                "kind": plan.kind,
                "links": sorted(plan.links),
                "centre": list(plan.centre),
                "t_fail": plan.t_fail,
                "t_repair": plan.t_repair,
                "restored": restored,
                "dropped": dropped,
                "restoration_latency_ms": self.config.failure.restoration_latency_ms,
            }
        )

    def _repair(self) -> None:
        self._failed = frozenset()
        self._disaster = False
        self._epoch += 1

    def _get_bp_window_tag(self, arrival_time: float) -> str:
        """``pre``, ``fail`` or ``post``: where an arrival falls against this run's failure.

        :param arrival_time: The request's arrival time.
        """
        if not self.failure_history:
            return "pre"
        event = self.failure_history[0]
        if arrival_time < event["t_fail"]:
            return "pre"
        if arrival_time < event["t_repair"]:
            return "fail"
        return "post"

    def stats(self) -> dict[str, Any]:
        """Blocking probability overall, per window and per bit rate, and failure figures."""
        stats = self._stats.summary()
        stats["failure_history"] = self.failure_history
        return stats


_PADDING = {
    "path_hops": 0,
    "min_residual_slots": 0,
    "frag_indicator": 0.0,
    "failure_mask": 1,
    "dist_to_disaster_centroid": -1,
}
_PADDING_EXTENDED = _PADDING | {
    "length_km": 0.0,
    "path_slots_needed": 0,
    "spectral_efficiency": 0.0,
    "first_fit_start": -1,
    "first_fit_block": 0,
    "fitting_blocks": 0,
    "free_slots": 0,
    "mean_block_size": 0.0,
}
