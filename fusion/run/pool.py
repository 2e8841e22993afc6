"""The one local process pool every command runs its tasks on (sweeps, studies, evaluation).

Workers start by ``spawn`` (no fork of a threaded driver; Python 3.14's default), die with the
driver even when it is SIGKILLed (Linux ``PR_SET_PDEATHSIG``), and ignore SIGINT: the driver
decides. :func:`sigterm_as_interrupt` turns SIGTERM into :class:`KeyboardInterrupt` in the
driver, and :func:`run_local` then terminates every worker before re-raising, so a stopped
command leaves no orphan writing a shard.

    >>> results = {}
    >>> run_local(abs, [(-1,), (2,)], workers=1, on_done=results.__setitem__, inline=True)
    >>> sorted(results.items())
    [(0, 1), (1, 2)]
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import multiprocessing
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

R = TypeVar("R")


def die_with_parent() -> None:
    """In a worker: be killed when the driver dies, even by SIGKILL (Linux), so no orphan
    keeps writing a shard that a resumed sweep is about to rewrite."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the pool's own checks remain
        pass
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver decides; it terminates us


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the driver so that it stops its workers and commits."""


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated(f"signal {signum}")


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """While inside, SIGTERM raises :class:`Terminated` (a ``KeyboardInterrupt``) in the
    driver (only from the main thread, where Python delivers signals)."""
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def run_local(
    task: Callable[..., R],
    jobs: Sequence[tuple[Any, ...]],
    workers: int,
    on_done: Callable[[int, R], None],
    on_broken: Callable[[int, BaseException], None] | None = None,
    *,
    inline: bool = False,
) -> None:
    """Run ``task(*job)`` for every job; call ``on_done(index, result)`` as each ends.

    A task's own exception is raised here; an interrupt terminates every worker, then
    propagates.

    :param task: A picklable, module-level function.
    :param jobs: Its arguments, one tuple per task.
    :param workers: Processes (at most one per job is started).
    :param on_done: Called in the driver, in completion order.
    :param on_broken: Called instead of raising when a worker process died under a task
        (``None``: raise).
    :param inline: With one worker, run the tasks here, one after another (no process).
    """
    if inline and workers <= 1:
        for index, job in enumerate(jobs):
            on_done(index, task(*job))
        return
    pool = cf.ProcessPoolExecutor(
        max_workers=min(workers, len(jobs)) or 1,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=die_with_parent,
    )
    futures = {pool.submit(task, *job): i for i, job in enumerate(jobs)}
    try:
        for future in cf.as_completed(futures):
            index = futures[future]
            try:
                result = future.result()
            except cf.process.BrokenProcessPool as exc:
                if on_broken is None:
                    raise
                on_broken(index, exc)
                continue
            on_done(index, result)
    except BaseException:  # an interrupt (SIGINT, or SIGTERM turned into one), or a task's error
        processes = list((getattr(pool, "_processes", None) or {}).values())
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(10)
        raise
    pool.shutdown(wait=True)
