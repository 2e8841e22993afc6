"""Publishing files atomically: write a temp file beside the target, fsync, ``os.replace``.

A reader sees either the old file or the new one, never half of one; a failure leaves the
target untouched and removes the temp file.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> write_bytes_atomic(d / "a.json", b"{}")
    >>> (d / "a.json").read_bytes()
    b'{}'
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from fusion.errors import OutputConflictError


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: The process's umask when fusion was imported: published files get ``0o666 & ~umask``, as
#: the shards (opened with ``open``) do, not mkstemp's 0600 (datasets live on shared disks).
UMASK = _read_umask()


def _fsync_dir(directory: Path) -> None:
    """Make a rename durable (best effort: not every file system lets a directory be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_output(
    path: str | os.PathLike[str], *, buffering: int = 1 << 20, replace: bool = True
) -> Iterator[BinaryIO]:
    """Open a temp file that replaces ``path`` only if the ``with`` block ends without error.

    :param path: The file to publish.
    :param buffering: Buffer size of the temp file.
    :param replace: Replace a file at ``path`` (``False``: publish only where none is; see
        :func:`atomic_path`).
    :yield: A binary file object to write to.
    """
    with (
        atomic_path(path, suffix="", synced=True, replace=replace) as tmp,
        open(tmp, "wb", buffering) as handle,
    ):
        yield handle
        handle.flush()
        os.fsync(handle.fileno())


@contextlib.contextmanager
def atomic_path(
    path: str | os.PathLike[str],
    *,
    suffix: str | None = None,
    synced: bool = False,
    replace: bool = True,
) -> Iterator[Path]:
    """A temp path beside ``path`` for a writer that takes a file name (matplotlib's
    ``savefig``), renamed onto ``path`` only if the ``with`` block ends without error.

    :param path: The file to publish.
    :param suffix: The temp name's suffix after ``.tmp`` (default: ``path``'s), for a writer
        that picks its format by the suffix.
    :param synced: The caller fsyncs the temp file itself (else it is fsynced here).
    :param replace: Replace a file at ``path``; ``False``: publish by a hard link, which
        fails where a file appeared meanwhile (another command wrote the same output).
    :raises OutputConflictError: when ``replace`` is false and ``path`` exists by then.
    :yield: The temp file's path, to write whole.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    ending = target.suffix if suffix is None else suffix
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=f".tmp{ending}", dir=target.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~UMASK)
        if not synced:
            with open(tmp, "rb") as handle:
                os.fsync(handle.fileno())
        if replace:
            os.replace(tmp, target)
        else:
            try:
                os.link(tmp, target)
            except FileExistsError:
                raise OutputConflictError(
                    f"{target}: appeared while this command ran (another command wrote it); "
                    "nothing was replaced: pass --overwrite to replace it, or choose another path"
                ) from None
            except OSError:  # a file system without hard links: the check, then the rename
                if os.path.lexists(target):
                    raise OutputConflictError(
                        f"{target}: appeared while this command ran; nothing was replaced"
                    ) from None
                os.replace(tmp, target)
            tmp.unlink(missing_ok=True)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_dir(target.parent)


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically.

    :param path: The file to publish.
    :param data: Its whole new content.
    """
    with atomic_output(path, buffering=0) as handle:
        handle.write(data)
