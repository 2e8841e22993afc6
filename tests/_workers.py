"""Functions that test processes run (importable under the spawn start method)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from conftest import example, write_shard

from fusion.reporting.dataset_logger import DatasetLogger


def write_one_shard(directory: str, seed: int, n: int) -> str:
    """Write a complete shard; return its file name."""
    return write_shard(Path(directory), seed, n).name


def write_forever(directory: str, seed: int) -> None:
    """Open a shard and log until killed, flushing every 7 transitions."""
    log = DatasetLogger.open_shard(directory, seed, {"toy": 1}, flush_every=7)
    i = 0
    while True:
        log.log_transition(**example(i))
        i += 1
        if i % 100 == 0:
            time.sleep(0.001)


if __name__ == "__main__":
    write_forever(sys.argv[1], int(sys.argv[2]))
