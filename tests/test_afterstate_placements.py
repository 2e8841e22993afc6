"""A policy that places the request itself (``chooses_start``), and the afterstate policy that
weighs its placements among spectrum rules (``placements``)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from fusion.config.config import load_config
from fusion.rl.afterstate import PLACEMENTS, AfterstateModel, AfterstatePolicy, train_afterstate
from fusion.run.simulation import run_simulation
from fusion.sim.engine import SimulationEngine
from fusion.sim.heuristics.first_feasible import KSPFFPolicy
from fusion.sim.policies import make_policy
from fusion.sim.spectrum import last_fit, place
from fusion.sim.writer import InMemoryWriter


def _config(requests: int = 1500):
    return load_config().replace("general_settings", num_requests=requests, erlang=600)


def _logged(policy, config=None) -> list[dict]:
    writer = InMemoryWriter(seed=9)
    SimulationEngine(config or _config(), 9, policy=policy, writer=writer).run()
    return writer.records


class _LastFitByHand(KSPFFPolicy):
    """KSP-FF's path, placed last-fit by :meth:`start_slot` rather than by a rule."""

    name = "last_fit_by_hand"
    chooses_start = True
    first_feasible = False

    def start_slot(self, decision, path):
        return last_fit(decision.commons[path], decision.needs[path])


def test_engine_when_the_policy_chooses_the_start_places_there_and_logs_it():
    # (no failure: its restoration places by a rule, last-fit for one and first-fit for the
    # other, which the comparison is not about)
    config = _config().replace("failure_settings", failure_type="none")
    chosen = _logged(_LastFitByHand(), config)
    by_rule = _logged(make_policy("ksp_lf"), config)
    assert [(r["action"], r["meta"]["start_slot"]) for r in chosen] == [
        (r["action"], r["meta"]["start_slot"]) for r in by_rule
    ]
    assert {r["meta"]["behaviour"] for r in chosen} == {"last_fit_by_hand/chosen"}


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> AfterstateModel:
    out = tmp_path_factory.mktemp("placements") / "ds"
    cfg = _config().replace("dataset_logging", log_spectrum="true", epsilon_mix=0.3)
    for seed in (1, 2):
        run_simulation(cfg, seed, dataset_dir=str(out))
    return train_afterstate(out, support_policy="ksp_ff", support=2, placements=PLACEMENTS)


def test_afterstate_policy_when_given_placements_puts_each_request_at_the_best_rules_start(model):
    seen: list[tuple[int, set[int]]] = []

    class Watch(AfterstatePolicy):
        def start_slot(self, decision, path):
            start = super().start_slot(decision, path)
            need, common = decision.needs[path], decision.commons[path]
            starts = {place(rule, common, need) for rule in PLACEMENTS}
            assert start in starts and (common >> start) & ((1 << need) - 1) == (1 << need) - 1
            seen.append((start, starts))
            return start

    records = _logged(Watch(model))
    assert seen and len(seen) == sum(r["action"] >= 0 for r in records)
    # it does choose: some requests go where first-fit would not put them
    firsts = [r for r in records if r["action"] >= 0]
    assert any(start != min(starts) for start, starts in seen)
    assert [r["meta"]["start_slot"] for r in firsts] == [start for start, _ in seen]


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
