"""A study's table and figure: blocking per point, across seeds, for ``fusion inspect STUDY``.

Per point: blocking probability overall and per window (pre, fail, post), mean, sample std
and 95% interval across the point's complete seeds (:func:`fusion.report.inspection.interval`).
The table has one row per point of the other axes and one column group per value of the
*series* axis (``policy`` when the study has one, else its last axis); the figure plots
blocking against load (the ``erlang`` axis, else the first numeric one), one line per series
value, with the 95% interval as error bars, and the failure window as a second panel.
"""

from __future__ import annotations

import csv
import io
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fusion.errors import DatasetError
from fusion.optional import require
from fusion.report.inspection import inspect_dataset
from fusion.report.intervals import describe
from fusion.storage.schema import WINDOW_TAGS as WINDOWS
from fusion.storage.statuses import STATUS_COMPLETE
from fusion.storage.study_layout import read_study, study_points, study_root

_log = logging.getLogger(__name__)

METRICS = ("bp", *(f"bp_{w}" for w in WINDOWS), "reach")
_LABELS = {
    "bp": "BP",
    "bp_pre": "BP pre",
    "bp_fail": "BP fail",
    "bp_post": "BP post",
    "reach": "blocked by reach (no format reaches any candidate; within BP)",
}


def inspect_study(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Every point's blocking figures across seeds.

    :param path: A study directory or its ``study.json``.
    :return: ``{"study", "axes", "seeds", "points": [{"point", "dir", "status",
        "seeds_complete", "bp": {n, mean, std, ci95_low, ci95_high}, "bp_pre", ...}]}``.
    """
    record = read_study(path)
    rows = []
    for point in study_points(path):
        report = inspect_dataset(point.path)
        complete = sum(1 for r in report["shards"] if r["status"] == STATUS_COMPLETE)
        rows.append(
            {
                "point": point.coords,
                "dir": point.record["dir"],
                "status": point.record.get("status"),
                "seeds_complete": complete,
                **{metric: report["across_seeds"][metric] for metric in METRICS},
            }
        )
    return {
        "study": str(study_root(path)),
        "axes": record["axes"],
        "seeds": record.get("seeds"),
        "points": rows,
    }


def series_axis(names: Sequence[str]) -> str | None:
    """The axis whose values make the table's column groups and the figure's lines."""
    if "policy" in names:
        return "policy"
    others = [n for n in names if n != load_axis(names)]
    return others[-1] if others else None


def load_axis(names: Sequence[str]) -> str | None:
    """The axis on the figure's x axis: ``erlang`` when the study has it."""
    return "erlang" if "erlang" in names else (names[0] if names else None)


def _key(point: Mapping[str, Any], names: Sequence[str]) -> tuple[Any, ...]:
    return tuple(point[n] for n in names)


def format_study(report: Mapping[str, Any]) -> str:
    """The study as text: per metric, one row per point of the other axes, one column group
    per value of the series axis, each cell ``mean ± std [95% CI]``."""
    names = [axis["key"] for axis in report["axes"]]
    series = series_axis(names)
    rows = [n for n in names if n != series]
    groups = _values(report, series)
    row_keys = list(dict.fromkeys(_key(p["point"], rows) for p in report["points"]))
    by = {
        (_key(p["point"], rows), p["point"].get(series) if series else None): p
        for p in report["points"]
    }
    width = 31
    lines = [f"study {report['study']}  ({len(report['points'])} points, seeds {_seeds(report)})"]
    for metric in METRICS:
        if not any(p[metric]["n"] for p in report["points"]):
            continue
        head = " ".join(f"{n:>10}" for n in rows)
        groups_head = " | ".join(
            f"{f'{series}={g}' if series else _LABELS[metric]:^{width}}" for g in groups
        )
        lines += [
            "",
            f"{_LABELS[metric]} (mean ± std [95% CI] across seeds)",
            f"{head} | {groups_head}",
        ]
        for key in row_keys:
            cells = []
            for g in groups:
                p = by.get((key, g))
                agg = p[metric] if p else None
                cells.append(f"{_cell(agg):^{width}}")
            lines.append(" ".join(f"{_text(v):>10}" for v in key) + " | " + " | ".join(cells))
    return "\n".join(lines)


def _values(report: Mapping[str, Any], name: str | None) -> list[Any]:
    if name is None:
        return [None]
    return next(a["values"] for a in report["axes"] if a["key"] == name)


def _seeds(report: Mapping[str, Any]) -> str:
    seeds = report.get("seeds") or []
    return f"{seeds[0]}-{seeds[-1]} ({len(seeds)})" if seeds else "-"


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _cell(agg: Mapping[str, Any] | None) -> str:
    if not agg or not agg["n"]:
        return "-"
    return describe(dict(agg))


def write_study_csv(
    report: Mapping[str, Any], out: str | os.PathLike[str], *, overwrite: bool = True
) -> None:
    """One row per point: its coordinates, status, then n, mean, std, ci95_low, ci95_high of
    every metric (``bp``, ``bp_pre``, ``bp_fail``, ``bp_post``).

    :param overwrite: Replace a file at ``out`` (``False``: refuse one, even one that
        appeared while the report was made).
    """
    from fusion.storage.atomic import atomic_output

    names = [axis["key"] for axis in report["axes"]]
    stats = ("n", "mean", "std", "ci95_low", "ci95_high")
    with atomic_output(Path(out), replace=overwrite) as handle:
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow([*names, "status", *(f"{m}_{s}" for m in METRICS for s in stats)])
        for p in report["points"]:
            writer.writerow(
                [
                    *(p["point"][n] for n in names),
                    p["status"],
                    *(p[m][s] if p[m][s] is not None else "" for m in METRICS for s in stats),
                ]
            )
        handle.write(text.getvalue().encode())


def plot_study(report: Mapping[str, Any], out: str | os.PathLike[str]) -> Any:
    """Blocking against load, one line per series value, 95% intervals as error bars (log y);
    the failure window's blocking as a second panel when the study has failures.

    A point without a complete seed has no figure: it is left out of its line (a note on the
    figure names it); a study with no point to draw is refused.

    :return: The matplotlib figure (closed; its axes stay readable for tests).
    :raises DatasetError: when no point has a complete seed (no empty figure is written).
    """
    require("matplotlib", "plot", "--plot").use("Agg")
    plt = require("matplotlib.pyplot", "plot", "--plot")
    ticker = require("matplotlib.ticker", "plot", "--plot")
    names = [axis["key"] for axis in report["axes"]]
    x_name = load_axis(names)
    series = series_axis(names)
    fixed = [n for n in names if n not in (x_name, series)]
    empty = [p for p in report["points"] if not p["bp"]["n"]]
    if len(empty) == len(report["points"]):
        raise DatasetError(
            f"{report['study']}: no point has a complete seed, so there is nothing to plot "
            "(no figure is drawn for no data); finish the runs (fusion sweep --resume) first"
        )
    panels = ["bp"] + (["bp_fail"] if any(p["bp_fail"]["n"] for p in report["points"]) else [])
    fig, axes = plt.subplots(1, len(panels), figsize=(6.4 * len(panels), 4.4), squeeze=False)
    x_values = _values(report, x_name)
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in x_values)
    for ax, metric in zip(axes[0], panels, strict=True):
        lines: dict[tuple[Any, ...], list[Mapping[str, Any]]] = {}
        for p in report["points"]:
            label_key = (p["point"].get(series), *(p["point"][n] for n in fixed))
            lines.setdefault(label_key, []).append(p)
        for label_key, points in lines.items():
            points = sorted(points, key=lambda p: x_values.index(p["point"][x_name]))
            shown = [p for p in points if p[metric]["n"]]
            xs = [
                p["point"][x_name] if numeric else x_values.index(p["point"][x_name]) for p in shown
            ]
            ys = [p[metric]["mean"] for p in shown]
            # one seed: no interval, a bare point
            low = [p[metric]["mean"] - (p[metric]["ci95_low"] or p[metric]["mean"]) for p in shown]
            high = [
                (p[metric]["ci95_high"] or p[metric]["mean"]) - p[metric]["mean"] for p in shown
            ]
            label = ", ".join(
                f"{name}={_text(v)}"
                for name, v in zip([series, *fixed], label_key, strict=True)
                if name
            )
            drawn = ax.errorbar(
                xs, ys, yerr=[low, high], marker="o", capsize=3, label=label or "blocking"
            )
            reach = [
                (x, p["reach"]["mean"])
                for x, p in zip(xs, shown, strict=True)
                if p["reach"]["n"] and p["reach"]["mean"] > 0
            ]
            if metric == "bp" and reach:  # the floor no policy can go below, dotted
                ax.plot(
                    [x for x, _ in reach],
                    [y for _, y in reach],
                    ls=":",
                    color=drawn.lines[0].get_color(),
                    label="_blocked by reach",  # explained in the title, not the legend
                )
        ax.set_yscale("log")
        plain = ticker.FuncFormatter(lambda y, _: f"{y:.3g}")
        ax.yaxis.set_major_formatter(plain)
        ax.yaxis.set_minor_formatter(plain)
        ax.tick_params(axis="y", which="minor", labelsize="small")
        ax.set_xlabel("Offered load (Erlang)" if x_name == "erlang" else str(x_name))
        ax.set_xticks(x_values if numeric else range(len(x_values)), [_text(v) for v in x_values])
        ax.set_ylabel(
            "Blocking probability" if metric == "bp" else "Blocking probability, failure window"
        )
        ax.set_title(
            "All requests (dotted: blocked by reach, which no policy can route)"
            if metric == "bp"
            else "During the failure (fail window)"
        )
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small", title="95% interval across seeds")
    if empty:  # left out, not drawn as 0: say so on the figure and in the log
        where = "; ".join(
            ", ".join(f"{name}={_text(v)}" for name, v in p["point"].items()) for p in empty
        )
        note = f"left out (no complete seed): {where}"
        fig.text(0.01, 0.01, note, fontsize="small", color="dimgray")
        _log.warning("%s: %s", report["study"], note)
    fig.tight_layout(rect=(0, 0.04 if empty else 0, 1, 1))
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return fig
