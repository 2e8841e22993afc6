"""fusion: seed-parallel elastic-optical-network simulations logged as offline-RL datasets.

A short tour::

    >>> from fusion.reporting.dataset_logger import DatasetLogger, load_dataset
    >>> from fusion.core.simulation import SimulationEngine
    >>> from fusion.configs.config import load_config

The public surface is small on purpose: the logger and loaders in :mod:`fusion.reporting`,
the engine in :mod:`fusion.core.simulation`, the policies in :mod:`fusion.modules.rl.policies`,
sweeps in :mod:`fusion.sweep`, and the ``fusion`` command in :mod:`fusion.cli`.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("fusion-offline")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
