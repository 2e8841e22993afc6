"""The engine's inline rules equal their one reference, and its literals the declaration.

The path scan (:mod:`fusion.sim.scan`) inlines the mask rule, the common free slots,
first-fit and the block figures on its hot path; these tests drive the engine's own code paths
(the eager state, the lazy mask, the first-feasible arrival, ``decide``) on random spectra and
compare every figure with :mod:`fusion.sim.spectrum`'s reference functions. They also check the
hot path's dict literals and padding rows against :mod:`fusion.config.features`, and that a
failure restores cut lightpaths where the run's spectrum rule puts them.
"""

from __future__ import annotations

import functools
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fusion.config.config import Config, load_config
from fusion.config.features import STATE_FEATURES, path_features
from fusion.sim.engine import FAILURE, SimulationEngine
from fusion.sim.scan import PathScan, fragmentation, mean_block_size
from fusion.sim.spectrum import (
    SpectrumState,
    block_at,
    block_count,
    common_free,
    first_fit,
    longest_run,
    path_feasible,
    place,
    runs_of,
)
from fusion.sim.writer import InMemoryWriter

SLOTS = 64  # small enough that random spectra hold both fitting and non-fitting paths
RULES = ("first_fit", "last_fit", "best_fit", "most_used")


def _config(features: str = "extended", log_spectrum: bool = False) -> Config:
    cfg = load_config().replace("general_settings", num_requests=400, k_paths=4)
    cfg = cfg.replace("topology_settings", c_band=SLOTS)
    return cfg.replace("dataset_logging", path_features=features, log_spectrum=log_spectrum)


@functools.cache
def _engine(features: str, log_spectrum: bool, eager: bool) -> SimulationEngine:
    return SimulationEngine(_config(features, log_spectrum), 3, eager_state=eager)


@st.composite
def spectra(draw: st.DrawFn, links: int = 22) -> tuple[list[int], frozenset[int], bool, int]:
    """Every link's free mask (random slots, with a random free block laid over some, and
    some links all free), the links down, whether a failure is active, and a request."""
    full = (1 << SLOTS) - 1
    free = []
    for _ in range(links):
        kind = draw(st.sampled_from(("random", "block", "full", "empty")))
        mask = draw(st.integers(0, full)) if kind in ("random", "block") else 0
        if kind == "block":
            start, length = draw(st.integers(0, SLOTS - 1)), draw(st.integers(1, SLOTS))
            mask |= (((1 << length) - 1) << start) & full
        free.append(full if kind == "full" else mask)
    failed = frozenset(draw(st.sets(st.integers(0, links - 1), max_size=3)))
    return free, failed, draw(st.booleans()) and bool(failed), draw(st.integers(0, 399))


def _set(engine: SimulationEngine, free: list[int], failed: frozenset[int], disaster: bool) -> None:
    engine.spectrum.free[:] = free
    engine.spectrum.free_count[:] = [mask.bit_count() for mask in free]
    engine._disaster = disaster
    engine._pairs.set_failed(failed)


def _reference_row(
    engine: SimulationEngine, index: int, need: int, rate: int, pair: Any, disaster: bool
) -> dict[str, Any]:
    """A path's row from the reference rules alone (key order is checked elsewhere)."""
    spectrum = engine.spectrum
    links = pair.links[index]
    common = common_free(spectrum.free, links, spectrum.full)
    total, longest = common.bit_count(), longest_run(common)
    start = first_fit(common, need) if need else -1
    return {
        "path_hops": len(links),
        "min_residual_slots": min(spectrum.free_count[link] for link in links),
        "frag_indicator": fragmentation(longest, total),
        "failure_mask": int(not engine._pairs.failed_links.isdisjoint(links)),
        "dist_to_disaster_centroid": pair.distance[index] if disaster else -1,
        "length_km": pair.lengths[index],
        "path_slots_needed": need,
        "spectral_efficiency": pair.efficiency[rate][index],
        "first_fit_start": start,
        "first_fit_block": block_at(common, start) if start >= 0 else 0,
        "fitting_blocks": block_count(runs_of(common, need)) if need else 0,
        "free_slots": total,
        "mean_block_size": mean_block_size(total, block_count(common)),
    }


def _reference(engine: SimulationEngine, request: int) -> tuple[list[int], list[bool], list[Any]]:
    """Per path: the common free slots, the mask (padded to K) and the row, by the reference."""
    _, _, src, dst, rate = engine._requests[request]
    pair = engine._pairs[src, dst]
    needs = pair.needs[rate]
    spectrum = engine.spectrum
    commons = [common_free(spectrum.free, links, spectrum.full) for links in pair.links]
    mask = [
        path_feasible(need, not engine._pairs.failed_links.isdisjoint(links), longest_run(common))
        for links, need, common in zip(pair.links, needs, commons, strict=True)
    ]
    rows = [
        _reference_row(engine, i, need, rate, pair, engine._disaster)
        for i, need in enumerate(needs)
    ]
    return commons, mask + [False] * (engine._k - len(mask)), rows


@pytest.mark.parametrize(("features", "log_spectrum"), [("seed", False), ("extended", True)])
@given(drawn=spectra())
@settings(max_examples=100, deadline=None)
def test_eager_scan_when_random_spectrum_equals_the_reference_rules(features, log_spectrum, drawn):
    free, failed, disaster, request = drawn
    engine = _engine(features, log_spectrum, True)
    _set(engine, free, failed, disaster)
    decision = engine.observe(request)
    commons, mask, rows = _reference(engine, request)
    assert decision.commons == commons
    assert decision.mask == mask
    declared = path_features(features)
    for row, links, reference in zip(decision.state["paths"], decision.links, rows, strict=False):
        assert list(row) == [*declared, *(["links"] if log_spectrum else [])]
        ruled = [name for name in declared if name in reference]  # (every figure with a rule)
        assert {name: row[name] for name in ruled} == {name: reference[name] for name in ruled}
        if log_spectrum:
            assert row["links"] == list(links)
    if log_spectrum:
        occupied = [int(text, 16) for text in decision.state["spectrum"]]
        assert occupied == [engine.spectrum.full ^ mask for mask in free]
    slots_needed = next((n for n in decision.needs if n), 0)
    assert decision.state["slots_needed"] == slots_needed
    assert decision.state["is_disaster"] == int(disaster)


@given(spectra())
@settings(max_examples=150, deadline=None)
def test_lazy_scan_when_random_spectrum_equals_the_reference_rules(drawn):
    free, failed, disaster, request = drawn
    engine = _engine("extended", False, False)
    _set(engine, free, failed, disaster)
    decision = engine.observe(request)
    commons, mask, rows = _reference(engine, request)
    assert decision.commons == commons and decision.mask == mask
    assert decision.runs is not None
    for common, need, starts, ok in zip(commons, decision.needs, decision.runs, mask, strict=False):
        assert (starts != 0) == ok
        assert starts == (runs_of(common, need) if ok else 0)
    for row, reference in zip(decision.state["paths"], rows, strict=False):  # state_of
        assert {name: row[name] for name in reference} == reference  # (observed commons)
    feasible = [i for i, ok in enumerate(mask) if ok]
    if feasible:  # decide's first-fit start comes from the starts the scan kept
        action = feasible[-1]
        engine.decide(decision, action)
        links, start, need = engine._lightpaths[request][:3]
        assert (links, need) == (decision.links[action], decision.needs[action])
        assert start == first_fit(commons[action], need)


@pytest.mark.parametrize("rule", RULES)
@given(drawn=spectra())
@settings(max_examples=60, deadline=None)
def test_first_feasible_scan_when_random_spectrum_takes_the_reference_first_path(rule, drawn):
    free, failed, disaster, request = drawn
    engine = _engine("extended", False, False)
    _set(engine, free, failed, disaster)
    usage = [sum(1 for mask in free if not mask >> s & 1) for s in range(SLOTS)]
    spectrum = SpectrumState(len(free), SLOTS, track_usage=True)
    spectrum.free[:], spectrum.usage = list(free), usage
    scan = PathScan(spectrum, k=4, extended=True, log_spectrum=False, mean_holding=None, rule=rule)
    _, _, src, dst, rate = engine._requests[request]
    pair = engine._pairs[src, dst]
    commons, mask, _ = _reference(engine, request)
    expected = next(
        (
            (i, place(rule, commons[i], pair.needs[rate][i], usage))
            for i, ok in enumerate(mask)
            if ok
        ),
        (-1, -1),
    )
    assert scan.first_fitting(pair, pair.needs[rate]) == expected


@pytest.mark.parametrize("features", ["seed", "extended"])
@pytest.mark.parametrize("log_spectrum", [False, True])
def test_state_literals_when_logged_spell_the_declared_keys_in_order(features, log_spectrum):
    declared = [*path_features(features), *(["links"] if log_spectrum else [])]
    cfg = _config(features, log_spectrum).replace("topology_settings", network="toy")
    cfg = cfg.replace("failure_settings", failure_type="none")
    cfg = cfg.replace("general_settings", k_paths=6)  # toy's pairs have fewer: padded rows
    writer = InMemoryWriter(seed=1)
    engine = SimulationEngine(cfg, 1, writer=writer)
    engine.run()
    assert list(engine._scan.padding) == declared
    padded = rows = 0
    for record in writer.records:
        state = record["state"]
        assert list(state) == [*STATE_FEATURES, "paths", *(["spectrum"] if log_spectrum else [])]
        for row in state["paths"]:
            assert list(row) == declared
            padded += row == engine._scan.padding  # (path_hops 0: no real path)
            rows += 1
    assert 0 < padded < rows


def _replay_restoration(engine: SimulationEngine, before: dict[int, Any], free: list[int]):
    """The reference: every cut lightpath, in request order, released then placed by the
    run's rule on its pair's first live candidate that fits."""
    spectrum = SpectrumState(len(free), engine.spectrum.slots, track_usage=True)
    for links, start, need, *_ in before.values():
        spectrum.allocate(links, start, need)
    assert spectrum.free == free
    after, moved_elsewhere_by_first_fit = dict(before), 0
    for request in sorted(before):
        links, start, need, src, dst, rate = before[request]
        if engine._pairs.failed_links.isdisjoint(links):
            continue
        spectrum.release(links, start, need)
        del after[request]
        pair = engine._pairs[src, dst]
        for candidate, slots, down in zip(pair.links, pair.needs[rate], pair.failed, strict=True):
            common = spectrum.common_free(candidate)
            begin = -1 if down or not slots else place(engine._rule, common, slots, spectrum.usage)
            if begin >= 0:
                moved_elsewhere_by_first_fit += begin != first_fit(common, slots)
                spectrum.allocate(candidate, begin, slots)
                after[request] = (candidate, begin, slots, src, dst, rate)
                break
    return after, spectrum.free, moved_elsewhere_by_first_fit


@pytest.mark.parametrize(("policy", "rule"), [("ksp_bf", "best_fit"), ("ksp_lf", "last_fit")])
def test_restoration_when_rule_is_not_first_fit_places_by_that_rule(policy, rule):
    cfg = load_config().replace("general_settings", num_requests=3000, erlang=400.0)
    engine = SimulationEngine(cfg.replace("policy_settings", policy=policy), 5)
    assert engine._rule == rule
    while engine._queue[0][3] != FAILURE:
        engine.step()
    before, free = dict(engine._lightpaths), list(engine.spectrum.free)
    engine.step()  # the failure: cut lightpaths restored or dropped
    after, free_after, differ = _replay_restoration(engine, before, free)
    (event,) = engine.failure_history
    assert event["restored"] > 0
    assert engine._lightpaths == after and engine.spectrum.free == free_after
    assert differ > 0  # first-fit would have put some elsewhere: the rule was applied
