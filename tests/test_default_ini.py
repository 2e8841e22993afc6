"""default.ini holds one help text per key: the one its declaration in config.py gives."""

from __future__ import annotations

import dataclasses
import re

import pytest

from fusion.config.config import (
    DEFAULT_INI_HEADER,
    SECTIONS,
    Config,
    config_ini,
    default_ini,
    default_ini_text,
    ini_value,
    load_config,
)

REGENERATE = "python scripts/sync_docs.py"


def _comments_by_key(text: str) -> dict[tuple[str, str], str]:
    """Each key's comment (its ``#`` lines just above it, joined) by (section, key)."""
    out: dict[tuple[str, str], str] = {}
    section, comment = "", []
    for line in text.splitlines():
        if line.startswith("["):
            section, comment = line.strip("[]"), []
        elif line.startswith("#"):
            comment.append(line.removeprefix("#").strip())
        elif " = " in line and section:
            out[section, line.split(" = ")[0]] = " ".join(comment)
            comment = []
        else:
            comment = []
    return out


def _drifted(text: str) -> list[str]:
    """The keys whose comment in ``text`` is not their declared help, or that lack one."""
    shipped = _comments_by_key(text)
    drifted = [
        f"[{section}] {spec.name}: {shipped.get((section, spec.name))!r} is not config.py's "
        f"{spec.metadata['help']!r}"
        for section, cls in SECTIONS.items()
        for spec in dataclasses.fields(cls)
        if shipped.get((section, spec.name)) != spec.metadata["help"]
    ]
    declared = {(s, f.name) for s, cls in SECTIONS.items() for f in dataclasses.fields(cls)}
    return drifted + [f"[{s}] {k}: not declared" for s, k in sorted(set(shipped) - declared)]


def test_default_ini_when_read_key_by_key_says_what_config_py_declares():
    assert _drifted(default_ini_text()) == [], f"regenerate default.ini: {REGENERATE}"


def test_default_ini_when_shipped_is_the_rendered_declaration():
    assert default_ini_text() == default_ini(), f"default.ini drifted: {REGENERATE}"
    assert default_ini_text().startswith(f"# {DEFAULT_INI_HEADER.splitlines()[0]}\n")
    assert load_config() == Config(source=load_config().source)


def test_default_ini_when_a_comment_drifts_the_key_by_key_check_names_it():
    text = default_ini_text()
    drifted = text.replace("# log every decision as a transition\n", "# log decisions\n")
    assert _drifted(drifted) == [
        "[dataset_logging] log_offline_dataset: 'log decisions' is not config.py's "
        "'log every decision as a transition'"
    ]
    assert _drifted(text + "# a stray key\nstray = 1\n") == [
        "[dataset_logging] stray: not declared"
    ]


def test_holding_time_known_help_when_read_names_the_configured_mean_not_the_truncated_one():
    help_text = _comments_by_key(default_ini_text())["dataset_logging", "holding_time_known"]
    assert "[general_settings] holding_time" in help_text
    assert "holding_time_truncation" in help_text and "lower" in help_text


def test_config_ini_when_every_key_is_away_from_its_default_loads_back_the_same(tmp_path):
    cfg = load_config().replace(
        "general_settings", seeds="0-2,7,9-10", erlang=123.25, bit_rates="uniform:25-50"
    )
    cfg = cfg.replace("topology_settings", network="usnet", directed="true", slot_ghz=6.25)
    cfg = cfg.replace("failure_settings", failure_type="node", failed_node="3")
    cfg = cfg.replace("dataset_logging", log_spectrum="true", shard_compression="zstd")
    path = tmp_path / "x.ini"
    path.write_text(config_ini(cfg, "a header\nof two lines"))
    assert load_config(path).to_dict() == cfg.to_dict()
    assert path.read_text().startswith("# a header\n# of two lines\n\n[general_settings]\n")


@pytest.mark.parametrize("value", ["a\nb", "x #y", "x ;y", " padded"])
def test_ini_value_when_text_cannot_round_trip_refuses_it(value):
    with pytest.raises(ValueError, match="cannot be written as an INI value"):
        ini_value(value)


def test_config_ini_when_a_value_cannot_round_trip_names_the_key():
    cfg = dataclasses.replace(
        Config(), dataset=dataclasses.replace(Config().dataset, dataset_output_path="d #1/x.jsonl")
    )
    with pytest.raises(ValueError, match=re.escape("[dataset_logging] dataset_output_path")):
        config_ini(cfg)
