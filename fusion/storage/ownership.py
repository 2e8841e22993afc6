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
    return _read(lease_path(directory))


def _read(path: Path) -> dict[str, Any] | None:
    try:
        blob = path.read_bytes()
        age = max(0.0, time.time() - path.stat().st_mtime)
    except FileNotFoundError:
        return None
    except OSError as exc:  # (a directory of that name, an unreadable file: held, unknown by whom)
        return {"run_id": f"(unreadable lease: {exc.strerror or exc})", "age_s": 0.0}
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
    except (ProcessLookupError, OverflowError):  # (no process can have a pid past the kernel's)
        return False
    except (PermissionError, OSError):
        return True
    with contextlib.suppress(OSError, IndexError):  # a zombie is dead too
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


def _machine() -> dict[str, Any]:
    """What tells this machine and pid namespace apart: the host name, the boot id (a reboot
    ends every run) and the pid namespace (containers may share a host name)."""
    found: dict[str, Any] = {"host": socket.gethostname()}
    with contextlib.suppress(OSError):
        found["boot_id"] = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    with contextlib.suppress(OSError):
        found["pid_ns"] = os.stat("/proc/self/ns/pid").st_ino
    return found


def is_gone(record: dict[str, Any]) -> bool:
    """Whether the run a lease names is provably gone: its lease not refreshed within
    :data:`STALE_S` seconds, or on this host either booted since or, in this pid namespace,
    with its pid dead.

    :param record: What :func:`holder` returned.
    """
    if float(record.get("age_s", 0.0)) > STALE_S:
        return True
    here = _machine()
    if record.get("host") != here["host"]:
        return False
    if "boot_id" in here and record.get("boot_id") not in (None, here["boot_id"]):
        return True  # this host rebooted since the lease was taken
    if record.get("pid_ns", here.get("pid_ns")) != here.get("pid_ns"):
        return False  # another container's pid: not ours to test
    pid = record.get("pid")
    return isinstance(pid, int) and pid > 0 and not _pid_alive(pid)


def describe(record: dict[str, Any]) -> str:
    """The holder as a message names it."""
    return (
        f"run {record.get('run_id')} (host {record.get('host')}, pid {record.get('pid')}, "
        f"refreshed {record.get('age_s', 0.0):.0f} s ago)"
    )


def refuse_if_held(
    directory: str | os.PathLike[str],
    what: str,
    *,
    itself: bool = True,
    mine: str = "",
    below: str | os.PathLike[str] | None = None,
) -> None:
    """Refuse to write into a directory that a live run holds, itself or through a directory
    above it (a study's point is the study run's): a few small reads, once per command.

    :param directory: The directory.
    :param what: What would write, for the message.
    :param itself: Check the directory's own lease too (``False``: only those above it).
    :param mine: A run id whose leases are no obstacle (the asking run's own).
    :param below: Look no higher than the directories below this one (a study's top, which
        the asking run holds).
    :raises DirectoryBusyError: naming the holder.
    """
    path = Path(directory).resolve()
    top = None if below is None else Path(below).resolve()
    for held in (path, *path.parents) if itself else path.parents:
        if held == top:
            break
        found = holder(held)
        if found is not None and found.get("run_id") != mine and not is_gone(found):
            raise DirectoryBusyError(
                f"{held}: {describe(found)} holds this directory; {what} waits for it to end "
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
        _remove_if(lease_path(self.directory), self.run_id, self.run_id)


def _remove_if(path: Path, run_id: Any, by: str) -> bool:
    """Remove the lease at ``path`` only if it names ``run_id``: renamed aside first (one
    rename wins), then read; a lease that turns out to be another's is put back whole.

    :return: Whether it was removed.
    """
    aside = path.with_name(f".{path.name}.{by}.{os.getpid()}.aside")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return False
    found = _read(aside)
    if found is not None and found.get("run_id") == run_id:
        aside.unlink(missing_ok=True)
        return True
    with contextlib.suppress(FileExistsError):  # another run's: back where it was
        os.link(aside, path)
    aside.unlink(missing_ok=True)
    return False


def _create(path: Path, record: dict[str, Any]) -> bool:
    """Create ``path`` holding ``record``, whole, only if it does not exist (a hard link of a
    complete temp file; on NFS a retried link that did succeed reports EEXIST, which the
    temp file's link count tells apart)."""
    tmp = path.with_name(f".{path.name}.{record['run_id'][:8]}{os.getpid()}.tmp")
    tmp.write_bytes(orjson.dumps(record))
    try:
        os.link(tmp, path)
        return True
    except FileExistsError:
        return os.stat(tmp).st_nlink == 2
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
    refuse_if_held(directory, f"writing into {directory}", itself=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "run_id": run_id,
        **_machine(),
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
                f"{directory}: {describe(found)} was writing here and is gone; to take the "
                "directory over, pass --overwrite (a sweep's --resume completes its data)"
            )
        if _remove_if(path, found.get("run_id"), run_id):  # exactly the gone run's lease
            logger.warning("%s: taking the directory over from %s", directory, describe(found))
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
        while not stop.wait(REFRESH_S):
            try:
                if not lease.refresh():
                    return  # lost: the run finds out at its next shard or commit
            except OSError as exc:  # a shared disk's hiccup: try again at the next tick
                logger.warning("%s: could not refresh the lease (%s)", lease.directory, exc)

    thread = threading.Thread(target=keep, name="fusion-lease", daemon=True)
    thread.start()
    try:
        yield lease
    finally:
        stop.set()
        thread.join()
        lease.release()
