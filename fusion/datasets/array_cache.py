"""The ``.npz`` column cache beside a dataset, keyed by its shards' sha256.

The first :func:`~fusion.datasets.arrays.to_arrays` on a dataset stores its columns in
``<stem>.arrays.npz`` beside the shards (``x.arrays.npz`` beside a lone ``x.jsonl``); later
calls load that file instead of parsing JSON. The key covers, per shard, the file name, the
sha256 and line count the manifest records, and the file's size and modification time (so a
shard changed by hand after it was closed is noticed without hashing it again); a lone file
is keyed by its size and modification time, and by the sha256 in its merge sidecar when it
has one. A stale cache is rebuilt; a cache that cannot be written (a read-only directory) is
skipped with a warning.

    >>> cache_path(Path("/data/run1"), "offline_data")
    PosixPath('/data/run1/offline_data.arrays.npz')
"""

from __future__ import annotations

import hashlib
import logging
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from fusion.storage.atomic import atomic_output
from fusion.storage.shard_names import ARRAY_CACHE_KEY, ARRAY_CACHE_SUFFIX

logger = logging.getLogger(__name__)

#: 2: the columns of what produced each action (``behaviour``, ``explored``, ``propensity``);
#: a cache of version 1 lacks them, so it misses.
CACHE_VERSION = 2
CACHE_SUFFIX = ARRAY_CACHE_SUFFIX
_KEY = ARRAY_CACHE_KEY
_META = "metadata_json"


def cache_path(directory: Path, stem: str) -> Path:
    """Where the cache of a dataset (or lone file) with this stem lives.

    :param directory: The dataset directory, or the lone file's directory.
    :param stem: The dataset's shard stem, or the lone file's name without ``.jsonl[.gz|.zst]``.
    """
    return directory / f"{stem}{CACHE_SUFFIX}"


def cache_key(
    files: Sequence[tuple[Path, int | None, str | None, Sequence[str] | None]],
) -> str:
    """The key of a set of source files: sha256 over their names, recorded figures, the path
    features their record lists and stat (a record edited to another list misses the cache).

    :param files: Each source file with its recorded line count, sha256 and path features
        (``None`` when nothing records them, as for a lone file without a merge record).
    """
    parts: list[Any] = [CACHE_VERSION]
    for path, lines, sha256, features in files:
        stat = path.stat()
        listed = None if features is None else list(features)
        parts.append([path.name, sha256, lines, listed, stat.st_size, stat.st_mtime_ns])
    return hashlib.sha256(orjson.dumps(parts)).hexdigest()


def load_cache(path: Path, key: str) -> tuple[dict[str, np.ndarray], dict[str, Any]] | None:
    """The cached columns and metadata when ``path`` holds the cache for ``key``, else ``None``.

    :param path: The cache file.
    :param key: The key the sources have now.
    """
    try:
        with np.load(path, allow_pickle=False) as npz:
            if _KEY not in npz.files or bytes(npz[_KEY]).decode() != key:
                return None
            columns = {name: npz[name] for name in npz.files if name not in (_KEY, _META)}
            metadata = orjson.loads(bytes(npz[_META]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, orjson.JSONDecodeError) as exc:
        logger.warning("%s: unreadable array cache (%s); parsing the shards again", path, exc)
        return None
    return columns, metadata


def save_cache(
    path: Path, key: str, columns: Mapping[str, np.ndarray], metadata: Mapping[str, Any]
) -> bool:
    """Publish the cache atomically; ``False`` (and a warning) when it cannot be written.

    :param path: The cache file.
    :param key: The sources' key.
    :param columns: The arrays to store.
    :param metadata: JSON-able metadata stored beside them.
    """
    payload: dict[str, Any] = dict(columns)
    payload[_KEY] = np.frombuffer(key.encode(), dtype=np.uint8)
    payload[_META] = np.frombuffer(orjson.dumps(metadata), dtype=np.uint8)
    try:
        with atomic_output(path) as handle:
            np.savez(handle, **payload)
    except OSError as exc:
        logger.warning("%s: could not write the array cache (%s); continuing without", path, exc)
        return False
    return True
