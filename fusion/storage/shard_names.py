"""The names of a dataset's files: shards, their sidecars, a merge's record, the array cache.

A dataset directory holds one shard per seed, ``<stem>.seed<N>.jsonl`` (``.gz`` / ``.zst``
once compressed), each closed shard's sidecar ``<stem>.seed<N>.jsonl.shard.json`` (one for
every compression of the shard), the array view's cache ``<stem>.arrays.npz`` and the manifest
(:mod:`fusion.storage.manifest`). A merged file ``OUT`` has its record beside it,
``OUT.manifest.json``.

    >>> shard_file_name(3)
    'offline_data.seed3.jsonl'
    >>> parse_shard_name("runs.seed12.jsonl.zst"), parse_shard_name("notes.txt")
    (('runs', 12), None)
    >>> sidecar_path("d/offline_data.seed3.jsonl.gz").name
    'offline_data.seed3.jsonl.shard.json'
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from fusion.config.vocabulary import SUFFIXES

__all__ = [
    "ARRAY_CACHE_KEY",
    "ARRAY_CACHE_SUFFIX",
    "DEFAULT_STEM",
    "SIDECAR_SUFFIX",
    "merged_sidecar_path",
    "parse_shard_name",
    "shard_file_name",
    "sidecar_path",
]

#: The shard file stem when a writer is given none.
DEFAULT_STEM = "offline_data"
#: A closed shard's sidecar: its plain ``.jsonl`` name and this.
SIDECAR_SUFFIX = ".shard.json"
#: The array view's cache beside a dataset's shards: ``<stem>.arrays.npz``.
ARRAY_CACHE_SUFFIX = ".arrays.npz"
#: The array in an array cache that holds its key (what tells the cache apart from any .npz).
ARRAY_CACHE_KEY = "cache_key"

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
    """Split a shard file name into ``(stem, seed)``; ``None`` when it is not a shard name.

    :param name: A file name (no directory).
    """
    match = _SHARD_RE.match(name)
    if match is None:
        return None
    return match.group("stem"), int(match.group("seed"))


def sidecar_path(shard_path: str | os.PathLike[str]) -> Path:
    """The sidecar that records a closed shard, beside the shard's plain ``.jsonl`` name.

    :param shard_path: The shard (plain or compressed).
    """
    path = Path(shard_path)
    name = path.name
    for suffix in SUFFIXES.values():
        name = name.removesuffix(suffix)
    return path.with_name(name + SIDECAR_SUFFIX)


def merged_sidecar_path(out_path: str | os.PathLike[str]) -> Path:
    """Where a merge's own record goes: ``OUT.manifest.json`` beside the merged file ``OUT``.

    :param out_path: The merged file.

        >>> merged_sidecar_path("all.jsonl").name
        'all.jsonl.manifest.json'
    """
    out = Path(out_path)
    return out.with_name(out.name + ".manifest.json")
