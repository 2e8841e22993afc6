"""The dataset manifest: one ``manifest.json`` per dataset directory, and per-shard sidecars.

The manifest records the format, the schema version, the package version, the resolved config
and its sha256, and one entry per shard, sorted by seed. It is only ever changed under a
``filelock`` lock and always published by temp file + ``os.replace``, so a reader never sees
half a file and no writer's update is lost. Because a lock may not exclude on a network file
system, every closed shard also publishes its own record in a sidecar
(``offline_data.seed3.jsonl.shard.json``): :func:`rebuild_manifest` makes the manifest again
from the files alone.

    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> m = init_manifest(d, {"general_settings": {"erlang": 300.0}})
    >>> m["format"], m["schema_version"], len(m["shards"])
    ('fusion-offline-rl', 1, 0)
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson
from filelock import FileLock

from fusion import __version__
from fusion.configs.config import MAX_SEED
from fusion.errors import DatasetError, ManifestConflictError
from fusion.reporting.atomic import write_bytes_atomic
from fusion.reporting.compression import open_binary

MANIFEST_NAME = "manifest.json"
FORMAT_NAME = "fusion-offline-rl"
SCHEMA_VERSION = 1
DEFAULT_STEM = "offline_data"
SIDECAR_SUFFIX = ".shard.json"
LOCK_TIMEOUT_S = 120.0

STATUS_WRITING = "writing"
STATUS_COMPLETE = "complete"
STATUS_FAILED = "failed"

_SHARD_RE = re.compile(r"^(?P<stem>.+)\.seed(?P<seed>\d+)\.jsonl(?P<comp>\.gz|\.zst)?$")


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
    for suffix in (".gz", ".zst"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
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
    return data


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


def _check_same_dataset(
    file: Path, manifest: Mapping[str, Any], config: Mapping[str, Any], stem: str
) -> None:
    want = config_sha256(config)
    if manifest.get("config_sha256") != want:
        raise ManifestConflictError(
            f"{file}: this dataset was made with config sha256 {manifest.get('config_sha256')}, "
            f"the writer's config has sha256 {want}; use another directory or overwrite it"
        )
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
) -> dict[str, Any]:
    """Create the manifest, or check that an existing one is for the same config.

    The keys that fix a dataset (format, schema version, config sha256, stem) never change once
    written; planned seeds are added to.

    :param dataset_dir: The dataset directory (created if missing).
    :param config: The resolved config, plain JSON values, without the seed.
    :param planned_seeds: Seeds the caller means to write.
    :param stem: The shard file stem.
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
            if merged != manifest.get("planned_seeds"):
                manifest["planned_seeds"] = merged
                _write_manifest(directory, manifest)
            return manifest
        manifest = _new_manifest(config, stem, seeds)
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


def put_shard_entry(dataset_dir: str | os.PathLike[str], entry: Mapping[str, Any]) -> None:
    """Insert or replace the entry of ``entry["seed"]`` in the manifest, keeping seed order.

    :param dataset_dir: The dataset directory.
    :param entry: The shard's record (``seed``, ``file``, ``status`` and the rest).
    """
    seed = int(entry["seed"])

    def change(manifest: dict[str, Any]) -> None:
        shards = [e for e in manifest["shards"] if int(e["seed"]) != seed]
        shards.append(dict(entry))
        manifest["shards"] = shards

    update_manifest(dataset_dir, change)


def shard_entries(manifest: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The manifest's shard entries sorted by integer seed (never by file name)."""
    return sorted(manifest.get("shards", []), key=lambda e: int(e["seed"]))


def read_sidecar(path: Path) -> dict[str, Any] | None:
    """A shard's sidecar record, or ``None`` when it is missing or unreadable."""
    try:
        data = orjson.loads(path.read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def count_whole_lines(path: Path) -> tuple[int, int]:
    """``(lines, bytes)`` of the whole, newline-terminated lines at the start of a file.

    A compressed file is counted after decompression, up to where its stream is cut.
    """
    lines = 0
    whole_bytes = 0
    total = 0
    with open_binary(path) as handle:
        try:
            while chunk := handle.read(1 << 20):
                n = chunk.count(b"\n")
                if n:
                    lines += n
                    whole_bytes = total + chunk.rindex(b"\n") + 1
                total += len(chunk)
        except DatasetError:
            pass  # a cut compressed stream: what came before the cut is counted
    return lines, whole_bytes


def file_sha256(path: Path) -> str:
    """sha256 of a file's stored bytes, read in 1 MiB chunks."""
    sha = hashlib.sha256()
    with open(path, "rb", buffering=0) as handle:
        while chunk := handle.read(1 << 20):
            sha.update(chunk)
    return sha.hexdigest()


def rebuild_manifest(dataset_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Make ``manifest.json`` again from the shards and their sidecars alone.

    A shard with a sidecar gets the sidecar's record; a shard without one is listed as
    ``writing`` with its whole lines counted, so it is never taken for complete.

    :param dataset_dir: The dataset directory.
    :raises DatasetError: when no shard or sidecar records the config.
    :return: The manifest as written.
    """
    directory = Path(dataset_dir)
    sidecars: dict[int, dict[str, Any]] = {}
    shard_files: dict[int, Path] = {}
    stems: set[str] = set()
    for path in sorted(directory.iterdir()):
        if path.name.endswith(SIDECAR_SUFFIX):
            record = read_sidecar(path)
            if record is not None and "seed" in record:
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
            entry = {k: v for k, v in record.items() if k not in _SIDECAR_ONLY}
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


def check_seed(seed: Any) -> int:
    """Return ``seed`` as an int, or raise ``ValueError`` naming it and the allowed range."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed must be an integer in 0 .. {MAX_SEED}, got {seed!r}")
    return seed
