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


def failing_seed_task(config, seed, dataset_dir):  # type: ignore[no-untyped-def]
    """The sweep's task, except that seed 2's simulation raises."""
    from fusion.sweep import run_seed_task

    if seed != 2:
        return run_seed_task(config, seed, dataset_dir)
    import fusion.core.simulation as simulation

    original = simulation.SimulationEngine.handle_arrival

    def broken(self, request):  # type: ignore[no-untyped-def]
        if request == 100:
            raise RuntimeError("injected failure in seed 2")
        return original(self, request)

    simulation.SimulationEngine.handle_arrival = broken  # type: ignore[method-assign]
    try:
        return run_seed_task(config, seed, dataset_dir)
    finally:  # the worker process runs other seeds next
        simulation.SimulationEngine.handle_arrival = original  # type: ignore[method-assign]
