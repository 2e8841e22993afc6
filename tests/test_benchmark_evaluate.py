"""``fusion benchmark evaluate`` and ``report``: the references score 0 and 100 per seed, KSP-FF
and every learner get a score with its interval, a second evaluation is a no-op, and the table
is read back from the results files."""

from __future__ import annotations

import shutil
from dataclasses import replace

import orjson
import pytest

from fusion.benchmark import evaluate as bench_evaluate
from fusion.benchmark.evaluate import LEARNERS, evaluate_preset, results_path
from fusion.benchmark.suite import load_suite
from fusion.cli import main
from fusion.rl.bc import BCModel

PRESET = "maskrsa-nsfnet"  # the smallest network of the suite; blocks even at --quick sizes


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """One quick build and one quick evaluation of one preset: the output directory."""
    out = tmp_path_factory.mktemp("bench_eval")
    build = ["benchmark", "build", "--preset", PRESET, "--out", str(out), "--quick", "--quiet"]
    assert main([*build, "--workers", "2"]) == 0
    argv = ["benchmark", "evaluate", "--preset", PRESET, "--out", str(out), "--quick"]
    assert main([*argv, "--workers", "1"]) == 0  # 1: no pool to start for these tiny runs
    return out


def _results(out):
    return orjson.loads(results_path(out, "v0", PRESET).read_bytes())


def test_evaluate_when_quick_scores_random_0_and_expert_100_over_the_seeds(evaluated):
    results = _results(evaluated)
    assert results["seeds"] == list(load_suite(quick=True).seeds("eval"))
    policies = results["policies"]
    random = {r["seed"]: r for r in policies["random"]["per_seed"]}
    expert = {r["seed"]: r for r in policies["expert"]["per_seed"]}
    seeds = results["seeds"]
    assert results["unscored_seeds"] == []  # the gap is over all seeds: a tied seed still counts
    assert [random[s]["score"] for s in seeds] == [0.0] * len(seeds)
    assert sum(expert[s]["score"] for s in seeds) / len(seeds) == pytest.approx(100)
    assert policies["random"]["score"]["mean"] == 0.0
    assert policies["expert"]["score"]["mean"] == 100.0
    assert (
        results["expert"]
        == orjson.loads((evaluated / "v0" / PRESET / "expert.choice.json").read_bytes())["spec"]
    )


def test_evaluate_when_quick_gives_ksp_ff_and_each_learner_a_score_with_its_interval(evaluated):
    policies = _results(evaluated)["policies"]
    assert list(policies) == ["random", "expert", "ksp-ff", *LEARNERS]
    for name in ("ksp-ff", *LEARNERS):
        entry = policies[name]
        score = entry["score"]
        assert score["std"] is not None, name
        assert score["ci95_low"] <= score["mean"] <= score["ci95_high"], name
        assert 0.0 <= entry["blocking"]["mean"] <= 1.0
        assert "mean" in entry["vs_ksp_ff"]
    assert policies["ksp-ff"]["vs_ksp_ff"]["mean"] == 0.0
    models = evaluated / "v0" / PRESET / "models"
    assert sorted(p.name for p in models.glob("*.npz")) == sorted(f"{n}.npz" for n in LEARNERS)
    assert not list((evaluated / "v0" / PRESET / "mixed").rglob("*.npz"))  # no cache written


def test_afterstate_expert_when_trained_reranks_the_expert_under_its_path_order(evaluated):
    choice = orjson.loads((evaluated / "v0" / PRESET / "expert.choice.json").read_bytes())
    models = evaluated / "v0" / PRESET / "models"
    record = orjson.loads((models / "afterstate-expert.json").read_bytes())
    assert record["hyperparameters"]["support_policy"] == choice["policy"]
    assert record["points"] == {"path_order": [choice["path_order"]]}
    entry = _results(evaluated)["policies"]["afterstate-expert"]
    assert entry["spec"].endswith(f"afterstate-expert.npz:path_order={choice['path_order']}")
    plain = orjson.loads((models / "afterstate.json").read_bytes())
    assert plain["hyperparameters"]["support_policy"] == "ksp_ff"
    order = load_suite(quick=True).datasets([PRESET])[1].config().general.path_order
    assert plain["points"] == {"path_order": [order]}


def test_afterstate_placed_when_trained_chooses_its_placements_on_the_tuning_seeds(evaluated):
    from fusion.rl.afterstate import PLACEMENTS, AfterstateModel

    models = evaluated / "v0" / PRESET / "models"
    record = orjson.loads((models / "afterstate-placed.json").read_bytes())
    tune = list(load_suite(quick=True).seeds("tune"))
    assert record["hyperparameters"]["placements"] == "tuned" and record["tune_seeds"] == tune
    model = AfterstateModel.load(models / "afterstate-placed.npz")
    tuned = model.info["placements_tuned"]
    assert tuned["seeds"] == tune
    blocking = tuned["blocking"]  # the support's rule alone, and the three rules weighed
    assert list(blocking) == ["support rule", ",".join(PLACEMENTS)]
    best = min(blocking.values())
    assert model.placements == (() if blocking["support rule"] == best else PLACEMENTS)


def test_evaluate_when_run_again_keeps_the_results(evaluated, capsys):
    path = results_path(evaluated, "v0", PRESET)
    before = path.stat().st_mtime_ns, path.read_bytes()
    argv = ["benchmark", "evaluate", "--preset", PRESET, "--out", str(evaluated), "--quick"]
    assert main(argv) == 0
    assert f"{PRESET}: kept" in capsys.readouterr().out
    assert (path.stat().st_mtime_ns, path.read_bytes()) == before


def test_evaluate_when_given_other_seeds_scores_on_them_and_reuses_the_model(evaluated, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(evaluated, out)
    model = out / "v0" / PRESET / "models" / "bc.npz"
    trained = model.stat().st_mtime_ns
    argv = ["benchmark", "evaluate", "--preset", PRESET, "--out", str(out), "--quick"]
    suite_figures = results_path(out, "v0", PRESET).read_bytes()
    assert main([*argv, "--eval-seeds", "2000-2002", "--learner", "bc", "--workers", "1"]) == 0
    assert results_path(out, "v0", PRESET).read_bytes() == suite_figures  # beside, not over
    results = orjson.loads(results_path(out, "v0", PRESET, [2000, 2001, 2002]).read_bytes())
    assert results["seeds"] == [2000, 2001, 2002] and results["learners"] == ["bc"]
    assert [r["seed"] for r in results["policies"]["bc"]["per_seed"]] == [2000, 2001, 2002]
    assert "fqi" not in results["policies"]
    assert model.stat().st_mtime_ns == trained  # same data, same hyperparameters: reused


def test_evaluate_when_a_learner_cannot_train_says_so_in_the_results(
    evaluated, tmp_path, monkeypatch
):
    out = tmp_path / "copy"
    shutil.copytree(evaluated, out)
    bad = {**bench_evaluate.HYPERPARAMETERS, "afterstate": {"ridge": -1.0}}
    monkeypatch.setattr(bench_evaluate, "HYPERPARAMETERS", bad)
    result = evaluate_preset(
        load_suite(quick=True), PRESET, out, learners=["afterstate"], seeds=[1000, 1001], workers=1
    )
    entry = result.results["policies"]["afterstate"]
    assert "ridge" in entry["error"] and f"{PRESET}/mixed" in entry["error"]
    assert "score" not in entry and result.results["policies"]["ksp-ff"]["score"] is not None


def test_evaluate_when_a_model_of_another_scenario_is_in_place_refuses_it(
    evaluated, tmp_path, capsys
):
    out = tmp_path / "copy"
    shutil.copytree(evaluated, out)
    model = out / "v0" / PRESET / "models" / "bc.npz"
    trained = BCModel.load(model)
    scenario = {**trained.trained_on.scenario, "general_settings.path_order": "hops"}
    replace(trained, trained_on=replace(trained.trained_on, scenario=scenario)).save(
        model, overwrite=True
    )
    before = model.read_bytes()
    argv = ["benchmark", "evaluate", "--preset", PRESET, "--out", str(out), "--quick"]
    assert main([*argv, "--learner", "bc", "--eval-seeds", "2000", "--workers", "1"]) == 2
    err = capsys.readouterr().err
    assert str(model) in err and "path_order" in err and "'hops'" in err
    assert model.read_bytes() == before  # refused, never replaced


def test_report_when_results_exist_prints_the_table_and_json(evaluated, capsys):
    assert main(["benchmark", "report", "--out", str(evaluated)]) == 0
    text = capsys.readouterr().out
    row = next(line for line in text.splitlines() if line.startswith(PRESET))
    assert "0.0 [0.0, 0.0]" in row and "100.0 [" in row and "(quick)" in row
    header = next(line for line in text.splitlines() if line.startswith("preset"))
    assert header.split()[2:] == ["random", "expert", "ksp-ff", *LEARNERS, "ceiling"]
    assert "not evaluated: deeprmsa-nsfnet" in text
    assert main(["benchmark", "report", "--out", str(evaluated), "--json"]) == 0
    table = orjson.loads(capsys.readouterr().out)
    assert [r["preset"] for r in table["rows"]] == [PRESET]
    assert table["rows"][0] == _results(evaluated)
    assert table["columns"] == ["random", "expert", "ksp-ff", *LEARNERS]


def test_ceiling_when_a_policy_blocks_nothing_is_its_score_and_above_every_policys(evaluated):
    from fusion.benchmark.report import ceiling

    results = _results(evaluated)
    top = ceiling(results)
    blocked = {
        name: {s["seed"]: s["blocking"] for s in results["policies"][name]["per_seed"]}
        for name in ("random", "expert")
    }
    room = sum(blocked["random"].values()) - sum(blocked["expert"].values())
    assert top["mean"] == pytest.approx(100 * sum(blocked["random"].values()) / room)


def test_report_when_asked_for_a_plot_writes_the_figure(evaluated, tmp_path):
    pytest.importorskip("matplotlib")
    figure = tmp_path / "scores.png"
    assert main(["benchmark", "report", "--out", str(evaluated), "--plot", str(figure)]) == 0
    assert figure.read_bytes()[:4] == b"\x89PNG"


def test_evaluate_when_a_learner_is_unknown_exits_2_naming_the_choices(tmp_path, capsys):
    argv = ["benchmark", "evaluate", "--learner", "dqn", "--out", str(tmp_path), "--quick"]
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert "'dqn'" in err and all(f"'{name}'" in err for name in LEARNERS)
    assert not any(tmp_path.iterdir())


def test_evaluate_when_a_preset_is_unknown_exits_2_naming_the_choices(tmp_path, capsys):
    argv = ["benchmark", "evaluate", "--preset", "nsfnet", "--out", str(tmp_path), "--quick"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "'nsfnet'" in err and "deeprmsa-nsfnet" in err and "maskrsa-jpn48" in err
    assert not any(tmp_path.iterdir())


def test_evaluate_when_the_preset_is_not_built_fails_naming_the_build_command(tmp_path, capsys):
    argv = ["benchmark", "evaluate", "--preset", PRESET, "--out", str(tmp_path), "--quick"]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert f"fusion benchmark build --preset {PRESET} --out {tmp_path} --quick" in err
