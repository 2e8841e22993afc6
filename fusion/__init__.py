"""fusion: seed-parallel elastic-optical-network simulations logged as offline-RL datasets.

A short tour::

    >>> from fusion.config.config import load_config
    >>> from fusion.sim.engine import SimulationEngine
    >>> from fusion.storage.shard_writer import DatasetLogger
    >>> from fusion.storage.loader import load_dataset
    >>> from fusion.run.sweep import run_sweep

The layers, bottom to top (``pyproject.toml``'s import-linter contract, drawn in
``docs/architecture.md``; imports run one way): :mod:`fusion.errors` and :mod:`fusion.optional`
(exceptions; optional imports naming their extra), :mod:`fusion.config` (INI to a typed config;
the record's declaration, :mod:`fusion.config.features`), :mod:`fusion.sim` (the simulator and
its heuristics), :mod:`fusion.storage` (the dataset format: writer, manifest, readers),
:mod:`fusion.datasets` (arrays), :mod:`fusion.env` and :mod:`fusion.rl` (the Gymnasium env,
learners), :mod:`fusion.interop` (exports), :mod:`fusion.report` (tables and plots),
:mod:`fusion.run` (runs, sweeps, studies, evaluation), the seed card's paths
(:mod:`fusion.reporting.dataset_logger`, :mod:`fusion.modules.rl.policies`, which re-export) and
the ``fusion`` command in :mod:`fusion.cli`.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("fusion-offline")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
