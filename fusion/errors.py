"""The exceptions fusion raises on purpose.

Every error names what was wrong (a file, a section and key, a field, a seed) and what was
expected, so that a user can fix it without reading the source.
"""

from __future__ import annotations


class FusionError(Exception):
    """Base class of every error fusion raises on purpose."""


class ConfigError(FusionError, ValueError):
    """A configuration file, section, key or value is not what fusion expects."""


class DatasetError(FusionError):
    """A dataset (manifest, shard or line) is missing, unreadable or inconsistent."""


class RunConflictError(DatasetError):
    """Another run took this dataset over (an ``--overwrite`` while this one ran): this run's
    results are no longer what the directory holds."""


class DirectoryBusyError(DatasetError):
    """Another run holds this directory (its lease, :mod:`fusion.storage.ownership`): a second
    run refuses to start there."""


class ForeignDirectoryError(DatasetError):
    """A directory holds files that no fusion record (manifest, sidecar, ``study.json``)
    names: fusion neither clears nor resumes it."""


class ShardBusyError(DatasetError):
    """Another writer holds the shard of this seed in this dataset directory."""


class ShardExistsError(DatasetError):
    """The shard of this seed is already complete and overwriting was not asked for."""


class ShardWriteError(DatasetError):
    """Writing or closing a shard failed (a full disk, an I/O error); the shard is ``failed``."""


class ManifestConflictError(DatasetError):
    """The manifest was made with another configuration or schema than this writer's."""


class OutputConflictError(FusionError, ValueError):
    """An output path the output guard (:mod:`fusion.storage.outputs`) refuses: a file the
    command reads, a file of a dataset or study, an existing file without ``--overwrite``, or
    a path of the wrong kind (a directory where a file is written, or the other way round)."""


class UsageError(FusionError):
    """A command line that asks for something impossible (exit 2)."""


class SeedsNotFoundError(DatasetError):
    """``--seeds`` names seeds the input does not have: a usage error (exit 2)."""


class MinariIdExistsError(DatasetError):
    """The Minari dataset id is taken (Minari never overwrites one)."""


class MinariStudyError(DatasetError):
    """A study the Minari export refuses: one merged into one file (no config per point), or
    one whose points differ in more than the behaviour (one dataset, one environment)."""


class PolicySpecError(FusionError, ValueError):
    """A ``--policy`` that is neither a heuristic's name nor a readable model file."""


class DatasetExistsError(FusionError):
    """The output directory holds data and neither resume nor overwrite was asked for."""


class MissingDependencyError(FusionError, ImportError):
    """An optional package a feature needs is not installed; the message names the extra."""


__all__ = [
    "ConfigError",
    "DatasetError",
    "DatasetExistsError",
    "DirectoryBusyError",
    "ForeignDirectoryError",
    "FusionError",
    "ManifestConflictError",
    "MinariIdExistsError",
    "MinariStudyError",
    "MissingDependencyError",
    "OutputConflictError",
    "PolicySpecError",
    "RunConflictError",
    "SeedsNotFoundError",
    "ShardBusyError",
    "ShardExistsError",
    "ShardWriteError",
    "UsageError",
]
