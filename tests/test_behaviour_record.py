"""Every transition says what produced its action (issue #32, item 4): ``meta.behaviour``,
``meta.explored``, ``meta.propensity`` and ``meta.start_slot`` on real runs, the record edition a
dataset's manifest holds (and the resume it refuses), and the readers and exports that carry
the fields."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow.parquet as pq
import pytest

from fusion.cli import main
from fusion.config.config import Config, load_config
from fusion.config.features import EDITIONS, META_FIELDS, RECORD_EDITION, START_SLOT
from fusion.config.grid import parse_grid
from fusion.config.heuristics import HEURISTICS
from fusion.datasets.arrays import to_arrays
from fusion.errors import DatasetError, ManifestConflictError
from fusion.interop.export import export_dataset
from fusion.run.simulation import run_one_seed
from fusion.run.study import run_study
from fusion.run.sweep import run_sweep
from fusion.sim.engine import SimulationEngine
from fusion.sim.policies import EpsilonMixPolicy, KSPFFPolicy, RandomFeasiblePolicy
from fusion.sim.policy import PathPolicy
from fusion.sim.writer import InMemoryWriter
from fusion.storage import manifest as mf
from fusion.storage.loader import load_dataset

BEHAVIOUR_META = ("behaviour", "explored", "propensity")


def _config(n: int, *, policy: str = "ksp_ff", epsilon: float = 0.0, **policy_keys: str) -> Config:
    cfg = load_config().replace("general_settings", num_requests=n, erlang=500)
    cfg = cfg.replace("policy_settings", policy=policy, **policy_keys)
    return cfg.replace("dataset_logging", epsilon_mix=epsilon)


def _run(cfg: Config, seed: int = 3) -> list[dict[str, Any]]:
    writer = InMemoryWriter(seed=seed)
    SimulationEngine(cfg, seed, writer=writer).run()
    return writer.records


def _feasible(record: dict[str, Any]) -> list[int]:
    return [i for i, ok in enumerate(record["action_mask"]) if ok]


# -- the fields on real runs ---------------------------------------------------------------------


def test_meta_when_written_by_the_engine_holds_the_declared_fields_in_order():
    records = _run(_config(200, epsilon=0.2))
    assert META_FIELDS[-4:] == ("start_slot", *BEHAVIOUR_META)
    assert all(tuple(r["meta"]) == META_FIELDS for r in records)
    assert list(EDITIONS)[-1] == RECORD_EDITION


def test_ksp_ff_when_logged_without_epsilon_is_greedy_with_propensity_one():
    records = _run(_config(1500))
    assert {r["meta"]["behaviour"] for r in records} == {"ksp_ff/first_fit"}
    assert not any(r["meta"]["explored"] for r in records)
    assert {r["meta"]["propensity"] for r in records} == {1.0}
    for r in records:  # the first feasible path, or a block
        assert r["action"] == (_feasible(r) or [-1])[0]


def test_ksp_ff_when_logged_with_epsilon_explores_a_fifth_of_the_choices_it_has():
    records = _run(_config(4000, epsilon=0.2))
    assert {r["meta"]["behaviour"] for r in records} == {"ksp_ff/first_fit"}  # not +epsilon
    choices = [r for r in records if len(_feasible(r)) >= 2]
    explored = [r for r in choices if r["meta"]["explored"]]
    assert len(choices) > 2000 and abs(len(explored) / len(choices) - 0.2) < 0.03
    for r in choices:
        first, second = _feasible(r)[:2]
        if r["meta"]["explored"]:  # the second choice, with epsilon's probability
            assert (r["action"], r["meta"]["propensity"]) == (second, 0.2)
        else:
            assert (r["action"], r["meta"]["propensity"]) == (first, 0.8)
    for r in records:
        if len(_feasible(r)) < 2:  # nothing to mix: no draw, certain
            assert (r["meta"]["explored"], r["meta"]["propensity"]) == (False, 1.0)
    assert any(len(_feasible(r)) < 2 for r in records)


@pytest.mark.parametrize("epsilon", [0.0, 0.2])
def test_random_feasible_when_logged_gives_each_feasible_path_one_in_n(epsilon):
    records = _run(_config(1500, policy="random_feasible", epsilon=epsilon))
    assert {r["meta"]["behaviour"] for r in records} == {"random_feasible/first_fit"}
    routed = [r for r in records if r["action"] >= 0]
    assert routed and any(len(_feasible(r)) > 2 for r in routed)
    for r in routed:
        assert r["meta"]["propensity"] == 1 / sum(r["action_mask"])
    for r in records:
        if r["action"] < 0:
            assert r["meta"]["propensity"] == 1.0 and not r["meta"]["explored"]
    explored = {r["meta"]["explored"] for r in routed}
    assert explored == ({False} if epsilon == 0.0 else {False, True})


@pytest.mark.parametrize(
    ("policy", "keys", "expected"),
    [
        ("lf_ksp", {}, "lf_ksp/last_fit"),
        ("bf_ksp", {}, "bf_ksp/best_fit"),
        ("shortest_feasible", {"spectrum": "most_used"}, "shortest_feasible/most_used"),
    ],
)
def test_behaviour_when_the_rule_is_the_heuristics_own_or_the_configs_names_it(
    policy, keys, expected
):
    records = _run(_config(300, policy=policy, epsilon=0.2, **keys))
    assert {r["meta"]["behaviour"] for r in records} == {expected}
    assert {r["meta"]["propensity"] for r in records} == {1.0, 0.8, 0.2}  # the mix fired


def _allocated(engine: SimulationEngine) -> dict[int, int]:
    """Request -> the start slot the engine allocated it at (-1: blocked), as it carries it out."""
    starts: dict[int, int] = {}
    carry_out = engine._carry_out

    def spy(request: int, pair: Any, action: int, start: int, need: int) -> str | None:
        starts[request] = start if action >= 0 else -1
        return carry_out(request, pair, action, start, need)

    engine._carry_out = spy  # type: ignore[method-assign]
    return starts


@pytest.mark.parametrize("line", HEURISTICS, ids=lambda line: line.name)
def test_start_slot_when_any_policy_logs_is_on_every_line_and_the_slot_allocated(line):
    cfg = _config(400, policy=line.name, epsilon=0.1)
    cfg = cfg.replace("general_settings", warmup_requests=50)
    writer = InMemoryWriter(seed=2)
    engine = SimulationEngine(cfg, 2, writer=writer)
    starts = _allocated(engine)
    engine.run()
    assert len(writer.records) == 400
    for r in writer.records:
        logged = r["meta"]["start_slot"]
        assert logged == starts[r["meta"]["request_id"] + 50]
        assert (logged == -1) == (r["action"] == -1)
    assert any(r["meta"]["start_slot"] > 0 for r in writer.records)


class _Greedy(PathPolicy):
    """A learned policy's shape: deterministic, no spectrum rule of its own."""

    name = "greedy_toy"

    def rank(self, state, action_mask):  # type: ignore[no-untyped-def]
        return [i for i, ok in reversed(list(enumerate(action_mask))) if ok]


def test_a_policy_that_draws_nothing_when_mixed_reports_epsilons_split_by_default():
    cfg = _config(600, policy="shortest_feasible", spectrum="last_fit")  # (what it replaces)
    writer = InMemoryWriter(seed=1)
    SimulationEngine(cfg, 1, writer=writer, policy=_Greedy(), epsilon=0.3).run()
    metas = [r["meta"] for r in writer.records]
    assert {m["behaviour"] for m in metas} == {"greedy_toy/last_fit"}
    assert {(m["explored"], m["propensity"]) for m in metas} == {
        (False, 1.0),
        (False, 0.7),
        (True, 0.3),
    }


def test_epsilon_mix_when_its_base_draws_a_uniform_order_keeps_one_in_n():
    mix = EpsilonMixPolicy(RandomFeasiblePolicy(np.random.default_rng(0)), 1.0)
    assert mix.select_path({}, [True, False, True, True]) >= 0
    assert (mix.explored, mix.propensity) == (True, 1 / 3)
    assert mix.select_path({}, [False, False]) == -1
    assert (mix.explored, mix.propensity) == (False, 1.0)
    assert (KSPFFPolicy.propensity, KSPFFPolicy.explored) == (1.0, False)


def test_a_run_when_repeated_logs_the_same_records_but_the_clock():
    def strip(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for r in records:
            del r["meta"]["decision_time_ms"]
        return records

    cfg = _config(800, policy="random_feasible", epsilon=0.2)
    assert strip(_run(cfg)) == strip(_run(cfg))


# -- the record edition in the manifest ----------------------------------------------------------


def _small() -> Config:
    return load_config().replace("general_settings", num_requests=150)


@pytest.fixture(scope="module")
def swept(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A sweep of seeds 0 and 1, made once (copied by the tests that change it)."""
    out = tmp_path_factory.mktemp("swept") / "d"
    assert run_sweep(_small(), seeds=[0, 1], workers=1, out=out, quiet=True).ok
    return out


def _copy(swept: Path, tmp_path: Path) -> Path:
    out = tmp_path / "d"
    shutil.copytree(swept, out)
    return out


def _edit_manifest(directory: Path, change: Callable[[dict[str, Any]], None]) -> None:
    file = directory / mf.MANIFEST_NAME
    manifest = orjson.loads(file.read_bytes())
    change(manifest)
    file.write_bytes(orjson.dumps(manifest))


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


def test_manifest_when_a_sweep_writes_it_records_the_edition_and_so_do_the_sidecars(swept):
    assert mf.read_manifest(swept)[mf.RECORD_EDITION_FIELD] == RECORD_EDITION
    for sidecar in swept.glob("*.shard.json"):
        assert orjson.loads(sidecar.read_bytes())[mf.RECORD_EDITION_FIELD] == RECORD_EDITION


def test_manifest_when_rebuilt_from_the_sidecars_keeps_the_edition(swept, tmp_path):
    out = _copy(swept, tmp_path)
    (out / mf.MANIFEST_NAME).unlink()
    assert mf.rebuild_manifest(out)[mf.RECORD_EDITION_FIELD] == RECORD_EDITION


def test_manifest_when_rebuilt_from_sidecars_of_two_editions_is_refused(swept, tmp_path):
    out = _copy(swept, tmp_path)
    (out / mf.MANIFEST_NAME).unlink()
    sidecar = sorted(out.glob("*.shard.json"))[0]
    record = orjson.loads(sidecar.read_bytes())
    del record[mf.RECORD_EDITION_FIELD]  # a shard written before editions were recorded
    sidecar.write_bytes(orjson.dumps(record))
    with pytest.raises(DatasetError, match="different record editions"):
        mf.rebuild_manifest(out)
    assert not (out / mf.MANIFEST_NAME).exists()


def test_fusion_run_when_it_makes_a_dataset_records_the_edition(tmp_path):
    run_one_seed(_small(), 4, tmp_path / "one")
    assert mf.read_manifest(tmp_path / "one")[mf.RECORD_EDITION_FIELD] == RECORD_EDITION


@pytest.mark.parametrize(
    ("change", "recorded"),
    [
        (lambda m: m.pop(mf.RECORD_EDITION_FIELD), "records no record edition"),
        (lambda m: m.update({mf.RECORD_EDITION_FIELD: START_SLOT}), repr(START_SLOT)),
    ],
    ids=["absent", "older"],
)
def test_resume_when_the_manifest_records_another_edition_is_refused_before_any_shard(
    swept, tmp_path, change, recorded
):
    out = _copy(swept, tmp_path)
    _edit_manifest(out, change)
    before = _files(out)
    with pytest.raises(ManifestConflictError) as info:
        run_sweep(_small(), seeds=[0, 1, 2], workers=1, out=out, resume=True, quiet=True)
    message = str(info.value)
    assert str(out) in message and recorded in message and repr(RECORD_EDITION) in message
    assert "new directory" in message
    assert _files(out) == before  # seed 2 was never written, nothing else touched
    with pytest.raises(ManifestConflictError, match="new directory"):
        run_one_seed(_small(), 2, out)  # `fusion run` into it: the same refusal
    assert _files(out) == before


def test_resume_when_the_edition_is_the_same_completes_the_dataset(swept, tmp_path):
    out = _copy(swept, tmp_path)
    result = run_sweep(_small(), seeds=[0, 1, 2], workers=1, out=out, resume=True, quiet=True)
    assert result.ok and sorted(e["seed"] for e in mf.read_manifest(out)["shards"]) == [0, 1, 2]


def test_study_resume_when_a_point_records_another_edition_is_refused_before_any_shard(tmp_path):
    cfg = _small()
    axes = parse_grid(cfg, ["policy_settings.policy=ksp_ff,random_feasible"])
    out = tmp_path / "study"
    run_study(cfg, axes, seeds=[0], workers=1, out=out, quiet=True)
    point = out / "policy=random_feasible"
    _edit_manifest(point, lambda m: m.pop(mf.RECORD_EDITION_FIELD))
    before = {p.name: _files(p) for p in sorted(out.iterdir()) if p.is_dir()}
    with pytest.raises(ManifestConflictError, match=r"no record edition.*new directory") as info:
        run_study(cfg, axes, seeds=[0, 1], workers=1, out=out, resume=True, quiet=True)
    assert str(point) in str(info.value)
    assert {p.name: _files(p) for p in sorted(out.iterdir()) if p.is_dir()} == before


def test_manifest_when_its_edition_is_not_a_name_is_refused_naming_the_field(swept, tmp_path):
    out = _copy(swept, tmp_path)
    _edit_manifest(out, lambda m: m.update({mf.RECORD_EDITION_FIELD: 3}))
    with pytest.raises(DatasetError, match="record_edition is 3, expected the name of a record"):
        mf.read_manifest(out)
    # what the message says to do: the sidecars hold the edition
    assert mf.rebuild_manifest(out)[mf.RECORD_EDITION_FIELD] == RECORD_EDITION


def test_hand_fed_writer_when_writing_neither_records_nor_checks_the_edition(tmp_path):
    from conftest import write_shard

    write_shard(tmp_path, 5, 3)
    assert mf.RECORD_EDITION_FIELD not in mf.read_manifest(tmp_path)
    _edit_manifest(tmp_path, lambda m: m.update({mf.RECORD_EDITION_FIELD: START_SLOT}))
    write_shard(tmp_path, 6, 3)  # the caller's records: whatever the manifest says
    manifest = mf.read_manifest(tmp_path)
    assert manifest[mf.RECORD_EDITION_FIELD] == START_SLOT  # left as it was
    assert [e["seed"] for e in manifest["shards"]] == [5, 6]


# -- readers and exports -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A study over two behaviours (epsilon 0.2), two seeds a point."""
    cfg = _small().replace("dataset_logging", epsilon_mix=0.2)
    axes = parse_grid(cfg, ["policy_settings.policy=ksp_ff,random_feasible"])
    out = tmp_path_factory.mktemp("mixed") / "study"
    run_study(cfg, axes, seeds=[0, 1], workers=1, out=out, quiet=True)
    return out


def _meta_rows(study: Path) -> list[dict[str, Any]]:
    """Every record's meta, in the readers' order (points in order, then seed, then t)."""
    rows = []
    for point in ("policy=ksp_ff", "policy=random_feasible"):
        rows += [r["meta"] for r in load_dataset(study / point)]
    return rows


def test_validate_when_records_hold_the_behaviour_fields_passes(mixed):
    assert main(["validate", str(mixed / "policy=random_feasible")]) == 0


def test_array_view_and_npz_when_the_data_holds_the_fields_carry_them_per_transition(
    mixed, tmp_path
):
    metas = _meta_rows(mixed)
    arrays = to_arrays(mixed)
    assert arrays.behaviour is not None and arrays.behaviour.dtype.kind == "U"
    assert arrays.behaviour.tolist() == [m["behaviour"] for m in metas]
    assert arrays.propensity is not None and arrays.explored is not None
    assert arrays.propensity.tolist() == [m["propensity"] for m in metas]
    assert arrays.explored.tolist() == [m["explored"] for m in metas]
    assert set(arrays.behaviour) == {"ksp_ff/first_fit", "random_feasible/first_fit"}
    export_dataset(mixed, tmp_path / "x.npz", "npz")
    with np.load(tmp_path / "x.npz", allow_pickle=False) as npz:
        assert npz["behaviour"].tolist() == [m["behaviour"] for m in metas]
        assert npz["explored"].tolist() == [m["explored"] for m in metas]
        assert npz["propensity"].tolist() == [m["propensity"] for m in metas]
    cached = to_arrays(mixed)  # the points' caches hold them too
    assert cached.metadata["from_cache"] and cached.behaviour.tolist() == arrays.behaviour.tolist()


def test_parquet_when_the_data_holds_the_fields_has_a_typed_column_each(mixed, tmp_path):
    metas = _meta_rows(mixed)
    export_dataset(mixed, tmp_path / "x.parquet", "parquet")
    table = pq.read_table(tmp_path / "x.parquet")
    assert [str(table.schema.field(n).type) for n in BEHAVIOUR_META] == ["string", "bool", "double"]
    for name in (*BEHAVIOUR_META, "start_slot"):
        assert table.column(name).to_pylist() == [m[name] for m in metas], name


def test_exports_when_the_data_predates_the_fields_export_as_before(tmp_path):
    from conftest import write_shard

    write_shard(tmp_path / "old", 1, 4)  # hand-fed records: no behaviour fields
    arrays = to_arrays(tmp_path / "old")
    assert (arrays.behaviour, arrays.explored, arrays.propensity) == (None, None, None)
    assert not set(BEHAVIOUR_META) & set(arrays.arrays())
    export_dataset(tmp_path / "old", tmp_path / "x.npz", "npz")
    with np.load(tmp_path / "x.npz", allow_pickle=False) as npz:
        assert not set(BEHAVIOUR_META) & set(npz.files)
    export_dataset(tmp_path / "old", tmp_path / "x.parquet", "parquet")
    assert not set(BEHAVIOUR_META) & set(pq.read_schema(tmp_path / "x.parquet").names)
