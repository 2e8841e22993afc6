"""The benchmarks run: each quick one, tiny, prints its ratio lines (speed is never asserted)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("bench", ["logger", "sim", "features", "rl", "arrays", "size"])
def test_bench_when_run_tiny_prints_its_ratio_lines(bench):
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench.py"), bench, "-n", "1500"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = [line for line in done.stdout.splitlines() if re.search(r"\d\.\d\dx", line)]
    assert len(lines) >= 2, done.stdout
