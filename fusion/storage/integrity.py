"""Integrity checks every reader shares: sha256, sizes, line counts, and each line's identity.

A transition is identified by ``(seed, t)``: in a shard every line carries the shard's seed and
``t`` runs 0, 1, 2, ... with no gap; in a merged file every seed's lines run that way in the
order they appear (whichever merge order made the file). :class:`LineCheck` follows one file's
lines and raises :class:`~fusion.errors.DatasetError` naming the file and line at the first
that breaks this; :func:`check_columns` does the same for parsed columns.

    >>> check = LineCheck("a.jsonl", seed=3)
    >>> check.line(3, 0, 1); check.line(3, 1, 2)
    >>> check.line(4, 2, 3)
    Traceback (most recent call last):
    ...
    fusion.errors.DatasetError: a.jsonl:3: seed is 4, but this is the shard of seed 3 (files swapped or renamed?)
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from fusion.errors import DatasetError
from fusion.storage.compression import open_binary

_CHUNK = 1 << 20


def file_sha256(path: str | os.PathLike[str], byte_range: tuple[int, int] | None = None) -> str:
    """sha256 of a file's stored bytes (or of the range ``[start, end)``), in 1 MiB chunks.

    :param path: The file.
    :param byte_range: Only these bytes.
    """
    sha = hashlib.sha256()
    with open(path, "rb", buffering=0) as handle:
        left = -1
        if byte_range is not None:
            handle.seek(byte_range[0])
            left = byte_range[1] - byte_range[0]
        while left and (chunk := handle.read(_CHUNK if left < 0 else min(_CHUNK, left))):
            sha.update(chunk)
            left -= len(chunk) if left > 0 else 0
    return sha.hexdigest()


def count_whole_lines(path: Path) -> tuple[int, int]:
    """``(lines, bytes)`` of the whole, newline-terminated lines at the start of a file.

    A compressed file is counted after decompression, up to where its stream is cut.

    :param path: The file.
    """
    lines = 0
    whole_bytes = 0
    total = 0
    with open_binary(path) as handle:
        try:
            while chunk := handle.read(_CHUNK):
                n = chunk.count(b"\n")
                if n:
                    lines += n
                    whole_bytes = total + chunk.rindex(b"\n") + 1
                total += len(chunk)
        except DatasetError:
            pass  # a cut compressed stream: what came before the cut is counted
    return lines, whole_bytes


def check_line_count(
    path: str | os.PathLike[str], count: int, promised: int | None, by: str = "the manifest"
) -> None:
    """Refuse a file whose line count differs from the one recorded for it.

    :param path: The file, for the message.
    :param count: Lines read.
    :param promised: Lines recorded (``None``: nothing to check).
    :param by: Who recorded it (the manifest, or a merge's ``OUT.manifest.json``).
    :raises DatasetError: when the counts differ.
    """
    if promised is not None and count != int(promised):
        raise DatasetError(
            f"{path}: {count} lines, {by} promises {promised} "
            "(the file was cut or changed after it was closed)"
        )


def size_problem(
    path: Path, size: int | None, by: str, byte_range: tuple[int, int] | None = None
) -> str | None:
    """Why a file's size differs from its record, or ``None`` when it matches.

    :param path: The file.
    :param size: The stored size recorded (``None``: nothing to check).
    :param by: Who recorded it, for the message.
    :param byte_range: A range of the file (a point of a merged study): its size was checked
        against the file's record when it was resolved, so nothing is checked here.
    """
    if size is None or byte_range is not None:
        return None
    actual = path.stat().st_size
    if actual == size:
        return None
    return (
        f"{path}: {actual} bytes, {by} records {size}: the file and its record disagree "
        "(changed after closing, or a merge was interrupted)"
    )


def sha256_problem(
    path: Path,
    sha256: str | None,
    by: str,
    byte_range: tuple[int, int] | None = None,
    digest: str | None = None,
) -> str | None:
    """Why a file's stored bytes (or a range of them) differ from their recorded sha256.

    :param path: The file.
    :param sha256: The digest recorded (``None``: nothing to check).
    :param by: Who recorded it, for the message.
    :param byte_range: Only these bytes.
    :param digest: The bytes' digest when the caller hashed them already (a merge hashes while
        it copies); otherwise the file is read.
    """
    if sha256 is None:
        return None
    if digest is None:
        digest = file_sha256(path, byte_range)
    if digest == sha256:
        return None
    where = "" if byte_range is None else f" bytes {byte_range[0]}-{byte_range[1]}"
    return f"{path}{where}: sha256 {digest} differs from {by}'s {sha256}"


class LineCheck:
    """Follows one file's ``(seed, t)`` sequence line by line.

    :param path: The file, for messages.
    :param seed: The shard's seed; ``None`` for a merged file (any seed, each from ``t`` 0).
    :param seeds: For a merged file, the seeds it may hold (``None``: any).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        seed: int | None = None,
        seeds: Collection[int] | None = None,
    ) -> None:
        self.path = path
        self.seed = seed
        self.seeds = seeds
        self.next_t: dict[Any, int] = {}

    def line(self, seed: Any, t: Any, lineno: int) -> None:
        """Check the next line's ``seed`` and ``t``.

        :param seed: The line's seed.
        :param t: The line's t.
        :param lineno: Its 1-based line number, for the message.
        :raises DatasetError: naming the file and line.
        """
        if self.seed is not None and seed != self.seed:
            raise DatasetError(
                f"{self.path}:{lineno}: seed is {seed!r}, but this is the shard of seed "
                f"{self.seed} (files swapped or renamed?)"
            )
        expected = self.next_t.get(seed)
        if expected is None:
            if self.seeds is not None and seed not in self.seeds:
                raise DatasetError(
                    f"{self.path}:{lineno}: seed {seed!r} is not one its record lists"
                )
            expected = 0
        if t != expected or t.__class__ is not int:
            raise DatasetError(
                f"{self.path}:{lineno}: t is {t!r}, expected {expected} for seed {seed!r} "
                "(lines duplicated, lost or reordered?)"
            )
        self.next_t[seed] = expected + 1

    def advance(self, seed: Any) -> None:
        """Count a line of ``seed`` that was bad for another reason, so ``t`` stays in step.

        :param seed: The seed the line belongs to.
        """
        self.next_t[seed] = self.next_t.get(seed, 0) + 1

    def finish(self, per_seed: Mapping[int, int] | None, by: str) -> None:
        """At the end of a merged file: each seed's line count against its record.

        :param per_seed: Lines recorded per seed (``None``: nothing to check).
        :param by: Who recorded them.
        :raises DatasetError: naming the file and seed.
        """
        if per_seed is None:
            return
        for seed, lines in per_seed.items():
            got = self.next_t.get(seed, 0)
            if got != lines:
                raise DatasetError(
                    f"{self.path}: seed {seed} has {got} lines, {by} records {lines}"
                )


def check_columns(
    path: str | os.PathLike[str],
    seeds: np.ndarray,
    t: np.ndarray,
    seed: int | None,
    allowed: Collection[int] | None = None,
    first_line: int = 0,
) -> None:
    """:class:`LineCheck` for parsed columns: the same rule, checked with numpy.

    :param path: The file, for messages.
    :param seeds: The ``seed`` of every line, in file order.
    :param t: The ``t`` of every line, in file order.
    :param seed: The shard's seed, or ``None`` for a merged file.
    :param allowed: A merged file's seeds per its record (``None``: any).
    :param first_line: Lines of the file before the first of these (for messages).
    :raises DatasetError: naming the file and the first bad line.
    """
    n = len(t)
    if n == 0:
        return
    if seed is not None:
        expected = np.arange(n)
        bad = np.flatnonzero((seeds != seed) | (t != expected))
    else:
        order = np.argsort(seeds, kind="stable")
        ordered = seeds[order]
        starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
        counts = np.diff(np.r_[starts, n])
        expected_sorted = np.arange(n) - np.repeat(starts, counts)
        wrong = t[order] != expected_sorted
        if allowed is not None:
            wrong |= ~np.isin(ordered, np.fromiter(allowed, dtype=np.int64))
        bad = np.sort(order[np.flatnonzero(wrong)])
    if len(bad):
        check = LineCheck(path, seed, allowed)
        for index in range(int(bad[0]) + 1):  # replay up to the first bad line for its message
            check.line(int(seeds[index]), int(t[index]), first_line + index + 1)
