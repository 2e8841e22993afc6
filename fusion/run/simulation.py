"""One seed's run: the engine, and with logging on, its shard through the shard writer.

This is where the simulator and the storage layer meet: the engine knows only the
:class:`~fusion.sim.writer.TransitionWriter` protocol, the shard writer nothing of the engine.

    >>> import tempfile
    >>> from fusion.config.config import load_config
    >>> cfg = load_config().replace("general_settings", num_requests=300)
    >>> stats = run_simulation(cfg, 1, dataset_dir=tempfile.mkdtemp())
    >>> stats["requests"]
    300
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

from fusion.config.config import Config
from fusion.config.features import RECORD_EDITION, path_features
from fusion.errors import ManifestConflictError
from fusion.sim.engine import SimulationEngine
from fusion.storage.clearing import listed_points
from fusion.storage.ownership import Lease, holding
from fusion.storage.shard_writer import DatasetLogger


def run_simulation(
    config: Config,
    seed: int,
    *,
    dataset_dir: str | None = None,
    overwrite: bool = False,
    commit: bool = True,
    record: dict[str, Any] | None = None,
    owner: Lease | None = None,
) -> dict[str, Any]:
    """Run one seed; with logging on, write its shard through the logging core.

    :param config: The resolved config.
    :param seed: The seed.
    :param dataset_dir: Where the shard goes (default: from ``dataset_output_path``).
    :param overwrite: Rewrite the seed's shard if it is already complete.
    :param commit: Publish the shard's entry to the manifest at close (a sweep's driver
        commits instead, from ``record``).
    :param record: Filled with the shard's entry as published at close.
    :param owner: The run's lease on the directory, checked when the shard opens and before
        its record is published (``None``: the directory must not be another run's).
    :return: The run's summary stats.
    """
    if not config.dataset.log_offline_dataset:
        return SimulationEngine(config, seed).run()
    directory = dataset_dir if dataset_dir is not None else str(config.dataset_dir)
    engine_props = {**config.identity(), "seed": seed}
    with DatasetLogger.open_shard(
        directory,
        seed,
        engine_props,
        stem=config.dataset_stem,
        overwrite=overwrite,
        flush_every=config.dataset.flush_every,
        compress=config.dataset.compression,
        link_next=config.dataset.link_next_state,
        commit=commit,
        trusted=True,  # the engine builds every transition by construction
        owner=owner,
        path_features=path_features(config.dataset.path_features),
        record_edition=RECORD_EDITION,  # the engine's lines: refused into another edition's
    ) as log:
        stats = SimulationEngine(config, seed, writer=log).run()
        # blocked_by_reach beside the writer's own figures: it goes into the manifest entry
        log.record_summary(
            {"simulation": dict(stats), "blocked_by_reach": stats["blocked_by_reach"]}
        )
    if record is not None and log.record is not None:
        record.update(log.record)
    return stats


def run_one_seed(
    config: Config,
    seed: int,
    out: str | os.PathLike[str] | None = None,
    *,
    overwrite: bool = False,
) -> tuple[dict[str, Any], Path]:
    """``fusion run``: one seed into a dataset directory, holding the directory's lease while
    it writes (:mod:`fusion.storage.ownership`; ``overwrite`` may take over a gone run's).

    :param config: The resolved config.
    :param seed: The seed.
    :param out: The dataset directory (default: from ``dataset_output_path``; ``~`` expanded).
    :param overwrite: Rewrite the seed's shard if it is already complete.
    :return: The run's summary stats and the directory.
    """
    directory = Path(out).expanduser() if out is not None else config.dataset_dir
    if not config.dataset.log_offline_dataset:
        return run_simulation(config, seed), directory
    for parent in directory.resolve().parents:  # a study's point takes the study's seeds only
        points = listed_points(parent) or []
        if any((parent / p).resolve() == directory.resolve() for p in points):
            raise ManifestConflictError(
                f"{directory}: is a point of study {parent}; a seed run into it alone would not "
                "be the study's (its readers refuse the point then): add seeds to the whole "
                "study with `fusion sweep --grid ... --seeds ... --resume`, or write elsewhere"
            )
    with holding(directory, uuid.uuid4().hex, take_over=overwrite) as lease:
        stats = run_simulation(
            config, seed, dataset_dir=str(directory), overwrite=overwrite, owner=lease
        )
    return stats, directory
