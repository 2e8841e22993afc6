"""Compressed shard and merge files: reading any of plain, ``.gz`` and ``.zst``, and writing them.

Readers decompress by suffix; a compressed stream that is cut or corrupt raises
:class:`~fusion.errors.DatasetError` naming the file. A cut zstd stream can also end early
without any error, so callers still compare line counts with the manifest.

    >>> import tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> p = os.path.join(d, "a.jsonl")
    >>> _ = open(p, "wb").write(b"{}\\n")
    >>> sha, size = compress_file(p, p + ".gz", "gzip")
    >>> with open_binary(p + ".gz") as f:
    ...     f.read()
    b'{}\\n'
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

from fusion.config.vocabulary import COMPRESSIONS, SUFFIXES
from fusion.errors import DatasetError
from fusion.optional import require
from fusion.storage.atomic import atomic_output

READ_BUFFER = 1 << 20
GZIP_LEVEL = 6
ZSTD_LEVEL = 3


def compression_of(path: str | os.PathLike[str]) -> str | None:
    """``"gzip"``, ``"zstd"`` or ``None`` from the file name."""
    name = str(path)
    for kind, suffix in SUFFIXES.items():
        if name.endswith(suffix):
            return kind
    return None


def _zstandard() -> Any:
    return require("zstandard", None, "reading or writing .zst files")


def check_compression(kind: str | None) -> None:
    """Refuse an unknown compression, or zstd without the zstandard package, before any work.

    :param kind: ``None``, ``"gzip"`` or ``"zstd"``.
    :raises ValueError: for another name.
    :raises MissingDependencyError: for zstd when zstandard is not installed.
    """
    if kind is not None and kind not in COMPRESSIONS:
        raise ValueError(f"compression must be None, 'gzip' or 'zstd', got {kind!r}")
    if kind == "zstd":
        _zstandard()


def _cut(path: Path, exc: BaseException | str) -> DatasetError:
    return DatasetError(f"{path}: the compressed stream is cut or corrupt ({exc})")


class _GzipReader(io.RawIOBase):
    """gzip decompression whose errors (a cut stream raises ``EOFError``) name the file."""

    def __init__(self, raw: BinaryIO, path: Path) -> None:
        super().__init__()
        self._raw = raw
        self._path = path
        self._inner = gzip.GzipFile(fileobj=raw, mode="rb")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            return int(self._inner.readinto(buffer))
        except (EOFError, OSError, zlib.error) as exc:
            raise _cut(self._path, exc) from exc

    def close(self) -> None:
        if not self.closed:
            try:
                self._inner.close()
            finally:
                self._raw.close()
        super().close()


class _ZstdReader(io.RawIOBase):
    """zstd decompression that notices a cut stream: at the end of the input the last frame
    must be complete (zstandard's own stream reader just stops)."""

    def __init__(self, raw: BinaryIO, path: Path, chunk: int = READ_BUFFER) -> None:
        super().__init__()
        self._zstd = _zstandard()
        self._raw = raw
        self._chunk = chunk
        self._path = path
        self._decoder = self._zstd.ZstdDecompressor()
        self._frame = self._decoder.decompressobj()
        self._out = memoryview(b"")
        self._ended = False

    def readable(self) -> bool:
        return True

    def _fill(self) -> None:
        while not self._out and not self._ended:
            chunk = self._raw.read(self._chunk)
            if not chunk:
                if not self._frame.eof:
                    raise _cut(self._path, "the last zstd frame has no end")
                self._ended = True
                return
            data = b""
            try:
                while chunk:
                    if self._frame.eof:  # a new frame follows
                        self._frame = self._decoder.decompressobj()
                    data += self._frame.decompress(chunk)
                    chunk = self._frame.unused_data if self._frame.eof else b""
            except self._zstd.ZstdError as exc:
                raise _cut(self._path, exc) from exc
            self._out = memoryview(data)

    def readinto(self, buffer: Any) -> int:
        self._fill()
        n = min(len(buffer), len(self._out))
        buffer[:n] = self._out[:n]
        self._out = self._out[n:]
        return n

    def close(self) -> None:
        if not self.closed:
            self._raw.close()
        super().close()


def open_binary(path: str | os.PathLike[str], buffer_size: int = READ_BUFFER) -> BinaryIO:
    """Open a file for buffered binary reading, decompressing by its suffix.

    :param path: The file.
    :param buffer_size: The read buffer's size (and, for zstd, how much compressed input is
        decompressed at a time).
    :raises MissingDependencyError: when ``.zst`` is asked for and zstandard is missing.
    :raises DatasetError: on reads of a cut or corrupt compressed stream, naming the file.
    """
    source = Path(path)
    kind = compression_of(source)
    if kind is None:
        return open(source, "rb", buffering=buffer_size)
    raw = open(source, "rb", buffering=0)  # noqa: SIM115 - owned by the returned reader
    try:
        inner: io.RawIOBase = (
            _GzipReader(raw, source) if kind == "gzip" else _ZstdReader(raw, source, buffer_size)
        )
    except BaseException:
        raw.close()
        raise
    return io.BufferedReader(inner, buffer_size=buffer_size)


def compressed_writer(handle: Any, kind: str | None) -> tuple[Any, Callable[[], None]]:
    """A writable stream that compresses into ``handle``, and the function that finishes it.

    Output is deterministic: no file name or time in the gzip header, single-threaded zstd.

    :param handle: The open binary file (left open).
    :param kind: ``None`` (pass-through), ``"gzip"`` or ``"zstd"``.
    """
    check_compression(kind)
    if kind is None:
        return handle, lambda: None
    if kind == "gzip":
        gz = gzip.GzipFile(
            filename="",
            fileobj=handle,
            mode="wb",
            mtime=0,
            compresslevel=GZIP_LEVEL,
        )
        return gz, gz.close
    stream = _zstandard().ZstdCompressor(level=ZSTD_LEVEL).stream_writer(handle, closefd=False)
    return stream, stream.close


class _Hashing:
    """A write-only file that hashes and counts what passes through it."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle
        self.sha = hashlib.sha256()
        self.size = 0

    def write(self, data: Any) -> int:
        self.sha.update(data)
        self.size += len(data)
        return int(self.handle.write(data))

    def flush(self) -> None:
        self.handle.flush()


def compress_file(
    source: str | os.PathLike[str], target: str | os.PathLike[str], kind: str
) -> tuple[str, int]:
    """Compress ``source`` into ``target`` atomically (temp file, fsync, ``os.replace``).

    :param source: A plain file.
    :param target: The compressed file to publish.
    :param kind: ``"gzip"`` or ``"zstd"``.
    :return: ``(sha256, bytes)`` of the compressed file.
    """
    check_compression(kind)
    with atomic_output(target, buffering=0) as handle:
        hashing = _Hashing(handle)
        stream, finish = compressed_writer(hashing, kind)
        with open(source, "rb", buffering=0) as plain:
            while chunk := plain.read(READ_BUFFER):
                stream.write(chunk)
        finish()
    return hashing.sha.hexdigest(), hashing.size
