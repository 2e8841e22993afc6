"""A study on disk: ``study.json`` at the top, one ordinary dataset per grid point below.

    STUDY/study.json
    STUDY/erlang=200/policy=ksp_ff/manifest.json, offline_data.seed<N>.jsonl, ...

``study.json`` lists the axes, the seeds, and the points in order with their directory,
config sha256 and status (``planned``, ``complete``, ``failed``, ``incomplete``); each
point's own manifest stays the truth about its shards, so readers judge every point's shards
as they judge any dataset's. A point's dataset must be of the config the study recorded for
it (:func:`check_point_config`): every reader of a study refuses a point that another run
replaced, naming it and the keys that differ.

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

from fusion.config.identity import describe_content_difference, scenario_value
from fusion.config.vocabulary import LATER_KEYS
from fusion.errors import DatasetError, FusionError
from fusion.storage import manifest as mf
from fusion.storage.atomic import write_bytes_atomic
from fusion.storage.dataset_identity import config_differences
from fusion.storage.statuses import STATUS_COMPLETE

STUDY_FILE = "study.json"
STUDY_FORMAT = "fusion-study/1"


@dataclass(frozen=True)
class StudyPoint:
    """One point of a study on disk.

    :param coords: Axis name -> value.
    :param path: The point's dataset directory.
    :param record: Its entry in ``study.json``.
    :param axes: The study's axes (``{section, key, values}``), as ``study.json`` lists them.
    :param root: The study directory.
    :param seeds: The study's seeds, as ``study.json`` lists them (``None``: not recorded).
    """

    coords: dict[str, Any]
    path: Path
    record: dict[str, Any]
    axes: tuple[dict[str, Any], ...] = ()
    root: Path | None = None
    seeds: tuple[int, ...] | None = None


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
    path: str | os.PathLike[str],
    points: Mapping[str, Sequence[Any]] | None = None,
    *,
    check: bool = True,
) -> list[StudyPoint]:
    """The study's points in order, only those whose coordinates ``points`` allows.

    :param path: The study directory or its ``study.json``.
    :param points: Axis name -> the values to keep (``{"erlang": [300]}``); other axes free.
    :param check: Read each point's manifest now and refuse a point whose dataset is not of
        the config the study recorded for it (:func:`check_point_config`); a reader that reads
        each manifest itself later checks there instead (:class:`fusion.storage.sources.Part`).
    :raises ValueError: for an axis the study lacks, or a value none of its points has.
    :raises DatasetError: with ``check``, naming a point of another config.
    """
    root = study_root(path)
    record = read_study(path)
    assert root is not None
    keep = select_points(
        [p["point"] for p in record["points"]], axis_names(record), points, where=str(root)
    )
    axes = tuple(dict(a) for a in record["axes"])
    recorded = record.get("seeds")
    seeds = tuple(int(s) for s in recorded) if isinstance(recorded, list) else None
    selected = [
        StudyPoint(dict(p["point"]), root / p["dir"], p, axes, root, seeds)
        for i, p in enumerate(record["points"])
        if i in keep
    ]
    if check:
        for point in selected:
            try:
                manifest = mf.read_manifest(point.path)
            except FusionError:
                continue  # a point never started, or a broken manifest: its reader names it
            check_point_config(point, manifest)
    return selected


def check_point_config(point: StudyPoint, manifest: Mapping[str, Any]) -> None:
    """Refuse a point whose dataset is not of the config ``study.json`` records for it (a
    plain sweep wrote over the point, say): its manifest's ``config_sha256`` must be the
    point's.

    :param point: The point, as :func:`study_points` gives it.
    :param manifest: Its dataset's manifest.
    :raises DatasetError: naming the point, both sha256s and the keys that differ: an axis
        whose value the dataset does not have, else the keys in which it differs from another
        point's (intact) dataset; or naming the point and the seeds when its dataset plans or
        holds seeds other than the study's (see :func:`_check_point_seeds`).
    """
    _check_point_seeds(point, manifest)
    expected = point.record.get("config_sha256")
    found = manifest.get("config_sha256")
    if not isinstance(expected, str) or found == expected:
        return
    config = manifest.get("config") or {}
    differences = _axis_differences(point, config) or _sibling_differences(point, config)
    raise DatasetError(
        f"{point.path}: study point {point.record.get('dir')} holds a dataset of another "
        f"config than the study recorded for it (config sha256 {expected} in study.json, "
        f"{found} in its manifest.json)"
        + (": " + "; ".join(differences[:6]) if differences else "")
        + ("; ..." if len(differences) > 6 else "")
        + "; another run wrote over the point: move that dataset out of the study and resume "
        "the study (fusion sweep with the study's --config, --set and --grid, --resume) to "
        "run the point again"
    )


def _check_point_seeds(point: StudyPoint, manifest: Mapping[str, Any]) -> None:
    """Refuse a point whose dataset plans or holds a seed the study does not list (``fusion run
    --seed 5`` or ``sweep --seeds 7`` into it), or, once the study recorded the point complete,
    lacks one of the study's seeds (a sweep of fewer seeds replaced it): its figures would be
    shown under the study's seeds."""
    if point.seeds is None:
        return
    study = set(point.seeds)
    planned = {s for s in manifest.get("planned_seeds") or [] if isinstance(s, int)}
    held = {e.get("seed") for e in manifest.get("shards") or [] if isinstance(e.get("seed"), int)}
    extra = sorted((planned | held) - study)
    missing = sorted(study - planned) if point.record.get("status") == STATUS_COMPLETE else []
    if not extra and not missing:
        return
    what = "; ".join(
        part
        for part in (
            f"seeds {_seed_list(extra)} are not the study's" if extra else "",
            f"the study's seeds {_seed_list(missing)} are not planned" if missing else "",
        )
        if part
    )
    raise DatasetError(
        f"{point.path}: study point {point.record.get('dir')} holds a dataset of other seeds "
        f"than the study recorded (study.json seeds {_seed_list(sorted(study))}, its "
        f"manifest.json plans {_seed_list(sorted(planned))}): {what}; another run wrote over "
        "the point: move that dataset out of the study and resume the study (fusion sweep "
        "with the study's --config, --set, --grid and --seeds, --resume) to run the point again"
    )


def _seed_list(seeds: Sequence[int]) -> str:
    return ",".join(str(s) for s in seeds) if seeds else "(none)"


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "(absent)" if value is None else str(value)


def _value(config: Mapping[str, Any], section: str, key: str) -> Any:
    keys = config.get(section)
    keys = keys if isinstance(keys, Mapping) else {}
    return keys.get(key, LATER_KEYS.get((section, key)))


def _axis_differences(point: StudyPoint, config: Mapping[str, Any]) -> list[str]:
    """The axes whose value at the point the dataset's config does not have."""
    found = []
    for axis in point.axes:
        section, key = str(axis.get("section", "")), str(axis["key"])
        wanted = scenario_value(section, key, point.coords.get(key))
        has = _value(config, section, key)
        if wanted != has:
            found.append(
                f"the study's axis gives [{section}] {key} = {_shown(wanted)} here, the "
                f"dataset's config has {_shown(has)}"
            )
    return found


def _sibling_differences(point: StudyPoint, config: Mapping[str, Any]) -> list[str]:
    """The keys in which the dataset differs from another point's intact dataset (axes aside)."""
    if point.root is None:
        return []
    axis_keys = {(str(a.get("section", "")), str(a["key"])) for a in point.axes}
    try:
        others = read_study(point.root)["points"]
    except DatasetError:
        return []
    for other in others:
        if other.get("dir") == point.record.get("dir"):
            continue
        try:
            made = mf.read_manifest(point.root / other["dir"])
        except FusionError:
            continue
        if made.get("config_sha256") != other.get("config_sha256"):
            continue
        return [
            describe_content_difference(section, key, theirs, ours, config)
            or f"[{section}] {key} is {_shown(theirs)} at point {other['dir']}, {_shown(ours)} here"
            for section, key, theirs, ours in config_differences(made.get("config") or {}, config)
            if (section, key) not in axis_keys
        ]
    return []


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
