"""The record's declaration (fusion.config.features): since when each field exists, the one
rule that tells which path features a dataset holds, and meanings that say what is logged."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fusion.config.config import load_config
from fusion.config.features import (
    ALL_PATH_FEATURES,
    EDITIONS,
    FEATURES,
    PATH_FEATURE_SETS,
    RECORD_FIELDS,
    SEED_CARD,
    check_path_feature_list,
    feature_set_holding,
    feature_set_name,
)
from fusion.sim.engine import SimulationEngine
from fusion.sim.traffic import generate_traffic
from fusion.storage.observation import path_features_of

#: The seed card's schema (its section 4), written out here as the outside reference.
SEED_CARD_FIELDS = {
    "record": {"t", "seed", "state", "action", "reward", "next_state", "action_mask", "meta"},
    "state": {"src", "dst", "slots_needed", "est_remaining_time", "is_disaster", "paths"},
    "path": {
        "path_hops",
        "min_residual_slots",
        "frag_indicator",
        "failure_mask",
        "dist_to_disaster_centroid",
    },
    "meta": {
        "decision_time_ms",
        "restoration_latency_ms",
        "bp_window_tag",
        "backup_available",
        "was_groomed",
    },
}


def test_since_when_any_field_is_declared_names_a_known_edition():
    for group, fields in RECORD_FIELDS.items():
        for field in fields:
            assert field.since in EDITIONS, f"{group}.{field.name}: since {field.since!r}"


def test_since_when_the_field_is_the_seed_cards_is_the_first_edition_and_only_then():
    assert next(iter(EDITIONS)) == SEED_CARD
    for group, fields in RECORD_FIELDS.items():
        for field in fields:
            in_card = field.name in SEED_CARD_FIELDS[group]
            assert (field.since == SEED_CARD) == in_card, f"{group}.{field.name}"


def test_since_when_a_field_belongs_to_the_extended_set_is_not_older_than_the_set():
    order = list(EDITIONS)
    extended_only = set(PATH_FEATURE_SETS["extended"]) - set(PATH_FEATURE_SETS["seed"])
    for name in extended_only:
        assert order.index(FEATURES[name].since) > order.index(SEED_CARD), name


def test_feature_set_holding_when_a_list_is_recorded_returns_it_not_a_guess():
    recorded = ["path_hops", "free_slots"]
    assert feature_set_holding(["path_hops"], recorded=recorded) == tuple(recorded)
    # without it, the data made before says what it holds (here: one feature), in the
    # declaration's order
    assert feature_set_holding(["path_hops"]) == ("path_hops",)
    assert feature_set_holding(["free_slots", "path_hops"]) == tuple(recorded)


def test_feature_set_holding_when_data_holds_more_than_recorded_raises_naming_it():
    with pytest.raises(ValueError, match="length_km"):
        feature_set_holding(["path_hops", "length_km"], recorded=PATH_FEATURE_SETS["seed"])
    with pytest.raises(ValueError, match="13 features per path"):
        feature_set_holding(count=13, recorded=PATH_FEATURE_SETS["seed"])


@pytest.mark.parametrize("name", sorted(PATH_FEATURE_SETS))
def test_feature_set_holding_when_nothing_is_recorded_guesses_by_names_or_count(name):
    features = PATH_FEATURE_SETS[name]
    assert feature_set_holding(features) == features
    assert feature_set_holding(count=len(features)) == features
    assert path_features_of(5 + 4 * len(features), 4) == features
    assert feature_set_name(features) == name


def test_path_features_of_when_recorded_list_is_given_takes_it_and_checks_the_width():
    recorded = ("path_hops", "length_km", "free_slots")  # (in the declaration's order)
    assert path_features_of(5 + 3 * 4, 4, recorded) == recorded
    with pytest.raises(ValueError, match="does not fit"):
        path_features_of(5 + 5 * 4, 4, recorded)


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["path_hops", "links"], "not path features"),
        (["path_hops", "src"], "not path features"),
        (["free_slots", "free_slots"], "more than once"),
        (["free_slots", "path_hops"], "the declaration's order"),
        ("path_hops", "a list"),
    ],
)
def test_check_path_feature_list_when_not_declared_twice_or_out_of_order_raises(names, message):
    with pytest.raises(ValueError, match=message):
        check_path_feature_list(names)


def test_all_path_features_when_listed_are_every_sets_in_observation_order():
    for features in PATH_FEATURE_SETS.values():
        assert [n for n in ALL_PATH_FEATURES if n in features] == list(features)


def _truncated_mean_factor(f: float) -> float:
    """The documented factor: mean of an exponential (mean 1) truncated below F."""
    return (1 - (1 + f) * math.exp(-f)) / (1 - math.exp(-f))


def test_est_remaining_time_when_holding_time_unknown_logs_the_configured_mean_as_documented():
    meaning = FEATURES["est_remaining_time"].meaning
    assert "[general_settings] holding_time" in meaning and "before any truncation" in meaning
    cfg = load_config().replace(
        "general_settings", num_requests=300, holding_time="3", holding_time_truncation="2"
    )
    cfg = cfg.replace("dataset_logging", holding_time_known="false")
    logged = []

    class Writer:
        def log_transition(self, state, *args, **kwargs):  # type: ignore[no-untyped-def]
            logged.append(state["est_remaining_time"])

        def record_summary(self, stats):  # type: ignore[no-untyped-def]
            pass

    SimulationEngine(cfg, 5, writer=Writer()).run()  # type: ignore[arg-type]
    assert logged and set(logged) == {cfg.general.holding_time}


def test_est_remaining_time_when_truncated_the_documented_factor_is_the_drawn_mean():
    traffic = generate_traffic(
        np.random.default_rng(11),
        200_000,
        num_nodes=14,
        erlang=300.0,
        holding_time=1.0,
        truncation=2.0,
    )
    assert traffic.holding.mean() == pytest.approx(_truncated_mean_factor(2.0), rel=0.01)
    assert traffic.holding.mean() < 0.75  # what a configured mean of 1 logs is not the mean
