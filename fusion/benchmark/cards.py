"""Data cards: what each benchmark dataset is, how big, its content hash, how to rebuild it.

A card (``OUT/<version>/<preset>/<behaviour>.card.json``, beside the dataset directory, which
holds only what its own record names) gives the behaviour, seeds, requests, warm-up, feature
set, size, sha256 and the command that rebuilds the dataset.

**What the sha256 hashes** (:func:`content_sha256`): the records, not the files, because each
record holds one wall-clock field, ``meta.decision_time_ms``, that differs between two builds
(and compressed bytes follow the records). The hash is SHA-256 over, for a dataset directory,
each complete shard in seed order as the line ``seed <N>\\n`` followed by each of its records
with ``meta.decision_time_ms`` removed, written back as JSON with sorted keys
(``orjson.dumps(record, option=OPT_SORT_KEYS)``) and a ``\\n``; for a study (``mixed``), each
point in ``study.json``'s order as the line ``point <dir>\\n`` followed by its dataset's lines
as above. Two builds of one suite give the same hash; any change of a record changes it.

    >>> import tempfile
    >>> from fusion.run.sweep import run_sweep
    >>> from fusion.config.config import load_config
    >>> cfg = load_config().replace("general_settings", num_requests=100, warmup_requests=0)
    >>> a, b = tempfile.mkdtemp(), tempfile.mkdtemp()
    >>> for out in (a, b):
    ...     _ = run_sweep(cfg, seeds=[3], workers=1, out=out, quiet=True)
    >>> content_sha256(a) == content_sha256(b)
    True
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson

from fusion.benchmark.files import write_own_json
from fusion.errors import DatasetError
from fusion.storage import manifest as mf
from fusion.storage.compression import open_binary
from fusion.storage.integrity import file_sha256
from fusion.storage.statuses import STATUS_COMPLETE
from fusion.storage.study_layout import is_study, read_study

__all__ = [
    "CARD_SUFFIX",
    "WALL_CLOCK_FIELD",
    "card_path",
    "content_sha256",
    "dataset_size",
    "read_card",
    "write_card",
]

#: The one wall-clock field of a record, left out of :func:`content_sha256`.
WALL_CLOCK_FIELD = ("meta", "decision_time_ms")
CARD_SUFFIX = ".card.json"


def card_path(dataset_dir: str | os.PathLike[str]) -> Path:
    """Where a dataset's card goes: beside its directory, ``<behaviour>.card.json``.

    >>> card_path("out/v0/deeprmsa-nsfnet/random").as_posix()
    'out/v0/deeprmsa-nsfnet/random.card.json'
    """
    directory = Path(dataset_dir)
    return directory.with_name(directory.name + CARD_SUFFIX)


def _complete_entries(directory: Path) -> list[dict[str, Any]]:
    """A dataset's shard entries, in seed order, refusing any shard not complete."""
    manifest = mf.read_manifest(directory)
    entries = mf.current_entries(directory, manifest)
    planned = [int(s) for s in manifest.get("planned_seeds", [])]
    done = {
        int(e["seed"])
        for e in entries
        if e.get("status") == STATUS_COMPLETE and (directory / e["file"]).is_file()
    }
    missing = [s for s in planned if s not in done]
    if missing:
        raise DatasetError(
            f"{directory}: seed {', '.join(map(str, missing))} not complete; build again to "
            "resume it"
        )
    return [e for e in entries if e.get("status") == STATUS_COMPLETE]


def _datasets(directory: Path) -> Iterator[tuple[bytes, Path]]:
    """``(header, dataset directory)``: the study's points in order, or the dataset itself."""
    if is_study(directory):
        for point in read_study(directory)["points"]:
            yield f"point {point['dir']}\n".encode(), directory / point["dir"]
    else:
        yield b"", directory


def _stripped(line: bytes) -> bytes:
    record = orjson.loads(line)
    outer, inner = WALL_CLOCK_FIELD
    part = record.get(outer)
    if isinstance(part, dict):
        part.pop(inner, None)
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS) + b"\n"


def content_sha256(dataset_dir: str | os.PathLike[str]) -> str:
    """The dataset's (or study's) content hash, as the module docstring defines it.

    :param dataset_dir: A dataset directory or a study directory.
    :raises DatasetError: when a planned shard is not complete, or the manifest is unreadable.
    """
    digest = hashlib.sha256()
    for header, directory in _datasets(Path(dataset_dir)):
        digest.update(header)
        for entry in _complete_entries(directory):
            digest.update(f"seed {int(entry['seed'])}\n".encode())
            with open_binary(directory / entry["file"]) as handle:
                for line in handle:
                    if line.strip():
                        digest.update(_stripped(line))
    return digest.hexdigest()


def dataset_size(dataset_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """A dataset's (or study's) size from its records: episodes (shards), transitions,
    blocked requests (the ``-1`` rewards), bytes on disk of the shards.

    :param dataset_dir: A dataset or study directory.
    :raises DatasetError: when a planned shard is not complete.
    """
    episodes = transitions = blocked = size = 0
    for _, directory in _datasets(Path(dataset_dir)):
        for entry in _complete_entries(directory):
            episodes += 1
            transitions += int(entry.get("transitions", 0))
            blocked += int(entry.get("stats", {}).get("blocked", 0))
            size += int(entry.get("bytes", 0))
    return {
        "episodes": episodes,
        "transitions": transitions,
        "blocked": blocked,
        "bytes": size,
    }


def check_shards(dataset_dir: str | os.PathLike[str]) -> None:
    """Refuse a dataset (or study) whose complete shards are not the bytes their records
    name (the sha256 each manifest entry holds): what a card vouches for must still be there.
    Reads every shard once (a few hundred MB a preset: seconds).

    :param dataset_dir: A dataset or study directory.
    :raises DatasetError: naming the first shard whose bytes differ, or one not complete.
    """
    for _, directory in _datasets(Path(dataset_dir)):
        for entry in _complete_entries(directory):
            path = directory / entry["file"]
            if file_sha256(path) != entry.get("sha256"):
                raise DatasetError(
                    f"{path}: its bytes are not the sha256 its manifest records (changed since "
                    "it was written); build again to write it anew"
                )


#: Keys every card holds (a file of a card's name without them is not one: never replaced).
CARD_KEYS = ("dataset", "behaviour", "sha256")


def write_card(dataset_dir: str | os.PathLike[str], card: Mapping[str, Any]) -> Path:
    """Write a dataset's card (atomically: a killed build leaves none or a whole one).

    :param dataset_dir: The dataset directory the card describes.
    :param card: Its content.
    :return: The card's path.
    :raises OutputConflictError: when a file there is no card (:func:`write_own_json`).
    """
    path = card_path(dataset_dir)
    write_own_json(path, card, own=CARD_KEYS, sort_keys=True)
    return path


def read_card(dataset_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """A dataset's card, or ``None`` when there is none (or it is unreadable: rebuilt).

    :param dataset_dir: The dataset directory.
    """
    try:
        card = orjson.loads(card_path(dataset_dir).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return card if isinstance(card, dict) else None
