"""The dataset manifest: one ``manifest.json`` per dataset directory, and its commit protocol.

The protocol, and the invariant it keeps (nothing closed is ever lost, and no reader depends on
a lock):

1. A shard's **sidecar** (``offline_data.seed3.jsonl.shard.json``) is the truth about a closed
   shard (:mod:`fusion.storage.shard_entries`). Its writer publishes it at close, after the
   shard is fsynced, by temp file + fsync + ``os.replace``; a new attempt at the seed removes
   it first. No lock is involved.
2. ``manifest.json`` is a consolidated index of the sidecars: format, schema version, the
   resolved config and its sha256 (:mod:`fusion.storage.dataset_identity`), the path features
   its shards hold, planned seeds, and one compact entry per shard (< 1 KB: status, counts,
   size, sha256, headline stats; long series stay in the sidecar), sorted by seed. The keys
   that fix the dataset never change once written. It is only ever published whole by temp
   file + ``os.replace``. Its writers: a sweep's driver (batched :func:`commit_entries`; its
   workers never touch it) or, without a driver, :meth:`DatasetLogger.open_shard` itself.
3. Readers take the manifest's complete entries and overlay every sidecar of a seed the
   manifest does not list complete (:func:`current_entries`: one directory listing), and every
   commit writes those back. So an update lost to a lock that does not exclude (NFS) is a
   stale index, never a lost shard; ``fusion validate --rebuild`` remakes the index from the
   files alone.

**The path features a dataset holds** (``path_features``, a top-level list in the manifest's
observation order) are recorded once per dataset, never per shard entry: by
:func:`init_manifest` from the writer's ``[dataset_logging] path_features``
(:func:`fusion.config.features.path_features`; a sweep, a study's points, ``fusion run``),
copied into each sidecar (so ``--rebuild`` restores it). A hand-fed writer whose dataset has no
list records the path features of its first transition's first path (in the declaration's
order) in its sidecar, and the manifest takes that list when it has none. Readers use it
(:func:`recorded_path_features`, :func:`fusion.config.features.feature_set_holding`); a dataset
made before manifests recorded it (or whose hand-fed shards held no path) is guessed from its
content, as before.

**The record edition an engine-written dataset holds** (``record_edition``, a top-level string:
:data:`fusion.config.features.RECORD_EDITION`, the newest of
:data:`~fusion.config.features.EDITIONS`) is recorded the same way, by :func:`init_manifest`
from a sweep, a study's points and ``fusion run``, and copied into each sidecar. A run adds
shards only to a dataset of its own edition: a manifest that records another, or none (made
before manifests recorded it, or by a hand-fed writer), is refused before any shard is written
(:func:`check_record_edition`), so a dataset never holds lines of two editions. Hand-fed
writers (the caller's records) neither record nor check it; readers ignore it (a field a line
lacks is absent or null, as ever).

Every field is type-checked on read (:func:`check_manifest`); a seed listed twice is refused.

    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> m = init_manifest(d, {"general_settings": {"erlang": 300.0}},
    ...                   path_features=["path_hops", "min_residual_slots"])
    >>> m["format"], m["schema_version"], len(m["shards"]), m["path_features"]
    ('fusion-offline-rl', 1, 0, ['path_hops', 'min_residual_slots'])
    >>> "record_edition" in m  # a hand-fed writer's: none
    False
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import orjson
from filelock import FileLock, Timeout

from fusion import __version__
from fusion.config.features import check_path_feature_list
from fusion.errors import DatasetError, ManifestConflictError, RunConflictError
from fusion.storage.atomic import write_bytes_atomic
from fusion.storage.dataset_identity import check_same_config, config_sha256
from fusion.storage.integrity import count_whole_lines
from fusion.storage.ownership import Lease, refuse_if_held
from fusion.storage.shard_entries import RECORD_EDITION_FIELD as RECORD_EDITION_FIELD
from fusion.storage.shard_entries import (
    bad_field,
    check_entry,
    compact_entry,
    is_count,
    is_sha256,
    now_iso,
    read_sidecar,
)
from fusion.storage.shard_names import DEFAULT_STEM, SIDECAR_SUFFIX, parse_shard_name
from fusion.storage.statuses import STATUS_COMPLETE, STATUS_WRITING

MANIFEST_NAME = "manifest.json"
FORMAT_NAME = "fusion-offline-rl"
SCHEMA_VERSION = 1
LOCK_TIMEOUT_S = 120.0
#: The manifest's (and a sidecar's, a merge record's) field listing the path features held.
PATH_FEATURES_FIELD = "path_features"


def manifest_path(dataset_dir: str | os.PathLike[str]) -> Path:
    """Where the manifest of ``dataset_dir`` lives."""
    return Path(dataset_dir) / MANIFEST_NAME


def manifest_lock(dataset_dir: str | os.PathLike[str]) -> FileLock:
    """The lock that serialises manifest updates within one host (and on most shared disks)."""
    return FileLock(str(manifest_path(dataset_dir)) + ".lock", timeout=LOCK_TIMEOUT_S)


def read_manifest(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a manifest, given its file or its dataset directory.

    :param path: ``manifest.json`` or the directory holding it.
    :raises DatasetError: naming the file when it is missing, unreadable or not a manifest.
    """
    file = Path(path)
    if file.is_dir():
        file = file / MANIFEST_NAME
    try:
        data = orjson.loads(file.read_bytes())
    except FileNotFoundError as exc:
        raise DatasetError(f"{file}: no manifest here (expected {MANIFEST_NAME})") from exc
    except orjson.JSONDecodeError as exc:
        raise DatasetError(
            f"{file}: the manifest is not valid JSON ({exc}); "
            "run `fusion validate --rebuild` to make it again from the shards"
        ) from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
        raise DatasetError(f"{file}: not a fusion manifest (expected format {FORMAT_NAME!r})")
    if data.get("schema_version") != SCHEMA_VERSION:
        raise DatasetError(
            f"{file}: schema_version {data.get('schema_version')!r}, "
            f"this fusion reads {SCHEMA_VERSION}"
        )
    check_manifest(file, data)
    return data


def check_path_features_field(file: Path, where: str, value: Any) -> tuple[str, ...]:
    """Refuse a recorded ``path_features`` that is not a list of declared path features, each
    once (:func:`fusion.config.features.check_path_feature_list`).

    :param file: The file it was read from, for the message.
    :param where: The field's name there.
    :param value: The field's value.
    :raises DatasetError: naming the file, the field and what is wrong.
    """
    try:
        return check_path_feature_list(value)
    except ValueError as exc:
        raise bad_field(
            file, where, f"declared path features, each once, in order ({exc})", value
        ) from None


def check_manifest(file: Path, data: dict[str, Any]) -> None:
    """Refuse a manifest whose fields have the wrong type, or that lists a seed twice.

    :param file: The manifest file, for the message.
    :param data: Its parsed content.
    :raises DatasetError: naming the file and the field.
    """
    stem = data.get("stem")
    if not isinstance(stem, str) or not stem or "/" in stem:
        raise bad_field(file, "stem", "a file stem", stem)
    if not isinstance(data.get("config"), dict):
        raise bad_field(file, "config", "an object", data.get("config"))
    if not is_sha256(data.get("config_sha256")):
        raise bad_field(file, "config_sha256", "64 hex digits", data.get("config_sha256"))
    if PATH_FEATURES_FIELD in data:
        check_path_features_field(file, PATH_FEATURES_FIELD, data[PATH_FEATURES_FIELD])
    edition = data.get(RECORD_EDITION_FIELD, "")
    if not isinstance(edition, str) or (RECORD_EDITION_FIELD in data and not edition):
        raise bad_field(file, RECORD_EDITION_FIELD, "the name of a record edition", edition)
    planned = data.get("planned_seeds", [])
    if not isinstance(planned, list) or not all(is_count(s) for s in planned):
        raise bad_field(file, "planned_seeds", "a list of seeds", planned)
    shards = data.get("shards")
    if not isinstance(shards, list):
        raise bad_field(file, "shards", "a list of shard entries", shards)
    seen: set[int] = set()
    for index, entry in enumerate(shards):
        check_entry(file, f"shards[{index}]", entry, stem)
        if entry["seed"] in seen:
            raise DatasetError(
                f"{file}: shards[{index}] lists seed {entry['seed']} a second time; "
                "run `fusion validate --rebuild` to make the manifest again from the sidecars"
            )
        seen.add(entry["seed"])


def recorded_path_features(record: Mapping[str, Any] | None) -> tuple[str, ...] | None:
    """The path features a manifest (or a sidecar, or a merge's record) says its shards
    hold; ``None`` when it records none (made before manifests recorded them).

    :param record: The manifest as read (checked), or ``None``.

        >>> recorded_path_features({"path_features": ["path_hops"]}), recorded_path_features({})
        (('path_hops',), None)
    """
    if record is None or record.get(PATH_FEATURES_FIELD) is None:
        return None
    return tuple(record[PATH_FEATURES_FIELD])


def check_record_edition(directory: Path, manifest: Mapping[str, Any], edition: str) -> None:
    """Refuse to add an engine's shards of ``edition`` to a dataset whose manifest records
    another edition, or none (made before manifests recorded it, or by a hand-fed writer).

    :param directory: The dataset directory, for the message.
    :param manifest: Its manifest as read.
    :param edition: The edition the run writes (:data:`fusion.config.features.RECORD_EDITION`).
    :raises ManifestConflictError: naming the directory, both editions and what to do.

        >>> check_record_edition(Path("d"), {"record_edition": "behaviour"}, "behaviour")
        >>> check_record_edition(Path("d"), {}, "behaviour")
        Traceback (most recent call last):
        ...
        fusion.errors.ManifestConflictError: d: its manifest records no record edition (the dataset was made before manifests recorded one: its shards hold an edition before 'behaviour'), and this run writes edition 'behaviour' (fusion.config.features.EDITIONS): a dataset holds one edition; write to a new directory, or pass --overwrite to replace this one
    """
    recorded = manifest.get(RECORD_EDITION_FIELD)
    if recorded == edition:
        return
    if recorded is None:
        held = (
            "its manifest records no record edition (the dataset was made before manifests "
            f"recorded one: its shards hold an edition before {edition!r})"
        )
    else:
        held = f"its shards hold record edition {recorded!r}"
    raise ManifestConflictError(
        f"{directory}: {held}, and this run writes edition {edition!r} "
        "(fusion.config.features.EDITIONS): a dataset holds one edition; write to a new "
        "directory, or pass --overwrite to replace this one"
    )


def refuse_other_edition(directory: Path, edition: str) -> None:
    """:func:`check_record_edition` of the dataset in ``directory``, when it has a readable
    manifest (a study checks every point with it before it writes anything; what has none is
    checked when its manifest is made again).

    :param directory: A dataset directory (it may not exist).
    :param edition: The edition the run writes.
    :raises ManifestConflictError: as :func:`check_record_edition`.
    """
    try:
        manifest = read_manifest(directory / MANIFEST_NAME)
    except DatasetError:
        return
    check_record_edition(directory, manifest, edition)


def _write_manifest(dataset_dir: Path, manifest: dict[str, Any]) -> None:
    manifest["shards"].sort(key=lambda entry: int(entry["seed"]))
    manifest["updated"] = now_iso()
    blob = orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
    write_bytes_atomic(dataset_dir / MANIFEST_NAME, blob)


def _new_manifest(
    config: Mapping[str, Any],
    stem: str,
    planned_seeds: Iterable[int],
    path_features: Sequence[str] | None,
    record_edition: str | None = None,
) -> dict[str, Any]:
    manifest: dict[str, Any] = {
        "format": FORMAT_NAME,
        "schema_version": SCHEMA_VERSION,
        "fusion_version": __version__,
        "created": now_iso(),
        "stem": stem,
        "config_sha256": config_sha256(config),
        "config": dict(config),
    }
    if path_features is not None:
        manifest[PATH_FEATURES_FIELD] = list(path_features)
    if record_edition is not None:
        manifest[RECORD_EDITION_FIELD] = record_edition
    manifest["planned_seeds"] = sorted({int(s) for s in planned_seeds})
    manifest["shards"] = []
    return manifest


def _check_same_dataset(
    file: Path,
    manifest: dict[str, Any],
    config: Mapping[str, Any],
    stem: str,
    path_features: Sequence[str] | None,
    record_edition: str | None = None,
) -> bool:
    """Refuse another dataset's writer (another config, stem or record edition); ``True``
    when the manifest takes ``path_features`` (it recorded none: made before manifests
    recorded them)."""
    check_same_config(str(file), manifest, config)
    if manifest.get("stem") != stem:
        raise ManifestConflictError(
            f"{file}: this dataset's shards are named {manifest.get('stem')!r}, not {stem!r}"
        )
    if record_edition is not None:
        check_record_edition(file.parent, manifest, record_edition)
    if path_features is None:
        return False
    recorded = recorded_path_features(manifest)
    if recorded is None:
        manifest[PATH_FEATURES_FIELD] = list(path_features)
        return True
    if recorded != tuple(path_features):
        raise ManifestConflictError(
            f"{file}: this dataset's shards hold the path features {list(recorded)}, this "
            f"writer's {list(path_features)}; use another directory, or overwrite it"
        )
    return False


def init_manifest(
    dataset_dir: str | os.PathLike[str],
    config: Mapping[str, Any],
    *,
    planned_seeds: Iterable[int] = (),
    stem: str = DEFAULT_STEM,
    run_id: str | None = None,
    path_features: Sequence[str] | None = None,
    record_edition: str | None = None,
) -> dict[str, Any]:
    """Create the manifest, or check that an existing one is for the same config.

    The keys that fix a dataset (format, schema version, config sha256, stem, path features,
    record edition) never change once written; planned seeds are added to, and a manifest that records no
    path features takes ``path_features``. ``run_id`` marks the run that now writes the
    dataset (a sweep's driver checks it at every commit: :func:`commit_entries`).

    :param dataset_dir: The dataset directory (created if missing).
    :param config: The resolved config, plain JSON values, without the seed.
    :param planned_seeds: Seeds the caller means to write.
    :param stem: The shard file stem.
    :param run_id: The run taking the dataset over (``None``: leave it as it is).
    :param path_features: The path features its shards hold, in order
        (:func:`fusion.config.features.path_features` of the config's setting); ``None``: the
        writer does not know (a hand-fed writer: see the module docstring).
    :param record_edition: The record edition the engine writes into its shards
        (:data:`fusion.config.features.RECORD_EDITION`); ``None``: a hand-fed writer, which
        neither records nor checks it.
    :raises ManifestConflictError: when the directory holds a dataset of another config, or
        whose recorded path features differ, or (given ``record_edition``) whose manifest
        records another record edition or none.
    :raises ValueError: when ``path_features`` names what is not a path feature.
    :return: The manifest as written.
    """
    if path_features is not None:
        path_features = check_path_feature_list(list(path_features))
    directory = Path(dataset_dir)
    directory.mkdir(parents=True, exist_ok=True)
    seeds = [int(s) for s in planned_seeds]
    with manifest_lock(directory):
        file = directory / MANIFEST_NAME
        if file.exists():
            manifest = read_manifest(file)
            changed = _check_same_dataset(
                file, manifest, config, stem, path_features, record_edition
            )
            merged = sorted(set(manifest.get("planned_seeds", [])) | set(seeds))
            owner = manifest.get("run_id") if run_id is None else run_id
            if (
                changed
                or merged != manifest.get("planned_seeds")
                or owner != manifest.get("run_id")
            ):
                manifest["planned_seeds"] = merged
                if owner is not None:
                    manifest["run_id"] = owner
                _write_manifest(directory, manifest)
            return manifest
        manifest = _new_manifest(config, stem, seeds, path_features, record_edition)
        if run_id is not None:
            manifest["run_id"] = run_id
        _write_manifest(directory, manifest)
        return manifest


def update_manifest(
    dataset_dir: str | os.PathLike[str], change: Callable[[dict[str, Any]], None]
) -> dict[str, Any]:
    """Read, change and republish the manifest under its lock.

    :param dataset_dir: The dataset directory.
    :param change: Called with the manifest dict to change in place.
    :return: The manifest as written.
    """
    directory = Path(dataset_dir)
    with manifest_lock(directory):
        manifest = read_manifest(directory)
        change(manifest)
        _write_manifest(directory, manifest)
        return manifest


def _take_path_features(manifest: dict[str, Any], records: Iterable[Mapping[str, Any]]) -> None:
    """A manifest that records no path features takes the first shard record's (a hand-fed
    writer's sidecar: see the module docstring); a record's bad list is left out."""
    if manifest.get(PATH_FEATURES_FIELD) is not None:
        return
    for record in records:
        with contextlib.suppress(ValueError):
            if record.get(PATH_FEATURES_FIELD) is not None:
                listed = check_path_feature_list(record[PATH_FEATURES_FIELD])
                manifest[PATH_FEATURES_FIELD] = list(listed)
                return


def commit_entries(
    dataset_dir: str | os.PathLike[str],
    entries: Iterable[Mapping[str, Any]] = (),
    *,
    planned_seeds: Iterable[int] = (),
    run_id: str | None = None,
) -> dict[str, Any]:
    """Publish shard entries (and planned seeds) in one atomic rewrite of the manifest.

    The commit also takes in every sidecar the manifest does not yet reflect
    (:func:`current_entries`), so an update a lock failed to serialise is repaired by the next
    commit. The lock only spares work: when it cannot be had within its timeout the commit goes
    ahead without it, since no reader depends on it.

    :param dataset_dir: The dataset directory.
    :param entries: Shard records (``seed``, ``file``, ``status`` and the rest), compacted; a
        record's ``path_features`` goes to a manifest that records none.
    :param planned_seeds: Seeds to add to ``planned_seeds``.
    :param run_id: The committing run: refused when the manifest names another (that run
        overwrote this dataset meanwhile), so a run never publishes into another's dataset.
    :raises RunConflictError: naming both runs.
    :return: The manifest as written.
    """
    directory = Path(dataset_dir)
    records = sorted(entries, key=lambda e: int(e["seed"]))
    new = {int(e["seed"]): compact_entry(e) for e in records}
    with _lock_if_possible(directory):
        manifest = read_manifest(directory)
        if run_id is not None and manifest.get("run_id") != run_id:
            raise RunConflictError(
                f"{directory}: another run (run id {manifest.get('run_id')}) overwrote this "
                f"dataset while this one (run id {run_id}) ran; the directory holds that run's "
                "data, not this one's"
            )
        by_seed = {e["seed"]: e for e in current_entries(directory, manifest)}
        by_seed.update(new)
        manifest["shards"] = [by_seed[seed] for seed in sorted(by_seed)]
        _take_path_features(manifest, records)
        planned = {int(s) for s in planned_seeds}
        if planned - set(manifest.get("planned_seeds", [])):
            manifest["planned_seeds"] = sorted(planned | set(manifest.get("planned_seeds", [])))
        _write_manifest(directory, manifest)
        return manifest


def put_shard_entry(dataset_dir: str | os.PathLike[str], entry: Mapping[str, Any]) -> None:
    """Insert or replace one shard's entry in the manifest (:func:`commit_entries` of one).

    :param dataset_dir: The dataset directory.
    :param entry: The shard's record.
    """
    commit_entries(dataset_dir, [entry])


@contextlib.contextmanager
def _lock_if_possible(directory: Path) -> Iterator[None]:
    lock = manifest_lock(directory)
    try:
        lock.acquire()
    except Timeout:
        yield  # the commit is still correct without the lock; only work may be repeated
        return
    try:
        yield
    finally:
        lock.release()


def current_entries(dataset_dir: Path, manifest: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The shard entries as they are now: the manifest's, overlaid with newer sidecars.

    A seed the manifest does not list as complete takes its sidecar's record when the sidecar
    exists and is of this dataset (a writer closed it after the manifest was last written, or
    its manifest update was lost). Costs one directory listing, plus one small read per such
    sidecar; a consolidated manifest reads none.

    :param dataset_dir: The dataset directory.
    :param manifest: Its manifest as read.
    :return: The entries sorted by seed.
    """
    by_seed = {int(e["seed"]): e for e in manifest.get("shards", [])}
    stem = manifest.get("stem")
    try:
        names = [entry.name for entry in os.scandir(dataset_dir)]
    except OSError:
        names = []
    for name in names:
        if not name.endswith(SIDECAR_SUFFIX):
            continue
        parsed = parse_shard_name(name[: -len(SIDECAR_SUFFIX)])
        if parsed is None or parsed[0] != stem:
            continue
        listed = by_seed.get(parsed[1])
        if listed is not None and listed.get("status") == STATUS_COMPLETE:
            continue
        record = read_sidecar(dataset_dir / name)
        if record is None or record.get("config_sha256") != manifest.get("config_sha256"):
            continue
        try:
            check_entry(dataset_dir / name, "the sidecar", record, stem)
        except DatasetError:
            continue
        if record["seed"] == parsed[1]:
            by_seed[parsed[1]] = compact_entry(record)
    return [by_seed[seed] for seed in sorted(by_seed)]


def rebuild_manifest(
    dataset_dir: str | os.PathLike[str], *, owner: Lease | None = None
) -> dict[str, Any]:
    """Make ``manifest.json`` again from the shards and their sidecars alone.

    A shard with a sidecar gets the sidecar's record; a shard without one is listed as
    ``writing`` with its whole lines counted, so it is never taken for complete. The path
    features (and the record edition) are the first sidecar's that records them (none: a
    dataset made before).

    :param dataset_dir: The dataset directory.
    :param owner: The lease of the run rebuilding it (a resume); ``None``: refused while any
        run holds the directory.
    :raises DatasetError: when no shard or sidecar records the config.
    :raises DirectoryBusyError: while another run holds the directory.
    :return: The manifest as written.
    """
    directory = Path(dataset_dir)
    if owner is not None:
        owner.check()
    else:
        refuse_if_held(directory, "rebuilding its manifest")
    sidecars: dict[int, dict[str, Any]] = {}
    shard_files: dict[int, Path] = {}
    stems: set[str] = set()
    for path in sorted(directory.iterdir()):
        if path.name.endswith(SIDECAR_SUFFIX):
            record = read_sidecar(path)
            try:
                check_entry(path, "the sidecar", record, None)
            except DatasetError:
                continue  # unreadable or garbled: its shard is listed as never closed
            assert record is not None
            sidecars[int(record["seed"])] = record
            continue
        parsed = parse_shard_name(path.name)
        if parsed is not None:
            stems.add(parsed[0])
            shard_files.setdefault(parsed[1], path)  # sorted: the plain file before .gz / .zst
    configs = {r["config_sha256"]: r for r in sidecars.values() if "config_sha256" in r}
    if len(configs) != 1:
        raise DatasetError(
            f"{directory}: cannot rebuild the manifest: expected sidecars of exactly one config, "
            f"found {len(configs)}"
        )
    source = next(iter(configs.values()))
    stem = source.get("stem", stems.pop() if len(stems) == 1 else DEFAULT_STEM)
    manifest = _new_manifest(source["config"], stem, sorted(set(sidecars) | set(shard_files)), None)
    manifest["rebuilt"] = True
    _take_path_features(manifest, [sidecars[seed] for seed in sorted(sidecars)])
    editions = {seed: r.get(RECORD_EDITION_FIELD) for seed, r in sorted(sidecars.items())}
    if len(set(editions.values())) > 1:  # (a sidecar without one is of an edition before)
        by_edition: dict[str, list[int]] = {}
        for seed, edition in editions.items():
            by_edition.setdefault(str(edition or "none"), []).append(seed)
        held = "; ".join(  # each edition with its count and first seeds, whatever the shards
            f"{edition}: {len(seeds)} seed(s) ({', '.join(map(str, seeds[:3]))}"
            f"{', ...' if len(seeds) > 3 else ''})"
            for edition, seeds in by_edition.items()
        )
        raise DatasetError(
            f"{directory}: cannot rebuild the manifest: the sidecars record different record "
            f"editions ({held}); its shards were written by different fusion versions"
        )
    edition = next(iter(editions.values()), None)
    if isinstance(edition, str) and edition:
        manifest[RECORD_EDITION_FIELD] = edition
    for seed in sorted(set(sidecars) | set(shard_files)):
        record = sidecars.get(seed)
        if record is not None:
            entry = compact_entry(record)
        else:
            lines, whole = count_whole_lines(shard_files[seed])
            entry = {
                "seed": seed,
                "file": shard_files[seed].name,
                "status": STATUS_WRITING,
                "transitions": lines,
                "bytes": whole,
                "note": "no sidecar: the writer never closed this shard",
            }
        manifest["shards"].append(entry)
    with manifest_lock(directory):
        _write_manifest(directory, manifest)
    return manifest
