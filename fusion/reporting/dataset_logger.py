"""The seed card's ``fusion.reporting.dataset_logger``: a re-export, kept so its code runs.

The shard writer is :mod:`fusion.storage.shard_writer`, the loader :mod:`fusion.storage.loader`,
epsilon-mix and the action-mask rule :mod:`fusion.sim.policies`; new code imports from there.
"""

from fusion.sim.policies import compute_action_mask, select_path_with_epsilon_mix
from fusion.storage.loader import filter_by_window, load_dataset
from fusion.storage.shard_writer import DatasetLogger

__all__ = [
    "DatasetLogger",
    "compute_action_mask",
    "filter_by_window",
    "load_dataset",
    "select_path_with_epsilon_mix",
]
