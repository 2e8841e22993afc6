"""Every command's and subcommand's ``--help`` prints (argparse formats help text only when
asked, so a stray ``%`` in one surfaces only there)."""

from __future__ import annotations

import argparse

import pytest

from fusion.cli import build_parser, main


def _command_paths(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list:
    paths = [prefix]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                paths.extend(_command_paths(sub, (*prefix, name)))
    return paths


@pytest.mark.parametrize("path", _command_paths(build_parser()), ids=" ".join)
def test_help_when_asked_of_any_command_prints_and_exits_0(path, capsys):
    with pytest.raises(SystemExit) as done:
        main([*path, "--help"])
    assert done.value.code == 0
    assert "usage: fusion" in capsys.readouterr().out
