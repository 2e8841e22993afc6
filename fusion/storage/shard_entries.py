"""A shard's record: its entry in the manifest, its sidecar, and the checks made on both.

A writer records a closed shard in its **sidecar** (the truth about it: the whole record, with
what identifies its dataset) and, compacted (:func:`compact_entry`, < 1 KB), as an entry of the
manifest (:mod:`fusion.storage.manifest` holds the protocol). Every entry read back is
type-checked (:func:`check_entry`).

    >>> entry = {"seed": 3, "file": "offline_data.seed3.jsonl", "status": "writing",
    ...          "stats": {"accepted": 9, "timeline": [1, 2]}}
    >>> compact_entry(entry)["stats"]
    {'accepted': 9}
"""

from __future__ import annotations

import os
import re
import socket
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from fusion.config.config import MAX_SEED
from fusion.errors import DatasetError
from fusion.storage.atomic import write_bytes_atomic
from fusion.storage.shard_names import parse_shard_name, sidecar_path
from fusion.storage.statuses import STATUS_COMPLETE, STATUSES

__all__ = [
    "ENTRY_KEYS",
    "ENTRY_STATS",
    "RECORD_EDITION_FIELD",
    "bad_field",
    "check_entry",
    "compact_entry",
    "host_and_pid",
    "is_count",
    "is_sha256",
    "now_iso",
    "publish_sidecar",
    "read_sidecar",
    "sidecar_record",
]

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
#: The manifest's (and a sidecar's) field naming the record edition an engine-written
#: dataset's shards hold (:data:`fusion.config.features.RECORD_EDITION`).
RECORD_EDITION_FIELD = "record_edition"
#: What a sidecar holds beside the shard's entry: what identifies its dataset.
_SIDECAR_ONLY = frozenset({"config", "config_sha256", "format", "schema_version", "stem"})
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def now_iso() -> str:
    """UTC wall-clock time as ISO 8601 with milliseconds."""
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


def host_and_pid() -> dict[str, Any]:
    """Who is writing: host name and process id."""
    return {"host": socket.gethostname(), "pid": os.getpid()}


def bad_field(file: Path, where: str, expected: str, value: Any) -> DatasetError:
    """The error for a manifest's (or sidecar's) field of the wrong type or value.

    :param file: The file it was read from.
    :param where: The field (``shards[3].seed``).
    :param expected: What it should have been.
    :param value: What it is.
    """
    return DatasetError(
        f"{file}: {where} is {value!r}, expected {expected}; "
        "run `fusion validate --rebuild` to make the manifest again from the shards' sidecars"
    )


def is_count(value: Any) -> bool:
    """Whether ``value`` is a whole number >= 0 (a bool is not)."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def is_sha256(value: Any) -> bool:
    """Whether ``value`` is 64 lower-case hex digits."""
    return isinstance(value, str) and _HEX64.match(value) is not None


def check_entry(file: Path, where: str, entry: Any, stem: str | None) -> None:
    """Refuse a shard entry (manifest or sidecar) whose fields have the wrong type.

    :param file: The file it was read from, for the message.
    :param where: Its place there (``shards[3]``), for the message.
    :param entry: The parsed entry.
    :param stem: The dataset's shard stem, when known: the entry's file must be its seed's.
    :raises DatasetError: naming the file, the field and what was expected.
    """
    if not isinstance(entry, dict):
        raise bad_field(file, where, "an object", entry)
    seed = entry.get("seed")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise bad_field(file, f"{where}.seed", f"an integer in 0 .. {MAX_SEED}", seed)
    name = entry.get("file")
    parsed = parse_shard_name(name) if isinstance(name, str) else None
    if parsed is None or parsed[1] != seed or (stem is not None and parsed[0] != stem):
        raise bad_field(file, f"{where}.file", f"the shard file name of seed {seed}", name)
    status = entry.get("status")
    if status not in STATUSES:
        raise bad_field(file, f"{where}.status", f"one of {STATUSES}", status)
    complete = status == STATUS_COMPLETE
    for key in ("transitions", "bytes"):
        value = entry.get(key)
        if (value is not None or complete) and not is_count(value):
            raise bad_field(file, f"{where}.{key}", "a whole number >= 0", value)
    sha = entry.get("sha256")
    if (sha is not None or complete) and not is_sha256(sha):
        raise bad_field(file, f"{where}.sha256", "64 hex digits", sha)
    if not isinstance(entry.get("stats", {}), dict):
        raise bad_field(file, f"{where}.stats", "an object", entry.get("stats"))


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


def read_sidecar(path: Path) -> dict[str, Any] | None:
    """A shard's sidecar record, or ``None`` when it is missing or unreadable.

    :param path: The sidecar (or a merge's record).
    """
    try:
        data = orjson.loads(path.read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def sidecar_record(manifest_like: Mapping[str, Any], entry: Mapping[str, Any]) -> dict[str, Any]:
    """The sidecar content: the shard's entry plus what identifies its dataset (and the path
    features its shards hold and their record edition, when the manifest records them).

    :param manifest_like: The manifest, or what a writer knows of it.
    :param entry: The shard's record.
    """
    record = dict(entry)
    for key in _SIDECAR_ONLY:
        record[key] = manifest_like[key]
    if manifest_like.get("path_features") is not None:
        record["path_features"] = list(manifest_like["path_features"])
    if manifest_like.get(RECORD_EDITION_FIELD) is not None:
        record[RECORD_EDITION_FIELD] = manifest_like[RECORD_EDITION_FIELD]
    return record


def publish_sidecar(shard_path: Path, record: Mapping[str, Any]) -> None:
    """Write a shard's sidecar atomically (temp file, fsync, ``os.replace``).

    :param shard_path: The shard it records.
    :param record: Its content (:func:`sidecar_record`).
    """
    write_bytes_atomic(sidecar_path(shard_path), orjson.dumps(record, option=orjson.OPT_INDENT_2))
