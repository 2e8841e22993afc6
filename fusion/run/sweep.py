"""Seed-parallel sweeps: one task per seed on local processes or on Ray.

The commit protocol, as output committers do it: the driver writes the manifest (config and
planned seeds) first; each task runs one seed's simulation, writes its shard and the shard's
sidecar, and returns its entry; the driver alone rewrites ``manifest.json``, in batches (every
:data:`COMMIT_EVERY_S` seconds and at the end). No task touches the manifest or its lock, so a
seed's cost does not grow with the sweep. A killed driver leaves sidecars, from which readers
and ``--resume`` see every shard that was closed. A task is idempotent: a rerun (Ray retries a
task whose worker died) rewrites its shard from scratch.
``resume`` keeps complete shards whose sha256 still matches and reruns every other planned
seed; it refuses a directory made with another config, or whose manifest records another record
edition (or none: made before manifests recorded it), before any shard is written.

One run owns the directory while it runs (:mod:`fusion.storage.ownership`): the driver takes
its lease before writing anything, every task checks it once per shard, every commit checks
it, and a run that lost it stops with :class:`~fusion.errors.RunConflictError`.

    >>> import tempfile
    >>> from fusion.config.config import load_config
    >>> cfg = load_config().replace("general_settings", num_requests=500)
    >>> result = run_sweep(cfg, seeds=[0, 1], workers=1, out=tempfile.mkdtemp(), quiet=True)
    >>> [r.status for r in result.seeds]
    ['complete', 'complete']
"""

from __future__ import annotations

import logging
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from fusion.config.config import Config, check_seed
from fusion.config.features import RECORD_EDITION, path_features
from fusion.errors import DatasetError, FusionError, RunConflictError
from fusion.errors import DatasetExistsError as DatasetExistsError  # (its home: errors.py)
from fusion.optional import require
from fusion.run.pool import run_local, sigterm_as_interrupt
from fusion.run.simulation import run_simulation
from fusion.sim.scenario import check_scenario
from fusion.storage import manifest as mf
from fusion.storage.clearing import (
    clear_output,
    foreign_files,
    is_recorded,
    refuse_foreign_shards,
    refuse_unrecorded,
)
from fusion.storage.dataset_identity import check_same_config
from fusion.storage.integrity import file_sha256
from fusion.storage.ownership import Lease, holding, refuse_if_held
from fusion.storage.shard_entries import compact_entry, read_sidecar
from fusion.storage.shard_names import shard_file_name, sidecar_path
from fusion.storage.statuses import STATUS_COMPLETE, STATUS_FAILED
from fusion.storage.study_layout import is_study

logger = logging.getLogger(__name__)

BACKENDS = ("local", "ray")
COMMIT_EVERY_S = 2.0


@dataclass
class SeedOutcome:
    """How one seed's task ended.

    :param seed: The seed.
    :param status: ``complete``, ``failed`` or ``kept`` (resumed: its shard was already good).
    :param stats: The simulation's summary stats (empty when failed).
    :param error: The error, when failed.
    :param entry: The shard's entry as its writer published it in the sidecar (for the
        driver to commit); empty when the worker died before closing it.
    :param lost: Why the run no longer holds its directory, when the task found that out
        (the driver then stops the whole run).
    """

    seed: int
    status: str
    stats: dict[str, Any] = field(default_factory=dict)
    error: str = ""
    entry: dict[str, Any] = field(default_factory=dict)
    lost: str = ""


@dataclass
class SweepResult:
    """A sweep's outcome: where the dataset is and how every seed ended."""

    dataset_dir: Path
    seeds: list[SeedOutcome]
    seconds: float

    @property
    def ok(self) -> bool:
        """Whether no seed failed."""
        return all(s.status != STATUS_FAILED for s in self.seeds)


def new_run_id() -> str:
    """A fresh id for one sweep or study run (what its manifests name as their writer)."""
    return uuid.uuid4().hex


def run_seed_task(
    config: Config, seed: int, dataset_dir: str, owner: Lease | None = None
) -> SeedOutcome:
    """One seed's task (module-level so it pickles for processes and Ray).

    :param config: The resolved config.
    :param seed: The seed.
    :param dataset_dir: The dataset directory.
    :param owner: The run's lease, checked when the shard opens and before its record is
        published: a run that lost its directory writes no further shard.
    """
    entry: dict[str, Any] = {}
    try:
        stats = run_simulation(
            config,
            seed,
            dataset_dir=dataset_dir,
            overwrite=True,
            commit=False,
            record=entry,
            owner=owner,
        )
    except RunConflictError as exc:  # not ours any more: touch nothing, stop the run
        return SeedOutcome(seed, STATUS_FAILED, error=str(exc), lost=str(exc))
    except Exception as exc:  # the logger recorded the shard failed; report and go on
        # the CLI prints one line per failed seed (its error); the traceback only with -v
        logger.debug("seed %d failed", seed, exc_info=True)
        failed = read_sidecar(
            sidecar_path(Path(dataset_dir) / shard_file_name(seed, config.dataset_stem))
        )
        return SeedOutcome(
            seed, STATUS_FAILED, error=f"{type(exc).__name__}: {exc}", entry=failed or {}
        )
    stats.pop("bp_timeline", None)
    return SeedOutcome(seed, STATUS_COMPLETE, stats, entry=compact_entry(entry))


def prepare_dataset(
    config: Config,
    directory: Path,
    seeds: Sequence[int],
    resume: bool,
    overwrite: bool,
    run_id: str | None = None,
    *,
    in_study: bool = False,
    owner: Lease | None = None,
) -> list[int]:
    """Check or clear a dataset directory, write its manifest; return the seeds already done
    (complete shards whose sha256 still matches, when resuming).

    :param in_study: A study's point, after the study cleared its own: files no record names
        may stay there (as at a dataset's top), and a point without a record starts afresh.
    :param owner: The run's lease (a garbled manifest is rebuilt under it).
    """
    identity = config.identity()
    if owner is not None:  # still ours, and no other run holds a directory below ours
        owner.check()
        refuse_if_held(directory, "this run", mine=owner.run_id)
    occupied = is_recorded(directory) if in_study else bool(foreign_files(directory))
    if not in_study:  # (a study checks its points before it clears anything)
        refuse_foreign_shards(directory, config.dataset_stem, seeds)
    if occupied and not (resume or overwrite):
        refuse_unrecorded(directory, "a new dataset goes into one")
        raise DatasetExistsError(
            f"{directory} is not empty; pass --resume to complete it or --overwrite to replace it"
        )
    kept: list[int] = []
    if occupied and resume and is_study(directory):
        raise DatasetExistsError(
            f"{directory} holds a study: resume it with its --grid, or pass --overwrite to "
            "replace it with this dataset"
        )
    if occupied and overwrite:
        clear_output(directory)  # a dataset, or a study that would shadow the new dataset
    elif occupied and resume:
        refuse_unrecorded(directory, "--resume completes only a fusion dataset")
        try:
            manifest = mf.read_manifest(directory)
        except FusionError:
            manifest = mf.rebuild_manifest(directory, owner=owner)
        check_same_config(f"{directory}: cannot resume", manifest, identity)
        mf.check_record_edition(directory, manifest, RECORD_EDITION)
        for entry in mf.current_entries(directory, manifest):  # sidecars a killed driver left
            path = directory / entry["file"]
            if (
                entry.get("status") == STATUS_COMPLETE
                and int(entry["seed"]) in seeds
                and path.exists()
                and file_sha256(path) == entry.get("sha256")
            ):
                kept.append(int(entry["seed"]))
    mf.init_manifest(
        directory,
        identity,
        planned_seeds=seeds,
        stem=config.dataset_stem,
        run_id=run_id,
        path_features=path_features(config.dataset.path_features),
        record_edition=RECORD_EDITION,
    )
    return kept


def _progress(total: int, quiet: bool) -> tqdm:
    return tqdm(
        total=total,
        unit="seed",
        desc="sweep",
        disable=quiet or not sys.stderr.isatty(),
        file=sys.stderr,
    )


Job = tuple[Config, int, str]
"""One task's arguments: the resolved config, the seed, the dataset directory."""
Task = Callable[[Config, int, str, Lease | None], SeedOutcome]
"""What runs one seed: a job's arguments and the run's lease."""


def _run_ray(
    task: Task,
    jobs: Sequence[tuple[Config, int, str, Lease | None]],
    workers: int,
    address: str | None,
    on_done: Callable[[int, SeedOutcome], None],
) -> None:
    ray = require("ray", "ray", "the ray backend")
    started_here = not ray.is_initialized()
    if started_here:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)
    try:
        remote = ray.remote(max_retries=3, num_cpus=1)(task)
        pending = {remote.remote(*job): i for i, job in enumerate(jobs)}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                index = pending.pop(ref)
                try:
                    outcome = ray.get(ref)
                except Exception as exc:  # a task that failed even after Ray's retries
                    outcome = SeedOutcome(
                        jobs[index][1], STATUS_FAILED, error=f"{type(exc).__name__}: {exc}"
                    )
                on_done(index, outcome)
    finally:
        if started_here:
            ray.shutdown()


def _interrupted_entries(directory: Path, stem: str, seeds: Sequence[int]) -> list[dict[str, Any]]:
    """``failed`` entries for the started, unfinished shards of an interrupted sweep."""
    entries = []
    for seed in seeds:
        name = shard_file_name(seed, stem)
        if (directory / name).exists() and not sidecar_path(directory / name).exists():
            entries.append(
                {"seed": seed, "file": name, "status": STATUS_FAILED, "error": "interrupted"}
            )
    return entries


def run_jobs(
    jobs: Sequence[Job],
    *,
    kept: int = 0,
    workers: int | None = None,
    backend: str = "local",
    ray_address: str | None = None,
    quiet: bool = False,
    task: Task = run_seed_task,
    run_id: str | None = None,
    owner: Lease | None = None,
) -> list[SeedOutcome | None]:
    """Run seed tasks, of one dataset or of many (a study), in one pool; the driver alone
    commits each directory's manifest, in batches and at the end (also on an interrupt).

    :param jobs: ``(config, seed, directory)`` per task; each directory's manifest is made.
    :param kept: Tasks already done (shown in the progress bar's count).
    :param workers: Parallel tasks (default: the machine's cores).
    :param backend: ``local`` (processes, spawn) or ``ray``.
    :param ray_address: A Ray cluster to join (default: start a local Ray).
    :param quiet: No progress bar.
    :param task: What runs one seed (tests inject failures here).
    :param run_id: This run's id, as written into every directory's manifest: a commit into a
        directory another run has taken over since is refused (:class:`RunConflictError`).
    :param owner: The run's lease: every task gets it, every commit checks it; a run that
        lost it stops its tasks and commits nothing more.
    :raises RunConflictError: when the run lost its directory (to another run, or removed).
    :return: Each job's outcome, in job order (``None``: interrupted before it ended).
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    workers = max(1, workers or os.cpu_count() or 1)
    outcomes: list[SeedOutcome | None] = [None] * len(jobs)
    started = time.monotonic()
    bar = _progress(len(jobs) + kept, quiet)
    bar.update(kept)
    transitions = 0
    failures = 0
    pending: dict[str, list[dict[str, Any]]] = {}
    last_commit = time.monotonic()

    def commit(strict: bool = True) -> None:
        if owner is not None and any(pending.values()) and not owner.held():
            pending.clear()  # another run's directory now: write nothing there
            if strict:
                owner.check()
            return
        for directory, entries in pending.items():
            if not entries:
                continue
            try:
                mf.commit_entries(directory, entries, run_id=run_id)
            except (OSError, DatasetError):
                # the directory went or changed hands while the manifest was written: that
                # is a lost lease (named by check), not a broken dataset
                if owner is None or owner.held():
                    raise
                pending.clear()
                if strict:
                    owner.check()
                return
        pending.clear()

    def on_done(index: int, outcome: SeedOutcome) -> None:
        nonlocal transitions, failures, last_commit
        if outcome.lost:
            raise RunConflictError(outcome.lost)
        outcomes[index] = outcome
        transitions += int(outcome.stats.get("requests", 0))
        rate = transitions / max(time.monotonic() - started, 1e-9)
        if outcome.entry:
            pending.setdefault(jobs[index][2], []).append(outcome.entry)
        if outcome.status == STATUS_FAILED:
            failures += 1
            logger.error("seed %d (%s) failed: %s", outcome.seed, jobs[index][2], outcome.error)
        bar.set_postfix_str(f"{rate:,.0f} transitions/s, {failures} failed")
        bar.update(1)
        if time.monotonic() - last_commit >= COMMIT_EVERY_S:
            commit()
            last_commit = time.monotonic()

    def on_broken(index: int, exc: BaseException) -> None:
        on_done(index, SeedOutcome(jobs[index][1], STATUS_FAILED, error=f"worker died: {exc}"))

    tasks = [(*job, owner) for job in jobs]
    try:
        with sigterm_as_interrupt():
            if jobs and backend == "local":
                run_local(task, tasks, workers, on_done, on_broken)
            elif jobs:
                _run_ray(task, tasks, workers, ray_address, on_done)
    except KeyboardInterrupt:
        for (config, seed, directory), outcome in zip(jobs, outcomes, strict=True):
            if outcome is None:
                pending.setdefault(directory, []).extend(
                    _interrupted_entries(Path(directory), config.dataset_stem, [seed])
                )
        raise
    finally:
        bar.close()
        commit(strict=False)  # also on an interrupt: what closed is kept (while ours)
    if owner is not None:
        owner.check()  # a run that lost its directory meanwhile fails, naming who took it
    return outcomes


def output_directory(out: str | os.PathLike[str] | None, config: Config) -> Path:
    """The directory a run writes (``out``, else the config's ``dataset_output_path``), with
    ``~`` expanded and checked to be no file.

    :raises DatasetExistsError: when it (or a parent) is a file.
    """
    directory = Path(out).expanduser() if out is not None else config.dataset_dir
    if any(len(part.encode()) > 200 for part in directory.parts):  # (its files add to a name)
        raise DatasetExistsError(
            f"{directory}: a name in this path is over 200 bytes; the file system takes 255 "
            "and a dataset's file names add to it: use a shorter name"
        )
    for path in (directory, *directory.parents):
        if path.exists() and not path.is_dir():
            raise DatasetExistsError(
                f"{directory}: {path} is a file, not a directory; --out names the directory "
                "a dataset or study is written to"
            )
    return directory


def plan_seeds(
    config: Config, seeds: Iterable[int] | None, resume: bool, overwrite: bool
) -> list[int]:
    """The sorted, checked seeds a sweep (or a study) runs, after checking its options and
    the config across keys (:func:`fusion.sim.scenario.check_scenario`), before any worker.

    :raises ValueError: for resume with overwrite, logging off, or a seed out of range.
    :raises ConfigError: for keys that do not fit together or the network.
    """
    check_scenario(config)
    if resume and overwrite:
        raise ValueError("resume and overwrite exclude each other")
    if not config.dataset.log_offline_dataset:
        raise ValueError("[dataset_logging] log_offline_dataset is false: a sweep writes a dataset")
    return sorted({check_seed(s) for s in (seeds if seeds is not None else config.general.seeds)})


def run_sweep(
    config: Config,
    *,
    seeds: Iterable[int] | None = None,
    workers: int | None = None,
    out: str | os.PathLike[str] | None = None,
    backend: str = "local",
    ray_address: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    quiet: bool = False,
    task: Task = run_seed_task,
) -> SweepResult:
    """Run every seed of a config in parallel into one dataset directory.

    :param config: The resolved config (logging must be on).
    :param seeds: Seeds to run (default: the config's).
    :param workers: Parallel tasks (default: the machine's cores).
    :param out: The dataset directory (default: from ``dataset_output_path``).
    :param backend: ``local`` (processes, spawn) or ``ray``.
    :param ray_address: A Ray cluster to join (default: start a local Ray).
    :param resume: Keep complete shards whose sha256 matches; rerun the other seeds.
    :param overwrite: Replace an existing dataset.
    :param quiet: No progress bar.
    :param task: What runs one seed (tests inject failures here).
    :raises DatasetExistsError: when ``out`` holds data and neither resume nor overwrite,
        or is a file.
    :raises ForeignDirectoryError: when ``out`` holds files no fusion record names and
        resume or overwrite was asked for.
    :raises DirectoryBusyError: when another run holds ``out``.
    :raises ManifestConflictError: when resuming a dataset of another config.
    :raises RunConflictError: when another run took ``out`` over meanwhile, or it was removed.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    planned = plan_seeds(config, seeds, resume, overwrite)
    directory = output_directory(out, config)
    started = time.monotonic()
    run_id = new_run_id()
    with holding(directory, run_id, take_over=resume or overwrite) as lease:
        kept = prepare_dataset(config, directory, planned, resume, overwrite, run_id, owner=lease)
        outcomes = {seed: SeedOutcome(seed, "kept") for seed in kept}
        jobs = [(config, seed, str(directory)) for seed in planned if seed not in outcomes]
        ran = run_jobs(
            jobs,
            kept=len(kept),
            workers=workers,
            backend=backend,
            ray_address=ray_address,
            quiet=quiet,
            task=task,
            run_id=run_id,
            owner=lease,
        )
    outcomes.update((o.seed, o) for o in ran if o is not None)
    return SweepResult(
        directory, [outcomes[s] for s in planned if s in outcomes], time.monotonic() - started
    )
