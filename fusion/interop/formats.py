"""The export formats: one registry that ``fusion export``, its ``--format`` choices and help,
and :func:`~fusion.interop.export.export_dataset` all read.

A format is a module and one line of :data:`FORMATS`. The module holds
``write(job: ExportJob) -> int`` (it writes ``job.dataset`` and returns the rows or steps
written; every refusal it makes names the file or option) and may hold ``check(job) -> None``,
the refusals of a malformed command line made before any work (a ``ValueError``; ``fusion
export`` exits 2 with its message). The line names the module and says in a few words what
the format writes and what ``-o`` is; the registry imports the module only when the format is
used, so the ``fusion`` command starts without pyarrow or Minari.

    >>> list(FORMATS)
    ['npz', 'parquet', 'minari']
    >>> export_format("minari").summary(ExportJob("d", dataset_id="fusion/d-v0"), 7)
    'exported 7 steps to Minari dataset fusion/d-v0 (in MINARI_DATASETS_PATH or ~/.minari/datasets)'
    >>> export_format("csv")
    Traceback (most recent call last):
    ...
    ValueError: format must be one of ['npz', 'parquet', 'minari'], got 'csv'
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from fusion.errors import MinariIdExistsError, MinariStudyError, SeedsNotFoundError

__all__ = ["FORMATS", "ExportFormat", "ExportJob", "export_format"]


@dataclass(frozen=True)
class ExportJob:
    """What to export, and where: one ``fusion export`` command line.

    :param dataset: A dataset directory, its manifest, a ``.jsonl[.gz|.zst]`` file or a study.
    :param output: The file written (``-o``); for a format that writes a directory, that
        directory (``None``: the format's default, where it has one).
    :param seeds: Only these seeds (``None``: all).
    :param overwrite: Replace an existing output that belongs to no dataset or study.
    :param include_incomplete: Export the whole lines of shards not complete (else they are
        refused, naming them).
    :param dataset_id: The new dataset's id, for a format that names one (Minari's).
    """

    dataset: str | os.PathLike[str]
    output: str | os.PathLike[str] | None = None
    seeds: tuple[int, ...] | None = None
    overwrite: bool = False
    include_incomplete: bool = False
    dataset_id: str | None = None


@dataclass(frozen=True)
class ExportFormat:
    """One export format: its name, the module that writes it, and what the command says of it.

    :param name: The ``--format`` value.
    :param module: The module holding ``write(job)`` (and optionally ``check(job)``).
    :param help: What it writes, a few words (``fusion export --help``).
    :param output: What ``-o`` names for it.
    :param unit: What the count ``write`` returns counts.
    :param needs_output: Whether ``-o`` is required.
    :param default_output: What is written to without ``-o`` (in the summary line).
    :param overwrites: Whether ``--overwrite`` replaces an existing output.
    :param takes_id: Whether it names what it writes by ``--id`` (refused otherwise).
    :param target: The summary's destination, formatted with ``output``, ``id`` and ``name``.
    :param usage_errors: What ``write`` raises that is the command line's fault (exit 2);
        ``--seeds`` naming seeds the data lacks is always one.
    """

    name: str
    module: str
    help: str
    output: str
    unit: str = "transitions"
    needs_output: bool = True
    default_output: str = ""
    overwrites: bool = True
    takes_id: bool = False
    target: str = "{output} ({name})"
    usage_errors: tuple[type[Exception], ...] = ()

    def _hook(self, name: str) -> Callable[[ExportJob], object] | None:
        return cast(
            "Callable[[ExportJob], object] | None",
            getattr(importlib.import_module(self.module), name, None),
        )

    def check(self, job: ExportJob) -> None:
        """Refuse, before any work, a job this format cannot do (no ``-o`` where one is needed;
        the module's own ``check``).

        :param job: The job.
        :raises ValueError: naming the option.
        """
        if self.needs_output and job.output is None:
            raise ValueError(f"--format {self.name} needs -o OUT ({self.output})")
        if job.dataset_id is not None and not self.takes_id:
            raise ValueError(f"--id names a Minari dataset; --format {self.name} takes none")
        check = self._hook("check")
        if check is not None:
            check(job)

    def export(self, job: ExportJob) -> int:
        """Check and write ``job``; return the count written (:attr:`unit`).

        :param job: The job.
        """
        self.check(job)
        write = self._hook("write")
        if write is None:
            raise TypeError(f"{self.module} has no write(job): not an export format's module")
        return cast(int, write(job))

    @property
    def errors_of_usage(self) -> tuple[type[Exception], ...]:
        """The errors ``fusion export`` reports as a usage error (exit 2)."""
        return (SeedsNotFoundError, *self.usage_errors)

    def summary(self, job: ExportJob, count: int) -> str:
        """The line ``fusion export`` prints when done.

        :param job: The job done.
        :param count: What :meth:`export` returned.
        """
        output = job.output if job.output is not None else self.default_output
        where = self.target.format(output=output, id=job.dataset_id, name=self.name)
        return f"exported {count} {self.unit} to {where}"


#: Every export format, by name, in the order ``fusion export --help`` lists them.
FORMATS: dict[str, ExportFormat] = {
    f.name: f
    for f in (
        ExportFormat(
            "npz",
            "fusion.interop.npz_export",
            help="D4RL-style .npz (observations, actions, rewards, terminals, timeouts, ...)",
            output="the .npz file",
        ),
        ExportFormat(
            "parquet",
            "fusion.interop.parquet_export",
            help="Parquet, a typed row per transition, a column per field of the record",
            output="the .parquet file",
        ),
        ExportFormat(
            "minari",
            "fusion.interop.minari_export",
            help="a Minari dataset (HDF5), one episode per seed; a study over behaviours as one "
            "dataset (an episode per point and seed); needs --id",
            output="Minari's datasets directory",
            unit="steps",
            needs_output=False,
            default_output="MINARI_DATASETS_PATH or ~/.minari/datasets",
            overwrites=False,
            takes_id=True,
            target="Minari dataset {id} (in {output})",
            usage_errors=(MinariIdExistsError, MinariStudyError),
        ),
    )
}


def export_format(name: str) -> ExportFormat:
    """The format called ``name``.

    :param name: A key of :data:`FORMATS`.
    :raises ValueError: naming the formats there are.
    """
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(f"format must be one of {list(FORMATS)}, got {name!r}") from None
