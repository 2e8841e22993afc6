"""A file sink that writes byte buffers and hashes them (sha256) on a background thread.

hashlib releases the GIL for large buffers, so the thread hashing one buffer overlaps the
caller writing it and reading the next. At most one buffer is being hashed at a time, in the
order given; an error in the thread surfaces at the next call.

    >>> import io
    >>> sink = HashingSink(io.BytesIO())
    >>> sink.write(b"abc"); sink.close()
    >>> sink.hexdigest()[:8], sink.size
    ('ba7816bf', 3)
"""

from __future__ import annotations

import hashlib
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO


class HashingSink:
    """Hash and write buffers in the order given.

    :param file: The open binary file to write to (the sink does not close it).
    :param background: Hash on a background thread (``False``: in the caller).
    """

    def __init__(self, file: BinaryIO, *, background: bool = True) -> None:
        self._file = file
        self._sha = hashlib.sha256()
        self.size = 0
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="fusion-sink") if background else None
        self._pending: Future[None] | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Write ``data`` and queue it for hashing; the caller must not change it afterwards.

        :param data: The bytes to write and hash.
        :raises OSError: when the file refuses them; ``size`` then counts only earlier writes.
        """
        before = None
        if self._pool is not None:
            self.drain()
            before = self._sha.copy()  # (one copy per buffer: what to go back to on failure)
            self._pending = self._pool.submit(self._sha.update, data)
        view = memoryview(data)
        try:
            while view:  # a raw file may take part of a large buffer per call
                written = self._file.write(view)
                view = view[written if written is not None else len(view) :]
        except OSError:
            if before is not None:  # the thread hashed a buffer that never reached the file
                self.drain()
                self._sha = before
            raise
        # Counted (and, in the caller, hashed) once wholly written: after a failed write,
        # size and sha256 still describe exactly the buffers that reached the file.
        self.size += len(data)
        if self._pool is None:
            self._sha.update(data)

    def drain(self) -> None:
        """Wait until everything written is hashed (re-raising the thread's error)."""
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def close(self) -> None:
        """Drain and stop the thread. Closing twice is harmless."""
        try:
            self.drain()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None

    def hexdigest(self) -> str:
        """sha256 of everything written so far (call after :meth:`drain`)."""
        return self._sha.hexdigest()
