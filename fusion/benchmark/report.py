"""The suite's table: preset rows x policy columns (score [95% interval], blocking), read from
the ``results.json`` files ``fusion benchmark evaluate`` wrote, in the suite's order.

A preset without results is left out (the table says which); a learner that could not train
shows its reason instead of a score. The last column, ``ceiling``, is the score of a policy
that would block nothing on any seed, with its interval (:func:`ceiling`): no policy's score
is higher. Its interval's width is the random policy's seed-to-seed spread; a policy that
blocks less than the expert can narrow it only as far as its own blocking moves with the
random policy's from seed to seed, so where the expert blocks almost nothing and the ceiling's
interval reaches below 100, no policy's interval is likely to lie above 100.

    >>> from fusion.benchmark.suite import load_suite
    >>> import tempfile
    >>> table = collect(load_suite(), tempfile.mkdtemp())
    >>> table["rows"], table["missing"][:2]
    ([], ['deeprmsa-nsfnet', 'deeprmsa-cost239'])
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson

from fusion.benchmark.evaluate import POLICY_COLUMNS, results_path
from fusion.benchmark.suite import Suite
from fusion.errors import DatasetError
from fusion.optional import require
from fusion.report.scores import score_interval

__all__ = ["ceiling", "collect", "format_markdown", "format_table", "plot_table"]


def collect(
    suite: Suite, out: str | os.PathLike[str], seeds: Sequence[int] | None = None
) -> dict[str, Any]:
    """Every preset's results, in the suite's order.

    :param suite: The suite.
    :param out: The build's output directory.
    :param seeds: The evaluation seeds of the results (``--eval-seeds``; default: the suite's).
    :return: ``{"suite", "out", "columns", "rows": [results.json ...], "missing": [preset]}``.
    :raises DatasetError: naming a results file that cannot be read.
    """
    rows, missing = [], []
    for preset in suite.presets:
        path = results_path(out, suite.version, preset, seeds)
        if not path.exists():
            missing.append(preset)
            continue
        try:
            results = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            raise DatasetError(f"{path}: cannot read the results: {exc}") from None
        if not isinstance(results, dict) or not isinstance(results.get("policies"), dict):
            raise DatasetError(f"{path}: expected an object with 'policies' (results.json)")
        rows.append(results)
    columns = [c for c in POLICY_COLUMNS if any(c in r["policies"] for r in rows)]
    return {
        "suite": suite.version,
        "out": os.fspath(out),
        "columns": columns,
        "rows": rows,
        "missing": missing,
    }


def _cell(entry: Mapping[str, Any] | None, markdown: bool = False) -> str:
    """``score [low, high]`` and the blocking (a fraction as text, a percentage after ``·`` in
    Markdown); a failure's reason; ``-`` when not evaluated.

    >>> entry = {"score": {"mean": 50.0, "std": 1.0, "ci95_low": 40.0, "ci95_high": 60.0},
    ...          "blocking": {"mean": 0.0123}}
    >>> _cell(entry), _cell(entry, markdown=True)
    ('50.0 [40.0, 60.0] 0.0123', '50.0 [40.0, 60.0] · 1.23 %')
    >>> _cell({"error": "cannot train"}), _cell(None)
    ('(not trained)', '-')
    """
    if entry is None:
        return "-"
    if "error" in entry:
        return "(not trained)"
    score, mean = entry["score"], entry["blocking"]["mean"]
    blocking = f"· {100 * mean:.2f} %" if markdown else f"{mean:.4f}"
    if score is None:
        return f"(no score) {blocking}"
    if score["std"] is None:
        return f"{score['mean']:.1f} (one seed) {blocking}"
    return f"{score['mean']:.1f} [{score['ci95_low']:.1f}, {score['ci95_high']:.1f}] {blocking}"


def ceiling(row: Mapping[str, Any]) -> dict[str, Any] | None:
    """The score a policy blocking nothing on any of the row's seeds would get, with its paired
    interval (:func:`~fusion.report.scores.score_interval`); ``None`` for an unscored row.

    :param row: One preset's ``results.json``.

        >>> row = {"policies": {name: {"per_seed": [{"seed": s, "blocking": b[s]}
        ...        for s in (1, 2)]} for name, b in (("random", {1: 0.1, 2: 0.3}),
        ...                                           ("expert", {1: 0.05, 2: 0.15}))}}
        >>> ceiling(row)["mean"]
        200.0
    """
    if row.get("unscored_seeds"):
        return None
    per_seed = {
        name: {s["seed"]: s["blocking"] for s in row["policies"][name]["per_seed"]}
        for name in ("random", "expert")
    }
    nothing = {seed: 0.0 for seed in per_seed["random"]}
    return score_interval(nothing, per_seed["random"], per_seed["expert"])


def _ceiling_cell(row: Mapping[str, Any]) -> str:
    score = ceiling(row)
    if score is None:
        return "-"
    if score["std"] is None:
        return f"{score['mean']:.1f} (one seed)"
    return f"{score['mean']:.1f} [{score['ci95_low']:.1f}, {score['ci95_high']:.1f}]"


def format_table(table: Mapping[str, Any]) -> str:
    """The table as text: one row per preset, one column per policy (score [95% CI] and
    blocking), then each failure's reason and each preset's seeds.

    :param table: From :func:`collect`.
    """
    columns = table["columns"]
    cells = {
        (row["preset"], c): _cell(row["policies"].get(c)) for row in table["rows"] for c in columns
    }
    width = max([len(c) for c in columns] + [len(cell) for cell in cells.values()], default=0)
    lines = [
        f"benchmark {table['suite']} ({table['out']}): normalized score [95% CI] (0 = random, "
        "100 = expert, paired per seed) and blocking, on the evaluation seeds",
        (
            f"{'preset':<20} {'erlang':>6} "
            + " ".join(f"{c:<{width}}" for c in (*columns, "ceiling"))
        ).rstrip(),
    ]
    notes = []
    for row in table["rows"]:
        quick = " (quick)" if row.get("quick") else ""
        lines.append(
            f"{row['preset']:<20} {row['erlang']:>6g} "
            + " ".join(f"{cells[row['preset'], c]:<{width}}" for c in columns)
            + f" {_ceiling_cell(row)}"
            + quick
        )
        seeds = row["seeds"]
        notes.append(
            f"{row['preset']}: {len(seeds)} seeds ({seeds[0]}-{seeds[-1]}), "
            f"{row['requests']} requests each; expert {row['expert']}; learners trained on "
            f"{row['trained_on']['dataset']}"
            + (
                f"; seeds {', '.join(map(str, row['unscored_seeds']))} unscored (random and "
                "expert block equally)"
                if row.get("unscored_seeds")
                else ""
            )
        )
        for column in columns:
            entry = row["policies"].get(column)
            if entry is not None and "error" in entry:
                notes.append(f"{row['preset']}: {column}: {entry['error']}")
    if table["missing"]:
        notes.append(
            "not evaluated: " + ", ".join(table["missing"]) + " (fusion benchmark evaluate)"
        )
    return "\n".join(lines + notes)


def format_markdown(table: Mapping[str, Any]) -> str:
    """The table in Markdown (what the README holds): one row per preset, its load and its
    expert, then per policy the normalized score [95% CI] and the mean blocking, and last the
    ceiling (:func:`ceiling`).

    :param table: From :func:`collect`.

        >>> from fusion.benchmark.suite import load_suite
        >>> import tempfile
        >>> print(format_markdown(collect(load_suite(), tempfile.mkdtemp())))
        | preset | load | expert is | ceiling |
        |---|---|---|---|
    """
    columns = table["columns"]
    lines = [
        "| " + " | ".join(["preset", "load", "expert is", *columns, "ceiling"]) + " |",
        "|" + "---|" * (4 + len(columns)),
    ]
    for row in table["rows"]:
        quick = " (quick)" if row.get("quick") else ""
        cells = [
            f"`{row['preset']}`{quick}",
            f"{row['erlang']:g} E",
            f"`{row['expert']}`",
            *(_cell(row["policies"].get(c), markdown=True) for c in columns),
            _ceiling_cell(row),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_table(table: Mapping[str, Any], out: str | os.PathLike[str]) -> None:
    """A figure of the table: per preset, each policy's score with its 95% interval
    (matplotlib, the ``plot`` extra).

    :param table: From :func:`collect`.
    :param out: The image file (its suffix picks the format).
    :raises DatasetError: when no preset has results (no empty figure is written).
    """
    if not table["rows"]:
        raise DatasetError(f"{table['out']}: no results to plot; run fusion benchmark evaluate")
    require("matplotlib", "plot", "--plot").use("Agg")
    plt = require("matplotlib.pyplot", "plot", "--plot")
    rows, columns = table["rows"], table["columns"]
    fig, ax = plt.subplots(figsize=(max(8.0, 1.6 * len(rows)), 4.5))
    step = 0.8 / max(len(columns), 1)
    for j, column in enumerate(columns):
        xs, means, low, high = [], [], [], []
        for i, row in enumerate(rows):
            entry = row["policies"].get(column) or {}
            score = entry.get("score")
            if not score:
                continue
            xs.append(i - 0.4 + step * (j + 0.5))
            means.append(score["mean"])
            spread = score["std"] is not None
            low.append(score["mean"] - score["ci95_low"] if spread else 0.0)
            high.append(score["ci95_high"] - score["mean"] if spread else 0.0)
        ax.bar(xs, means, width=step, yerr=[low, high], capsize=2, label=column)
    ax.axhline(0, color="grey", lw=0.5)
    ax.axhline(100, color="grey", lw=0.5, ls="--")
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels(
        [
            f"{r['preset']}\n{r['erlang']:g} E" + (" (quick)" if r.get("quick") else "")
            for r in rows
        ],
        fontsize=8,
    )
    ax.set_ylabel("normalized score (0 = random, 100 = expert)")
    ax.set_title(
        f"benchmark {table['suite']}: scores with 95% intervals on the evaluation seeds",
        fontsize=10,
    )
    ax.legend(fontsize=8, ncol=len(columns), loc="upper center", bbox_to_anchor=(0.5, -0.15))
    fig.tight_layout()
    fig.savefig(Path(out))
    plt.close(fig)
