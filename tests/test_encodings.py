"""The block action's two encodings and the logged spectrum's hex each have one home, and the
conversions round-trip in both directions (issue #31, item 2)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fusion.datasets.actions import (
    BLOCKED,
    env_action,
    env_action_count,
    env_actions,
    env_mask,
    env_masks,
    logged_action,
    logged_actions,
    logged_masks,
)
from fusion.datasets.spectrum import free_masks, logged_spectrum, occupancy_bytes


@st.composite
def logged_decisions(draw: st.DrawFn) -> tuple[int, np.ndarray, np.ndarray]:
    """K, then rows of the record's encoding: K feasibility flags, and the action a writer
    accepts under them (a feasible path, or -1 exactly when none is)."""
    k = draw(st.integers(1, 8))
    n = draw(st.integers(0, 30))
    flags = draw(st.lists(st.lists(st.booleans(), min_size=k, max_size=k), min_size=n, max_size=n))
    masks = np.array(flags, dtype=bool).reshape(n, k)
    actions = []
    for row in masks:
        feasible = np.flatnonzero(row).tolist()
        actions.append(draw(st.sampled_from(feasible)) if feasible else BLOCKED)
    return k, np.array(actions, dtype=np.int64), masks


@given(logged_decisions())
@settings(max_examples=200, deadline=None)
def test_logged_to_env_when_converted_and_back_gives_the_logged_actions_and_masks(decisions):
    k, actions, masks = decisions
    acts, legal = env_actions(actions, k), env_masks(masks)
    assert acts.dtype == np.int64 and legal.shape == (len(masks), env_action_count(k))
    assert legal[np.arange(len(acts)), acts].all()  # every logged action is legal there
    assert ((acts == k) == (actions == BLOCKED)).all()  # block is K, and only block
    assert legal[:, k].tolist() == (~masks.any(axis=1)).tolist()  # legal only where no path is
    np.testing.assert_array_equal(logged_actions(acts, k), actions)
    np.testing.assert_array_equal(logged_masks(legal), masks)
    for row, (action, mask) in enumerate(zip(actions.tolist(), masks.tolist(), strict=True)):
        assert env_action(action, k) == acts[row]  # the plain form is the array form
        assert env_mask(mask) == legal[row].tolist()
        assert logged_action(env_action(action, k), k) == action


@given(logged_decisions())
@settings(max_examples=200, deadline=None)
def test_env_to_logged_when_converted_and_back_gives_the_env_actions_and_masks(decisions):
    k, logged, masks = decisions
    acts, legal = env_actions(logged, k), env_masks(masks)  # any legal env decision
    back_actions, back_masks = logged_actions(acts, k), logged_masks(legal)
    np.testing.assert_array_equal(env_actions(back_actions, k), acts)
    np.testing.assert_array_equal(env_masks(back_masks), legal)
    for action in acts.tolist():
        assert env_action(logged_action(action, k), k) == action


def test_env_masks_when_given_one_decision_or_rows_agree():
    rows = [[True, False], [False, False]]
    assert [env_masks(row).tolist() for row in rows] == env_masks(np.array(rows)).tolist()
    assert env_masks(rows).tolist() == [[True, False, False], [False, False, True]]


@pytest.mark.parametrize(
    "mask", [[True, False, True], [False, False, False], [[False, True, False], [True, True, True]]]
)
def test_logged_masks_when_block_flag_contradicts_the_paths_refuses(mask):
    with pytest.raises(ValueError, match="block flag"):
        logged_masks(np.array(mask))


@given(
    st.integers(1, 70).flatmap(
        lambda slots: st.tuples(
            st.just(slots),
            st.lists(st.integers(0, (1 << slots) - 1), min_size=1, max_size=6),
        )
    )
)
@settings(max_examples=200, deadline=None)
def test_logged_spectrum_when_decoded_as_masks_or_bytes_gives_the_engines_spectrum(case):
    slots, free = case
    full = (1 << slots) - 1
    digits = f"0{2 * ((slots + 7) // 8)}x"  # the engine's encoding: occupied slots, fixed width
    spectrum = [format(full ^ mask, digits) for mask in free]
    assert free_masks(spectrum, slots) == free
    state = logged_spectrum(spectrum, slots)
    assert state.free == free and state.free_count == [m.bit_count() for m in free]
    common = full
    for mask in free:
        common &= mask
    assert state.common_free(range(len(free))) == common
    bits = np.unpackbits(occupancy_bytes(spectrum, 1, len(free)), axis=-1, bitorder="little")
    occupied = [[bool((full ^ mask) >> s & 1) for s in range(slots)] for mask in free]
    assert bits[0, :, :slots].astype(bool).tolist() == occupied
    assert not bits[0, :, slots:].any()
