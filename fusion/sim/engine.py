"""The discrete-event EON simulator that makes the decisions a dataset logs.

Events sit in one heap as ``(time, priority, sequence, kind, payload)``: equal times pop by
priority (departure, repair, failure, arrival), then by the order they were scheduled, so a
run is a pure function of its config and seed. :meth:`SimulationEngine.run` is a loop over
:meth:`SimulationEngine.step`. An arrival is two halves, :meth:`SimulationEngine.observe` (the
state and mask) and :meth:`SimulationEngine.decide` (allocate, count, log); the loop puts the
behaviour policy between them, and :meth:`SimulationEngine.next_decision` hands the choice to
a caller instead (the Gymnasium environment, :mod:`fusion.env`).

At each arrival the engine builds the seed card's state from the live spectrum, the mask of
paths that can really carry the request (the path scan, :mod:`fusion.sim.scan`, over the
pair's candidates, :mod:`fusion.sim.pairs`), lets the policy choose (with epsilon-mix when
logging), allocates with the policy's spectrum rule (first-fit unless the policy or
``[policy_settings] spectrum`` says otherwise; a policy that places the request itself,
:attr:`~fusion.sim.policy.PathPolicy.chooses_start`, is asked where), and hands the transition
to the writer. Its ``meta`` says what produced the action: ``behaviour`` (``<policy>/<spectrum
rule>``, or ``<policy>/chosen`` for a policy that places itself, built once per run),
``explored`` and ``propensity`` (as the behaviour policy reports them:
:attr:`~fusion.sim.policy.PathPolicy.propensity`) and ``start_slot``, for every policy. A
failure's cut lightpaths are restored with the same rule, first-fit for a policy that places
itself (:mod:`fusion.sim.restoration`). ``slots_needed`` is the
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
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from fusion.config.config import Config, check_seed
from fusion.errors import ConfigError
from fusion.sim.failures import FailurePlan, plan_failure
from fusion.sim.pairs import Pair, Pairs
from fusion.sim.policies import EpsilonMixPolicy, PathPolicy, make_policy
from fusion.sim.restoration import Lightpath, restore
from fusion.sim.scan import PathScan, Request
from fusion.sim.scenario import Scenario, build_scenario
from fusion.sim.spectrum import SpectrumState, first_fit, lowest_slot, place
from fusion.sim.stats import RunStats
from fusion.sim.topology import Topology
from fusion.sim.traffic import Traffic, generate_traffic
from fusion.sim.writer import TransitionWriter

DEPARTURE, REPAIR, FAILURE, ARRIVAL = 0, 1, 2, 3


@dataclass(frozen=True)
class _Draws:
    """Pre-drawn uniforms served one ``random()`` call at a time."""

    random: Callable[[], float]


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
    pair: Pair
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


def _traffic(config: Config, scenario: Scenario, seed: np.random.SeedSequence) -> Traffic:
    """The seed's requests, warm-up first."""
    g, rates = config.general, scenario.rates
    return generate_traffic(
        np.random.default_rng(seed),
        g.warmup_requests + g.num_requests,
        num_nodes=scenario.topology.num_nodes,
        erlang=g.erlang,
        holding_time=g.holding_time,
        bit_rates=rates.values,
        mix=rates.mix,
        uniform_rates=rates.uniform,
        truncation=g.holding_time_truncation,
        pairs=scenario.pairs,
    )


def _rows(traffic: Traffic) -> list[Request]:
    """One ``(arrival, holding, src, dst, bit_rate)`` row of Python numbers per request."""
    return list(
        zip(
            traffic.arrival.tolist(),
            traffic.holding.tolist(),
            traffic.src.tolist(),
            traffic.dst.tolist(),
            traffic.bit_rate.tolist(),
            strict=True,
        )
    )


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
        self.policy = policy or make_policy(config.policy.policy, np.random.default_rng(policy_seq))
        self.policy.check_config(config)
        g = config.general
        self._warmup, self._k = g.warmup_requests, g.k_paths
        self.traffic = _traffic(config, scenario, traffic_seq)
        self.failure = self._plan_failure()
        self.failure_history: list[dict[str, Any]] = []
        self._rule = self.policy.spectrum or config.policy.spectrum
        # a policy that places the request itself is asked where; first-fit then only restores
        # a failure's lightpaths (the branch costs a first-fit run one test per decision)
        self._chooses_start = self.policy.chooses_start
        if self._chooses_start:
            self._rule = "first_fit"
        self.spectrum = SpectrumState(
            self.topology.num_links, config.topology.c_band, track_usage=self._rule == "most_used"
        )
        # meta.behaviour: the base policy (never its epsilon-mix) and the rule it allocates with
        self._behaviour_name = (
            f"{self.policy.name}/{'chosen' if self._chooses_start else self._rule}"
        )
        self.writer = writer
        self._eager_state = (
            (writer is not None or self.policy.reads_state) if eager_state is None else eager_state
        )
        self._clock = clock
        self._lengths = self.topology.lengths
        self._behaviour = self._behaviour_policy(epsilon, epsilon_seq)
        # KSP-FF's family with nothing logged: an arrival stops at the first path that fits
        self._first_only = (
            self.policy.first_feasible
            and self._behaviour is self.policy
            and not self._eager_state
            and not self._chooses_start
        )
        self._arrive = self._arrive_first_feasible if self._first_only else self.handle_arrival
        self._disaster = False
        self._pairs = Pairs(
            self.topology,
            self._modulation,
            k=self._k,
            order=g.path_order,
            guard=config.topology.guard_slots,
            failure=self.failure,
        )
        what = config.dataset  # what a state holds
        self._scan = PathScan(
            self.spectrum,
            k=self._k,
            extended=what.path_features == "extended",
            log_spectrum=what.log_spectrum,
            mean_holding=None if what.holding_time_known else g.holding_time,
            rule=self._rule,
        )
        self._lightpaths: dict[int, Lightpath] = {}
        self._queue: list[tuple[float, int, int, int, int]] = []
        self._sequence = 0
        self._requests = _rows(self.traffic)
        self.now = 0.0
        self._stats = RunStats(g.num_requests)
        self._schedule_start()

    def _plan_failure(self) -> FailurePlan | None:
        """The run's failure; its arrival indices count the measured requests, after warm-up."""
        try:
            return plan_failure(
                self.config.failure, self.topology, self.traffic.arrival[self._warmup :]
            )
        except ConfigError as exc:
            raise ConfigError(f"{self.config.source}: {exc}") from None

    def _behaviour_policy(
        self, epsilon: float | None, seed: np.random.SeedSequence
    ) -> PathPolicy | EpsilonMixPolicy:
        """The policy with its epsilon-mix (itself without one). Epsilon-mix's uniforms are
        drawn at once: the same stream as one ``random()`` per decision with two or more
        feasible paths, without a numpy call per decision."""
        if epsilon is None:
            epsilon = self.config.dataset.epsilon_mix if self.writer is not None else 0.0
        self._epsilon = epsilon
        if epsilon <= 0.0:
            return self.policy
        draws = np.random.default_rng(seed).random(len(self.traffic.arrival)).tolist()
        return EpsilonMixPolicy(self.policy, epsilon, _Draws(iter(draws).__next__))

    def _schedule_start(self) -> None:
        """The first arrival, and the failure and its repair."""
        if self._requests:
            self._schedule(self._requests[0][0], ARRIVAL, 0)
        if self.failure is not None:
            self._schedule(self.failure.t_fail, FAILURE, 0)
            if self.failure.t_repair != float("inf"):
                self._schedule(self.failure.t_repair, REPAIR, 0)

    # -- the event loop -------------------------------------------------------------------------
    def _schedule(self, when: float, kind: int, payload: int) -> None:
        self._sequence += 1
        heapq.heappush(self._queue, (when, kind, self._sequence, kind, payload))

    def step(self) -> bool:
        """Process the next event; ``False`` when none is left."""
        if not self._queue:
            return False
        when, _, _, kind, payload = heapq.heappop(self._queue)
        self.now = when
        if kind == ARRIVAL:
            self._arrive(payload)
        elif kind == DEPARTURE:  # the lightpath's slots freed, unless a failure dropped it
            lightpath = self._lightpaths.pop(payload, None)
            if lightpath is not None:
                self.spectrum.release(lightpath[0], lightpath[1], lightpath[2])
        elif kind == FAILURE:
            self._fail()
        else:
            self._repair()
        return True

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
        queue = self._queue
        while queue:
            _, _, _, kind, payload = queue[0]
            if kind == ARRIVAL and payload >= self._warmup:
                self.now = heapq.heappop(queue)[0]
                return self.observe(payload)
            self.step()  # a warm-up arrival (the behaviour policy decides), or another event
        return None

    # -- arrivals and departures ----------------------------------------------------------------
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
        row = self._requests[request]
        pair = self._pairs[row[2], row[3]]
        needs = pair.needs[row[4]]
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
            decision.built = self._scan.state(
                row, pair, needs, decision.disaster, decision.commons, decision.mask
            )
        else:
            decision.runs = self._scan.fits(pair, needs, decision.commons, decision.mask)
        return decision

    def _arrive_first_feasible(self, request: int) -> None:
        """An arrival under a first-feasible policy with nothing logged: the candidates are
        tried in order and the first that can carry the request (:meth:`observe`'s rule) is
        taken; the paths after it are never looked at."""
        _, _, src, dst, rate = self._requests[request]
        pair = self._pairs[src, dst]
        needs = pair.needs[rate]
        action, start = self._scan.first_fitting(pair, needs)
        self._carry_out(request, pair, action, start, needs[action] if action >= 0 else 0)

    def state_of(self, decision: Decision) -> dict[str, Any]:
        """The seed card's state of a decision, from the spectrum as observed (read it before
        the decision is carried out: :meth:`decide` does, when it logs).

        :param decision: From :meth:`observe`.
        """
        return self._scan.state(
            self._requests[decision.request],
            decision.pair,
            decision.needs,
            decision.disaster,
            decision.commons,
        )

    def decide(self, decision: Decision, action: int) -> bool:
        """Carry out ``action`` for a decision from :meth:`observe`: allocate, count, log.

        :param decision: The request's decision, from :meth:`observe` or :meth:`next_decision`.
        :param action: A feasible path index, or -1 to block (an infeasible index blocks too).
        :return: Whether the request was routed.

        A logged transition's ``behaviour``, ``explored`` and ``propensity`` are the engine's
        behaviour policy's, as its last selection set them: a caller that chooses for itself
        (:meth:`next_decision`, as the environment does) runs without a writer.
        """
        request, mask = decision.request, decision.mask
        # what is logged is the spectrum as observed: built before allocating changes it (a
        # warm-up request is never logged)
        logged = self.writer is not None and request >= self._warmup
        state = decision.state if logged else None
        if action >= 0 and not (action < len(mask) and mask[action]):
            action = -1
        start = need = -1
        if action >= 0:
            need, runs = decision.needs[action], decision.runs
            if self._rule != "first_fit":
                start = place(self._rule, decision.commons[action], need, self.spectrum.usage)
            elif self._chooses_start:
                start = self.policy.start_slot(decision, action)
            elif runs is None:
                start = first_fit(decision.commons[action], need)
            else:  # the starts observe found: the lowest is first-fit's
                start = lowest_slot(runs[action])
        tag = self._carry_out(request, decision.pair, action, start, need)
        if tag is None or state is None:  # warm-up, or nothing logged: no meta to build
            return action >= 0
        assert self.writer is not None  # (a state is built only when logged)
        meta = self._meta(decision, action, start, tag)
        self.writer.log_transition(state, action, 1.0 if action >= 0 else -1.0, None, mask, meta)
        return action >= 0

    def _meta(self, decision: Decision, action: int, start: int, tag: str) -> dict[str, Any]:
        """A logged decision's ``meta`` (the declaration's order, :data:`~fusion.config.features.META_FIELDS`)."""
        decision_ms = (self._clock() - decision.started) * 1000.0
        arrival, _, _, _, rate = self._requests[decision.request]
        backup = False
        if action >= 0:
            row = decision.pair.disjoint[action]
            for j, ok in enumerate(decision.mask):
                if ok and row[j] and j != action:
                    backup = True
                    break
        disaster = decision.disaster
        behaviour = self._behaviour
        return {
            "decision_time_ms": decision_ms,
            "restoration_latency_ms": self.config.failure.restoration_latency_ms
            if disaster
            else 0.0,
            "bp_window_tag": tag,
            "backup_available": backup,
            "was_groomed": False,
            "request_id": decision.request - self._warmup,
            "arrival_time": arrival,
            "bit_rate": rate,
            "start_slot": start,
            "behaviour": self._behaviour_name,
            "explored": behaviour.explored,
            "propensity": behaviour.propensity,
        }

    def _carry_out(
        self, request: int, pair: Pair, action: int, start: int, need: int
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

    # -- failures --------------------------------------------------------------------------------
    def _fail(self) -> None:
        """The failure hits: its links go down, the lightpaths it cuts are restored with the
        run's spectrum rule or dropped (:func:`~fusion.sim.restoration.restore`)."""
        assert self.failure is not None
        plan = self.failure
        self._disaster = True
        self._pairs.set_failed(plan.links)
        restored, dropped = restore(
            self.spectrum, self._lightpaths, plan.links, self._pairs.__getitem__, self._rule
        )
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
        self._disaster = False
        self._pairs.set_failed(frozenset())

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
