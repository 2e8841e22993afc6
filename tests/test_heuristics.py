"""XLRON's family of heuristics, each on a hand-built spectrum where its choice differs from
KSP-FF's the way its definition says."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from fusion.config.config import load_config
from fusion.config.heuristics import HEURISTICS
from fusion.sim.engine import SimulationEngine
from fusion.sim.policies import POLICIES, make_policy
from fusion.sim.spectrum import SpectrumState, longest_run, path_feasible, place
from fusion.sim.writer import InMemoryWriter

SLOTS = 10


def free(*ranges: tuple[int, int]) -> int:
    """A free-slot mask with slots ``a .. b-1`` free for each ``(a, b)``."""
    mask = 0
    for a, b in ranges:
        mask |= ((1 << (b - a)) - 1) << a
    return mask


@dataclass
class View:
    """A hand-built decision: paths as link tuples, every link's free mask and km."""

    links: list[tuple[int, ...]]
    link_free: list[int]
    need: int = 2
    lengths: list[float] = field(default_factory=lambda: [100.0] * 6)
    usage: list[int] | None = None

    def __post_init__(self) -> None:
        self.spectrum = SpectrumState(len(self.link_free), SLOTS)
        self.spectrum.free = list(self.link_free)
        self.spectrum.free_count = [m.bit_count() for m in self.link_free]
        self.spectrum.usage = self.usage
        self.commons = []
        for path in self.links:
            common = self.spectrum.full
            for link in path:
                common &= self.link_free[link]
            self.commons.append(common)
        self.needs = [self.need] * len(self.links)
        self.mask = [path_feasible(self.need, False, longest_run(c)) for c in self.commons]
        self.state: dict[str, Any] = {"paths": [{} for _ in self.links]}


# path 0 = links (0, 1), path 1 = link (2,): KSP-FF always takes path 0 where both are feasible
PATHS = [(0, 1), (2,)]


@pytest.mark.parametrize(
    ("name", "view", "why"),
    [
        (
            "ff_ksp",
            View(PATHS, [free((4, 10)), free((0, 10)), free((0, 10))]),
            "path 1's first fit starts at 0, path 0's at 4",
        ),
        (
            "lf_ksp",
            View(PATHS, [free((0, 5)), free((0, 10)), free((0, 10))]),
            "path 1's last fit starts at 8, path 0's at 3",
        ),
        (
            "bf_ksp",
            View(PATHS, [free((0, 10)), free((0, 10)), free((0, 2), (4, 10))]),
            "path 1 has a block of exactly 2 free slots, path 0 only one of 10",
        ),
        (
            "mu_ksp",
            View(
                PATHS,
                [free((0, 3)), free((0, 3)), free((6, 10))],
                usage=[1, 1, 1, 1, 1, 1, 9, 9, 9, 9],
            ),
            "path 1's free start slot 6 is the most used across the network",
        ),
        (
            "kmc_ff",
            View(PATHS, [free((3, 10)), free((0, 10)), free((0, 10))]),
            "path 0's first fit (slot 3) cuts link 1's block 0-9 in two; path 1 opens no new block",
        ),
        (
            "kmf_ff",
            View(PATHS, [free((3, 10)), free((0, 10)), free((0, 10))]),
            "path 0 strands slots 0-2 of link 1 below its allocation; path 1 strands none",
        ),
        (
            "kme_ff",
            View(PATHS, [free((3, 10)), free((0, 10)), free((0, 10))]),
            "path 0's links are more fragmented after allocation",
        ),
        (
            "kca_ff",
            View(
                PATHS,
                [free((0, 2)), free((0, 2)), free((0, 10))],
                lengths=[100.0, 100.0, 150.0, 100.0, 100.0, 100.0],
            ),
            "path 0's 200 km are 80 % occupied (weight 200 / (1 - 8/11) = 733), path 1's 150 km empty",
        ),
    ],
)
def test_heuristic_when_spectrum_favours_another_path_differs_from_ksp_ff(name, view, why):
    assert all(view.mask), "both paths must be feasible"
    assert make_policy("ksp_ff").select_decision(view) == 0
    assert make_policy(name).select_decision(view) == 1, why


@pytest.mark.parametrize(
    ("name", "start"), [("ksp_ff", 0), ("ksp_lf", 6), ("ksp_bf", 6), ("ksp_mu", 6)]
)
def test_ksp_heuristics_when_on_the_same_path_place_by_their_spectrum_rule(name, start):
    # path 0: a block of 5 free slots at 0 and one of exactly 2 at 6, slot 6 the most used
    view = View(
        PATHS,
        [free((0, 5), (6, 8)), free((0, 10)), free((0, 10))],
        usage=[0, 0, 0, 0, 0, 0, 7, 0, 0, 0],
    )
    policy = make_policy(name)
    path = policy.select_decision(view)
    assert path == 0  # the first feasible path, whatever the rule
    assert place(policy.spectrum or "", view.commons[path], 2, view.usage) == start


def test_spectrum_rules_when_blocks_differ_place_as_defined():
    mask = free((0, 5), (6, 8))  # a block of 5 at 0, a block of 2 at 6
    usage = [0, 1, 0, 0, 0, 0, 7, 0, 0, 0]
    assert place("first_fit", mask, 2) == 0
    assert place("last_fit", mask, 2) == 6
    assert place("best_fit", mask, 2) == 6  # the tightest block
    assert place("most_used", mask, 2, usage) == 6
    assert place("most_used", mask, 2, [0, 3, 0, 0, 0, 0, 1, 0, 0, 0]) == 1


@pytest.mark.parametrize("name", sorted(POLICIES))
def test_every_heuristic_when_run_logs_its_start_slot_and_allocates_within_the_mask(name):
    cfg = load_config().replace("general_settings", num_requests=1500, erlang=600)
    cfg = cfg.replace("policy_settings", policy=name)
    cfg = cfg.replace("failure_settings", failure_type="none")
    writer = InMemoryWriter(seed=1)
    stats = SimulationEngine(cfg, 1, writer=writer).run()
    assert stats["requests"] == 1500 and 0 < stats["blocking_probability"] < 1
    for record in writer.records:
        if record["action"] >= 0:
            assert record["action_mask"][record["action"]]
            assert 0 <= record["meta"]["start_slot"] < 320
        else:
            assert record["meta"]["start_slot"] == -1


def test_spectrum_heuristic_when_asked_without_the_engine_says_so():
    with pytest.raises(TypeError, match="rank_decision"):
        make_policy("kca_ff").rank({}, [True, True])


@pytest.mark.parametrize("line", HEURISTICS, ids=lambda line: line.name)
def test_registry_spectrum_column_when_run_is_the_rule_each_record_names(line):
    # the README's spectrum column against the engine's records: meta.behaviour names the
    # rule the heuristic allocated with, its own or (path-only) [policy_settings] spectrum
    for rule in ("first_fit", "last_fit") if line.spectrum is None else ("first_fit",):
        cfg = load_config().replace("general_settings", num_requests=50)
        cfg = cfg.replace("policy_settings", policy=line.name, spectrum=rule)
        writer = InMemoryWriter(seed=1)
        SimulationEngine(cfg, 1, writer=writer).run()
        named = {record["meta"]["behaviour"] for record in writer.records}
        assert named == {f"{line.name}/{line.spectrum or rule}"}, (line.name, rule)
