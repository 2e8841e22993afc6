"""The seed card's ``fusion.modules.rl.policies``: a re-export, kept so its code runs.

The routing heuristics are part of the simulator and live in :mod:`fusion.sim.policies`;
new code imports from there.
"""

from fusion.sim.policies import (
    POLICIES,
    EpsilonMixPolicy,
    KSPFFPolicy,
    LeastCongestedPolicy,
    PathPolicy,
    RandomFeasiblePolicy,
    ShortestFeasiblePolicy,
    compute_action_mask,
    make_policy,
    select_path_with_epsilon_mix,
)

__all__ = [
    "POLICIES",
    "EpsilonMixPolicy",
    "KSPFFPolicy",
    "LeastCongestedPolicy",
    "PathPolicy",
    "RandomFeasiblePolicy",
    "ShortestFeasiblePolicy",
    "compute_action_mask",
    "make_policy",
    "select_path_with_epsilon_mix",
]
