"""The benchmark's own JSON files (data cards, the expert's choice, results, model records):
written whole, and never over a file that is not one of them.

A build or an evaluation writes into directories the user names (``--out``); a file there
with one of these names that is not the benchmark's own (not a JSON object holding the keys
its kind always holds) is refused, never replaced.

    >>> import tempfile
    >>> path = Path(tempfile.mkdtemp()) / "x.card.json"
    >>> write_own_json(path, {"dataset": "a/b"}, own=("dataset",))
    >>> write_own_json(path, {"dataset": "a/c"}, own=("dataset",))  # its own: replaced
    >>> _ = path.write_text("my notes")
    >>> write_own_json(path, {"dataset": "a/d"}, own=("dataset",))
    Traceback (most recent call last):
    ...
    fusion.errors.OutputConflictError: ...x.card.json: a file the benchmark did not write (no JSON object holding 'dataset'); not replaced: move it away or use another --out
"""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import orjson

from fusion.errors import OutputConflictError
from fusion.storage.atomic import atomic_path

__all__ = ["write_own_json"]


def write_own_json(
    path: str | os.PathLike[str],
    data: Mapping[str, Any],
    *,
    own: Collection[str],
    sort_keys: bool = False,
) -> None:
    """Write ``data`` as indented JSON at ``path`` atomically (a killed run leaves the old file
    or the new one, whole).

    :param path: The file.
    :param data: Its content.
    :param own: Keys every file of this kind holds: an existing file is replaced only when it
        is a JSON object holding them all (and no link).
    :param sort_keys: Write the keys sorted.
    :raises OutputConflictError: naming the file, when one is there that the benchmark did not
        write.
    """
    target = Path(path)
    if target.is_symlink() or target.exists():
        try:
            old = None if target.is_symlink() else orjson.loads(target.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            old = None
        if not (isinstance(old, dict) and all(key in old for key in own)):
            keys = ", ".join(repr(key) for key in own)
            raise OutputConflictError(
                f"{target}: a file the benchmark did not write (no JSON object holding {keys}); "
                "not replaced: move it away or use another --out"
            )
    option = orjson.OPT_INDENT_2 | (orjson.OPT_SORT_KEYS if sort_keys else 0)
    with atomic_path(target, suffix=".json", replace=True) as tmp:
        Path(tmp).write_bytes(orjson.dumps(dict(data), option=option) + b"\n")
