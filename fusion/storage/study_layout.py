"""A study on disk: ``study.json`` at the top, one ordinary dataset per grid point below.

    STUDY/study.json
    STUDY/erlang=200/policy=ksp_ff/manifest.json, offline_data.seed<N>.jsonl, ...

``study.json`` lists the axes, the seeds, and the points in order with their directory,
config sha256 and status (``planned``, ``complete``, ``failed``, ``incomplete``); each
point's own manifest stays the truth about its shards, so readers judge every point's shards
as they judge any dataset's.

    >>> is_study("/nonexistent")
    False
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from fusion.errors import DatasetError
from fusion.storage.atomic import write_bytes_atomic

STUDY_FILE = "study.json"
STUDY_FORMAT = "fusion-study/1"


@dataclass(frozen=True)
class StudyPoint:
    """One point of a study on disk.

    :param coords: Axis name -> value.
    :param path: The point's dataset directory.
    :param record: Its entry in ``study.json``.
    """

    coords: dict[str, Any]
    path: Path
    record: dict[str, Any]


def study_root(path: str | os.PathLike[str]) -> Path | None:
    """The study directory ``path`` names (the directory or its ``study.json``), else None."""
    p = Path(path)
    if p.name == STUDY_FILE and p.is_file():
        return p.parent
    if (p / STUDY_FILE).is_file():
        return p
    return None


def is_study(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a study directory or its ``study.json``."""
    return study_root(path) is not None


def write_study(directory: Path, record: Mapping[str, Any]) -> None:
    """Publish ``study.json`` atomically (temp file, fsync, rename)."""
    write_bytes_atomic(directory / STUDY_FILE, orjson.dumps(record, option=orjson.OPT_INDENT_2))


def read_study(path: str | os.PathLike[str]) -> dict[str, Any]:
    """``study.json`` of a study, checked.

    :raises DatasetError: naming the file and field that is missing or of the wrong type.
    """
    root = study_root(path)
    if root is None:
        raise DatasetError(f"{path}: not a study (no {STUDY_FILE})")
    file = root / STUDY_FILE
    try:
        record = orjson.loads(file.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise DatasetError(f"{file}: unreadable ({exc})") from None
    if not isinstance(record, dict) or record.get("format") != STUDY_FORMAT:
        raise DatasetError(f"{file}: format must be {STUDY_FORMAT!r}")
    axes, points = record.get("axes"), record.get("points")
    if not isinstance(axes, list) or not all(
        isinstance(a, dict) and isinstance(a.get("key"), str) and isinstance(a.get("values"), list)
        for a in axes
    ):
        raise DatasetError(f"{file}: 'axes' must be a list of {{key, values}} objects")
    if not isinstance(points, list) or not all(
        isinstance(p, dict) and isinstance(p.get("point"), dict) and isinstance(p.get("dir"), str)
        for p in points
    ):
        raise DatasetError(f"{file}: 'points' must be a list of {{point, dir}} objects")
    for p in points:
        if Path(p["dir"]).is_absolute() or ".." in Path(p["dir"]).parts:
            raise DatasetError(f"{file}: point dir {p['dir']!r} must lie inside the study")
    return record


def axis_names(record: Mapping[str, Any]) -> list[str]:
    """The study's axis names, in order."""
    return [axis["key"] for axis in record["axes"]]


def study_points(
    path: str | os.PathLike[str], points: Mapping[str, Sequence[Any]] | None = None
) -> list[StudyPoint]:
    """The study's points in order, only those whose coordinates ``points`` allows.

    :param path: The study directory or its ``study.json``.
    :param points: Axis name -> the values to keep (``{"erlang": [300]}``); other axes free.
    :raises ValueError: for an axis the study lacks, or a value none of its points has.
    """
    root = study_root(path)
    record = read_study(path)
    assert root is not None
    keep = select_points(
        [p["point"] for p in record["points"]], axis_names(record), points, where=str(root)
    )
    return [
        StudyPoint(dict(p["point"]), root / p["dir"], p)
        for i, p in enumerate(record["points"])
        if i in keep
    ]


def select_points(
    coords: Sequence[Mapping[str, Any]],
    names: Sequence[str],
    points: Mapping[str, Sequence[Any]] | None,
    *,
    where: str,
) -> set[int]:
    """The indices of ``coords`` that ``points`` allows (all when ``None``).

    :param coords: Each point's axis -> value, in order.
    :param names: The axis names.
    :param points: Axis name -> the values to keep; other axes free.
    :param where: The study (or merged file), for messages.
    :raises ValueError: for an axis the study lacks, or a value none of its points has.
    """
    wanted = {name: list(values) for name, values in (points or {}).items()}
    for name, values in wanted.items():
        if name not in names:
            raise ValueError(
                f"{where}: points={{{name!r}: ...}}: the study's axes are {list(names)}"
            )
        present = {c.get(name) for c in coords}
        missing = [v for v in values if v not in present]
        if missing:
            raise ValueError(
                f"{where}: points={{{name!r}: {missing}}}: no such point; "
                f"{name} takes {sorted(present, key=str)}"
            )
    return {
        i
        for i, c in enumerate(coords)
        if all(c.get(name) in values for name, values in wanted.items())
    }
