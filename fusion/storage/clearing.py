"""What ``--overwrite`` removes, whole, and what it keeps.

A dataset directory's own files are its shards (any stem, plain or compressed), their
sidecars, its manifest, the locks beside them, the array cache and temp files a killed
writer left; a study's own files are ``study.json`` and every point directory it lists,
whatever those hold (their datasets, caches, models). Overwriting removes exactly these;
anything else in the directory (notes, merged files, models kept at the top) stays. Since a
directory is a dataset or a study, never both, overwriting either clears the other kind too,
so the new one is never shadowed by the old.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> for name in ("manifest.json", "offline_data.seed1.jsonl", "notes.txt"):
    ...     _ = (d / name).write_text("x")
    >>> clear_output(d); sorted(p.name for p in d.iterdir())
    ['notes.txt']
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from fusion.errors import DatasetError
from fusion.storage import manifest as mf
from fusion.storage.study_layout import STUDY_FILE, read_study

#: A temp file that :mod:`fusion.storage.atomic` writes before renaming it into place.
TEMP_RE = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")


def is_dataset_file(name: str) -> bool:
    """Whether a file name is one a dataset directory owns (see the module docstring).

    :param name: A file name in a dataset directory.
    """
    return bool(
        mf.parse_shard_name(name)
        or name.endswith((mf.SIDECAR_SUFFIX, ".lock", mf.ARRAY_CACHE_SUFFIX))
        or name == mf.MANIFEST_NAME
        or TEMP_RE.match(name)
    )


def clear_dataset(directory: Path) -> None:
    """Remove a dataset directory's own files, nothing else.

    :param directory: The dataset directory.
    """
    for path in directory.iterdir():
        if path.is_file() and is_dataset_file(path.name):
            path.unlink()


def clear_study(directory: Path) -> None:
    """Remove a study's ``study.json`` and every point directory it lists, whole (and the
    directories above them that are left empty); nothing else.

    :param directory: The study directory.
    """
    try:
        points = [point["dir"] for point in read_study(directory)["points"]]
    except DatasetError:  # unreadable: nothing listed to remove
        points = []
    root = directory.resolve()
    for name in points:
        path = (directory / name).resolve()
        if root not in path.parents:  # a listed dir must lie inside the study
            continue
        shutil.rmtree(path, ignore_errors=True)
        for parent in path.parents:
            if parent == root or not parent.is_dir() or any(parent.iterdir()):
                break
            parent.rmdir()
    (directory / STUDY_FILE).unlink(missing_ok=True)


def clear_output(directory: Path) -> None:
    """Clear what a dataset or study directory holds of its own (before an overwrite).

    :param directory: The directory.
    """
    if (directory / STUDY_FILE).exists():
        clear_study(directory)
    clear_dataset(directory)
