"""The seed card's five tests (section 7), as written there."""

import json

from fusion.reporting.dataset_logger import DatasetLogger


def test_dataset_logger_creates_file(tmp_path):
    """Test that JSONL file created at specified path."""
    output_path = tmp_path / "test_data.jsonl"
    engine_props = {"seed": 42}

    logger = DatasetLogger(str(output_path), engine_props)
    logger.close()

    assert output_path.exists()


def test_transition_logged_correctly(tmp_path):
    """Test that logged transition matches expected schema."""
    output_path = tmp_path / "test_data.jsonl"
    engine_props = {"seed": 42}

    logger = DatasetLogger(str(output_path), engine_props)

    state = {
        "src": 0,
        "dst": 5,
        "slots_needed": 2,
        "est_remaining_time": 1.5,
        "is_disaster": 0,
        "paths": [
            {
                "path_hops": 3,
                "min_residual_slots": 10,
                "frag_indicator": 0.2,
                "failure_mask": 0,
                "dist_to_disaster_centroid": 0,
            }
        ],
    }

    logger.log_transition(
        state=state,
        action=0,
        reward=1.0,
        next_state=None,
        action_mask=[True],
        meta={"decision_time_ms": 0.5, "bp_window_tag": "pre"},
    )

    logger.close()

    with open(output_path) as f:
        transition = json.loads(f.readline())

    assert transition["t"] == 0
    assert transition["seed"] == 42
    assert transition["state"]["src"] == 0
    assert transition["action"] == 0
    assert transition["reward"] == 1.0
    assert transition["action_mask"] == [True]
    assert transition["meta"]["bp_window_tag"] == "pre"


def test_epsilon_mix_selects_second_best():
    """Test that second-best path selected with epsilon probability."""
    from fusion.modules.rl.policies import KSPFFPolicy
    from fusion.reporting.dataset_logger import select_path_with_epsilon_mix

    policy = KSPFFPolicy()
    state = {}
    action_mask = [True, True, True, False]

    selected = select_path_with_epsilon_mix(policy, state, action_mask, epsilon=1.0)
    assert selected == 1

    selected = select_path_with_epsilon_mix(policy, state, action_mask, epsilon=0.0)
    assert selected == 0


def test_action_mask_logged(tmp_path):
    """Test that action_mask array logged correctly (the card defers to the test above; we check)."""
    output_path = tmp_path / "test_data.jsonl"
    path = {
        "path_hops": 3,
        "min_residual_slots": 10,
        "frag_indicator": 0.2,
        "failure_mask": 0,
        "dist_to_disaster_centroid": 0,
    }
    with DatasetLogger(str(output_path), {"seed": 42}) as logger:
        logger.log_transition(
            state={"src": 0, "dst": 1, "paths": [path] * 4},
            action=3,
            reward=1.0,
            next_state=None,
            action_mask=[False, True, False, True],
            meta={"bp_window_tag": "post"},
        )
    with open(output_path) as f:
        transition = json.loads(f.readline())
    assert transition["action_mask"] == [False, True, False, True]


def test_meta_fields_populated(tmp_path):
    """Test that all meta fields present in logged data."""
    output_path = tmp_path / "test_data.jsonl"
    logger = DatasetLogger(str(output_path), {"seed": 42})

    meta = {
        "decision_time_ms": 0.35,
        "restoration_latency_ms": 100,
        "bp_window_tag": "fail",
        "backup_available": True,
        "was_groomed": False,
    }

    logger.log_transition(
        state={"src": 0, "dst": 1, "paths": []},
        action=0,
        reward=1.0,
        next_state=None,
        action_mask=[True],
        meta=meta,
    )

    logger.close()

    with open(output_path) as f:
        transition = json.loads(f.readline())

    assert all(key in transition["meta"] for key in meta)
