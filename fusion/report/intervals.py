"""Across-seed statistics: mean, sample standard deviation and the 95% confidence interval
of the mean (Student's t), as every table of fusion reports them.

    >>> interval([0.25, 0.5, 0.75])["mean"]
    0.5
"""

from __future__ import annotations

import math
from collections.abc import Sequence

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


def interval(values: Sequence[float]) -> dict[str, float]:
    """Mean, sample std and 95% CI of the mean (half-width 0 for fewer than 2 values)."""
    n = len(values)
    mean = sum(values) / n if n else 0.0
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    t = _T95[n - 2] if 2 <= n <= 31 else 1.96
    half = t * std / math.sqrt(n) if n > 1 else 0.0
    return {"n": n, "mean": mean, "std": std, "ci95_low": mean - half, "ci95_high": mean + half}
