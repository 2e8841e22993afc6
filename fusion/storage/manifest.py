"""The dataset manifest: one ``manifest.json`` per dataset directory, and per-shard sidecars.

The protocol, and the invariant it keeps (nothing closed is ever lost, and no reader depends on
a lock):

1. A shard's **sidecar** (``offline_data.seed3.jsonl.shard.json``) is the truth about a closed
   shard. Its writer publishes it at close, after the shard is fsynced, by temp file + fsync +
   ``os.replace``; a new attempt at the seed removes it first. No lock is involved.
2. ``manifest.json`` is a consolidated index of the sidecars: format, schema version, the
   resolved config and its sha256 (which never change once written), planned seeds, and one
   compact entry per shard (< 1 KB: status, counts, size, sha256, headline stats; long series
   stay in the sidecar), sorted by seed. It is only ever published whole by temp file +
   ``os.replace``. Its writers: a sweep's driver (batched :func:`commit_entries`; its
   workers never touch it) or, without a driver, :meth:`DatasetLogger.open_shard` itself.
3. Readers take the manifest's complete entries and overlay every sidecar of a seed the
   manifest does not list complete (:func:`current_entries`: one directory listing), and every
   commit writes those back. So an update lost to a lock that does not exclude (NFS) is a
   stale index, never a lost shard; ``fusion validate --rebuild`` remakes the index from the
   files alone.

Every field is type-checked on read (:func:`check_manifest`); a seed listed twice is refused.

    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> m = init_manifest(d, {"general_settings": {"erlang": 300.0}})
    >>> m["format"], m["schema_version"], len(m["shards"])
    ('fusion-offline-rl', 1, 0)
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import socket
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson
from filelock import FileLock, Timeout

from fusion import __version__
from fusion.config.config import MAX_SEED
from fusion.config.config import check_seed as check_seed  # writers check seeds here too
from fusion.config.identity import describe_content_difference, file_key_of
from fusion.config.vocabulary import LATER_KEYS, SUFFIXES
from fusion.errors import DatasetError, ManifestConflictError, RunConflictError
from fusion.storage.atomic import write_bytes_atomic
from fusion.storage.integrity import count_whole_lines
from fusion.storage.ownership import Lease, refuse_if_held

MANIFEST_NAME = "manifest.json"
FORMAT_NAME = "fusion-offline-rl"
SCHEMA_VERSION = 1
DEFAULT_STEM = "offline_data"
SIDECAR_SUFFIX = ".shard.json"
#: The array view's cache beside a dataset's shards: ``<stem>.arrays.npz``.
ARRAY_CACHE_SUFFIX = ".arrays.npz"
#: The array in an array cache that holds its key (what tells the cache apart from any .npz).
ARRAY_CACHE_KEY = "cache_key"
LOCK_TIMEOUT_S = 120.0

# Every status string fusion records or reports, defined here once.
STATUS_WRITING = "writing"  # a shard whose writer has not closed it (yet)
STATUS_COMPLETE = "complete"  # a shard closed whole; a study point whose seeds all are
STATUS_FAILED = "failed"  # a shard whose writer raised or died; a point with a failed seed
STATUSES = (STATUS_WRITING, STATUS_COMPLETE, STATUS_FAILED)  # what a shard entry may say
STATUS_PLANNED = "planned"  # a study point not run yet
STATUS_INCOMPLETE = "incomplete"  # a study point with seeds still to run
STATUS_FILE = "file"  # a lone or merged file a reader was given (closed whole by its maker)

_SHARD_RE = re.compile(
    r"^(?P<stem>.+)\.seed(?P<seed>\d+)\.jsonl(?P<comp>"
    + "|".join(re.escape(suffix) for suffix in SUFFIXES.values())
    + ")?$"
)


def shard_file_name(seed: int, stem: str = DEFAULT_STEM) -> str:
    """Name of the shard of ``seed``: ``offline_data.seed<N>.jsonl``.

    :param seed: The simulation seed.
    :param stem: The file stem.
    """
    return f"{stem}.seed{seed}.jsonl"


def parse_shard_name(name: str) -> tuple[str, int] | None:
    """Split a shard file name into ``(stem, seed)``; ``None`` when it is not a shard name."""
    match = _SHARD_RE.match(name)
    if match is None:
        return None
    return match.group("stem"), int(match.group("seed"))


def sidecar_path(shard_path: str | os.PathLike[str]) -> Path:
    """The sidecar that records a closed shard, beside the shard's plain ``.jsonl`` name."""
    path = Path(shard_path)
    name = path.name
    for suffix in SUFFIXES.values():
        name = name.removesuffix(suffix)
    return path.with_name(name + SIDECAR_SUFFIX)


def merged_sidecar_path(out_path: str | os.PathLike[str]) -> Path:
    """Where a merge's own record goes: ``OUT.manifest.json`` beside the merged file ``OUT``."""
    out = Path(out_path)
    return out.with_name(out.name + ".manifest.json")


def config_sha256(config: Mapping[str, Any]) -> str:
    """sha256 of the config's canonical JSON (sorted keys): the dataset's identity.

    :param config: The resolved config as plain JSON values.
    :raises ValueError: when the config holds a value JSON cannot represent.
    """
    try:
        blob = orjson.dumps(config, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError as exc:
        raise ValueError(f"the config cannot be recorded as JSON: {exc}") from exc
    return hashlib.sha256(blob).hexdigest()


def manifest_path(dataset_dir: str | os.PathLike[str]) -> Path:
    """Where the manifest of ``dataset_dir`` lives."""
    return Path(dataset_dir) / MANIFEST_NAME


def manifest_lock(dataset_dir: str | os.PathLike[str]) -> FileLock:
    """The lock that serialises manifest updates within one host (and on most shared disks)."""
    return FileLock(str(manifest_path(dataset_dir)) + ".lock", timeout=LOCK_TIMEOUT_S)


def now_iso() -> str:
    """UTC wall-clock time as ISO 8601 with milliseconds."""
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


def host_and_pid() -> dict[str, Any]:
    """Who is writing: host name and process id."""
    return {"host": socket.gethostname(), "pid": os.getpid()}


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


_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def _bad(file: Path, where: str, expected: str, value: Any) -> DatasetError:
    return DatasetError(
        f"{file}: {where} is {value!r}, expected {expected}; "
        "run `fusion validate --rebuild` to make the manifest again from the shards' sidecars"
    )


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def check_entry(file: Path, where: str, entry: Any, stem: str | None) -> None:
    """Refuse a shard entry (manifest or sidecar) whose fields have the wrong type.

    :param file: The file it was read from, for the message.
    :param where: Its place there (``shards[3]``), for the message.
    :param entry: The parsed entry.
    :param stem: The dataset's shard stem, when known: the entry's file must be its seed's.
    :raises DatasetError: naming the file, the field and what was expected.
    """
    if not isinstance(entry, dict):
        raise _bad(file, where, "an object", entry)
    seed = entry.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise _bad(file, f"{where}.seed", f"an integer in 0 .. {MAX_SEED}", seed)
    name = entry.get("file")
    parsed = parse_shard_name(name) if isinstance(name, str) else None
    if parsed is None or parsed[1] != seed or (stem is not None and parsed[0] != stem):
        raise _bad(file, f"{where}.file", f"the shard file name of seed {seed}", name)
    status = entry.get("status")
    if status not in STATUSES:
        raise _bad(file, f"{where}.status", f"one of {STATUSES}", status)
    complete = status == STATUS_COMPLETE
    for key in ("transitions", "bytes"):
        value = entry.get(key)
        if (value is not None or complete) and not _is_count(value):
            raise _bad(file, f"{where}.{key}", "a whole number >= 0", value)
    sha = entry.get("sha256")
    if (sha is not None or complete) and not (isinstance(sha, str) and _HEX64.match(sha)):
        raise _bad(file, f"{where}.sha256", "64 hex digits", sha)
    if not isinstance(entry.get("stats", {}), dict):
        raise _bad(file, f"{where}.stats", "an object", entry.get("stats"))


def check_manifest(file: Path, data: dict[str, Any]) -> None:
    """Refuse a manifest whose fields have the wrong type, or that lists a seed twice.

    :param file: The manifest file, for the message.
    :param data: Its parsed content.
    :raises DatasetError: naming the file and the field.
    """
    stem = data.get("stem")
    if not isinstance(stem, str) or not stem or "/" in stem:
        raise _bad(file, "stem", "a file stem", stem)
    if not isinstance(data.get("config"), dict):
        raise _bad(file, "config", "an object", data.get("config"))
    sha = data.get("config_sha256")
    if not (isinstance(sha, str) and _HEX64.match(sha)):
        raise _bad(file, "config_sha256", "64 hex digits", sha)
    planned = data.get("planned_seeds", [])
    if not isinstance(planned, list) or not all(_is_count(s) for s in planned):
        raise _bad(file, "planned_seeds", "a list of seeds", planned)
    shards = data.get("shards")
    if not isinstance(shards, list):
        raise _bad(file, "shards", "a list of shard entries", shards)
    seen: set[int] = set()
    for index, entry in enumerate(shards):
        check_entry(file, f"shards[{index}]", entry, stem)
        if entry["seed"] in seen:
            raise DatasetError(
                f"{file}: shards[{index}] lists seed {entry['seed']} a second time; "
                "run `fusion validate --rebuild` to make the manifest again from the sidecars"
            )
        seen.add(entry["seed"])


def _write_manifest(dataset_dir: Path, manifest: dict[str, Any]) -> None:
    manifest["shards"].sort(key=lambda entry: int(entry["seed"]))
    manifest["updated"] = now_iso()
    blob = orjson.dumps(manifest, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
    write_bytes_atomic(dataset_dir / MANIFEST_NAME, blob)


def _new_manifest(
    config: Mapping[str, Any], stem: str, planned_seeds: Iterable[int]
) -> dict[str, Any]:
    return {
        "format": FORMAT_NAME,
        "schema_version": SCHEMA_VERSION,
        "fusion_version": __version__,
        "created": now_iso(),
        "stem": stem,
        "config_sha256": config_sha256(config),
        "config": dict(config),
        "planned_seeds": sorted({int(s) for s in planned_seeds}),
        "shards": [],
    }


def config_differences(
    made: Mapping[str, Any], now: Mapping[str, Any]
) -> list[tuple[str, str, Any, Any]]:
    """``(section, key, made's value, now's value)`` for each key whose values differ between
    two configs as manifests record them; a key an identity leaves out has the value it had
    before it was added (:data:`~fusion.config.vocabulary.LATER_KEYS`), else ``None``.

        >>> config_differences({"g": {"erlang": 300}}, {"g": {"erlang": 250, "k_paths": 4}})
        [('g', 'erlang', 300, 250), ('g', 'k_paths', None, 4)]
    """
    found = []
    for section in sorted(set(made) | set(now)):
        a, b = made.get(section), now.get(section)
        if not (isinstance(a, Mapping) or a is None) or not (isinstance(b, Mapping) or b is None):
            if a != b:  # (a hand-made config need not have sections)
                found.append((section, "", a, b))
            continue
        a, b = a or {}, b or {}
        for key in sorted(set(a) | set(b)):
            earlier = LATER_KEYS.get((section, key))
            old, new = a.get(key, earlier), b.get(key, earlier)
            if old != new:
                found.append((section, key, old, new))
    return found


def check_same_config(where: str, manifest: Mapping[str, Any], config: Mapping[str, Any]) -> None:
    """Refuse to add to a dataset of another config, naming the keys that differ and the
    values that would add to it.

    :param where: What the message starts with (the manifest, or the directory).
    :param manifest: The dataset's manifest.
    :param config: The writer's config, as a manifest records it.
    :raises ManifestConflictError: when the config sha256s differ.
    """
    want = config_sha256(config)
    if manifest.get("config_sha256") == want:
        return
    differences = config_differences(manifest.get("config") or {}, config)
    said = "; ".join(
        describe_content_difference(section, key, made, now, config)
        or f"{f'[{section}] {key}' if key else section} is {_shown(made)} there, {_shown(now)} here"
        for section, key, made, now in differences[:6]
    ) + ("; ..." if len(differences) > 6 else "")
    sets = " ".join(
        f"--set {section}.{key}={_shown(made)}"
        for section, key, made, _ in differences
        if key and isinstance(made, (bool, int, float, str)) and not file_key_of(section, key)
    )
    raise ManifestConflictError(
        f"{where}: this dataset was made with another config (config sha256 "
        f"{manifest.get('config_sha256')} there, {want} here)"
        + (f": {said}" if said else "")
        + (f"; to add to it, write with the dataset's values ({sets})" if sets else "")
        + "; or use another directory, or overwrite it"
    )


def _shown(value: Any) -> str:
    """A config value as an INI line would give it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "(absent)" if value is None else str(value)


def _check_same_dataset(
    file: Path, manifest: Mapping[str, Any], config: Mapping[str, Any], stem: str
) -> None:
    check_same_config(str(file), manifest, config)
    if manifest.get("stem") != stem:
        raise ManifestConflictError(
            f"{file}: this dataset's shards are named {manifest.get('stem')!r}, not {stem!r}"
        )


def init_manifest(
    dataset_dir: str | os.PathLike[str],
    config: Mapping[str, Any],
    *,
    planned_seeds: Iterable[int] = (),
    stem: str = DEFAULT_STEM,
    run_id: str | None = None,
) -> dict[str, Any]:
    """Create the manifest, or check that an existing one is for the same config.

    The keys that fix a dataset (format, schema version, config sha256, stem) never change once
    written; planned seeds are added to. ``run_id`` marks the run that now writes the dataset
    (a sweep's driver checks it at every commit: :func:`commit_entries`).

    :param dataset_dir: The dataset directory (created if missing).
    :param config: The resolved config, plain JSON values, without the seed.
    :param planned_seeds: Seeds the caller means to write.
    :param stem: The shard file stem.
    :param run_id: The run taking the dataset over (``None``: leave it as it is).
    :raises ManifestConflictError: when the directory holds a dataset of another config.
    :return: The manifest as written.
    """
    directory = Path(dataset_dir)
    directory.mkdir(parents=True, exist_ok=True)
    seeds = [int(s) for s in planned_seeds]
    with manifest_lock(directory):
        file = directory / MANIFEST_NAME
        if file.exists():
            manifest = read_manifest(file)
            _check_same_dataset(file, manifest, config, stem)
            merged = sorted(set(manifest.get("planned_seeds", [])) | set(seeds))
            owner = manifest.get("run_id") if run_id is None else run_id
            if merged != manifest.get("planned_seeds") or owner != manifest.get("run_id"):
                manifest["planned_seeds"] = merged
                if owner is not None:
                    manifest["run_id"] = owner
                _write_manifest(directory, manifest)
            return manifest
        manifest = _new_manifest(config, stem, seeds)
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
    :param entries: Shard records (``seed``, ``file``, ``status`` and the rest), compacted.
    :param planned_seeds: Seeds to add to ``planned_seeds``.
    :param run_id: The committing run: refused when the manifest names another (that run
        overwrote this dataset meanwhile), so a run never publishes into another's dataset.
    :raises RunConflictError: naming both runs.
    :return: The manifest as written.
    """
    directory = Path(dataset_dir)
    new = {int(e["seed"]): compact_entry(e) for e in entries}
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


#: Entry keys the manifest keeps; everything else of a shard's record stays in its sidecar.
ENTRY_KEYS = (
    "seed",
    "file",
    "status",
    "transitions",
    "bytes",
    "sha256",
    "started",
    "finished",
    "host",
    "pid",
    "compression",
    "raw_bytes",
    "raw_sha256",
    "compression_error",
    "error",
    "note",
)
#: The headline stats a manifest entry keeps (``fusion inspect`` reads these).
ENTRY_STATS = (
    "accepted",
    "blocked",
    "blocked_by_reach",
    "blocking_probability",
    "per_window",
    "path_feasible",
    "path_chosen",
)


def compact_entry(record: Mapping[str, Any]) -> dict[str, Any]:
    """A shard's manifest entry: its status, counts, checksums and headline stats (< 1 KB).

    Long per-shard series (the simulator's timeline, per-bit-rate tables, path counts) stay
    in the shard's sidecar, where ``fusion inspect --plot`` reads them.

    :param record: The shard's full record (a sidecar's, or a writer's).
    """
    entry = {key: record[key] for key in ENTRY_KEYS if key in record}
    stats = record.get("stats")
    if isinstance(stats, Mapping):
        entry["stats"] = {key: stats[key] for key in ENTRY_STATS if key in stats}
    return entry


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


def read_sidecar(path: Path) -> dict[str, Any] | None:
    """A shard's sidecar record, or ``None`` when it is missing or unreadable."""
    try:
        data = orjson.loads(path.read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def rebuild_manifest(
    dataset_dir: str | os.PathLike[str], *, owner: Lease | None = None
) -> dict[str, Any]:
    """Make ``manifest.json`` again from the shards and their sidecars alone.

    A shard with a sidecar gets the sidecar's record; a shard without one is listed as
    ``writing`` with its whole lines counted, so it is never taken for complete.

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
    manifest = _new_manifest(source["config"], stem, sorted(set(sidecars) | set(shard_files)))
    manifest["rebuilt"] = True
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


_SIDECAR_ONLY = frozenset({"config", "config_sha256", "format", "schema_version", "stem"})


def sidecar_record(manifest_like: Mapping[str, Any], entry: Mapping[str, Any]) -> dict[str, Any]:
    """The sidecar content: the shard's entry plus what identifies its dataset."""
    record = dict(entry)
    for key in _SIDECAR_ONLY:
        record[key] = manifest_like[key]
    return record


def publish_sidecar(shard_path: Path, record: Mapping[str, Any]) -> None:
    """Write a shard's sidecar atomically (temp file, fsync, ``os.replace``)."""
    write_bytes_atomic(sidecar_path(shard_path), orjson.dumps(record, option=orjson.OPT_INDENT_2))
