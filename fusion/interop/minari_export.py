"""A dataset as a Minari dataset: one episode per seed, in HDF5, with the env spec to recover it.

Each seed's shard becomes an episode of :data:`fusion.env.ENV_ID`: ``T + 1`` observations
(the last is the terminal observation the environment returns, zeros), ``T`` actions in the
environment's encoding (:mod:`fusion.datasets.actions`: a logged ``-1`` is ``K``, "block"),
the logged rewards, ``truncations`` true at the last
step (the request budget ends a run, as the environment truncates it), and
``infos["action_mask"]`` ``(T + 1, K + 1)`` bools, the environment's mask (block legal only
when no path is), and ``infos["window_tag"]`` ``(T + 1,)`` int8, the array view's
``window_tags`` (an index into ``pre``, ``fail``, ``post``; -1 for the terminal observation).
A step's index is its ``t``. The dataset's config goes into the env spec's kwargs,
so ``dataset.recover_environment()`` builds the environment the data came from.

Minari never overwrites an id (``namespace/name-vN``): export under a new version. HDF5 is
used because Minari's Arrow backend cuts episodes longer than 32,767 steps
(Farama-Foundation/Minari#351) and a seed's episode is ``num_requests`` steps.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import shutil
import warnings
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from fusion.datasets.actions import env_actions, env_masks
from fusion.datasets.arrays import to_arrays
from fusion.errors import DatasetError
from fusion.errors import MinariIdExistsError as MinariIdExistsError  # (its home: errors.py)
from fusion.errors import MinariStudyError as MinariStudyError
from fusion.interop.export import nothing_to_export, refuse_partial
from fusion.interop.formats import ExportJob
from fusion.optional import require
from fusion.storage.outputs import check_output
from fusion.storage.schema import WINDOW_TAGS
from fusion.storage.sources import resolve_parts

logger = logging.getLogger(__name__)
_TAGS = ", ".join(f"{index} {tag}" for index, tag in enumerate(WINDOW_TAGS))


#: Minari's own dataset-id pattern (``minari.dataset.minari_dataset.DATASET_ID_RE``), with the
#: namespace and the version fusion requires: ``NAMESPACE/NAME-vN``.
_DATASET_ID = re.compile(
    r"(?P<namespace>[-_\w][-_\w/]*[-_\w]+)/(?P<name>[-_\w]+?)-v(?P<version>\d+)"
)


def check_dataset_id(dataset_id: str | None) -> None:
    """Refuse, before any work, an id Minari would refuse after it: ``NAMESPACE/NAME-vN``
    where the namespace has at least two characters of letters, digits, ``_``, ``-`` (and
    ``/``), and the name only letters, digits, ``_`` and ``-`` (no ``.``).

        >>> check_dataset_id("fusion/nsfnet-v0")
        >>> try:
        ...     check_dataset_id("fusion/ab.c-v0")
        ... except ValueError as exc:
        ...     print(str(exc).split(":")[0])
        --id 'fusion/ab.c-v0'

    :raises ValueError: naming the id and the form Minari takes.
    """
    if dataset_id is None:
        raise ValueError("--format minari needs --id NAMESPACE/NAME-vN (e.g. fusion/nsfnet-v0)")
    if not _DATASET_ID.fullmatch(dataset_id):
        raise ValueError(
            f"--id {dataset_id!r}: --format minari needs an id Minari accepts, "
            "NAMESPACE/NAME-vN (e.g. fusion/nsfnet-v0): a namespace of two or more letters, "
            "digits, _ or -, a name of letters, digits, _ or - (no '.'), a version number"
        )


def check(job: ExportJob) -> None:
    """The registry's check (:mod:`fusion.interop.formats`): an id Minari accepts
    (:func:`check_dataset_id`), before any work.

    :param job: The job.
    :raises ValueError: naming the id and the form Minari takes.
    """
    check_dataset_id(job.dataset_id)


def write(job: ExportJob) -> int:
    """The registry's writer: :func:`export_minari` of ``job`` (``job.output`` is Minari's
    datasets directory, ``None`` for its default); return the steps written.

    :param job: The job.
    """
    assert job.dataset_id is not None  # (checked by check())
    return export_minari(
        job.dataset,
        job.dataset_id,
        root=job.output,
        seeds=job.seeds,
        include_incomplete=job.include_incomplete,
    )


def _config_of(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The config a dataset records; a study (its directory or one merged file) is refused,
    naming a point to export instead."""
    parts = resolve_parts(path)
    if parts[0].coords is not None:
        where = "a study" if parts[0].of_study_dir else "a merged study"
        example = parts[0].path if parts[0].of_study_dir else parts[0].name
        raise MinariStudyError(f"{path}: {where}; export one point's dataset (e.g. {example})")
    resolved = parts[0].resolved
    record: Mapping[str, Any] | None = resolved.manifest
    if record is None:
        sidecar = Path(f"{resolved.path}.manifest.json")
        if not sidecar.is_file():
            raise DatasetError(
                f"{path}: no manifest records its config (looked for {sidecar}); "
                "the Minari env spec needs it"
            )
        record = orjson.loads(sidecar.read_bytes())
    config = record.get("config")
    if not isinstance(config, Mapping):
        raise DatasetError(f"{path}: its manifest has no 'config' section")
    return dict(config)


@contextmanager
def _datasets_root(root: str | os.PathLike[str] | None) -> Iterator[None]:
    if root is None:
        yield
        return
    previous = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(Path(root).resolve())
    try:
        yield
    finally:
        if previous is None:
            del os.environ["MINARI_DATASETS_PATH"]
        else:
            os.environ["MINARI_DATASETS_PATH"] = previous


def export_minari(
    path: str | os.PathLike[str],
    dataset_id: str,
    *,
    root: str | os.PathLike[str] | None = None,
    seeds: Iterable[int] | None = None,
    author: str | None = None,
    include_incomplete: bool = False,
    eval_config: Mapping[str, Mapping[str, Any]] | None = None,
    ref_scores: tuple[float, float, int] | None = None,
    note: str = "",
) -> int:
    """Write a dataset as Minari dataset ``dataset_id``; return the steps written.

    :param path: A dataset directory, its manifest, or a merged ``.jsonl`` with its sidecar.
    :param dataset_id: ``namespace/name-vN``, e.g. ``fusion/nsfnet-ksp-ff-v0``; must be new.
    :param root: Minari's datasets directory (default: ``MINARI_DATASETS_PATH`` or
        ``~/.minari/datasets``).
    :param seeds: Only these seeds.
    :param author: Recorded in the dataset's metadata.
    :param include_incomplete: Export what is whole of shards not complete (else they are
        refused, naming them, as :func:`~fusion.interop.export.export_dataset` does).
    :param eval_config: The evaluation env's config (sections of keys, as
        :meth:`~fusion.config.config.Config.to_dict` gives), recorded as ``eval_env_spec``, so
        ``recover_environment(eval_env=True)`` builds it (default: the dataset's own config).
    :param ref_scores: ``(ref_min_score, ref_max_score, episodes)``: the random and the expert
        policies' mean episode return, over ``episodes`` episodes (default: none recorded).
    :param note: Added to the dataset's description.
    :raises MinariStudyError: for a study (before anything is created).
    :raises OutputConflictError: for a ``root`` the output guard refuses (a file, a path in a
        dataset or study).
    :raises DatasetError: for a file without its manifest, or an id that exists.
    :raises ValueError: for an id Minari refuses (:func:`check_dataset_id`), before any work.
    """
    check_dataset_id(dataset_id)
    minari = require("minari", "minari", "--format minari")
    require("h5py", "minari", "--format minari (HDF5)")
    require("PIL", "minari", "--format minari (Minari's storage imports Pillow)")
    data_collector = require("minari.data_collector", "minari", "--format minari")
    env_module = require("fusion.env", "rl", "--format minari (the env spec)")
    import gymnasium

    config = _config_of(path)  # a study is refused before Minari creates its root
    parts = resolve_parts(path, seeds=seeds, include_incomplete=include_incomplete)
    refuse_partial(path, parts, seeds, include_incomplete)  # as every export, before any work
    root = None if root is None else Path(root).expanduser()
    where = root or os.environ.get("MINARI_DATASETS_PATH")
    base = Path.home() / ".minari" / "datasets" if where is None else Path(where)  # as Minari's
    check_output(base, base / dataset_id, kind="dir", inputs=[path])
    with _datasets_root(root):  # (Minari creates a root it lists: only an existing one)
        if base.is_dir() and dataset_id in minari.list_local_datasets():  # before reading
            raise MinariIdExistsError(
                f"Minari dataset {dataset_id!r} exists (Minari never overwrites an id): "
                "export under a new version, e.g. -v1"
            )
    data = to_arrays(path, seeds=seeds, include_incomplete=include_incomplete)
    if not len(data):
        raise DatasetError(nothing_to_export(path, seeds))
    env = env_module.EONRoutingEnv(config=config)
    k = env.k_paths
    spec = dataclasses.replace(gymnasium.spec(env_module.ENV_ID), kwargs={"config": config})
    eval_spec = spec
    if eval_config is not None:
        env_module.EONRoutingEnv(config=eval_config)  # refused here, before any work
        eval_spec = dataclasses.replace(spec, kwargs={"config": dict(eval_config)})
    buffers = []
    for number, seed in enumerate(np.unique(data.seeds).tolist()):
        rows = np.flatnonzero(data.seeds == seed)
        masks = data.action_masks[rows]
        observations = np.vstack(
            [data.observations[rows], np.zeros((1, data.observations.shape[1]), np.float32)]
        )
        # The terminal observation's row: no path, so block only (as the environment says).
        legal = env_masks(np.vstack([masks, np.zeros((1, k), dtype=bool)]))
        actions = data.actions[rows]
        truncations = np.zeros(len(rows), dtype=bool)
        truncations[-1] = True
        buffers.append(
            data_collector.EpisodeBuffer(
                id=number,
                seed=int(seed),
                observations=observations,
                actions=env_actions(actions, k),
                rewards=data.rewards[rows].astype(np.float64).tolist(),
                terminations=[False] * len(rows),
                truncations=truncations.tolist(),
                infos={
                    "action_mask": legal,
                    "window_tag": np.append(data.window_tags[rows], np.int8(-1)),
                },
            )
        )
    policy = config.get("policy_settings", {}).get("policy", "unknown")
    epsilon = config.get("dataset_logging", {}).get("epsilon_mix", 0.0)
    # Built whole beside Minari's root, then renamed into it: a killed export never leaves a
    # dataset under its final id (a leftover staging directory is removed by the next export).
    with _datasets_root(root):
        final_root = Path(minari.storage.get_dataset_path())
    staging = (
        final_root.parent / f".{final_root.name}.fusion-staging-{dataset_id.replace('/', '--')}"
    )
    if staging.exists():
        logger.warning("%s: removing what a killed export of %s left", staging, dataset_id)
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    try:
        _create(
            minari,
            dataset_id,
            buffers,
            (spec, eval_spec),
            env,
            staging,
            path,
            policy,
            epsilon,
            author,
            k,
            ref_scores,
            note,
        )
        target = final_root / dataset_id
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            raise MinariIdExistsError(f"Minari dataset {dataset_id!r} appeared meanwhile")
        os.replace(staging / dataset_id, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return len(data)


def _create(
    minari: Any,
    dataset_id: str,
    buffers: list[Any],
    specs: tuple[Any, Any],
    env: Any,
    root: Path,
    path: str | os.PathLike[str],
    policy: str,
    epsilon: float,
    author: str | None,
    k: int,
    ref_scores: tuple[float, float, int] | None = None,
    note: str = "",
) -> None:
    """Minari writes the dataset under ``root`` (``specs``: the env's and the eval env's)."""
    spec, eval_spec = specs
    scores: dict[str, Any] = {}
    if ref_scores is not None:
        low, high, episodes = ref_scores
        scores = {
            "ref_min_score": float(low),
            "ref_max_score": float(high),
            "num_episodes_average_score": int(episodes),
        }
    with _datasets_root(root), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*author_email.*")
        minari.create_dataset_from_buffers(
            dataset_id,
            buffers,
            env=spec,
            eval_env=eval_spec,
            action_space=env.action_space,
            observation_space=env.observation_space,
            algorithm_name=f"{policy} (epsilon_mix {epsilon})",
            author=author or "fusion",
            code_permalink="https://github.com/SDNNetSim/FUSION",
            description=(
                f"fusion offline-RL transitions of {path}: one episode per seed, action "
                f"{k} = block, infos['action_mask'] = the legal actions, "
                f"infos['window_tag'] = {_TAGS} (-1: the terminal observation)"
                + (f"; {note}" if note else "")
            ),
            data_format="hdf5",
            **scores,
        )
