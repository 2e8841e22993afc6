"""Opening shard and merge files whatever their compression (plain, ``.gz``, ``.zst``).

>>> import tempfile, os
>>> p = os.path.join(tempfile.mkdtemp(), "a.jsonl")
>>> _ = open(p, "wb").write(b"{}\\n")
>>> with open_binary(p) as f:
...     f.read()
b'{}\\n'
"""

from __future__ import annotations

import gzip
import io
import os
from pathlib import Path
from typing import BinaryIO

from fusion.errors import DatasetError

READ_BUFFER = 1 << 20


def compression_of(path: str | os.PathLike[str]) -> str | None:
    """``"gzip"``, ``"zstd"`` or ``None`` from the file name."""
    name = str(path)
    if name.endswith(".gz"):
        return "gzip"
    if name.endswith(".zst"):
        return "zstd"
    return None


def _zstandard() -> object:
    try:
        import zstandard
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise DatasetError(
            "reading or writing .zst files needs the zstandard package: "
            "pip install 'fusion-offline[compress]'"
        ) from exc
    return zstandard


def open_binary(path: str | os.PathLike[str]) -> BinaryIO:
    """Open a file for buffered binary reading, decompressing by its suffix.

    :param path: The file.
    :raises DatasetError: when ``.zst`` is asked for and zstandard is not installed.
    """
    kind = compression_of(path)
    if kind == "gzip":
        return gzip.open(Path(path), "rb")  # type: ignore[return-value]
    if kind == "zstd":
        zstd = _zstandard()
        raw = open(path, "rb")  # noqa: SIM115 - owned by the returned reader
        reader = zstd.ZstdDecompressor().stream_reader(raw, closefd=True)  # type: ignore[attr-defined]
        return io.BufferedReader(reader, buffer_size=READ_BUFFER)
    return open(path, "rb", buffering=READ_BUFFER)
