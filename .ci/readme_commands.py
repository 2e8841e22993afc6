"""Print one command of the README's quick start: ``install`` or ``test``.

CI runs exactly what the README tells a newcomer to run, so the two cannot drift apart: the
quick start's first fenced ``bash`` block is the install line, its second the test line.

    $ python .ci/readme_commands.py install
    pip install -e '.[dev,ray,rl,minari]' && fusion sweep
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"


def quick_start_commands(text: str) -> dict[str, str]:
    """The install and test commands of a README's ``## Quick start`` section.

    :param text: The README.
    :raises ValueError: when the section or its two one-line ``bash`` blocks are missing.
    """
    match = re.search(r"^## Quick start\n(.*?)(?=^## |\Z)", text, re.S | re.M)
    if match is None:
        raise ValueError("README.md has no '## Quick start' section")
    blocks = re.findall(r"^```bash\n(.*?)^```", match.group(1), re.S | re.M)
    commands = [block.strip() for block in blocks]
    if len(commands) < 2 or any("\n" in c or not c for c in commands[:2]):
        raise ValueError(
            "README.md's quick start must hold two one-line ```bash blocks: install, then test"
        )
    return {"install": commands[0], "test": commands[1]}


if __name__ == "__main__":
    which = sys.argv[1] if len(sys.argv) > 1 else ""
    commands = quick_start_commands(README.read_text(encoding="utf-8"))
    if which not in commands:
        sys.exit("usage: readme_commands.py install|test")
    print(commands[which])
