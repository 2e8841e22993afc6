"""Per-shard and across-seed blocking figures of a dataset, for ``fusion inspect``.

Across seeds: mean, sample standard deviation and the 95% confidence interval of the mean
(:func:`fusion.report.intervals.interval`) of every blocking figure, the aggregate FUSION's
metrics report. A shard's figures describe the transitions it holds: a failed shard's count
only those written before it failed (the writer's tally), and a figure over no transition at
all is shown as ``-``, not as 0.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

from fusion.errors import DatasetError
from fusion.optional import require
from fusion.report.intervals import PROBABILITY, describe, interval
from fusion.storage.schema import WINDOW_TAGS as WINDOWS
from fusion.storage.shard_entries import read_sidecar
from fusion.storage.shard_names import sidecar_path
from fusion.storage.sources import resolve
from fusion.storage.statuses import STATUS_COMPLETE, STATUS_FAILED


def inspect_dataset(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Shard rows and across-seed aggregates of a dataset directory or manifest."""
    resolved = resolve(path, include_incomplete=True, missing="skip")
    if resolved.manifest is None:
        raise DatasetError(f"{path}: inspect takes a dataset directory or its manifest.json")
    rows: list[dict[str, Any]] = []
    for ref in resolved.sources:
        stats = ref.entry.get("stats", {})
        counted = _counted(stats, stats.get("accepted", 0) + stats.get("blocked", 0))
        rows.append(
            {
                "seed": ref.seed,
                "status": ref.status,
                "transitions": ref.entry.get("transitions"),
                "bytes": ref.entry.get("bytes"),
                "bp": counted.get("blocking_probability"),
                **{f"bp_{w}": _window_bp(stats, w) for w in WINDOWS},
                "reach": _share(stats.get("blocked_by_reach"), ref.entry.get("transitions")),
            }
        )
    complete = [r for r in rows if r["status"] == STATUS_COMPLETE]
    aggregate = {
        key: interval([r[key] for r in complete if r[key] is not None], PROBABILITY)
        for key in ("bp", *(f"bp_{w}" for w in WINDOWS), "reach")
    }
    return {
        "dataset": str(path),
        "config_sha256": resolved.manifest.get("config_sha256"),
        "skipped": [{"seed": seed, "why": why} for seed, why in resolved.skipped],
        "shards": rows,
        "across_seeds": aggregate,
    }


def _counted(figures: Mapping[str, Any], requests: Any) -> Mapping[str, Any]:
    """``figures``, or nothing when they count no request (a blocking probability of no
    transitions is no figure: a shard that failed before writing one)."""
    return figures if not isinstance(requests, int) or requests > 0 else {}


def _window_bp(stats: Mapping[str, Any], window: str) -> float | None:
    """A window's blocking probability, ``None`` when the window counts no request."""
    figures = stats.get("per_window", {}).get(window, {})
    return _counted(figures, figures.get("requests")).get("blocking_probability")


def _share(count: Any, total: Any) -> float | None:
    """``count / total``, or ``None`` when either is unknown (a shard a user wrote)."""
    if not isinstance(count, int) or not isinstance(total, int) or total <= 0:
        return None
    return count / total


def format_inspection(report: dict[str, Any]) -> str:
    """The inspection as a text table; ``reach`` is the share of requests no modulation
    format reaches on any candidate path: blocking no policy can avoid, within ``BP``. Only
    the windows the runs had are shown: without a failure every request is ``pre``, and its
    column would repeat ``BP``."""

    def cell(value: Any) -> str:
        return "-" if value is None else f"{value:.4f}"

    aggregate = report["across_seeds"]
    windows = [w for w in WINDOWS if any(r[f"bp_{w}"] is not None for r in report["shards"])]
    if windows == ["pre"]:
        windows = []
    columns = ["bp", *(f"bp_{w}" for w in windows), "reach"]
    labels = {"bp": "BP", "reach": "reach", **{f"bp_{w}": f"BP {w}" for w in WINDOWS}}
    lines = [
        f"dataset {report['dataset']}  (config {str(report['config_sha256'])[:12]}…)",
        f"{'seed':>8} {'status':<9} {'transitions':>11} {'bytes':>12} "
        + " ".join(f"{labels[c]:>7}" for c in columns),
    ]
    for r in report["shards"]:
        lines.append(
            f"{r['seed']:>8} {r['status']:<9} {r['transitions'] or 0:>11} {r['bytes'] or 0:>12} "
            + " ".join(f"{cell(r.get(c)):>7}" for c in columns)
        )
    if any(r["status"] == STATUS_FAILED for r in report["shards"]):
        lines.append(
            "failed seeds: their figures count only the transitions written before the failure "
            "(- : none); fix the cause and rerun them with fusion sweep --resume"
        )
    lines.append(
        "across complete seeds: mean ± std [95% CI]  (reach: blocked because no format reaches)"
    )
    for key in columns:
        agg = aggregate[key]
        if agg["n"]:
            lines.append(f"  {key:<8} {describe(agg)} (n={agg['n']})")
    return "\n".join(lines)


def plot_blocking(path: str | os.PathLike[str], out: str | os.PathLike[str]) -> None:
    """Blocking probability over arrival time per seed, failure window shaded (matplotlib).

    :raises DatasetError: when no shard has a timeline to draw (no empty figure is written).
    """
    require("matplotlib", "plot", "--plot").use("Agg")
    plt = require("matplotlib.pyplot", "plot", "--plot")
    fig, ax = plt.subplots(figsize=(9, 4))
    first: dict[str, Any] | None = None
    last = 0.0  # the latest time a series reaches
    for ref in resolve(path, include_incomplete=True, missing="skip").sources:
        # Long series live in the shard's sidecar, not in the manifest.
        record = read_sidecar(sidecar_path(ref.path)) or {}
        sim = record.get("stats", {}).get("simulation", {})
        timeline = sim.get("bp_timeline", [])
        if timeline:
            ax.plot(
                [p[0] for p in timeline], [p[1] for p in timeline], label=f"seed {ref.seed}", lw=1
            )
            last = max(last, timeline[-1][0])
        if first is None and sim.get("failure_history"):
            first = sim["failure_history"][0]
    if not ax.get_lines():
        plt.close(fig)
        raise DatasetError(
            f"{path}: no shard holds a blocking timeline (no transition was written), so "
            "there is nothing to plot; no figure is drawn for no data"
        )
    if first is not None:  # shaded once every series is drawn: an open window runs to the end
        repair = first.get("t_repair")
        repaired = isinstance(repair, (int, float)) and math.isfinite(repair)
        # a failure not repaired within the run has t_repair inf, which JSON records as null
        end = repair if repaired else max(last, first["t_fail"])
        label = "failure window" if repaired else "failure (not repaired within the run)"
        ax.axvspan(first["t_fail"], end, color="red", alpha=0.12, label=label)
    ax.set_xlabel("arrival time")
    ax.set_ylabel("blocking probability")
    ax.legend(fontsize="small", ncol=2)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
