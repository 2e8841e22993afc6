"""The README's benchmark table: what ``fusion benchmark report --markdown`` prints from the
results committed in ``docs/benchmark``, and one row of it evaluated again here."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from fusion.benchmark.evaluate import results_path
from fusion.benchmark.report import collect, format_markdown
from fusion.benchmark.suite import load_suite
from fusion.report.scores import score_interval
from fusion.run.evaluate import evaluate_policies

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
