"""The README's quick start is what CI runs, and its install line installs what the tests need."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / ".ci"))
from readme_commands import quick_start_commands  # noqa: E402


def test_quick_start_when_read_gives_one_install_and_one_test_line():
    commands = quick_start_commands((ROOT / "README.md").read_text(encoding="utf-8"))
    assert commands["install"].startswith("pip install -e '.[")
    assert "fusion sweep" in commands["install"]
    assert commands["test"].startswith("pytest")


def test_ci_when_read_runs_the_readme_commands_not_its_own():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "readme_commands.py install" in ci and "readme_commands.py test" in ci
    assert "pip install" not in ci  # every install goes through the README's line
    test_line = quick_start_commands((ROOT / "README.md").read_text(encoding="utf-8"))["test"]
    assert f"\n{test_line}\n" in ci  # the README's test line, run as written


def test_install_line_when_extras_named_they_exist_in_pyproject():
    commands = quick_start_commands((ROOT / "README.md").read_text(encoding="utf-8"))
    extras = re.search(r"\.\[([^\]]*)\]", commands["install"])
    assert extras is not None
    provided = importlib.metadata.metadata("fusion-offline").get_all("Provides-Extra") or []
    for extra in extras.group(1).split(","):
        assert extra in provided, extra


def test_quick_start_commands_when_a_block_is_missing_raise_naming_the_section():
    with pytest.raises(ValueError, match="Quick start"):
        quick_start_commands("# title\n")
    with pytest.raises(ValueError, match="two one-line"):
        quick_start_commands("## Quick start\n\n```bash\npip install .\n```\n")


@pytest.mark.parametrize("module", ["zstandard", "pyarrow", "orjson", "filelock", "tqdm"])
def test_core_dependencies_when_installed_import(module):
    assert importlib.util.find_spec(module) is not None


def test_missing_optional_package_when_needed_names_the_extra(monkeypatch, tmp_path, capsys):
    import builtins

    from fusion.cli import main
    from fusion.errors import MissingDependencyError
    from fusion.optional import require

    with pytest.raises(MissingDependencyError, match=r"pip install 'fusion-offline\[ray\]'"):
        require("no_such_module_here", "ray", "the ray backend")
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):  # type: ignore[no-untyped-def]
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    from conftest import write_shard

    write_shard(tmp_path, 1, 3)
    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    monkeypatch.delitem(sys.modules, "matplotlib", raising=False)
    monkeypatch.delitem(sys.modules, "matplotlib.pyplot", raising=False)
    assert main(["inspect", str(tmp_path), "--plot", str(tmp_path / "x.png")]) == 1
    assert "pip install 'fusion-offline[plot]'" in capsys.readouterr().err
