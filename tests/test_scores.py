"""Normalized scores (0 = random, 100 = expert) and paired changes, per seed, in
fusion.report.scores and in ``fusion evaluate --against/--normalize --json``."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fusion.cli import main
from fusion.report.scores import (
    change_interval,
    normalized_score,
    relative_change,
    score_interval,
    seed_changes,
    seed_scores,
)

#: a blocking probability is blocked / requests: a multiple of 1 / requests
BP = st.integers(0, 10**6).map(lambda blocked: blocked / 10**6)
#: a small scenario whose references block differently on every seed (1000 requests, 600 E)
SMALL = ["--set", "general_settings.num_requests=1000", "--erlang", "600", "--workers", "1"]
SEEDS = ["--seeds", "1-3"]


def _references(draw_pairs: list[tuple[float, float]]) -> tuple[dict, dict]:
    random = {seed: r for seed, (r, _) in enumerate(draw_pairs)}
    expert = {seed: e for seed, (_, e) in enumerate(draw_pairs)}
    return random, expert


DISTINCT = st.tuples(BP, BP).filter(lambda pair: pair[0] != pair[1])


@given(st.lists(DISTINCT, min_size=1, max_size=8))
def test_score_when_policy_is_a_reference_is_exactly_0_or_100_over_the_seeds(pairs):
    random, expert = _references(pairs)
    if sum(random.values()) == sum(expert.values()):
        return  # (no room on average: refused, see below)
    assert [str(v) for v in seed_scores(random, random, expert).values()] == ["0.0"] * len(pairs)
    assert score_interval(random, random, expert)["mean"] == 0.0
    assert score_interval(expert, random, expert)["mean"] == 100.0
    # the expert's parts average 100 (each seed's part is its share of the fixed gap)
    assert sum(seed_scores(expert, random, expert).values()) / len(pairs) == pytest.approx(100)


@given(st.lists(DISTINCT, min_size=1, max_size=8), st.lists(BP, min_size=8, max_size=8))
def test_score_when_mean_blockings_are_given_is_minaris_ratio_of_means(pairs, policy):
    random, expert = _references(pairs)
    if sum(random.values()) == sum(expert.values()):
        return
    blocking = {seed: policy[seed] for seed in random}
    mean = {name: sum(v.values()) / len(v) for name, v in
            (("bp", blocking), ("random", random), ("expert", expert))}  # fmt: skip
    expected = 100 * (mean["random"] - mean["bp"]) / (mean["random"] - mean["expert"])
    assert score_interval(blocking, random, expert)["mean"] == pytest.approx(expected)


@given(DISTINCT, BP, BP)
def test_score_when_blocking_rises_moves_away_from_the_expert(pair, low, high):
    random, expert = pair
    low, high = sorted((low, high))
    a, b = normalized_score(low, random, expert), normalized_score(high, random, expert)
    if random > expert:  # the usual case: less blocking, higher score
        assert a >= b
    else:  # an expert that blocked more on this seed: the score follows the expert
        assert a <= b


@given(st.lists(st.tuples(BP, DISTINCT), min_size=2, max_size=12))
def test_score_interval_when_seeds_vary_contains_the_mean(rows):
    blocking = {seed: bp for seed, (bp, _) in enumerate(rows)}
    random, expert = _references([pair for _, pair in rows])
    agg = score_interval(blocking, random, expert)
    assert agg["n"] == len(rows)
    assert agg["ci95_low"] <= agg["mean"] <= agg["ci95_high"]
    change = change_interval(blocking, random)
    if change["n"] >= 2:  # (seeds where only the policy blocks are left out)
        assert change["ci95_low"] <= change["mean"] <= change["ci95_high"]


def test_score_when_references_block_equally_on_one_seed_still_scores_over_the_seeds():
    # seed 5 leaves no room on its own: the fixed gap over both seeds (0.1) still places it
    assert seed_scores({4: 0.1, 5: 0.1}, {4: 0.3, 5: 0.2}, {4: 0.1, 5: 0.2}) == {
        4: pytest.approx(200.0),
        5: pytest.approx(100.0),
    }


def test_score_when_references_block_equally_on_average_raises_naming_the_seeds():
    with pytest.raises(ValueError, match=r"seeds 4, 5: the random and the expert .* on average"):
        seed_scores({4: 0.1, 5: 0.1}, {4: 0.3, 5: 0.1}, {4: 0.1, 5: 0.3})


def test_score_when_a_reference_lacks_a_seed_raises_naming_it():
    with pytest.raises(ValueError, match=r"expert policy has no blocking on seed\(s\) 2, 3"):
        seed_scores({1: 0.1, 2: 0.1, 3: 0.1}, {1: 0.3, 2: 0.3, 3: 0.3}, {1: 0.1})
    with pytest.raises(ValueError, match=r"baseline has no blocking on seed\(s\) 9"):
        seed_changes({9: 0.1}, {1: 0.1})


def test_relative_change_when_neither_blocks_counts_zero():
    assert seed_changes({1: 0.375, 2: 0.0}, {1: 0.5, 2: 0.0}) == {1: -0.25, 2: 0.0}
    assert relative_change(0.75, 0.5) == 0.5
    assert "undefined_seeds" not in change_interval({1: 0.375, 2: 0.0}, {1: 0.5, 2: 0.0})


def test_relative_change_when_only_the_policy_blocks_is_left_out_and_named():
    """A baseline that blocks nothing on a seed where the policy blocks some: the policy is
    worse there by no finite ratio; counting it 0 would hide the loss."""
    change = change_interval({1: 0.375, 2: 0.25, 3: 0.5}, {1: 0.5, 2: 0.0, 3: 0.25})
    assert change["undefined_seeds"] == [2]
    assert change["n"] == 2 and change["mean"] == pytest.approx((-0.25 + 1.0) / 2)
    only = change_interval({2: 0.25}, {2: 0.0})
    assert only["n"] == 0 and only["mean"] is None and only["undefined_seeds"] == [2]


def _json(capsys, argv: list[str]) -> list[dict]:
    assert main(["evaluate", *argv, "--json"]) == 0
    return orjson.loads(capsys.readouterr().out)


def test_evaluate_json_when_against_given_carries_per_seed_blocking_and_each_pair(capsys):
    argv = [*SEEDS, *SMALL, "--policy", "kca_ff", "--against", "shortest_feasible"]
    rows = _json(capsys, [*argv, "--against", "random_feasible"])
    by_name = {row["name"]: row for row in rows}
    assert list(by_name) == ["ksp_ff", "kca_ff", "shortest_feasible", "random_feasible"]
    for row in rows:
        assert [s["seed"] for s in row["per_seed"]] == [1, 2, 3]
        bps = [s["blocking"] for s in row["per_seed"]]
        assert row["blocking"]["mean"] == pytest.approx(sum(bps) / 3)
        for other in ("ksp_ff", "shortest_feasible", "random_feasible"):
            theirs = [s["blocking"] for s in by_name[other]["per_seed"]]
            expected = [(a - b) / b for a, b in zip(bps, theirs, strict=True)]
            assert row[f"vs_{other}"]["mean"] == pytest.approx(sum(expected) / 3)
            assert row[f"vs_{other}"]["ci95_low"] < row[f"vs_{other}"]["ci95_high"] or (
                other == row["name"]
            )
        assert row["score"] is None  # no --normalize
    assert by_name["kca_ff"]["vs_shortest_feasible"]["mean"] != 0.0


def test_evaluate_table_when_against_given_pairs_with_the_first(capsys):
    argv = [*SEEDS, *SMALL, "--policy", "kca_ff", "--against", "shortest_feasible"]
    assert main(["evaluate", *argv]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "vs shortest_feasible (paired, relative)" in lines[2]
    shortest = next(line for line in lines if line.startswith("shortest_feasible "))
    assert shortest.endswith("(baseline)")
    assert not next(line for line in lines if line.startswith("ksp_ff ")).endswith("(baseline)")


def test_evaluate_when_against_is_unknown_exits_2_naming_it(capsys):
    assert main(["evaluate", "--seeds", "1", *SMALL, "--against", "no_such_policy"]) == 2
    err = capsys.readouterr().err
    assert "against" in err and "no_such_policy" in err and "Traceback" not in err


def test_evaluate_json_when_normalized_scores_random_0_and_expert_100(capsys):
    argv = [*SEEDS, *SMALL, "--policy", "kca_ff", "--normalize", "random_feasible", "ksp_ff"]
    rows = _json(capsys, argv)
    by_name = {row["name"]: row for row in rows}
    assert by_name["random_feasible"]["score"]["mean"] == 0.0
    assert by_name["ksp_ff"]["score"]["mean"] == 100.0
    assert [s["score"] for s in by_name["random_feasible"]["per_seed"]] == [0.0] * 3
    assert sum(s["score"] for s in by_name["ksp_ff"]["per_seed"]) / 3 == pytest.approx(100)
    random, expert = (
        [s["blocking"] for s in by_name[name]["per_seed"]] for name in ("random_feasible", "ksp_ff")
    )
    kca = by_name["kca_ff"]
    gap = (sum(random) - sum(expert)) / 3  # the references' gap over the seeds, fixed
    for row, r in zip(kca["per_seed"], random, strict=True):
        assert row["score"] == pytest.approx(100 * (r - row["blocking"]) / gap)
    assert kca["score"]["ci95_low"] <= kca["score"]["mean"] <= kca["score"]["ci95_high"]
    assert rows[0]["normalize"] == {"random": "random_feasible", "expert": "ksp_ff"}


def test_evaluate_table_when_normalized_shows_the_score_column(capsys):
    argv = [*SEEDS, *SMALL, "--policy", "kca_ff", "--normalize", "random_feasible", "ksp_ff"]
    assert main(["evaluate", *argv]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "score [95% CI] (paired; 0 = random_feasible, 100 = ksp_ff)" in lines[2]
    assert "100.0 [" in next(line for line in lines if line.startswith("ksp_ff "))
    assert "0.0 [0.0, 0.0]" in next(line for line in lines if line.startswith("random_feasible "))


def test_evaluate_when_normalize_names_one_policy_twice_exits_2(capsys):
    argv = ["--seeds", "1", *SMALL, "--normalize", "ksp_ff", "ksp_ff"]
    assert main(["evaluate", *argv]) == 2
    assert "normalize" in capsys.readouterr().err


def test_evaluate_when_references_block_equally_on_average_fails_naming_the_seeds(capsys):
    # 300 requests: every blocked request is blocked by reach, so every policy blocks alike
    argv = ["--seeds", "0", "--set", "general_settings.num_requests=300", "--workers", "1"]
    argv += ["--erlang", "600", "--normalize", "random_feasible", "ksp_ff"]
    assert main(["evaluate", *argv]) == 1
    assert "seeds 0: the random and the expert policies block" in capsys.readouterr().err


def test_evaluate_policies_when_against_is_a_bare_string_raises_naming_it():
    from fusion.config.config import load_config
    from fusion.run.evaluate import evaluate_policies

    cfg = load_config().replace("general_settings", num_requests=100)
    with pytest.raises(TypeError, match="against: expected a list of policy specs"):
        evaluate_policies(cfg, [], seeds=[1], workers=1, against="ksp_ff")
    with pytest.raises(TypeError, match="normalize: expected two policy specs"):
        evaluate_policies(cfg, [], seeds=[1], workers=1, normalize=("ksp_ff",))  # type: ignore[arg-type]
