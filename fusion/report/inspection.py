"""Per-shard and across-seed blocking figures of a dataset, for ``fusion inspect``.

Across seeds: mean, sample standard deviation and the 95% confidence interval of the mean
(:func:`fusion.report.intervals.interval`) of every blocking figure, the aggregate FUSION's
metrics report.
"""

from __future__ import annotations

import math
import os
from typing import Any

from fusion.errors import DatasetError
from fusion.optional import require
from fusion.report.intervals import PROBABILITY, describe, interval
from fusion.storage import manifest as mf
from fusion.storage.schema import WINDOW_TAGS as WINDOWS
from fusion.storage.sources import resolve


def inspect_dataset(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Shard rows and across-seed aggregates of a dataset directory or manifest."""
    resolved = resolve(path, include_incomplete=True, missing="skip")
    if resolved.manifest is None:
        raise DatasetError(f"{path}: inspect takes a dataset directory or its manifest.json")
    rows = []
    for ref in resolved.sources:
        stats = ref.entry.get("stats", {})
        rows.append(
            {
                "seed": ref.seed,
                "status": ref.status,
                "transitions": ref.entry.get("transitions"),
                "bytes": ref.entry.get("bytes"),
                "bp": stats.get("blocking_probability"),
                **{
                    f"bp_{w}": stats.get("per_window", {}).get(w, {}).get("blocking_probability")
                    for w in WINDOWS
                },
                "reach": _share(stats.get("blocked_by_reach"), ref.entry.get("transitions")),
            }
        )
    complete = [r for r in rows if r["status"] == mf.STATUS_COMPLETE]
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
    lines.append(
        "across complete seeds: mean ± std [95% CI]  (reach: blocked because no format reaches)"
    )
    for key in columns:
        agg = aggregate[key]
        if agg["n"]:
            lines.append(f"  {key:<8} {describe(agg)} (n={agg['n']})")
    return "\n".join(lines)


def plot_blocking(path: str | os.PathLike[str], out: str | os.PathLike[str]) -> None:
    """Blocking probability over arrival time per seed, failure window shaded (matplotlib)."""
    require("matplotlib", "plot", "--plot").use("Agg")
    plt = require("matplotlib.pyplot", "plot", "--plot")
    fig, ax = plt.subplots(figsize=(9, 4))
    shaded = False
    for ref in resolve(path, include_incomplete=True, missing="skip").sources:
        # Long series live in the shard's sidecar, not in the manifest.
        record = mf.read_sidecar(mf.sidecar_path(ref.path)) or {}
        sim = record.get("stats", {}).get("simulation", {})
        timeline = sim.get("bp_timeline", [])
        if timeline:
            ax.plot(
                [p[0] for p in timeline], [p[1] for p in timeline], label=f"seed {ref.seed}", lw=1
            )
        for event in sim.get("failure_history", [])[:1]:
            if not shaded:
                end = event["t_repair"] if math.isfinite(event["t_repair"]) else ax.get_xlim()[1]
                ax.axvspan(event["t_fail"], end, color="red", alpha=0.12, label="failure window")
                shaded = True
    ax.set_xlabel("arrival time")
    ax.set_ylabel("blocking probability")
    ax.legend(fontsize="small", ncol=2)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
