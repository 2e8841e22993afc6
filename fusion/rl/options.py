"""Argparse types of the training scripts' numeric options: each refuses a value outside its
range (argparse then exits 2 naming the option, the value and the range), so a bad option
fails before any data is read, never with a traceback or a model of NaN weights.

    >>> int_in(1, 10)("3"), float_in(0.0, 1.0, high_open=True)("0.5")
    (3, 0.5)
    >>> float_in(0.0, 1e6)("nan")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: expected a finite number in [0, 1e+06], got 'nan'
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

from fusion.config.config import MAX_SEED

#: Training seeds: what a dataset's seeds may be, so any seed the data has can be given.
SEED_RANGE = (0, MAX_SEED)


def int_in(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: an integer in ``low .. high``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"expected an integer in {low} .. {high}, got {text!r}"
            )
        return value

    return parse


def float_in(
    low: float, high: float, *, low_open: bool = False, high_open: bool = False
) -> Callable[[str], float]:
    """An argparse type: a finite number in ``[low, high]`` (``(`` / ``)`` when open)."""
    shown = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        ok = (
            math.isfinite(value)
            and (low < value if low_open else low <= value)
            and (value < high if high_open else value <= high)
        )
        if not ok:
            raise argparse.ArgumentTypeError(f"expected a finite number in {shown}, got {text!r}")
        return value

    return parse
