"""Across-seed statistics: mean, sample standard deviation and the 95% confidence interval
of the mean (Student's t, clipped to [0, 1] for a probability; undefined for one seed), as
every table of fusion reports them.

    >>> interval([0.25, 0.5, 0.75])["mean"]
    0.5
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

# two-sided 95% Student t quantiles for 1..30 degrees of freedom; 1.96 beyond
_T95 = [
    12.706,
    4.303,
    3.182,
    2.776,
    2.571,
    2.447,
    2.365,
    2.306,
    2.262,
    2.228,
    2.201,
    2.179,
    2.160,
    2.145,
    2.131,
    2.120,
    2.110,
    2.101,
    2.093,
    2.086,
    2.080,
    2.074,
    2.069,
    2.064,
    2.060,
    2.056,
    2.052,
    2.048,
    2.045,
    2.042,
]


def interval(values: Sequence[float], bounds: tuple[float, float] | None = None) -> dict[str, Any]:
    """Mean, sample std and 95% interval of the mean: Student's t with n - 1 degrees of
    freedom, clipped to ``bounds`` (a probability's [0, 1]). With fewer than two values the
    std and the interval are undefined (``None``), not 0; with none, so is the mean.

    :param values: One figure per seed.
    :param bounds: The figure's range, e.g. ``(0.0, 1.0)`` for a blocking probability.

        >>> interval([0.1])["ci95_low"] is None, interval([0.0, 0.02], (0.0, 1.0))["ci95_low"]
        (True, 0.0)
        >>> interval([])["mean"] is None
        True
    """
    n = len(values)
    if not n:  # no figure at all: no mean either (a table shows "-", a plot leaves it out)
        return {"n": 0, "mean": None, "std": None, "ci95_low": None, "ci95_high": None}
    mean = sum(values) / n
    if n < 2:
        return {"n": n, "mean": mean, "std": None, "ci95_low": None, "ci95_high": None}
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    half = (_T95[n - 2] if n <= 31 else 1.96) * std / math.sqrt(n)
    low, high = mean - half, mean + half
    if bounds is not None:
        low, high = max(low, bounds[0]), min(high, bounds[1])
    return {"n": n, "mean": mean, "std": std, "ci95_low": low, "ci95_high": high}


#: A probability's range, for :func:`interval`.
PROBABILITY = (0.0, 1.0)


def describe(agg: dict[str, Any], percent: bool = False) -> str:
    """``mean ± std [low, high]``, or ``mean (one seed: no interval)`` when undefined.

    :param agg: From :func:`interval`.
    :param percent: As signed percentages (relative differences).

        >>> describe(interval([0.1, 0.2], PROBABILITY))
        '0.1500 ± 0.0707 [0.0000, 0.7853]'
    """
    number = "{:+.2%}" if percent else "{:.4f}"
    if agg["std"] is None:
        return number.format(agg["mean"]) + f" (n={agg['n']}: no interval)"
    return (
        f"{number.format(agg['mean'])} ± {number.format(agg['std'])} "
        f"[{number.format(agg['ci95_low'])}, {number.format(agg['ci95_high'])}]"
    )
