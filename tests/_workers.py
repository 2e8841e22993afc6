"""Functions that test processes run (importable under the spawn start method)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from conftest import example, write_shard

from fusion.storage.shard_writer import DatasetLogger


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


def failing_seed_task(config, seed, dataset_dir, owner=None):  # type: ignore[no-untyped-def]
    """The sweep's task, except that seed 2's simulation raises."""
    from fusion.run.sweep import run_seed_task

    if seed != 2:
        return run_seed_task(config, seed, dataset_dir, owner)
    import fusion.sim.engine as simulation

    original = simulation.SimulationEngine.decide

    def broken(self, decision, action):  # type: ignore[no-untyped-def]
        if decision.request == 100:
            raise RuntimeError("injected failure in seed 2")
        return original(self, decision, action)

    simulation.SimulationEngine.decide = broken  # type: ignore[method-assign]
    try:
        return run_seed_task(config, seed, dataset_dir, owner)
    finally:  # the worker process runs other seeds next
        simulation.SimulationEngine.decide = original  # type: ignore[method-assign]


class NeverExcludes:
    """A lock that never excludes, as ``filelock`` may be across NFS clients."""

    def __init__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        pass

    def acquire(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return self

    def release(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        pass

    def __enter__(self):  # type: ignore[no-untyped-def]
        return self

    def __exit__(self, *exc):  # type: ignore[no-untyped-def]
        pass


def write_shards_without_exclusion(directory: str, seeds: list[int], n: int) -> None:
    """Write complete shards with manifest updates under a lock that never excludes."""
    import time as _time

    from fusion.storage import manifest as mf

    mf.manifest_lock = lambda _d: NeverExcludes()  # type: ignore[assignment,return-value]
    real_write = mf._write_manifest

    def slow_write(directory, manifest):  # type: ignore[no-untyped-def]
        _time.sleep(0.002)  # widen the read-modify-write window so updates really race
        real_write(directory, manifest)

    mf._write_manifest = slow_write  # type: ignore[assignment]
    for seed in seeds:
        write_shard(Path(directory), seed, n)


def taken_over_meanwhile_task(config, seed, dataset_dir, owner=None):  # type: ignore[no-untyped-def]
    """The sweep's task, except that at seed 1 another run takes the directory over first (as
    ``--overwrite`` does once this run's lease looks gone: a suspended laptop, a partitioned
    host) and writes its own dataset there, with one more request per seed."""
    import os
    import socket

    import orjson

    from fusion.run.sweep import prepare_dataset, run_seed_task
    from fusion.storage.ownership import Lease, lease_path

    if seed == 1:
        other = config.replace("general_settings", num_requests=config.general.num_requests + 1)
        record = {"run_id": "other-run", "host": socket.gethostname(), "pid": os.getpid()}
        lease_path(dataset_dir).write_bytes(orjson.dumps(record))
        prepare_dataset(other, Path(dataset_dir), [1], False, True, "other-run")
        run_seed_task(other, 1, dataset_dir, Lease(Path(dataset_dir), "other-run"))
    return run_seed_task(config, seed, dataset_dir, owner)


def sweep_meanwhile_task(config, seed, dataset_dir, owner=None):  # type: ignore[no-untyped-def]
    """The sweep's task, except that at seed 1 it first runs ``fusion`` with the arguments in
    ``<dataset_dir>/../meanwhile.json`` (a second run started while this one runs) and records
    that command's exit code and stderr beside it."""
    import contextlib
    import io
    import json

    from fusion.cli import main
    from fusion.run.sweep import run_seed_task

    if seed == 1:
        spec = Path(dataset_dir).parent / "meanwhile.json"
        if not spec.exists():  # a study's point: the spec sits at the study's parent
            spec = Path(dataset_dir).parent.parent / "meanwhile.json"
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            code = main(json.loads(spec.read_text()))
        spec.with_name("meanwhile.out").write_text(
            json.dumps({"code": code, "err": err.getvalue()})
        )
    return run_seed_task(config, seed, dataset_dir, owner)


def removed_meanwhile_task(config, seed, dataset_dir, owner=None):  # type: ignore[no-untyped-def]
    """The sweep's task, except that at seed 1 the dataset directory is removed first."""
    import shutil

    from fusion.run.sweep import run_seed_task

    if seed == 1:
        shutil.rmtree(dataset_dir)
    return run_seed_task(config, seed, dataset_dir, owner)
