"""The D4RL-style ``.npz`` export: the array view's arrays under D4RL's keys.

The file holds ``observations``, ``actions``, ``rewards``, ``terminals``, ``timeouts``,
``next_observations`` (D4RL's keys) plus ``action_masks``, ``seeds``, ``t``, ``window_tags``,
``observation_names``, what produced each action when the data holds it (``behaviour``, a
string per transition such as ``ksp_ff/first_fit``; ``explored``; ``propensity``, what
importance sampling needs) and, for a study, one ``point.<axis>`` array per axis: every array of
the array view (:func:`~fusion.datasets.arrays.to_arrays`), its ``dones`` as ``timeouts``. Data
made before the behaviour fields existed exports without those three arrays. A
shard ends because its run ran out of requests, not because the network reached a terminal
state, so ``terminals`` is all false and ``timeouts`` marks each shard's last transition
(D4RL's convention for a cut episode). Actions and masks are in the record's encoding
(``-1``: blocked, K mask entries; :mod:`fusion.datasets.actions` converts them).

    >>> import tempfile, os
    >>> from fusion.storage.shard_writer import DatasetLogger
    >>> d = tempfile.mkdtemp()
    >>> s = {"src": 0, "dst": 1, "slots_needed": 3, "est_remaining_time": 1.0, "is_disaster": 0,
    ...      "paths": []}
    >>> with DatasetLogger.open_shard(d, 4, {}) as log:
    ...     log.log_transition(s, -1, -1.0, None, [False], {"bp_window_tag": "pre"})
    >>> write(ExportJob(d, os.path.join(d, "x.npz")))
    1
    >>> np.load(os.path.join(d, "x.npz"))["timeouts"].tolist()
    [True]
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import numpy as np

from fusion.datasets.arrays import to_arrays
from fusion.interop.export import prepare
from fusion.interop.formats import ExportJob
from fusion.storage.atomic import atomic_output

#: The array view's arrays that D4RL names otherwise (the rest keep their names).
_D4RL_NAMES = {"dones": "timeouts"}


def _write_npz(
    path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    seeds: Iterable[int] | None,
    include_incomplete: bool = False,
    *,
    overwrite: bool,
) -> int:
    # every file's sha256, cache or not
    data = to_arrays(path, seeds=seeds, verify=True, include_incomplete=include_incomplete)
    own = {  # every array of the array view, its dones under D4RL's name
        _D4RL_NAMES.get(name, name): array
        for name, array in data.arrays().items()
        if name not in data.columns
    }
    arrays = {
        **own,
        "terminals": np.zeros(len(data), dtype=bool),
        "observation_names": np.array(data.metadata["observation_names"]),
        # a study's (or a study merge's) point coordinates: one column per axis
        **{f"point.{name}": column for name, column in data.columns.items()},
    }
    with atomic_output(out, replace=overwrite) as handle:
        np.savez(handle, **arrays)  # type: ignore[arg-type]
    return len(data)


def write(job: ExportJob) -> int:
    """Write the D4RL-style ``.npz`` (the registry's writer, :mod:`fusion.interop.formats`;
    see the module docstring); return the rows written.

    :param job: The job; ``job.output`` is the ``.npz`` file.
    :raises OutputConflictError: for an output the guard refuses, before any work.
    :raises SeedsNotFoundError: for seeds the input does not hold, before any work.
    :raises DatasetError: naming a shard that would be left out, before any work.
    """
    assert job.output is not None  # (the registry checks it: needs_output)
    prepare(job)
    return _write_npz(
        job.dataset, job.output, job.seeds, job.include_incomplete, overwrite=job.overwrite
    )
