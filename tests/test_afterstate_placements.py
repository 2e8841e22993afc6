"""A policy that places the request itself (``chooses_start``), and the afterstate policy that
weighs its placements among spectrum rules (``placements``)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from fusion.config.config import load_config
from fusion.rl.afterstate import (
    PLACEMENTS,
    AfterstateModel,
    AfterstatePolicy,
    basis,
    link_figures,
    train_afterstate,
)
from fusion.run.simulation import run_simulation
from fusion.sim.engine import SimulationEngine
from fusion.sim.heuristics.first_feasible import KSPFFPolicy
from fusion.sim.policies import EpsilonMixPolicy, make_policy
from fusion.sim.spectrum import best_fit, place
from fusion.sim.writer import InMemoryWriter


def _config(requests: int = 1500):
    return load_config().replace("general_settings", num_requests=requests, erlang=600)


def _logged(policy, config=None) -> list[dict]:
    writer = InMemoryWriter(seed=9)
    SimulationEngine(config or _config(), 9, policy=policy, writer=writer).run()
    return writer.records


class _BestFitByHand(KSPFFPolicy):
    """KSP-FF's path (a first-feasible policy), placed best-fit by :meth:`start_slot` rather
    than by a rule (not last-fit: a whole run last-fit mirrors first-fit and blocks alike)."""

    name = "best_fit_by_hand"
    chooses_start = True

    def start_slot(self, decision, path):
        return best_fit(decision.commons[path], decision.needs[path])[0]


def test_engine_when_the_policy_chooses_the_start_places_there_and_logs_it():
    # (no failure: its restoration places by a rule, best-fit for one and first-fit for the
    # other, which the comparison is not about)
    config = _config().replace("failure_settings", failure_type="none")
    chosen = _logged(_BestFitByHand(), config)
    by_rule = _logged(make_policy("ksp_bf"), config)
    assert [(r["action"], r["meta"]["start_slot"]) for r in chosen] == [
        (r["action"], r["meta"]["start_slot"]) for r in by_rule
    ]
    assert {r["meta"]["behaviour"] for r in chosen} == {"best_fit_by_hand/chosen"}
    # a mix wrapped by hand (the engine wraps its own) places as its base does
    mixed = _logged(EpsilonMixPolicy(_BestFitByHand(), 0.0), config)
    assert [r["meta"]["start_slot"] for r in mixed] == [r["meta"]["start_slot"] for r in chosen]
    # with nothing logged too (a first-feasible policy's fast path must still ask it)
    unlogged = SimulationEngine(config, 9, policy=_BestFitByHand()).run()
    assert unlogged == SimulationEngine(config, 9, policy=make_policy("ksp_bf")).run()


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> AfterstateModel:
    out = tmp_path_factory.mktemp("placements") / "ds"
    cfg = _config().replace("dataset_logging", log_spectrum="true", epsilon_mix=0.3)
    for seed in (1, 2):
        run_simulation(cfg, seed, dataset_dir=str(out))
    return train_afterstate(out, support_policy="ksp_ff", support=2, placements=PLACEMENTS)


def _gain(model: AfterstateModel, decision, path: int, start: int) -> float:
    """The value the afterstate of ``path`` at ``start`` adds, from the model's weights."""
    links = list(decision.links[path])
    taken = ((1 << decision.needs[path]) - 1) << start
    free = decision.spectrum.free
    before = basis(np.array([link_figures(free[link], model.slots) for link in links]))
    after = basis(np.array([link_figures(free[link] & ~taken, model.slots) for link in links]))
    return float(((after - before) * model.weights[links]).sum())


def test_afterstate_policy_when_given_placements_puts_each_request_at_the_best_rules_start(model):
    seen: list[tuple[int, set[int]]] = []

    class Watch(AfterstatePolicy):
        def start_slot(self, decision, path):
            start = super().start_slot(decision, path)
            need, common = decision.needs[path], decision.commons[path]
            starts = {place(rule, common, need) for rule in PLACEMENTS}
            assert start in starts and (common >> start) & ((1 << need) - 1) == (1 << need) - 1
            gains = {s: _gain(model, decision, path, s) for s in starts}
            assert gains[start] == pytest.approx(max(gains.values()))
            seen.append((start, starts))
            return start

    records = _logged(Watch(model))
    assert seen and len(seen) == sum(r["action"] >= 0 for r in records)
    # it does choose: some requests go where first-fit would not put them
    firsts = [r for r in records if r["action"] >= 0]
    assert any(start != min(starts) for start, starts in seen)
    assert [r["meta"]["start_slot"] for r in firsts] == [start for start, _ in seen]


def test_afterstate_policy_when_the_caller_chose_the_path_values_that_decisions_starts(model):
    policy = AfterstatePolicy(model)
    config = _config(600).replace("general_settings", warmup_requests=300)
    engine = SimulationEngine(config, 9, policy=policy)  # warm-up: the policy ranks and places
    decided = 0
    while (decision := engine.next_decision()) is not None:
        feasible = [i for i, ok in enumerate(decision.mask) if ok]
        if feasible:  # the caller's own choice, never ranked by the policy
            path = feasible[-1]
            start = policy.start_slot(decision, path)
            need, common = decision.needs[path], decision.commons[path]
            gains = {
                s: _gain(model, decision, path, s)
                for s in {place(r, common, need) for r in PLACEMENTS}
            }
            assert start in gains and gains[start] == pytest.approx(max(gains.values()))
            engine.decide(decision, path)  # allocates at the policy's start: it is free
            decided += 1
        else:
            engine.decide(decision, -1)
    assert decided > 100


def test_afterstate_model_when_saved_with_placements_loads_them_and_refuses_an_unknown_rule(
    model, tmp_path: Path
):
    model.save(tmp_path / "m.npz")
    assert AfterstateModel.load(tmp_path / "m.npz").placements == PLACEMENTS
    with np.load(tmp_path / "m.npz") as npz:
        arrays = {name: npz[name] for name in npz.files}
    arrays["placements"] = np.array(["first_fit", "most_used"])
    np.savez(tmp_path / "odd.npz", **arrays)
    with pytest.raises(ValueError, match=r"odd\.npz: placements .*most_used"):
        AfterstateModel.load(tmp_path / "odd.npz")
    plain = replace(model, placements=())
    assert not AfterstatePolicy(plain).chooses_start and AfterstatePolicy(model).chooses_start


def test_train_afterstate_when_placements_are_bad_refuses_naming_them(tmp_path: Path):
    for bad in (("most_used",), ("first_fit", "first_fit"), ("nope",)):
        with pytest.raises(ValueError, match="placements must be distinct rules of"):
            train_afterstate(tmp_path, placements=bad)
