"""Export formats live in one registry: the command's choices and help, the front door and a
new format (one module and one line) all go through it (issue #31, item 4)."""

from __future__ import annotations

import argparse
import importlib
import sys
import types
from pathlib import Path

import pytest

from fusion.cli import build_parser, main
from fusion.interop.export import export_dataset
from fusion.interop.formats import FORMATS, ExportFormat, ExportJob, export_format


def _export_action(name: str):  # type: ignore[no-untyped-def]
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    parser = sub.choices["export"]
    return next(a for a in parser._actions if a.dest == name)


def test_cli_format_option_when_built_offers_the_registrys_formats_and_their_help():
    option = _export_action("format")
    assert list(option.choices) == list(FORMATS)
    for fmt in FORMATS.values():
        assert f"{fmt.name}: {fmt.help}" in option.help
        assert f"{fmt.name}: {fmt.output}" in _export_action("output").help


def test_registry_when_each_format_is_imported_has_a_writer_in_its_own_module():
    modules = [fmt.module for fmt in FORMATS.values()]
    assert len(set(modules)) == len(modules)
    for fmt in FORMATS.values():
        assert callable(importlib.import_module(fmt.module).write), fmt.name


def test_export_dataset_when_format_is_unknown_names_the_registrys_formats(tmp_path):
    with pytest.raises(ValueError, match=r"one of \['npz', 'parquet', 'minari'\], got 'csv'"):
        export_dataset(tmp_path, tmp_path / "x.csv", "csv")
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.parametrize("name", [f.name for f in FORMATS.values() if f.needs_output])
def test_cli_export_when_a_file_format_has_no_output_exits_2_naming_the_option(
    dataset, name, capsys
):
    assert main(["export", str(dataset), "--format", name]) == 2
    assert f"--format {name} needs -o OUT" in capsys.readouterr().err


@pytest.fixture
def toy_format(monkeypatch: pytest.MonkeyPatch) -> list[ExportJob]:
    """A format added as the registry says: a module with ``write(job)`` and one line."""
    jobs: list[ExportJob] = []
    module = types.ModuleType("toy_export")

    def write(job: ExportJob) -> int:
        jobs.append(job)
        Path(job.output).write_text("toy")  # type: ignore[arg-type]
        return 3

    module.write = write  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "toy_export", module)
    line = ExportFormat("toy", "toy_export", help="a toy", output="the toy file")
    monkeypatch.setitem(FORMATS, "toy", line)
    return jobs


def test_new_format_when_registered_with_one_line_is_exported_by_the_cli_and_the_api(
    dataset, tmp_path, toy_format, capsys
):
    out = tmp_path / "x.toy"
    argv = ["export", str(dataset), "--format", "toy", "-o", str(out), "--seeds", "1,2"]
    assert main(argv) == 0
    assert capsys.readouterr().out.strip() == f"exported 3 transitions to {out} (toy)"
    assert out.read_text() == "toy"
    assert toy_format[0] == ExportJob(str(dataset), str(out), (1, 2), False, False, None)
    assert export_dataset(dataset, out, "toy", overwrite=True) == 3
    assert "toy: a toy" in _export_action("format").help


def test_format_without_a_writer_when_used_says_which_module_lacks_it(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "empty_export", types.ModuleType("empty_export"))
    monkeypatch.setitem(FORMATS, "empty", ExportFormat("empty", "empty_export", "-", "-"))
    with pytest.raises(TypeError, match="empty_export has no write"):
        export_format("empty").export(ExportJob(tmp_path, tmp_path / "x"))


def test_cli_export_when_seeds_are_not_in_the_dataset_exits_2_for_every_format(
    dataset, tmp_path, capsys
):
    for name in FORMATS:
        if name == "minari":
            pytest.importorskip("minari", reason="the minari extra is not installed")
        argv = ["export", str(dataset), "--format", name, "-o", str(tmp_path / f"x.{name}")]
        argv += ["--id", "fusion/x-v0"] if name == "minari" else []
        assert main([*argv, "--seeds", "99"]) == 2, name
        assert "99" in capsys.readouterr().err, name
        assert not (tmp_path / f"x.{name}").exists(), name
