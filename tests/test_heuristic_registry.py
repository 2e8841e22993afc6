"""The heuristics registry: every line resolves to its class, every class has its line, and
every list of heuristics (vocabulary, config check, default.ini, README, docs, docstring) is
the registry's."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import numpy as np
import pytest

import fusion.sim.heuristics as heuristics_package
from fusion.config.config import default_ini_text, load_config
from fusion.config.heuristics import (
    HEURISTICS,
    SPECTRUM_RULES,
    Heuristic,
    check_registry,
    heuristic_table,
    policy_help,
)
from fusion.config.vocabulary import POLICY_NAMES
from fusion.errors import ConfigError
from fusion.sim.heuristics import FAMILY, POLICIES, heuristic_class, make_policy
from fusion.sim.heuristics.base import SpectrumRanked
from fusion.sim.heuristics.path_only import RandomFeasiblePolicy
from fusion.sim.policy import PathPolicy

ROOT = Path(__file__).resolve().parents[1]
#: The names as they stood before the registry: configs, CLI listings and studies use them, in
#: this order (new heuristics may come in between; none may go or move).
NAMES_BEFORE = (
    "ksp_ff",
    "ksp_lf",
    "ksp_bf",
    "ksp_mu",
    "ff_ksp",
    "lf_ksp",
    "bf_ksp",
    "mu_ksp",
    "kmc_ff",
    "kmf_ff",
    "kme_ff",
    "kca_ff",
    "shortest_feasible",
    "least_congested",
    "random_feasible",
)


@pytest.mark.parametrize("line", HEURISTICS, ids=lambda line: line.name)
def test_registry_line_when_resolved_is_a_policy_class_whose_attributes_agree(line):
    cls = heuristic_class(line)
    assert issubclass(cls, PathPolicy) and not inspect.isabstract(cls)
    assert cls.__module__ == f"fusion.sim.heuristics.{line.home.partition(':')[0]}"
    assert (cls.name, cls.spectrum) == (line.name, line.spectrum)
    assert POLICIES[line.name] is cls
    policy = make_policy(line.name, np.random.default_rng(0))
    assert type(policy) is cls and policy.name == line.name


def _concrete_policies() -> set[type[PathPolicy]]:
    """Every concrete PathPolicy defined in a module of the heuristics package."""
    found = set()
    for info in pkgutil.iter_modules(heuristics_package.__path__):
        module = importlib.import_module(f"{heuristics_package.__name__}.{info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if (
                cls.__module__ == module.__name__
                and issubclass(cls, PathPolicy)
                and not inspect.isabstract(cls)
            ):
                found.add(cls)
    return found


def test_heuristics_package_when_walked_has_every_concrete_policy_registered():
    found = _concrete_policies()
    assert SpectrumRanked not in found  # the walk skips abstract bases, and only those
    unregistered = sorted(cls.__qualname__ for cls in found - set(POLICIES.values()))
    assert not unregistered, f"classes without a line in fusion.config.heuristics: {unregistered}"
    assert found == set(POLICIES.values())


def test_vocabulary_when_read_is_the_registry_in_its_order():
    assert POLICY_NAMES == tuple(line.name for line in HEURISTICS) == tuple(POLICIES)
    kept = [name for name in POLICY_NAMES if name in NAMES_BEFORE]
    assert tuple(kept) == NAMES_BEFORE, "a heuristic's name went away or moved"
    assert tuple(POLICIES[line.name] for line in HEURISTICS if line.xlron) == FAMILY
    assert len(FAMILY) == 12 and FAMILY[0].name == "ksp_ff"  # XLRON's family, KSP-FF first


def test_config_when_policy_unknown_names_section_key_value_and_every_heuristic():
    config = load_config()
    for name in POLICY_NAMES:
        assert config.replace("policy_settings", policy=name).policy.policy == name
    with pytest.raises(ConfigError) as info:
        config.replace("policy_settings", policy="ksp_best")
    message = str(info.value)
    assert "[policy_settings] policy = 'ksp_best'" in message
    assert all(re.search(rf"\b{name}\b", message) for name in POLICY_NAMES), message


def test_default_ini_when_read_comments_policy_with_the_registry_help():
    lines = default_ini_text().splitlines()
    at = lines.index("[policy_settings]")
    key = next(i for i in range(at, len(lines)) if lines[i].startswith("policy ="))
    comment = []
    for line in reversed(lines[at + 1 : key]):
        if not line.startswith("#"):
            break
        comment.insert(0, line.removeprefix("#").strip())
    text = " ".join(comment)
    assert text == policy_help(), (
        f"default.ini's comment above `policy =` must read (wrapped): {policy_help()}"
    )
    assert re.findall(r"[a-z]+_[a-z_]+", text.partition(":")[2]) == list(POLICY_NAMES)


def _heuristic_rows(text: str) -> list[str]:
    """Markdown table rows whose first cell lists heuristics by name (`a`, `b`)."""
    rows = []
    for line in text.splitlines():
        if not line.startswith("| `"):
            continue
        cell = line.split("|")[1].strip()
        names = re.findall(r"`([a-z_][a-z0-9_]*)`", cell)
        listed = re.fullmatch(r"`[a-z0-9_]+`(, `[a-z0-9_]+`)*", cell)
        if listed and any(name in POLICY_NAMES for name in names):
            rows.append(line)
    return rows


def test_readme_and_docs_when_read_list_heuristics_only_as_the_registry_table():
    table = heuristic_table("markdown")
    readme = (ROOT / "README.md").read_text("utf-8")
    assert table in readme, (
        "README.md's heuristics table is not the registry's: run python scripts/sync_docs.py"
    )
    registry_rows = set(table.splitlines()[2:])
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        stale = [row for row in _heuristic_rows(doc.read_text("utf-8")) if row not in registry_rows]
        assert not stale, f"{doc.name}: heuristic rows that are not the registry's: {stale}"


def test_heuristic_table_when_written_has_a_row_per_line_with_its_description():
    rows = heuristic_table("markdown").splitlines()[2:]
    assert [row.split("|")[1].strip() for row in rows] == [f"`{n}`" for n in POLICY_NAMES]
    assert [row.split("|")[2].strip() for row in rows] == [line.path for line in HEURISTICS]
    rst = heuristic_table("rst").splitlines()
    assert [row.split()[0] for row in rst[3:-1]] == list(POLICY_NAMES)
    assert heuristic_table("rst") in (heuristics_package.__doc__ or "")
    with pytest.raises(ValueError, match="markdown or rst"):
        heuristic_table("html")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("line", "error", "said"),
    [
        (
            Heuristic("ksp_ff", "first_feasible:KSPFFPolicy", "last_fit", "x"),
            TypeError,
            "spectrum is 'first_fit', its registry line's 'last_fit'",
        ),
        (
            Heuristic("ksp_first", "first_feasible:KSPFFPolicy", "first_fit", "x"),
            TypeError,
            "name is 'ksp_ff', its registry line's 'ksp_first'",
        ),
        (
            Heuristic("toy", "first_feasible:ToyPolicy", None, "x"),
            ImportError,
            "has no class ToyPolicy",
        ),
        (Heuristic("toy", "toy:ToyPolicy", None, "x"), ImportError, "toy"),
        (Heuristic("toy", "base:SpectrumRanked", "first_fit", "x"), TypeError, "concrete"),
        (Heuristic("toy", "base:feasible", None, "x"), TypeError, "concrete"),
    ],
)
def test_heuristic_class_when_line_and_class_disagree_names_both(line, error, said):
    with pytest.raises(error, match=re.escape(said)):
        heuristic_class(line)


@pytest.mark.parametrize(
    ("fields", "said"),
    [
        (("Toy", "m:C", None, "x"), "name must be lower case"),
        (("toy", "m.C", None, "x"), "'module:Class'"),
        (("toy", "m:C", "worst_fit", "x"), f"one of {', '.join(SPECTRUM_RULES)}"),
        (("toy", "m:C", None, "a | b"), "one line"),
        (("toy", "m:C", None, " "), "one line"),
    ],
)
def test_heuristic_line_when_malformed_is_refused_naming_the_field(fields, said):
    with pytest.raises(ValueError, match=re.escape(said)):
        Heuristic(*fields)


def test_check_registry_when_a_name_or_class_repeats_refuses():
    check_registry(HEURISTICS)
    twin = Heuristic("ksp_ff2", HEURISTICS[0].home, "first_fit", "x")
    with pytest.raises(ValueError, match="registered twice"):
        check_registry((*HEURISTICS, twin))
    with pytest.raises(ValueError, match="'kca_ff' is registered twice"):
        check_registry((*HEURISTICS, HEURISTICS[11]))


def test_make_policy_when_random_draws_from_the_runs_generator():
    mask = [True] * 6
    drawn = make_policy("random_feasible", np.random.default_rng(7)).rank({}, mask)
    assert drawn == RandomFeasiblePolicy(np.random.default_rng(7)).rank({}, mask)
    assert make_policy("ksp_ff", np.random.default_rng(7)).rank({}, mask) == list(range(6))
    with pytest.raises(ValueError, match=r"unknown policy 'best'.*ksp_ff"):
        make_policy("best")
