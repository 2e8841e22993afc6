"""The output guard: every command that writes a file asks :func:`check_output` first.

Before any work, for every path a command is about to write:

- a path of the wrong kind is refused: an existing directory where a file is written, an
  existing file where a directory is, a parent that is a file, and (whatever ``overwrite``
  says) a FIFO, device or socket, or a symlink to one; so is a file in a directory that takes
  no new file (read-only, ``/proc``);
- a file the command reads (its input's shards, sidecars, manifests, merge records,
  ``study.json``) is refused;
- a file that belongs to a dataset or a study is refused whatever ``overwrite`` says: a fusion
  ``manifest.json``, a shard's sidecar, a merge record, a merged file its record describes,
  a fusion ``study.json``, an array cache, a run's lease, a lock of any of these. So is any
  path inside a dataset or study directory (or a study's point directory, made or not) that
  one of its own files would take (a shard's name, ``manifest.json``, ``study.json`` ...:
  a new file there would pass for one of the dataset's), and a study's point directory
  itself. Whether a file or directory is a dataset's or a study's is read from the records
  (the file's own, its directory's manifest, sidecars or ``study.json``), never guessed from a
  name alone: another app's ``manifest.json`` elsewhere is an ordinary file;
- any other existing file is replaced only with ``overwrite`` (``--overwrite``); an existing
  symlink (dangling or not) is an existing file. Writers replace the link itself, never the
  file it points to, and both the link's place and its target are checked as above.

The writers then publish through :mod:`fusion.storage.atomic`, so a failure leaves the old
file as it was. Every refusal is an :class:`~fusion.errors.OutputConflictError` (exit 2).

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "notes.txt").write_text("mine")
    >>> check_output(d / "table.csv")
    >>> try:
    ...     check_output(d / "notes.txt")
    ... except OutputConflictError as exc:
    ...     print(str(exc).rsplit(": ", 1)[1])
    exists; pass --overwrite to replace it, or choose another path
    >>> check_output(d / "notes.txt", overwrite=True)
"""

from __future__ import annotations

import os
import stat
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from fusion.errors import FusionError, OutputConflictError
from fusion.storage import manifest as mf
from fusion.storage.clearing import dataset_record_files, listed_points
from fusion.storage.ownership import LEASE_NAME
from fusion.storage.shard_entries import read_sidecar
from fusion.storage.shard_names import (
    ARRAY_CACHE_KEY,
    ARRAY_CACHE_SUFFIX,
    SIDECAR_SUFFIX,
    merged_sidecar_path,
    parse_shard_name,
)
from fusion.storage.sources import MERGE_FORMAT, STUDY_MERGE_FORMAT, protected_files
from fusion.storage.study_layout import STUDY_FILE, STUDY_FORMAT

_MERGE_FORMATS = (MERGE_FORMAT, STUDY_MERGE_FORMAT)
_NEVER = "fusion never writes over a dataset's or a study's files, --overwrite or not"


def check_output(
    *paths: str | os.PathLike[str],
    kind: Literal["file", "dir"] = "file",
    overwrite: bool = False,
    inputs: Iterable[str | os.PathLike[str]] = (),
    merge_record: bool = False,
) -> None:
    """Refuse, before any work, an output path that would replace something by surprise.

    :param paths: The files (or directories, see ``kind``) the command is about to write.
    :param kind: ``"file"``: each path is a file written whole; ``"dir"``: a directory the
        command writes into (it may exist).
    :param overwrite: Replace an existing file that belongs to no dataset or study.
    :param inputs: What the command reads (datasets, merged files, studies): none of their
        files may be an output.
    :param merge_record: The command is a merge: it writes each path together with its record
        ``PATH.manifest.json``, so an earlier merge at the path is replaced with its record
        (given ``overwrite``), and the record's path is checked too.
    :raises OutputConflictError: naming the path, why, and what to do.
    """
    protected = _protected(inputs)
    for path in paths:
        _check_one(Path(path), kind, overwrite, protected, merged_ok=merge_record)
        if merge_record:
            record = merged_sidecar_path(path)
            _check_one(record, "file", overwrite, protected, record_ok=True)


def _protected(inputs: Iterable[str | os.PathLike[str]]) -> dict[Path, str]:
    """Every file the inputs' readers read -> the input, for messages."""
    files: dict[Path, str] = {}
    for source in inputs:
        try:
            found = protected_files(source)
        except (FusionError, OSError):  # missing or unreadable: its reader names the problem
            continue
        files.update(dict.fromkeys(found, str(source)))
    return files


def _check_one(
    path: Path,
    kind: str,
    overwrite: bool,
    protected: dict[Path, str],
    *,
    merged_ok: bool = False,
    record_ok: bool = False,
) -> None:
    target = path.resolve()  # another spelling of a path (a symlink, ..) is the same file
    # the file a rename replaces: the link itself when ``path`` is a symlink (writers publish
    # by ``os.replace``, never through a link), so both it and the link's target are checked
    where = path.parent.resolve() / path.name
    _check_special(path, where, target)
    _check_kind(path, target, kind)
    for place in dict.fromkeys((target, where)):
        if place in protected:
            raise OutputConflictError(
                f"{path}: is a file of {protected[place]} that this command reads; "
                "write the output elsewhere"
            )
        why = _belongs(place, merged_ok=merged_ok, record_ok=record_ok)
        if why:
            raise OutputConflictError(f"{path}: {why}; {_NEVER}: choose another path")
    exists = os.path.lexists(where) or os.path.lexists(target)  # a dangling symlink exists
    if kind == "file" and exists and not overwrite:
        raise OutputConflictError(
            f"{path}: exists; pass --overwrite to replace it, or choose another path"
        )
    if kind == "file":
        _check_writable(path, where.parent)


def _check_writable(path: Path, directory: Path) -> None:
    """Refuse, before any work, a file whose directory (or the nearest existing ancestor, in
    which the missing ones are made) takes no new file: an unnamed temp file is made there
    (``O_TMPFILE`` where the system has it: a kill leaves nothing behind), as the writer's
    own temp file would be."""
    existing = next((d for d in (directory, *directory.parents) if d.is_dir()), None)
    if existing is None:
        return
    try:
        with tempfile.TemporaryFile(prefix=".fusion-probe-", dir=existing):
            pass
    except OSError as exc:
        raise OutputConflictError(
            f"{path}: cannot write in {existing} ({exc.strerror or exc}); choose another path"
        ) from None


def _check_special(path: Path, where: Path, target: Path) -> None:
    """Refuse, whatever ``--overwrite`` says, a path that is (or links to) a FIFO, a device or
    a socket: an output replaces only regular files."""
    for place in (where, target):
        try:
            mode = place.lstat().st_mode
        except OSError:  # absent (or unreadable: the write names the problem)
            continue
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode) or stat.S_ISLNK(mode)):
            raise OutputConflictError(
                f"{path}: is a special file (FIFO, device or socket), not a regular file, "
                "and this command writes there; --overwrite never replaces one: "
                "choose another path"
            )


def _check_kind(path: Path, target: Path, kind: str) -> None:
    """Refuse a path of the wrong kind, or below a file, or with a name too long for the temp
    file (``.NAME.XXXXXXXX.tmp``) and the record (``NAME.manifest.json``) written beside it."""
    if len(target.name.encode()) > 200:
        raise OutputConflictError(
            f"{path}: the file name is over 200 bytes; the file system takes 255 and the temp "
            "file and record written beside it add to it: use a shorter name"
        )
    if kind == "file" and target.is_dir():
        raise OutputConflictError(
            f"{path}: is a directory, and this command writes a file there; "
            "give a file's path (e.g. inside that directory)"
        )
    if kind == "dir" and target.exists() and not target.is_dir():
        raise OutputConflictError(
            f"{path}: is a file, and this command writes a directory there; give a directory's path"
        )
    for parent in target.parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputConflictError(
                    f"{path}: {parent} is a file, not a directory; choose another path"
                )
            return


def _belongs(target: Path, *, merged_ok: bool, record_ok: bool) -> str | None:
    """Why ``target`` belongs to a dataset or a study (``None`` when it does not)."""
    role = _own_name(target.name)
    for ancestor in target.parents:
        for point in listed_points(ancestor) or []:
            where = (ancestor / point).resolve()
            if target == where or target in where.parents:
                return f"is where point {point} of study {ancestor} lives"
            if role and target.parent == where:
                return f"is {role} in point {point} of study {ancestor}"
    if target.is_file() and (why := _record_says(target, merged_ok=merged_ok, record_ok=record_ok)):
        return why
    if role is None:
        return None
    parent = target.parent
    if _is_dataset_dir(parent):
        return f"is {role} in dataset {parent}"
    if listed_points(parent) is not None:
        return f"is {role} in study {parent}"
    return None


def _own_name(name: str) -> str | None:
    """What ``name`` is in a dataset or study directory (``None``: not one of its names)."""
    if name.endswith(".lock"):
        return "a lock's name" if _own_name(name.removesuffix(".lock")) else None
    if parse_shard_name(name):
        return "a shard's name"
    if name.endswith(SIDECAR_SUFFIX):
        return "a shard sidecar's name"
    if name.endswith(ARRAY_CACHE_SUFFIX):
        return "an array cache's name"
    roles = {mf.MANIFEST_NAME: "the manifest's name", STUDY_FILE: "the study record's name"}
    return roles.get(name, "the run lease's name" if name == LEASE_NAME else None)


def _format(path: Path) -> Any:
    """The ``format`` a JSON record says it is (``None`` when unreadable or none)."""
    try:
        record = read_sidecar(path)
    except OSError:
        return None
    return None if record is None else record.get("format")


def _is_dataset_dir(directory: Path) -> bool:
    """Whether ``directory`` holds a dataset's record (a manifest or a sidecar of fusion's)."""
    try:
        return dataset_record_files(directory) is not None
    except OSError:
        return False


def _record_says(target: Path, *, merged_ok: bool, record_ok: bool) -> str | None:
    """Why an existing file is fusion's by its own record (or its record beside it)."""
    name = target.name
    if name == LEASE_NAME:
        return "is a run's lease"
    if name.endswith(".lock"):
        locked = target.with_name(name.removesuffix(".lock"))
        why = _belongs(locked, merged_ok=False, record_ok=False)
        return f"is the lock of {locked.name}, which {why}" if why else None
    if name == mf.MANIFEST_NAME and _format(target) == mf.FORMAT_NAME:
        return f"is the manifest of dataset {target.parent}"
    if name == STUDY_FILE and _format(target) == STUDY_FORMAT:
        return f"is the study.json of study {target.parent}"
    if name.endswith(SIDECAR_SUFFIX) and _format(target) == mf.FORMAT_NAME:
        return "is a shard's sidecar"
    if name.endswith(".manifest.json") and not record_ok and _format(target) in _MERGE_FORMATS:
        return "is a merge's record"
    if name.endswith(ARRAY_CACHE_SUFFIX) and _is_array_cache(target):
        return "is a dataset's array cache"
    record = merged_sidecar_path(target)
    if not merged_ok and record.is_file() and _format(record) in _MERGE_FORMATS:
        return f"is a merged dataset (its record: {record.name})"
    return None


def _is_array_cache(path: Path) -> bool:
    """Whether an ``.npz`` holds the array cache's key (see :mod:`fusion.datasets.array_cache`)."""
    try:
        with zipfile.ZipFile(path) as npz:
            return f"{ARRAY_CACHE_KEY}.npy" in npz.namelist()
    except (OSError, zipfile.BadZipFile):
        return False
