"""The write path's checks, flush policy and lifecycle."""

from __future__ import annotations

import math
import pickle

import numpy as np
import orjson
import pytest
from conftest import example
from hypothesis import given
from hypothesis import strategies as st

from fusion.storage.line_check import count_nulls
from fusion.storage.shard_writer import DatasetLogger


def _lines(path):
    return path.read_bytes().splitlines(keepends=True)


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda kw: kw.update(reward=math.nan), "reward"),
        (lambda kw: kw.update(reward=math.inf), "reward"),
        (
            lambda kw: kw["state"]["paths"][1].update(frag_indicator=math.nan),
            "state.paths[1].frag_indicator",
        ),
        (lambda kw: kw["state"].update(est_remaining_time=-math.inf), "state.est_remaining_time"),
        (lambda kw: kw["meta"].update(decision_time_ms=np.float64("nan")), "meta.decision_time_ms"),
    ],
)
def test_log_transition_when_non_finite_raises_naming_field_and_writes_nothing(
    tmp_path, mutate, field
):
    path = tmp_path / "d.jsonl"
    with DatasetLogger(path, {"seed": 1}, flush_every=1) as log:
        log.log_transition(**example(0))
        bad = example(1)
        mutate(bad)
        with pytest.raises(ValueError, match=field.replace("[", r"\[").replace("]", r"\]")):
            log.log_transition(**bad)
        log.log_transition(**example(2))
    lines = _lines(path)
    assert len(lines) == 2
    assert [orjson.loads(line)["t"] for line in lines] == [0, 1]


@pytest.mark.parametrize(
    ("action", "mask"),
    [(2, [True, True, False, True]), (4, [True] * 4), (-2, [True] * 4), (True, [True] * 4)],
)
def test_log_transition_when_action_illegal_raises(tmp_path, action, mask):
    kw = example(0)
    kw.update(action=action, action_mask=mask)
    with (
        DatasetLogger(tmp_path / "d.jsonl", {"seed": 1}) as log,
        pytest.raises(ValueError, match="action"),
    ):
        log.log_transition(**kw)
    assert log.transition_count == 0


def test_log_transition_when_one_record_repeated_past_t_ten_writes_and_tallies_each(tmp_path):
    # the seed card's way: one state logged over and over (the writer compares such a line
    # with the last one accepted); t gains a digit at 10
    kw = example(0)
    with DatasetLogger(tmp_path / "d.jsonl", {"seed": 1}, flush_every=4) as log:
        for _ in range(12):
            log.log_transition(**kw)
    lines = [orjson.loads(line) for line in _lines(tmp_path / "d.jsonl")]
    assert [r["t"] for r in lines] == list(range(12))
    assert all({k: r[k] for k in kw} == kw for r in lines)
    assert log.stats()["accepted"] == 12 and log.stats()["path_chosen"] == [12, 0, 0, 0]


@pytest.mark.parametrize("repeats", [1, 10])
@pytest.mark.parametrize(
    "change",
    [
        {"action": 2},  # a digit away from the feasible 0 and 3, the same mask
        {"action": 1, "action_mask": [True, False, False, True]},  # the mask's shape is the same
        {"reward": -1.0},  # the sign is no digit
        {"action": -1},  # (reward +1.0 kept)
        {"action": 3, "reward": -1.0},
    ],
)
def test_log_transition_when_repeated_record_differs_in_action_or_reward_refuses_it(
    tmp_path, repeats, change
):
    kw = example(0)
    with DatasetLogger(tmp_path / "d.jsonl", {"seed": 1}) as log:
        for _ in range(repeats):
            log.log_transition(**kw)
        with pytest.raises(ValueError, match=rf"t={repeats}: (action|reward)"):
            log.log_transition(**{**kw, **change})
        log.log_transition(**kw)
    assert log.transition_count == repeats + 1


def test_log_transition_when_numpy_or_integer_values_writes_python_kinds(tmp_path):
    kw = example(0)  # action 0, reward 1.0
    path = tmp_path / "d.jsonl"
    with DatasetLogger(path, {"seed": 1}) as log:
        log.log_transition(**kw)
        log.log_transition(**{**kw, "reward": 1})  # an integer reward is written 1.0
        log.log_transition(**{**kw, "action": np.int64(0), "reward": np.float32(1.0)})
        log.log_transition(**{**kw, "action_mask": np.array(kw["action_mask"])})
    lines = _lines(path)
    assert len({line.split(b",", 1)[1] for line in lines}) == 1  # each as the first, t aside
    assert b'"reward":1.0,' in lines[1]
    assert log.stats()["path_chosen"] == [4, 0, 0, 0]


def test_log_transition_when_mask_length_differs_from_paths_raises(tmp_path):
    kw = example(0)
    kw["action_mask"] = [True, False]
    kw["action"] = 0
    with (
        DatasetLogger(tmp_path / "d.jsonl", {"seed": 1}) as log,
        pytest.raises(ValueError, match="paths"),
    ):
        log.log_transition(**kw)


def test_log_transition_when_none_in_callers_meta_field_writes_null(tmp_path):
    # meta may hold a caller's own facts, null among them; a declared field may not be null
    kw = example(0)
    kw["meta"]["note"] = None
    with DatasetLogger(tmp_path / "d.jsonl", {"seed": 1}) as log:
        log.log_transition(**kw)
        bad = example(1)
        bad["meta"]["restoration_latency_ms"] = None
        with pytest.raises(ValueError, match=r"t=1: meta\.restoration_latency_ms is None"):
            log.log_transition(**bad)
    assert b'"note":null' in (tmp_path / "d.jsonl").read_bytes()


def test_flush_when_every_three_writes_whole_lines_in_batches(tmp_path):
    path = tmp_path / "d.jsonl"
    log = DatasetLogger(path, {"seed": 1}, flush_every=3)
    for i in range(2):
        log.log_transition(**example(i))
    assert path.read_bytes() == b""
    log.log_transition(**example(2))
    assert len(_lines(path)) == 3 and path.read_bytes().endswith(b"\n")
    log.log_transition(**example(3))
    assert len(_lines(path)) == 3
    log.close()
    assert len(_lines(path)) == 4


def test_logger_when_closed_twice_is_harmless_and_use_after_close_raises(tmp_path):
    log = DatasetLogger(tmp_path / "d.jsonl", {"seed": 1})
    log.close()
    log.close()
    with pytest.raises(ValueError, match="closed"):
        log.log_transition(**example(0))


def test_logger_when_pickled_refuses_and_says_build_in_worker(tmp_path):
    with (
        DatasetLogger(tmp_path / "d.jsonl", {"seed": 1}) as log,
        pytest.raises(TypeError, match="worker"),
    ):
        pickle.dumps(log)


@pytest.mark.parametrize("flush_every", [0, -1, 1.5, True])
def test_logger_when_flush_every_invalid_raises(tmp_path, flush_every):
    with pytest.raises(ValueError, match="flush_every"):
        DatasetLogger(tmp_path / "d.jsonl", {"seed": 1}, flush_every=flush_every)


def test_logger_when_written_hash_matches_file(tmp_path):
    import hashlib

    path = tmp_path / "d.jsonl"
    with DatasetLogger(path, {"seed": 1}, flush_every=7) as log:
        for i in range(50):
            log.log_transition(**example(i))
    assert log.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert log.bytes_written == path.stat().st_size


def test_logger_when_link_next_fills_next_state_and_skips_a_rejected_transition(tmp_path):
    path = tmp_path / "linked.jsonl"
    steps = [example(i) for i in range(4)]
    with DatasetLogger(path, {"seed": 1}, link_next=True) as log:
        log.log_transition(**steps[0])
        assert path.read_bytes() == b""  # held back until the next one arrives
        bad = example(9)
        bad["reward"] = math.nan
        with pytest.raises(ValueError):
            log.log_transition(**bad)
        for step in steps[1:]:
            log.log_transition(**step)
    lines = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert [line["t"] for line in lines] == [0, 1, 2, 3]
    assert [line["next_state"] for line in lines] == [s["state"] for s in steps[1:]] + [None]
    assert [line["action"] for line in lines] == [s["action"] for s in steps]


# -- the trusted (engine's) writer: the first transition checked in full, the rest in bulk ----
@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda kw: kw.update(reward=math.nan), "reward"),
        (
            lambda kw: kw["state"]["paths"][1].update(frag_indicator=math.nan),
            "state.paths[1].frag_indicator",
        ),
        (lambda kw: kw["meta"].update(decision_time_ms=math.inf), "meta.decision_time_ms"),
    ],
)
def test_trusted_logger_when_non_finite_refuses_at_flush_keeping_lines_before(
    tmp_path, mutate, field
):
    path = tmp_path / "d.jsonl"
    log = DatasetLogger(path, {"seed": 1}, flush_every=100, trusted=True)
    for t in range(3):
        log.log_transition(**example(t))
    bad = example(3)
    mutate(bad)
    log.log_transition(**bad)  # accepted for now: checked when the buffer is written out
    log.log_transition(**example(4))
    pattern = "t=3: " + field.replace("[", r"\[").replace("]", r"\]")
    with pytest.raises(ValueError, match=pattern):
        log.flush()
    assert log.transition_count == 3  # the bad one and the one after it are dropped
    log.log_transition(**example(5))
    log.close()
    lines = [orjson.loads(line) for line in _lines(path)]
    assert [line["t"] for line in lines] == [0, 1, 2, 3]
    assert log.stats()["path_chosen"] == [2, 0, 0, 2]  # the dropped two are not counted


@pytest.mark.damages
def test_trusted_logger_when_non_finite_in_last_buffer_close_raises_and_shard_fails(tmp_path):
    log = DatasetLogger.open_shard(tmp_path, 1, {"x": 1}, trusted=True)
    log.log_transition(**example(0))
    bad = example(1)
    bad["state"]["est_remaining_time"] = math.nan
    log.log_transition(**bad)
    with pytest.raises(ValueError, match=r"t=1: state\.est_remaining_time"):
        log.close()
    manifest = orjson.loads((tmp_path / "manifest.json").read_bytes())
    assert [entry["status"] for entry in manifest["shards"]] == ["failed"]


def test_trusted_logger_when_linking_next_states_names_the_nan_in_the_line_holding_it(tmp_path):
    path = tmp_path / "d.jsonl"
    log = DatasetLogger(path, {"seed": 1}, link_next=True, trusted=True)
    for t in range(2):
        log.log_transition(**example(t))
    bad = example(2)
    bad["state"]["est_remaining_time"] = math.nan
    log.log_transition(**bad)
    log.log_transition(**example(3))
    # t=1's line holds t=2's state as its next_state: it is the first line with the NaN
    with pytest.raises(ValueError, match=r"t=1: next_state\.est_remaining_time"):
        log.close()
    assert [orjson.loads(line)["t"] for line in _lines(path)] == [0]


def test_trusted_logger_when_first_transition_bad_refuses_at_once(tmp_path):
    kw = example(0)
    kw["action_mask"] = [True, True]  # the state has four paths
    with (
        DatasetLogger(tmp_path / "d.jsonl", {"seed": 1}, trusted=True) as log,
        pytest.raises(ValueError, match="mask"),
    ):
        log.log_transition(**kw)


@pytest.mark.parametrize("link_next", [False, True])
def test_trusted_logger_when_transitions_good_writes_what_checked_writes(tmp_path, link_next):
    def write(name, trusted):
        with DatasetLogger(
            tmp_path / name, {"seed": 1}, flush_every=7, link_next=link_next, trusted=trusted
        ) as log:
            for t in range(30):
                log.log_transition(**example(t))
        return (tmp_path / name).read_bytes(), log.stats(), log.lines_written

    assert write("trusted.jsonl", True) == write("checked.jsonl", False)


def test_trusted_logger_when_null_in_meta_refuses_it(tmp_path):
    # a hand-fed writer tells None from NaN; a trusted one sees only the line: the engine's
    # transitions hold no null but a missing next state's
    kw = example(0)
    kw["meta"]["note"] = None
    log = DatasetLogger(tmp_path / "d.jsonl", {"seed": 1}, trusted=True)
    log.log_transition(**example(1))
    log.log_transition(**kw)
    with pytest.raises(ValueError, match=r"t=1: meta\.note"):
        log.close()


@given(st.binary(max_size=64).map(lambda b: bytes(c % 5 for c in b)))
def test_count_nulls_when_any_bytes_equals_bytes_count(data):
    alphabet = b"nul\nx"
    text = bytearray(alphabet[c] for c in data)
    assert count_nulls(text) == bytes(text).count(b"null")
