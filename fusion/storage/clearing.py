"""What ``--overwrite`` removes: exactly the files a fusion record names, never by pattern.

A dataset's record is its ``manifest.json`` (and the sidecars of its config): it names the
shard stem, the planned seeds and every shard entry, so its files are the manifest, each
recorded seed's shard (plain or compressed), sidecar and lock, the array cache of its stem,
and the temp files of any of these (the lease is the running run's own:
:mod:`~fusion.storage.ownership`). A directory without a readable manifest is recorded
by its sidecars alone (each names its shard). A study's record is its ``study.json``: its
files are that and each listed point's dataset files; point directories left empty are
removed. Anything else (notes, models, merged files, another
tool's ``manifest.json`` or ``*.lock``) stays, wherever it is.

A non-empty directory that holds no record at all is refused
(:class:`~fusion.errors.ForeignDirectoryError`, naming a few of its files).

    >>> import tempfile, pathlib
    >>> from fusion.storage.manifest import init_manifest
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = init_manifest(d, {"g": {"erlang": 300}}, planned_seeds=[1])
    >>> for name in ("offline_data.seed1.jsonl", "uv.lock", "results.seed3.jsonl"):
    ...     _ = (d / name).write_text("x")
    >>> clear_output(d); sorted(p.name for p in d.iterdir())
    ['results.seed3.jsonl', 'uv.lock']
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

from fusion.config.vocabulary import SUFFIXES
from fusion.errors import DatasetError, ForeignDirectoryError
from fusion.storage import manifest as mf
from fusion.storage.ownership import LEASE_NAME, refuse_if_held
from fusion.storage.shard_entries import check_entry, read_sidecar
from fusion.storage.shard_names import (
    ARRAY_CACHE_SUFFIX,
    SIDECAR_SUFFIX,
    shard_file_name,
    sidecar_path,
)
from fusion.storage.study_layout import STUDY_FILE, read_study

#: A temp file that :mod:`fusion.storage.atomic` writes before renaming it into ``target``.
TEMP_RE = re.compile(r"^\.(?P<target>.+)\.[A-Za-z0-9_]{8}\.tmp$")


def _shard_names(name: str) -> set[str]:
    """A shard's own files: plain and compressed, its sidecar, its lock."""
    plain = sidecar_path(name).name.removesuffix(SIDECAR_SUFFIX)
    names = {plain, plain + SIDECAR_SUFFIX, plain + ".lock"}
    names.update(plain + suffix for suffix in SUFFIXES.values())
    return names


def dataset_record_files(directory: Path) -> set[str] | None:
    """The names of the files a dataset's record names in ``directory`` (see the module
    docstring), or ``None`` when no manifest or sidecar there is fusion's.

    :param directory: The dataset directory.
    """
    try:
        manifest = mf.read_manifest(directory)
    except DatasetError:
        manifest = None
    names: set[str] = set()
    if manifest is not None:
        stem = manifest["stem"]
        entries = mf.current_entries(directory, manifest)
        seeds = set(manifest.get("planned_seeds", [])) | {int(e["seed"]) for e in entries}
        for seed in seeds:
            names |= _shard_names(shard_file_name(seed, stem))
        for entry in entries:
            names |= _shard_names(entry["file"])
        names |= {mf.MANIFEST_NAME, mf.MANIFEST_NAME + ".lock", stem + ARRAY_CACHE_SUFFIX}
    for path in _listing(directory):
        if path.name.endswith(SIDECAR_SUFFIX) and path.name not in names:
            record = read_sidecar(path)
            if record is None or record.get("format") != mf.FORMAT_NAME:
                continue
            try:
                check_entry(path, "the sidecar", record, None)
            except DatasetError:
                continue
            names |= _shard_names(record["file"])
    return names or None


def _listing(directory: Path) -> list[Path]:
    try:
        return sorted(directory.iterdir())
    except (FileNotFoundError, NotADirectoryError):
        return []


def is_own_temp(name: str, names: set[str]) -> bool:
    """Whether ``name`` is a temp file fusion writes before renaming it to one of ``names``."""
    match = TEMP_RE.match(name)
    return match is not None and match.group("target") in names


def _clear_named(directory: Path, names: set[str]) -> None:
    for path in _listing(directory):
        if (path.name in names or is_own_temp(path.name, names)) and not path.is_dir():
            path.unlink(missing_ok=True)


def listed_points(directory: Path) -> list[str] | None:
    """The point directories ``study.json`` lists, or ``None`` when there is no readable one."""
    if not (directory / STUDY_FILE).exists():
        return None
    try:
        return [point["dir"] for point in read_study(directory)["points"]]
    except DatasetError:
        return None


def _clear_study(directory: Path, points: list[str]) -> None:
    root = directory.resolve()
    for name in points:
        path = (directory / name).resolve()
        if root not in path.parents or not path.is_dir():
            continue
        names = dataset_record_files(path)
        if names is not None:
            _clear_named(path, names)
        for parent in (path, *path.parents):  # point directories left empty go too
            if parent == root or not parent.is_dir() or any(parent.iterdir()):
                break
            parent.rmdir()
    _clear_named(directory, {STUDY_FILE})


def is_recorded(directory: Path) -> bool:
    """Whether ``directory`` holds a fusion record (a dataset's or a readable study's)."""
    return listed_points(directory) is not None or dataset_record_files(directory) is not None


def foreign_files(directory: Path) -> list[str]:
    """Up to five names of ``directory``'s entries, the lease and its temp files aside (for
    a refusal's message; empty when there is nothing but those)."""
    names = sorted(
        p.name for p in _listing(directory) if not p.name.startswith((LEASE_NAME, "." + LEASE_NAME))
    )
    return names[:5] + (["..."] if len(names) > 5 else [])


def refuse_unrecorded(directory: Path, what: str) -> None:
    """Refuse a non-empty directory that holds no fusion record.

    :param directory: The directory.
    :param what: What was asked and what it does (``--overwrite replaces only what fusion
        recorded``), for the message.
    :raises ForeignDirectoryError: naming a few of its files.
    """
    if foreign_files(directory) and not is_recorded(directory):
        if (directory / STUDY_FILE).exists():
            try:
                read_study(directory)
            except DatasetError as exc:
                raise ForeignDirectoryError(
                    f"{directory}: {what} needs a dataset or study this tool can read, and {exc}; "
                    "fix or remove that file, or use another directory"
                ) from None
        raise ForeignDirectoryError(
            f"{directory}: holds files no fusion dataset or study records "
            f"({', '.join(foreign_files(directory))}): use an empty or new directory ({what})"
        )


def _refuse_unreadable_manifest(directory: Path) -> None:
    if (directory / mf.MANIFEST_NAME).exists():
        try:
            mf.read_manifest(directory)
        except DatasetError as exc:
            raise ForeignDirectoryError(
                f"{exc}; --overwrite cannot write a new manifest over it nor tell what it "
                f"records: if it is fusion's, `fusion validate --rebuild {directory}` remakes "
                "it from the shards' sidecars; else move it away"
            ) from None


def check_point_dir(root: Path, point: Path) -> None:
    """Refuse a study's point directory fusion may not clear or write: another run's, a link
    or a path out of the study, or one whose manifest it cannot read.

    :raises ForeignDirectoryError: naming it.
    :raises DirectoryBusyError: when another run holds it.
    """
    refuse_if_held(point, "--overwrite of the study", below=root)
    if point.is_symlink() or root.resolve() not in point.resolve().parents:
        raise ForeignDirectoryError(
            f"{point}: a point of study {root} that is a link or lies outside it; fusion "
            "neither clears nor writes through it: remove the link, or use another directory"
        )
    _refuse_unreadable_manifest(point)


def refuse_foreign_shards(directory: Path, stem: str, seeds: Iterable[int]) -> None:
    """Refuse to write seeds whose shard names hold files no record of ``directory`` names
    (another tool's ``offline_data.seed5.jsonl``): one listing.

    :raises ForeignDirectoryError: naming a few of them.
    """
    listing = {p.name for p in _listing(directory)}
    if not listing:
        return
    names = dataset_record_files(directory) or set()
    found = sorted(
        name
        for seed in seeds
        for name in _shard_names(shard_file_name(seed, stem))
        if name in listing and name not in names and not name.endswith(".lock")
    )
    if found:
        raise ForeignDirectoryError(
            f"{directory}: {', '.join(found[:5])}{', ...' if len(found) > 5 else ''}: named "
            "like shards of this run's seeds, but no record of a fusion dataset here names "
            "them; fusion neither replaces nor removes them: move them, or write elsewhere"
        )


def clear_output(directory: Path) -> None:
    """Clear what a dataset or study directory holds of its own (before an overwrite): the
    files its record names, nothing else. Every check runs before the first file goes.

    :param directory: The directory.
    :raises ForeignDirectoryError: when it is not empty and holds no fusion record, or a
        record it cannot read.
    """
    refuse_unrecorded(directory, "--overwrite replaces only what fusion recorded")
    _refuse_unreadable_manifest(directory)
    points = listed_points(directory)
    for name in points or []:
        check_point_dir(directory, directory / name)
    if points is not None:
        _clear_study(directory, points)
    names = dataset_record_files(directory)
    if names is not None:
        _clear_named(directory, names)
