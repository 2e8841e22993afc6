"""The README and docs/architecture.md say what the code does: tables built from or checked
against their source (the feature declaration, config.py, the import-linter layers), every home
they name exists, and nothing points outside the repository."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
import tomllib

from fusion.config.config import SECTION_ALIASES, SECTIONS
from fusion.config.features import feature_table
from fusion.config.heuristics import heuristic_table

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
ARCHITECTURE = ROOT / "docs" / "architecture.md"
DOCS = [README, *sorted((ROOT / "docs").glob("*.md"))]


def _section(text: str, heading: str) -> str:
    """The text under a Markdown heading (``## X`` or ``### X``), up to the next heading of
    the same or a higher level."""
    match = re.search(rf"^(#+) {re.escape(heading)}.*$", text, re.MULTILINE)
    assert match, f"no heading {heading!r}"
    level = len(match.group(1))
    rest = text[match.end() :]
    end = re.search(rf"^#{{1,{level}}} ", rest, re.MULTILINE)
    return rest[: end.start()] if end else rest


def _tables(text: str) -> list[list[str]]:
    """Each Markdown table of ``text`` as its lines."""
    tables: list[list[str]] = []
    current: list[str] = []
    for line in text.splitlines():
        if line.startswith("|"):
            current.append(line)
        elif current:
            tables.append(current)
            current = []
    if current:
        tables.append(current)
    return tables


def _first_cells(table: list[str]) -> list[str]:
    return [row.split("|")[1].strip() for row in table[2:]]


def _layer_names(cell: str) -> frozenset[str]:
    """A table cell's modules as import-linter names: `fusion/config` and `config/` are
    ``fusion.config``, `fusion/cli.py` and `cli.py` ``fusion.cli``."""
    names = set()
    for token in re.findall(r"`([^`]+)`", cell):
        path = token.removeprefix("fusion/").removesuffix("/").removesuffix(".py")
        names.add("fusion." + path.replace("/", "."))
    return frozenset(names)


def _contract_layers() -> list[frozenset[str]]:
    """The layers of ``pyproject.toml``'s import-linter contract, bottom to top."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    layers = next(c["layers"] for c in contracts if c["type"] == "layers")
    return [frozenset(part.strip() for part in layer.split("|")) for layer in reversed(layers)]


def test_readme_feature_table_when_built_from_the_declaration_is_it_exactly():
    section = _section(README.read_text("utf-8"), "Features: what a controller sees")
    tables = _tables(section)
    assert len(tables) == 1, "the Features section holds one table"
    assert "\n".join(tables[0]) == feature_table(), (
        "README.md's feature table is not fusion.config.features.feature_table(): run "
        "python scripts/sync_docs.py"
    )


def test_readme_configuration_when_read_names_every_key_of_config_py():
    section = _section(README.read_text("utf-8"), "Configuration")
    named = set(re.findall(r"`([a-z_0-9]+)`", section))
    for name, cls in SECTIONS.items():
        missing = [f.name for f in dataclasses.fields(cls) if f.name not in named]
        assert not missing, f"README.md's Configuration names no [{name}] {missing}"
    for written in re.findall(r"`\[([a-z_]+)\]`", section):
        assert SECTION_ALIASES.get(written, written) in SECTIONS, written


@pytest.mark.parametrize("doc", [README, ARCHITECTURE], ids=lambda p: p.name)
def test_layer_table_when_read_names_the_contracts_layers_in_order(doc):
    heading = "Layout" if doc == README else "The layers"
    tables = _tables(_section(doc.read_text("utf-8"), heading))
    assert len(tables) == 1, f"{doc.name}: the {heading} section holds one table"
    rows = [_layer_names(cell) for cell in _first_cells(tables[0])]
    contract = _contract_layers()
    assert rows == contract, (
        f"{doc.name}'s layer table, bottom to top, is {[sorted(r) for r in rows]}; "
        f"pyproject.toml's contract is {[sorted(c) for c in contract]}"
    )


def test_layer_names_when_a_row_holds_two_layers_do_not_match_the_contract():
    assert _layer_names("`fusion/errors.py`, `fusion/optional.py`") not in _contract_layers()
    assert _layer_names("`env/`, `rl/`") == frozenset({"fusion.env", "fusion.rl"})


def _defined(name: str, files: list[Path]) -> bool:
    """Whether ``name`` (``Class.method``, ``PREFIX_*`` or a plain name) is defined in one of
    ``files`` (a function, class, method or module-level assignment)."""
    *owner, last = name.split(".")
    pattern = re.escape(last).replace(r"\*", r"\w*")
    definition = re.compile(rf"^\s*(?:def|class)\s+{pattern}\b|^{pattern}\s*(?::[^=]*)?=", re.M)
    for path in files:
        text = path.read_text("utf-8")
        if owner and not re.search(rf"^class\s+{re.escape(owner[0])}\b", text, re.M):
            continue
        if definition.search(text):
            return True
    return False


def _home_files(token: str) -> list[Path]:
    path = ROOT / "fusion" / token.rstrip("/")
    return sorted(path.rglob("*.py")) if path.is_dir() else [path]


def test_architecture_homes_when_read_exist_in_the_code():
    section = _section(ARCHITECTURE.read_text("utf-8"), "One home per idea")
    (table,) = _tables(section)
    for row in table[2:]:
        idea, home = (cell.strip() for cell in row.split("|")[1:3])
        files: list[Path] = []
        folder = ""  # a file named alone lives in the folder the cell named before it
        for token in re.findall(r"`([^`]+)`", home):
            where, _, names = token.partition(":")
            if where.endswith((".py", "/")):
                if "/" not in where and folder:
                    where = folder + where
                folder = where if where.endswith("/") else folder
                found = _home_files(where)
                assert found and all(p.exists() for p in found), f"{idea}: no {where}"
                files += found
                for name in filter(None, (n.strip() for n in names.split(","))):
                    assert _defined(name, found), f"{idea}: {where} defines no {name}"
            elif re.fullmatch(r"[A-Za-z_][\w.]*\*?", token) and files:
                assert _defined(token, files), f"{idea}: {token} is not defined in {home}"


def test_architecture_when_it_describes_sim_says_it_reads_files():
    text = ARCHITECTURE.read_text("utf-8")
    assert "knows nothing of files" not in text
    assert "It reads the files its config names" in _section(text, "The layers")


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_docs_when_read_point_only_inside_the_repository(doc):
    text = doc.read_text("utf-8")
    assert "../" not in text, f"{doc.name} points outside its directory: {text.index('../')}"
    for target in re.findall(r"\]\(([^)#\s]+)", text):
        if re.match(r"[a-z]+://", target):
            continue
        assert (doc.parent / target).exists(), f"{doc.name} links to {target}, which is missing"


def test_literature_table_when_read_is_what_each_preset_configures():
    from fusion.config.presets import PRESETS, preset_config

    text = (ROOT / "docs" / "literature.md").read_text("utf-8")
    table = next(t for t in _tables(text) if t[0].startswith("| scenario | topology file"))
    rows = {
        row.split("|")[1].strip(): [c.strip() for c in row.split("|")[2:-1]] for row in table[2:]
    }
    assert sorted(label.lower().replace(" ", "-") for label in rows) == sorted(PRESETS)
    for label, (network, links, slots, ghz, guard, _, modulation, hold, cut, loads) in rows.items():
        name = label.lower().replace(" ", "-")
        cfg, preset = preset_config(name), PRESETS[name]
        first, last = preset.loads[0], preset.loads[-1]
        step = f" step {preset.loads[1] - first}" if len(preset.loads) > 1 else ""
        assert [network, links, slots, guard, hold, cut, loads] == [
            cfg.topology.network,
            "directed" if cfg.topology.directed else "undirected",
            str(cfg.topology.c_band),
            str(cfg.topology.guard_slots),
            f"{cfg.general.holding_time:g}",
            "yes" if cfg.general.holding_time_truncation > 0 else "no",
            f"{first}-{last}{step}" if step else f"{first}",
        ], label
        assert modulation == {"deeprmsa": "table A", "none": "none"}[cfg.topology.modulation]
        assert ghz == ("-" if cfg.topology.modulation == "none" else f"{cfg.topology.slot_ghz:g}")


def test_sync_docs_when_the_copies_match_changes_nothing_and_rewrites_a_drifted_table(tmp_path):
    from conftest import load_script

    sync = load_script("sync_docs")
    assert sync.main(["--check"]) == 0  # every derived copy is the declaration's today
    drifted = README.read_text("utf-8").replace("| `ksp_ff` | the first", "| `ksp_ff` | a first")
    assert sync.replace_table(drifted, heuristic_table("markdown")) == README.read_text("utf-8")
    with pytest.raises(ValueError, match="0 tables start with"):
        sync.replace_table("no table here", feature_table())
