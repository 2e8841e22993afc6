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

from typing import Any

from fusion.config.config import Config
from fusion.sim.engine import SimulationEngine
from fusion.storage.shard_writer import DatasetLogger


def run_simulation(
    config: Config,
    seed: int,
    *,
    dataset_dir: str | None = None,
    overwrite: bool = False,
    commit: bool = True,
    record: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run one seed; with logging on, write its shard through the logging core.

    :param config: The resolved config.
    :param seed: The seed.
    :param dataset_dir: Where the shard goes (default: from ``dataset_output_path``).
    :param overwrite: Rewrite the seed's shard if it is already complete.
    :param commit: Publish the shard's entry to the manifest at close (a sweep's driver
        commits instead, from ``record``).
    :param record: Filled with the shard's entry as published at close.
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
    ) as log:
        stats = SimulationEngine(config, seed, writer=log).run()
        # blocked_by_reach beside the writer's own figures: it goes into the manifest entry
        log.record_summary(
            {"simulation": dict(stats), "blocked_by_reach": stats["blocked_by_reach"]}
        )
    if record is not None and log.record is not None:
        record.update(log.record)
    return stats
