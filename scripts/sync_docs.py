"""Rewrite the text derived from the declarations: ``default.ini``'s comments and the README's
feature and heuristics tables.

The tests (``tests/test_default_ini.py``, ``tests/test_docs_match.py``,
``tests/test_heuristic_registry.py``) check each copy against its declaration; after adding a
path feature (``fusion/config/features.py``), a heuristic (``fusion/config/heuristics.py``) or
a config key (``fusion/config/config.py``), this one command writes the copies again::

    python scripts/sync_docs.py           # rewrite what drifted, say which files
    python scripts/sync_docs.py --check   # exit 1 naming what drifted, write nothing
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from fusion.config.config import default_ini
from fusion.config.features import feature_table
from fusion.config.heuristics import heuristic_table

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DEFAULT_INI = ROOT / "fusion" / "config" / "default.ini"


def replace_table(text: str, table: str) -> str:
    """``text`` with the Markdown table whose header row is ``table``'s replaced by ``table``.

    :param text: A Markdown document.
    :param table: The table as it should read (its first line is the header row it replaces).
    :raises ValueError: when the document holds no table with that header, or several.

        >>> replace_table("a\\n| x |\\n|---|\\n| 1 |\\nb\\n", "| x |\\n|---|\\n| 2 |")
        'a\\n| x |\\n|---|\\n| 2 |\\nb\\n'
    """
    lines = text.split("\n")
    header = table.split("\n")[0]
    starts = [i for i, line in enumerate(lines) if line == header]
    if len(starts) != 1:
        raise ValueError(f"{len(starts)} tables start with {header!r}; expected one")
    end = starts[0]
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return "\n".join([*lines[: starts[0]], table, *lines[end:]])


def derived() -> dict[Path, Callable[[str], str]]:
    """Each derived file and how its text is made from the file as it is."""
    return {
        DEFAULT_INI: lambda _: default_ini(),
        README: lambda text: replace_table(
            replace_table(text, feature_table()), heuristic_table("markdown")
        ),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 on drift")
    args = parser.parse_args(argv)
    drifted = []
    for path, make in derived().items():
        text = path.read_text("utf-8")
        wanted = make(text)
        if wanted != text:
            drifted.append(path)
            if not args.check:
                path.write_text(wanted, "utf-8")
    for path in drifted:
        print(f"{path.relative_to(ROOT)}: {'drifted' if args.check else 'rewritten'}")
    return 1 if drifted and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
