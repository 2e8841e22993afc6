"""Running a study: one pool for every (point, seed) task, through the sweep's commit protocol.

Each point is an ordinary dataset directory, prepared (checked, cleared or resumed) exactly as
a sweep prepares its one directory; then every unfinished task of every point goes to one pool
(processes or Ray), and the driver commits each point's manifest in batches and at the end.
``study.json`` is written before any task runs and again when they end (also on an
interrupt), with each point's status, while the run still holds the study's lease
(:mod:`fusion.storage.ownership`, taken at the top before anything is written).

    >>> import tempfile
    >>> from fusion.config.config import load_config
    >>> from fusion.config.grid import parse_grid
    >>> cfg = load_config().replace("general_settings", num_requests=200)
    >>> axes = parse_grid(cfg, ["policy_settings.policy=ksp_ff,shortest_feasible"])
    >>> result = run_study(cfg, axes, seeds=[0], workers=1, out=tempfile.mkdtemp(), quiet=True)
    >>> [(p.directory, [o.status for o in outs]) for p, outs in result.points]
    [('policy=ksp_ff', ['complete']), ('policy=shortest_feasible', ['complete'])]
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from fusion import __version__
from fusion.config.config import Config
from fusion.config.features import RECORD_EDITION
from fusion.config.grid import Axis, Point, grid_points
from fusion.errors import DatasetError, FusionError, ManifestConflictError
from fusion.run.sweep import (
    DatasetExistsError,
    SeedOutcome,
    Task,
    new_run_id,
    output_directory,
    plan_seeds,
    prepare_dataset,
    run_jobs,
    run_seed_task,
)
from fusion.sim.scenario import check_scenario
from fusion.storage import manifest as mf
from fusion.storage.clearing import (
    check_point_dir,
    clear_output,
    foreign_files,
    refuse_foreign_shards,
    refuse_unrecorded,
)
from fusion.storage.dataset_identity import check_same_config, config_sha256
from fusion.storage.ownership import Lease, holding
from fusion.storage.shard_entries import now_iso
from fusion.storage.statuses import (
    STATUS_COMPLETE,
    STATUS_FAILED,
    STATUS_INCOMPLETE,
    STATUS_PLANNED,
)
from fusion.storage.study_layout import STUDY_FILE, STUDY_FORMAT, read_study, write_study


@dataclass
class StudyResult:
    """How a study's tasks ended: per point, its outcomes in seed order."""

    directory: Path
    points: list[tuple[Point, list[SeedOutcome]]]
    seconds: float

    @property
    def ok(self) -> bool:
        """Whether no task failed."""
        return all(o.status != STATUS_FAILED for _, outs in self.points for o in outs)


def _status(outcomes: Sequence[SeedOutcome | None]) -> str:
    if any(o is not None and o.status == STATUS_FAILED for o in outcomes):
        return STATUS_FAILED
    if all(o is not None for o in outcomes):
        return STATUS_COMPLETE
    return STATUS_INCOMPLETE


def _record(
    config: Config, axes: Sequence[Axis], seeds: Sequence[int], points: Sequence[Point]
) -> dict[str, Any]:
    return {
        "format": STUDY_FORMAT,
        "fusion_version": __version__,
        "created": now_iso(),
        "base_config_sha256": config_sha256(config.identity()),
        "axes": [axis.to_json() for axis in axes],
        "seeds": list(seeds),
        "points": [
            {
                "point": point.coords,
                "dir": point.directory,
                "config_sha256": config_sha256(point.config.identity()),
                "status": STATUS_PLANNED,
            }
            for point in points
        ],
    }


def _check_resumable(directory: Path, record: dict[str, Any], first: Point) -> None:
    old = read_study(directory)
    where = f"{directory / STUDY_FILE}: cannot resume"
    base = "base_config_sha256"
    if old.get("axes") == record["axes"] and old.get(base) != record[base]:
        try:  # the first point's dataset says which keys differ, and how to resume
            made = mf.read_manifest(directory / first.directory)
        except FusionError:
            made = None
        if made is not None:
            check_same_config(where, made, first.config.identity())
    for key in ("base_config_sha256", "axes"):
        if old.get(key) != record[key]:
            raise ManifestConflictError(
                f"{where}: its {key} differs from this study's ({old.get(key)!r} != {record[key]!r})"
            )


def run_study(
    config: Config,
    axes: Sequence[Axis],
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
) -> StudyResult:
    """Run every point of a grid for every seed, in one pool, into one study directory.

    :param config: The base config (its erlang range, if any, is already an axis).
    :param axes: The study's axes (:func:`~fusion.config.grid.parse_grid`).
    :param seeds: Seeds of every point (default: the config's).
    :param workers: Parallel tasks (default: the machine's cores).
    :param out: The study directory (default: from ``dataset_output_path``).
    :param backend: ``local`` or ``ray``.
    :param ray_address: A Ray cluster to join.
    :param resume: Keep every point's good shards, run the rest.
    :param overwrite: Replace an existing study.
    :param quiet: No progress bar.
    :param task: What runs one seed.
    :raises DatasetExistsError: when ``out`` holds data and neither resume nor overwrite.
    :raises ManifestConflictError: when resuming a study of other axes or another config.
    :raises DirectoryBusyError: when another run holds ``out``.
    :raises RunConflictError: when another run took ``out`` over meanwhile, or it was removed.
    """
    planned = plan_seeds(config, seeds, resume, overwrite)
    points = grid_points(config, axes)
    directory = output_directory(out, config)
    if resume:
        points = _recorded_directories(directory, points)
    for point in points:  # every point's keys together, before anything is written
        check_scenario(point.config)
    started = time.monotonic()
    with holding(directory, new_run_id(), take_over=resume or overwrite) as lease:
        outcomes = _run_held(
            lease,
            points,
            planned,
            _record(config, axes, planned, points),
            resume,
            overwrite,
            workers=workers,
            backend=backend,
            ray_address=ray_address,
            quiet=quiet,
            task=task,
        )
    return StudyResult(
        directory,
        [
            (point, [o for o in outs.values() if o is not None])
            for point, outs in zip(points, outcomes, strict=True)
        ],
        time.monotonic() - started,
    )


def _recorded_directories(directory: Path, points: list[Point]) -> list[Point]:
    """The points with the directories an existing ``study.json`` records for their
    coordinates (a study made before the names were encoded keeps its own), else as named."""
    try:
        recorded = read_study(directory)["points"]
    except DatasetError:
        return points
    dirs = {orjson.dumps(p["point"], option=orjson.OPT_SORT_KEYS): p["dir"] for p in recorded}
    return [
        dataclasses.replace(
            point,
            directory=dirs.get(
                orjson.dumps(point.coords, option=orjson.OPT_SORT_KEYS), point.directory
            ),
        )
        for point in points
    ]


def _run_held(
    lease: Lease,
    points: Sequence[Point],
    planned: list[int],
    record: dict[str, Any],
    resume: bool,
    overwrite: bool,
    *,
    workers: int | None,
    backend: str,
    ray_address: str | None,
    quiet: bool,
    task: Task,
) -> list[dict[int, SeedOutcome | None]]:
    """A study's work while it holds its directory: prepare, run, record each point."""
    directory = lease.directory
    occupied = bool(foreign_files(directory))
    if occupied and not (resume or overwrite):
        refuse_unrecorded(directory, "a new study goes into one")
        raise DatasetExistsError(
            f"{directory} is not empty; pass --resume to complete it or --overwrite to replace it"
        )
    if occupied and resume:
        refuse_unrecorded(directory, "--resume completes only a fusion study")
    if occupied and resume and (directory / STUDY_FILE).exists():
        _check_resumable(directory, record, points[0])
        # the points keep the shards of seeds an earlier run added: the record lists them all
        old_seeds = read_study(directory).get("seeds") or []
        record["seeds"] = sorted(set(record["seeds"]) | {int(s) for s in old_seeds})
    elif occupied and resume and (directory / mf.MANIFEST_NAME).exists():
        raise DatasetExistsError(
            f"{directory} holds a dataset, not a study: pass --overwrite to replace it with "
            "this study"
        )
    for point in points:  # every check before the first file goes
        point_dir = directory / point.directory
        if point_dir.exists() or point_dir.is_symlink():
            check_point_dir(directory, point_dir)
            refuse_foreign_shards(point_dir, point.config.dataset_stem, planned)
            if resume:  # (overwrite replaces it whole)
                mf.refuse_other_edition(point_dir, RECORD_EDITION)
    if overwrite:
        clear_output(directory)  # the old study whole, or a dataset that would shadow it
    write_study(directory, record)  # (first: the points below are the study's from now on)
    run_id = lease.run_id
    jobs: list[tuple[Config, int, str]] = []
    slots: list[tuple[int, int]] = []  # (point index, seed) of each job
    outcomes: list[dict[int, SeedOutcome | None]] = []
    for index, point in enumerate(points):
        point_dir = directory / point.directory
        point_dir.mkdir(parents=True, exist_ok=True)
        kept = set(
            prepare_dataset(
                point.config, point_dir, planned, resume, False, run_id, in_study=True, owner=lease
            )
        )
        outcomes.append({s: SeedOutcome(s, "kept") if s in kept else None for s in planned})
        for seed in planned:
            if seed not in kept:
                jobs.append((point.config, seed, str(point_dir)))
                slots.append((index, seed))
    try:
        ran = run_jobs(
            jobs,
            kept=sum(1 for outs in outcomes for o in outs.values() if o is not None),
            run_id=run_id,
            owner=lease,
            workers=workers,
            backend=backend,
            ray_address=ray_address,
            quiet=quiet,
            task=task,
        )
        for (index, seed), outcome in zip(slots, ran, strict=True):
            outcomes[index][seed] = outcome
    finally:
        for entry, outs in zip(record["points"], outcomes, strict=True):
            entry["status"] = _status(list(outs.values()))
        if lease.held():  # another run's directory now: its study.json is not ours to write
            write_study(directory, record)
    return outcomes
