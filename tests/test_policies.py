"""Policies: rankings, selection, epsilon-mix, and the mask rule."""

from __future__ import annotations

import numpy as np
import pytest

from fusion.sim.policies import (
    KSPFFPolicy,
    LeastCongestedPolicy,
    RandomFeasiblePolicy,
    ShortestFeasiblePolicy,
    compute_action_mask,
    make_policy,
    select_path_with_epsilon_mix,
)

STATE = {
    "paths": [
        {"path_hops": h, "min_residual_slots": r} for h, r in [(2, 9), (4, 30), (3, 12), (5, 40)]
    ]
}


def test_policies_when_ranking_follow_their_rule_and_skip_infeasible():
    mask = [False, True, True, True]
    assert KSPFFPolicy().rank(STATE, mask) == [1, 2, 3]
    assert ShortestFeasiblePolicy().rank(STATE, mask) == [2, 1, 3]
    assert LeastCongestedPolicy().rank(STATE, mask) == [3, 1, 2]
    assert sorted(RandomFeasiblePolicy(np.random.default_rng(0)).rank(STATE, mask)) == [1, 2, 3]
    assert KSPFFPolicy().select_path(STATE, [False] * 4) == -1


def test_make_policy_when_name_unknown_names_the_known_ones():
    assert isinstance(make_policy("least_congested"), LeastCongestedPolicy)
    with pytest.raises(ValueError, match="ksp_ff"):
        make_policy("best")


def test_epsilon_mix_when_one_path_feasible_never_draws_and_takes_it():
    rng = np.random.default_rng(1)
    state_before = rng.bit_generator.state
    assert (
        select_path_with_epsilon_mix(KSPFFPolicy(), STATE, [False, False, True, False], 0.9, rng)
        == 2
    )
    assert rng.bit_generator.state == state_before
    with pytest.raises(ValueError, match="epsilon"):
        select_path_with_epsilon_mix(KSPFFPolicy(), STATE, [True, True], 1.5)


def test_compute_action_mask_when_down_short_or_unreachable_is_false():
    features = [
        {"failure_mask": 0, "largest_common_block": 5, "reach_ok": True},
        {"failure_mask": 1, "largest_common_block": 50, "reach_ok": True},
        {"failure_mask": 0, "largest_common_block": 2, "reach_ok": True},
        {"failure_mask": 0, "largest_common_block": 50, "reach_ok": False},
    ]
    assert compute_action_mask([[0, 1]] * 4, features, 3) == [True, False, False, False]
    with pytest.raises(ValueError, match="feature sets"):
        compute_action_mask([[0, 1]], features, 3)


def test_epsilon_mix_when_random_epsilon_without_rng_refuses_unseeded_draws():
    with pytest.raises(ValueError, match="seeded generator"):
        select_path_with_epsilon_mix(KSPFFPolicy(), STATE, [True, True], 0.5)
    assert select_path_with_epsilon_mix(KSPFFPolicy(), STATE, [True, True], 1.0) == 1
    assert select_path_with_epsilon_mix(KSPFFPolicy(), STATE, [True, True], 0.0) == 0


def test_seed_card_paths_when_imported_are_the_live_objects():
    from fusion.modules.rl import policies as card_policies
    from fusion.reporting import dataset_logger as card_logger
    from fusion.sim import policies
    from fusion.storage.loader import load_dataset
    from fusion.storage.shard_writer import DatasetLogger

    assert card_logger.DatasetLogger is DatasetLogger
    assert card_logger.load_dataset is load_dataset
    assert card_logger.select_path_with_epsilon_mix is policies.select_path_with_epsilon_mix
    assert card_policies.KSPFFPolicy is policies.KSPFFPolicy


def test_policies_module_when_imported_gives_the_heuristics_registry_objects():
    from fusion.sim import heuristics, policies
    from fusion.sim.heuristics import path_only, registry

    assert policies.POLICIES is registry.POLICIES is heuristics.POLICIES
    assert policies.make_policy is registry.make_policy
    assert policies.ShortestFeasiblePolicy is path_only.ShortestFeasiblePolicy
    assert policies.RandomFeasiblePolicy is path_only.RandomFeasiblePolicy
    assert isinstance(policies.make_policy("shortest_feasible"), ShortestFeasiblePolicy)
