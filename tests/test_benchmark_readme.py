"""The README's benchmark table: what ``fusion benchmark report --markdown`` prints from the
results committed in ``docs/benchmark``, and one row of it evaluated again here: its
references and KSP-FF, and two learned figures (BC and ``afterstate-placed``, trained again on
the rebuilt points of the ``mixed`` dataset they were trained on)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from fusion.benchmark.cards import dataset_size
from fusion.benchmark.evaluate import EXPERT, TRAIN_ON, _train, hyperparameters, results_path
from fusion.benchmark.report import collect, format_markdown
from fusion.benchmark.suite import load_suite, mixed_grid
from fusion.config.grid import parse_grid
from fusion.config.heuristics import HEURISTICS
from fusion.report.scores import score_interval
from fusion.run.evaluate import evaluate_policies, split_spec
from fusion.run.study import run_study

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "benchmark"
#: The README's tables: the marker's label -> the evaluation seeds of its results (``None``:
#: the suite's).
TABLES = {"benchmark-table": None, "benchmark-table 2000-2009": list(range(2000, 2010))}
#: The row evaluated again: the suite's cheapest preset to run.
PRESET = "maskrsa-nsfnet"


def _readme_table(label: str) -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start, end = f"<!-- {label}: start -->", f"<!-- {label}: end -->"
    assert start in text and end in text, f"the README lost its {label} markers"
    return text.split(start, 1)[1].split(end, 1)[0].strip()


@pytest.mark.parametrize("label", sorted(TABLES))
def test_readme_table_when_rendered_from_the_committed_results_is_the_same(label):
    table = collect(load_suite(), RESULTS, TABLES[label])
    assert table["missing"] == [], "every preset of the suite has committed results"
    assert not any(row.get("quick") for row in table["rows"]), "a --quick result is no reference"
    assert _readme_table(label) == format_markdown(table)


@pytest.mark.parametrize("preset", [PRESET])
def test_reference_row_when_evaluated_again_gives_the_committed_figures(preset):
    """random, the expert and KSP-FF on the evaluation seeds, run again: the same blocking
    on every seed and the same KSP-FF score (the runs are deterministic)."""
    results = orjson.loads(results_path(RESULTS, "v0", preset).read_bytes())
    spec = next(s for s in load_suite().datasets([preset]) if s.behaviour == "ksp-ff")
    report = evaluate_policies(
        spec.config(), ["random_feasible", results["expert"]], seeds=results["seeds"], workers=2
    )
    again = {
        row["spec"]: {r["seed"]: r["blocking"] for r in row["per_seed"]}
        for row in report["policies"]
    }
    committed = {
        column: {r["seed"]: r["blocking"] for r in results["policies"][column]["per_seed"]}
        for column in ("random", "expert", "ksp-ff")
    }
    assert again["random_feasible"] == committed["random"]
    assert again[results["expert"]] == committed["expert"]
    assert again["ksp_ff"] == committed["ksp-ff"]
    score = score_interval(again["ksp_ff"], again["random_feasible"], again[results["expert"]])
    assert score == results["policies"]["ksp-ff"]["score"]


def _per_seed(row: dict) -> dict[int, float]:
    return {r["seed"]: r["blocking"] for r in row["per_seed"]}


@pytest.mark.parametrize("preset", [PRESET])
def test_learned_rows_when_trained_and_evaluated_again_give_the_committed_figures(preset, tmp_path):
    """BC and ``afterstate-placed`` as ``fusion benchmark evaluate`` trains them: on the
    ``mixed`` points of one path order (the preset's for BC, the expert's for the afterstate
    learner, which re-ranks the expert's choices and chooses its placements on the tuning
    seeds), rebuilt here (a point's shards depend only on its config and seed, so the study of
    those orders alone logs the same records as the full study's points of them), with the
    suite's hyperparameters; then run on the evaluation seeds under that order. The same
    blocking on every seed and the same score as committed (training is deterministic)."""
    results = orjson.loads(results_path(RESULTS, "v0", preset).read_bytes())
    specs = load_suite().datasets([preset])
    mixed = next(s for s in specs if s.behaviour == TRAIN_ON)
    config = next(s for s in specs if s.behaviour == "ksp-ff").config()
    expert_policy, expert_overrides = split_spec(results["expert"])
    orders = {
        "bc": config.general.path_order,
        "afterstate-placed": dict((k, v) for _, k, v in expert_overrides)["path_order"],
    }
    assert results["trained_on"]["dataset"] == TRAIN_ON
    for learner in orders:
        assert results["hyperparameters"][learner] == hyperparameters(learner)

    # the mixed study as the build runs it, its path_order axis cut down to those orders
    grid = [
        f"general_settings.path_order={','.join(sorted(set(orders.values())))}"
        if g.startswith("general_settings.path_order=")
        else g
        for g in mixed_grid()
    ]
    data_dir = tmp_path / TRAIN_ON
    study_config = mixed.config()
    study = run_study(
        study_config,
        parse_grid(study_config, grid),
        seeds=mixed.seeds,
        workers=2,
        out=data_dir,
        quiet=True,
    )
    assert study.ok
    transitions = len(HEURISTICS) * len(mixed.seeds) * mixed.requests * len(set(orders.values()))
    assert dataset_size(data_dir)["transitions"] == transitions

    committed = results["policies"]
    for learner, order in orders.items():
        model = tmp_path / f"{learner}.npz"
        options = hyperparameters(learner)
        if options.get("support_policy") == EXPERT:
            options = {**options, "support_policy": expert_policy}
        under = config.replace("general_settings", path_order=order)
        _train(
            learner, data_dir, {"path_order": [order]}, model, options, (under, mixed.tune_seeds, 2)
        )
        spec = f"{model}:path_order={order}"
        report = evaluate_policies(config, [spec], seeds=results["seeds"], workers=2)
        again = _per_seed(next(row for row in report["policies"] if row["spec"] == spec))
        assert again == _per_seed(committed[learner]), learner
        score = score_interval(
            again, _per_seed(committed["random"]), _per_seed(committed["expert"])
        )
        assert score == committed[learner]["score"], learner
