"""One run owns a directory while it runs: a lease file, taken before anything is written.

A run (a sweep, a study, ``fusion run``) takes its directory by creating ``fusion.lease``
exclusively (a temp file hard-linked into place: atomic on local disks and NFS alike), naming
its run id, host and pid. While it runs, a thread touches the lease every
:data:`REFRESH_S` seconds; at the end the run removes it. A second run finds the lease and
refuses to start (:class:`~fusion.errors.DirectoryBusyError`, exit 2) naming the holder,
unless the holder is provably gone: on the same host with its pid dead, or its lease not
refreshed for :data:`STALE_S` seconds. Then ``--resume`` or ``--overwrite`` take the
directory over and say so.

A run checks that it still holds its lease once per shard (when a shard opens and before its
record is published) and at every manifest commit, never per transition: a run whose lease is
gone or taken stops at its next shard, publishes nothing more and raises
:class:`~fusion.errors.RunConflictError` naming the run that took it.

The lease only decides who may start; what is written stays correct without it (per-shard
files, temp files renamed into place, sidecars).

    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> lease = acquire(d, "run-a")
    >>> lease.check()                  # still ours: nothing raised
    >>> try:
    ...     acquire(d, "run-b")
    ... except DirectoryBusyError as exc:
    ...     print(str(exc).split(";")[0].split(": ", 1)[1])
    run run-a (host ..., pid ..., refreshed 0 s ago) holds this directory
    >>> lease.release(); holder(d) is None
    True
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from fusion.errors import DirectoryBusyError, RunConflictError

logger = logging.getLogger(__name__)

LEASE_NAME = "fusion.lease"
#: How often a running run touches its lease.
REFRESH_S = 10.0
#: A lease not touched for this long belongs to a run that is gone (a crashed host, a
#: suspended laptop); a shared file system's clocks may differ by less than this.
STALE_S = 120.0


def lease_path(directory: str | os.PathLike[str]) -> Path:
    """Where the lease of ``directory`` lives."""
    return Path(directory) / LEASE_NAME


def holder(directory: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The lease's record (``run_id``, ``host``, ``pid``, ``started``, ``age_s``), or ``None``
    when no run holds the directory.

    :param directory: The dataset or study directory.
    """
    path = lease_path(directory)
    try:
        blob = path.read_bytes()
        age = max(0.0, time.time() - path.stat().st_mtime)
    except FileNotFoundError:
        return None
    try:
        record = orjson.loads(blob)
    except orjson.JSONDecodeError:
        record = None
    if not isinstance(record, dict):
        record = {"run_id": "(unreadable lease)"}
    return {**record, "age_s": age}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    with contextlib.suppress(OSError, IndexError):  # a zombie is dead too
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


def is_gone(record: dict[str, Any]) -> bool:
    """Whether the run a lease names is provably gone: on this host with its pid dead, or its
    lease not refreshed within :data:`STALE_S` seconds.

    :param record: What :func:`holder` returned.
    """
    if float(record.get("age_s", 0.0)) > STALE_S:
        return True
    pid = record.get("pid")
    same_host = record.get("host") == socket.gethostname()
    return same_host and isinstance(pid, int) and pid > 0 and not _pid_alive(pid)


def describe(record: dict[str, Any]) -> str:
    """The holder as a message names it."""
    return (
        f"run {record.get('run_id')} (host {record.get('host')}, pid {record.get('pid')}, "
        f"refreshed {record.get('age_s', 0.0):.0f} s ago)"
    )


def refuse_if_held(directory: str | os.PathLike[str], what: str) -> None:
    """Refuse to write into a directory a live run holds (a hand-fed writer, a rebuild).

    :param directory: The directory.
    :param what: What would write, for the message.
    :raises DirectoryBusyError: naming the holder.
    """
    found = holder(directory)
    if found is not None and not is_gone(found):
        raise DirectoryBusyError(
            f"{directory}: {describe(found)} holds this directory; {what} waits for it to end "
            "(or writes elsewhere)"
        )


@dataclass(frozen=True)
class Lease:
    """A run's hold on a directory (picklable: tasks carry it to check it once per shard).

    :param directory: The directory held (a dataset's, or a study's top).
    :param run_id: The run holding it.
    """

    directory: Path
    run_id: str

    def check(self) -> None:
        """Refuse to go on unless this run still holds the directory (one small read).

        :raises RunConflictError: naming the run that took it, or saying the lease is gone.
        """
        found = holder(self.directory)
        if found is not None and found.get("run_id") == self.run_id:
            return
        if found is None:
            why = "its lease is gone (the directory was removed, moved or cleared by hand)"
        else:
            why = f"{describe(found)} took it over"
        raise RunConflictError(
            f"{self.directory}: this run ({self.run_id}) no longer holds the directory: {why}; "
            "it stopped writing and left the files there alone"
        )

    def held(self) -> bool:
        """Whether this run still holds the directory."""
        found = holder(self.directory)
        return found is not None and found.get("run_id") == self.run_id

    def refresh(self) -> bool:
        """Touch the lease if it is still ours; return whether it is."""
        if not self.held():
            return False
        with contextlib.suppress(OSError):
            os.utime(lease_path(self.directory))
        return True

    def release(self) -> None:
        """Remove the lease if it is still ours (another run's is left alone)."""
        if self.held():
            with contextlib.suppress(FileNotFoundError):
                lease_path(self.directory).unlink()


def _create(path: Path, record: dict[str, Any]) -> bool:
    """Create ``path`` holding ``record``, whole, only if it does not exist."""
    tmp = path.with_name(f".{path.name}.{record['run_id'][:8]}{os.getpid()}.tmp")
    tmp.write_bytes(orjson.dumps(record))
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)


def acquire(directory: str | os.PathLike[str], run_id: str, *, take_over: bool = False) -> Lease:
    """Take ``directory`` for run ``run_id`` before writing anything there (creating it).

    :param directory: The dataset or study directory.
    :param run_id: The run's id.
    :param take_over: May take the lease of a run that is provably gone (``--resume`` and
        ``--overwrite``); the takeover is logged.
    :raises DirectoryBusyError: naming the holder when another run holds the directory (or a
        gone run does and ``take_over`` is false).
    """
    path = lease_path(directory)
    for parent in Path(directory).resolve().parents:  # a study's point is the study run's
        refuse_if_held(parent, f"writing into {directory}")
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "run_id": run_id,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    for _ in range(3):
        if _create(path, record):
            return Lease(Path(directory), run_id)
        found = holder(directory)
        if found is None:
            continue  # released meanwhile: try again
        if not is_gone(found):
            raise DirectoryBusyError(
                f"{directory}: {describe(found)} holds this directory; wait for it to end, "
                "or use another directory"
            )
        if not take_over:
            raise DirectoryBusyError(
                f"{directory}: {describe(found)} was writing here and is gone; pass --resume "
                "to complete its data or --overwrite to replace it"
            )
        again = holder(directory)  # remove exactly the gone run's lease, not a newer one
        if again is not None and again.get("run_id") == found.get("run_id"):
            logger.warning("%s: taking the directory over from %s", directory, describe(found))
            path.unlink(missing_ok=True)
    raise DirectoryBusyError(f"{directory}: another run keeps taking this directory; try again")


@contextlib.contextmanager
def holding(
    directory: str | os.PathLike[str], run_id: str, *, take_over: bool = False
) -> Iterator[Lease]:
    """Hold ``directory`` while inside: acquire, refresh every :data:`REFRESH_S` seconds on a
    background thread, release at the end (if still ours).

    :param directory: The dataset or study directory.
    :param run_id: The run's id.
    :param take_over: See :func:`acquire`.
    """
    lease = acquire(directory, run_id, take_over=take_over)
    stop = threading.Event()

    def keep() -> None:
        while not stop.wait(REFRESH_S) and lease.refresh():
            pass

    thread = threading.Thread(target=keep, name="fusion-lease", daemon=True)
    thread.start()
    try:
        yield lease
    finally:
        stop.set()
        thread.join()
        lease.release()
