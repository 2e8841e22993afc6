"""A dataset, or a study over behaviours, as one Minari dataset: one episode per seed, in
HDF5, with the env spec to recover it.

Each seed's shard becomes an episode of :data:`fusion.env.ENV_ID`: ``T + 1`` observations
(the last is the terminal observation the environment returns, zeros), ``T`` actions in the
environment's encoding (:mod:`fusion.datasets.actions`: a logged ``-1`` is ``K``, "block"),
the logged rewards, ``truncations`` true at the last
step (the request budget ends a run, as the environment truncates it), and per-step infos,
each ``T + 1`` long (the last entry stands for the terminal observation):

- ``infos["action_mask"]`` ``(T + 1, K + 1)`` bools, the environment's mask (block legal only
  when no path is);
- ``infos["window_tag"]`` int8, the array view's ``window_tags`` (an index into ``pre``,
  ``fail``, ``post``; -1 for the terminal observation);
- what chose each action, when the records' ``meta`` holds it (the array view's
  ``behaviour``, ``explored``, ``propensity``; an episode whose lines hold none of a field,
  data logged before these fields, has no such key): ``infos["behaviour"]`` int32, an index
  into ``metadata["fusion_behaviours"]`` (the ``"<policy>/<spectrum rule>"`` strings, in
  order of first appearance; the description lists them too), -1 for the terminal
  observation (and a line without it); ``infos["explored"]`` bool, epsilon-mix took the
  behaviour's second choice (false for the terminal observation); ``infos["propensity"]``
  float64, the probability the behaviour gave the logged action (NaN for the terminal
  observation, which has no action, and a line without it).

A step's index is its ``t``; an episode's ``seed`` is its shard's seed.

**A study** (its directory, or its ``study.json``) whose points differ only in the behaviour
(``[policy_settings]`` policy and spectrum, ``[dataset_logging]`` epsilon_mix,
``[general_settings]`` path_order: a benchmark's ``mixed`` dataset) exports as ONE dataset:
its episodes are every point's seeds, points in the study's order and seeds ascending (never
the order they were run in), and ``infos["point"]`` int32 (the same on every step) is the
episode's point, an index into ``metadata["fusion_points"]`` (``{"point": {axis: value},
"dir": "policy=ksp_ff/path_order=hops"}`` in study order; the description lists them too).
Any other difference (load, topology, K, path features, ...) is refused before anything is
created, naming the first key that differs and two points' values. An action is an index
into its own point's K paths, ranked by that point's path order. A study merged into one
file records no config per point and is refused: export its directory. Reading one::

    data = minari.load_dataset("fusion/maskrsa-nsfnet/mixed-v0")
    points = data.storage.metadata["fusion_points"]
    behaviours = data.storage.metadata["fusion_behaviours"]
    for episode in data.iterate_episodes():
        point = points[episode.infos["point"][0]]["point"]  # {"policy": ..., "path_order": ...}
        chose = [behaviours[i] for i in episode.infos["behaviour"][:-1]]  # "ksp_ff/first_fit"

**The env spec.** A dataset's config goes into the env spec's kwargs, so
``dataset.recover_environment()`` builds the environment the data came from;
``recover_environment(eval_env=True)`` builds ``eval_config`` when one is given, else the same.
A study's points ran in different environments (their path orders rank the paths apart), so
its env spec and eval env spec are both ``eval_config`` when one is given, else the first
point's config (``fusion export`` gives none: the first point's). The eval env must observe and
act as the data does (same observation width and K), or the export is refused before any work.

Memory: one episode (a dataset's shard) is read at a time, and Minari writes it before the
next is read; a lone merged file is read whole.

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
from fusion.datasets.arrays import TransitionArrays, shard_arrays, to_arrays
from fusion.errors import DatasetError
from fusion.errors import MinariIdExistsError as MinariIdExistsError  # (its home: errors.py)
from fusion.errors import MinariStudyError as MinariStudyError
from fusion.interop.export import nothing_to_export, refuse_partial
from fusion.interop.formats import ExportJob
from fusion.optional import require
from fusion.storage.dataset_identity import config_differences
from fusion.storage.outputs import check_output
from fusion.storage.schema import WINDOW_TAGS
from fusion.storage.sources import Part, Source, read_merge_record, resolve_parts

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


#: The keys a study's points may differ in to export as one Minari dataset: the behaviour
#: (``section``, ``key``); seeds are not part of a config's identity.
BEHAVIOUR_KEYS = (
    ("policy_settings", "policy"),
    ("policy_settings", "spectrum"),
    ("dataset_logging", "epsilon_mix"),
    ("general_settings", "path_order"),
)


def first_scenario_difference(
    first: Mapping[str, Any], other: Mapping[str, Any]
) -> tuple[str, str, Any, Any] | None:
    """The first key (sections and keys sorted) in which two configs, as manifests record
    them, differ other than in the behaviour (:data:`BEHAVIOUR_KEYS`): ``(section, key,
    first's value, other's value)``, or ``None``.

    :param first: One point's config.
    :param other: Another point's config.

        >>> a = {"general_settings": {"erlang": 300.0, "path_order": "hops"}}
        >>> b = {"general_settings": {"erlang": 400.0}}
        >>> first_scenario_difference(a, b)
        ('general_settings', 'erlang', 300.0, 400.0)
        >>> first_scenario_difference(a, {"general_settings": {"erlang": 300.0}}) is None
        True
    """
    for section, key, ours, theirs in config_differences(first, other):
        if (section, key) not in BEHAVIOUR_KEYS:
            return section, key, ours, theirs
    return None


def _shown(value: Any) -> str:
    return "(absent)" if value is None else repr(value)


def _config_of(path: str | os.PathLike[str], part: Part) -> dict[str, Any]:
    """The config a dataset (or a study's point) records."""
    resolved = part.resolved
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
        where = f" (point {part.name})" if part.name else ""
        raise DatasetError(f"{path}{where}: its manifest has no 'config' section")
    return dict(config)


def _configs(path: str | os.PathLike[str], parts: list[Part]) -> list[dict[str, Any]]:
    """Each part's config; a study is refused (before anything is created) when it is merged
    into one file, or when its points differ in more than the behaviour."""
    if parts[0].coords is not None and not parts[0].of_study_dir:
        record = read_merge_record(Path(path)) or {}
        source = record.get("source", "the one fusion merge --all read")
        raise MinariStudyError(
            f"{path}: a study merged into one file records no config per point (the env spec "
            "and the check that the points differ only in their behaviour need them); export "
            f"the study's directory instead ({source})"
        )
    configs = [_config_of(path, part) for part in parts]
    for part, config in zip(parts[1:], configs[1:], strict=True):
        found = first_scenario_difference(configs[0], config)
        if found is not None:
            section, key, ours, theirs = found
            allowed = ", ".join(f"{s}.{k}" for s, k in BEHAVIOUR_KEYS)
            raise MinariStudyError(
                f"{path}: {section}.{key} differs between the study's points: "
                f"{_shown(ours)} at point {parts[0].name}, {_shown(theirs)} at point "
                f"{part.name}; one Minari dataset of a study takes points that differ only in "
                f"their behaviour ({allowed}): export each point's dataset on its own "
                f"(e.g. {part.path})"
            )
    return configs


def _shards(
    part: Part, seeds: list[int] | None, include_incomplete: bool
) -> Iterator[tuple[int, TransitionArrays, Source]]:
    """A part's episodes in ascending seed, ``(seed, its arrays, the source read)``: a
    dataset's shard at a time (a lone file, merged or not, is read whole)."""
    resolved = part.resolved
    if resolved.manifest is not None:  # a dataset directory: one shard at a time
        for source in resolved.sources:
            yield source.shard_seed, shard_arrays(part.path, resolved, source), source
        return
    data = to_arrays(part.path, seeds=seeds, include_incomplete=include_incomplete)
    # rows in (seed, t) order: each seed's rows are one run
    found, starts = np.unique(data.seeds, return_index=True)
    ends = [*starts[1:].tolist(), len(data.seeds)]
    for seed, start, end in zip(found.tolist(), starts.tolist(), ends, strict=True):
        yield int(seed), data.take(np.arange(start, end)), resolved.sources[0]


class _Episodes:
    """The episodes Minari writes, built one at a time as it asks for them (an iterable it
    walks once), and what they held: the steps, the behaviours in order of first appearance.

    :param parts: The datasets (a study's points), in order.
    :param seeds: Only these seeds.
    :param include_incomplete: See :func:`export_minari`.
    :param collector: ``minari.data_collector`` (its ``EpisodeBuffer``).
    :param k: K.
    :param width: The observation's width.
    """

    def __init__(
        self,
        parts: list[Part],
        seeds: list[int] | None,
        include_incomplete: bool,
        collector: Any,
        k: int,
        width: int,
    ) -> None:
        self.parts, self.seeds, self.include_incomplete = parts, seeds, include_incomplete
        self.collector, self.k, self.width = collector, k, width
        self.study = parts[0].coords is not None
        self.steps = 0
        self.behaviours: list[str] = []
        self.carried: set[str] = set()

    def __iter__(self) -> Iterator[Any]:
        number = 0
        for index, part in enumerate(self.parts):
            for seed, data, source in _shards(part, self.seeds, self.include_incomplete):
                if not len(data):
                    continue
                buffer = self._buffer(number, seed, data, index if self.study else None, source)
                number += 1
                self.steps += len(data)
                yield buffer

    def _buffer(
        self,
        number: int,
        seed: int,
        data: TransitionArrays,
        point: int | None,
        source: Source,
    ) -> Any:
        k, steps = self.k, len(data)
        if data.action_masks.shape[1] != k or data.observations.shape[1] != self.width:
            raise DatasetError(
                f"{source.path}: seed {seed} holds {data.action_masks.shape[1]} paths and "
                f"observations of {data.observations.shape[1]} values, the env spec's config "
                f"{k} and {self.width}"
            )
        observations = np.vstack([data.observations, np.zeros((1, self.width), np.float32)])
        # The terminal observation's row: no path, so block only (as the environment says).
        legal = env_masks(np.vstack([data.action_masks, np.zeros((1, k), dtype=bool)]))
        truncations = np.zeros(steps, dtype=bool)
        truncations[-1] = True
        infos: dict[str, np.ndarray] = {
            "action_mask": legal,
            "window_tag": np.append(data.window_tags, np.int8(-1)),
        }
        if point is not None:
            infos["point"] = np.full(steps + 1, point, dtype=np.int32)
        infos.update(self._behaviour_infos(data))
        return self.collector.EpisodeBuffer(
            id=number,
            seed=seed,
            observations=observations,
            actions=env_actions(data.actions, k),
            rewards=data.rewards.astype(np.float64).tolist(),
            terminations=[False] * steps,
            truncations=truncations.tolist(),
            infos=infos,
        )

    def _behaviour_infos(self, data: TransitionArrays) -> dict[str, np.ndarray]:
        """What chose each action, as the infos of the module docstring: the fields the
        episode's lines hold (the array view's ``behaviour``, ``explored``, ``propensity``)."""
        infos: dict[str, np.ndarray] = {}
        if data.behaviour is not None:  # ("": a line without it; -1, as the terminal row)
            names, first, inverse = np.unique(
                data.behaviour, return_index=True, return_inverse=True
            )
            for name in names[np.argsort(first)]:  # (listed in order of first appearance)
                if name:
                    self._behaviour_code(str(name))
            codes = np.array([self._behaviour_code(str(n)) if n else -1 for n in names], np.int32)
            infos["behaviour"] = np.append(codes[inverse.reshape(-1)], np.int32(-1))
        if data.explored is not None:
            infos["explored"] = np.append(data.explored.astype(bool), False)
        if data.propensity is not None:
            infos["propensity"] = np.append(data.propensity.astype(np.float64), np.nan)
        self.carried.update(infos)
        return infos

    def _behaviour_code(self, name: str) -> int:
        if name not in self.behaviours:
            self.behaviours.append(name)
        return self.behaviours.index(name)

    def described(self, path: str | os.PathLike[str], note: str) -> dict[str, Any]:
        """The dataset's description and fusion's own metadata keys, once every episode is
        written (the behaviours are known then)."""
        unit = "one episode per point and seed (points in the study's order, seeds ascending)"
        text = [
            f"fusion offline-RL transitions of {'the study ' if self.study else ''}{path}: "
            f"{unit if self.study else 'one episode per seed'}, action {self.k} = block, "
            f"infos['action_mask'] = the legal actions, "
            f"infos['window_tag'] = {_TAGS} (-1: the terminal observation)"
        ]
        extra: dict[str, Any] = {}
        if self.study:
            points = [{"point": dict(p.coords or {}), "dir": p.name} for p in self.parts]
            extra["fusion_points"] = points
            listed = ", ".join(f"{i} {p['dir']}" for i, p in enumerate(points))
            text.append(
                "infos['point'] = the episode's point, an index into metadata['fusion_points'] "
                f"({listed}); an action indexes its point's K paths in its path order"
            )
        if "behaviour" in self.carried:
            extra["fusion_behaviours"] = list(self.behaviours)
            listed = ", ".join(f"{i} {b}" for i, b in enumerate(self.behaviours))
            text.append(
                "infos['behaviour'] = the policy/spectrum rule that chose the action, an index "
                f"into metadata['fusion_behaviours'] ({listed}; -1: the terminal observation)"
            )
        if "explored" in self.carried:
            text.append(
                "infos['explored'] = epsilon-mix took the second choice (false: the terminal "
                "observation)"
            )
        if "propensity" in self.carried:
            text.append(
                "infos['propensity'] = the probability the behaviour gave the logged action "
                "(NaN: the terminal observation)"
            )
        if note:
            text.append(note)
        return {"description": "; ".join(text), **extra}


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
    """Write a dataset, or a study over behaviours, as Minari dataset ``dataset_id`` (see the
    module docstring); return the steps written.

    :param path: A dataset directory, its manifest, a merged ``.jsonl`` with its sidecar, or a
        study directory (or its ``study.json``) whose points differ only in the behaviour.
    :param dataset_id: ``namespace/name-vN``, e.g. ``fusion/nsfnet-ksp-ff-v0``; must be new.
    :param root: Minari's datasets directory (default: ``MINARI_DATASETS_PATH`` or
        ``~/.minari/datasets``).
    :param seeds: Only these seeds (of every point, for a study).
    :param author: Recorded in the dataset's metadata.
    :param include_incomplete: Export what is whole of shards not complete (else they are
        refused, naming them, as :func:`~fusion.interop.export.export_dataset` does).
    :param eval_config: The evaluation env's config (sections of keys, as
        :meth:`~fusion.config.config.Config.to_dict` gives), recorded as ``eval_env_spec``, so
        ``recover_environment(eval_env=True)`` builds it (default: the dataset's own config);
        for a study, the env spec too (default: the first point's config).
    :param ref_scores: ``(ref_min_score, ref_max_score, episodes)``: the random and the expert
        policies' mean episode return, over ``episodes`` episodes (default: none recorded).
    :param note: Added to the dataset's description.
    :raises MinariStudyError: for a study merged into one file, or whose points differ in
        more than the behaviour (naming the key and two points' values), before anything is
        created.
    :raises OutputConflictError: for a ``root`` the output guard refuses (a file, a path in a
        dataset or study).
    :raises DatasetError: for a file without its manifest, or an id that exists.
    :raises ValueError: for an id Minari refuses (:func:`check_dataset_id`), or an
        ``eval_config`` whose env observes or acts otherwise than the data, before any work.
    """
    check_dataset_id(dataset_id)
    minari = require("minari", "minari", "--format minari")
    require("h5py", "minari", "--format minari (HDF5)")
    require("PIL", "minari", "--format minari (Minari's storage imports Pillow)")
    data_collector = require("minari.data_collector", "minari", "--format minari")
    env_module = require("fusion.env", "rl", "--format minari (the env spec)")
    import gymnasium

    parts = resolve_parts(path, seeds=seeds, include_incomplete=include_incomplete)
    configs = _configs(path, parts)  # a study is checked before Minari creates its root
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
    if not any(part.resolved.sources for part in parts):
        raise DatasetError(nothing_to_export(path, seeds))
    study = parts[0].coords is not None
    env = env_module.EONRoutingEnv(config=configs[0])
    k = env.k_paths
    spec = dataclasses.replace(gymnasium.spec(env_module.ENV_ID), kwargs={"config": configs[0]})
    eval_spec = spec
    if eval_config is not None:
        _check_same_spaces(env, env_module.EONRoutingEnv(config=eval_config))  # before any work
        eval_spec = dataclasses.replace(spec, kwargs={"config": dict(eval_config)})
        if study:  # (its points ran in different environments: the one asked for)
            spec = eval_spec
    episodes = _Episodes(
        parts,
        None if seeds is None else sorted({int(s) for s in seeds}),
        include_incomplete,
        data_collector,
        k,
        int(env.observation_space.shape[0]),
    )
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
            episodes,
            (spec, eval_spec),
            env,
            staging,
            path,
            _algorithm(configs, parts),
            author,
            ref_scores,
            note,
        )
        if not episodes.steps:
            raise DatasetError(nothing_to_export(path, seeds))
        target = final_root / dataset_id
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            raise MinariIdExistsError(f"Minari dataset {dataset_id!r} appeared meanwhile")
        os.replace(staging / dataset_id, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return episodes.steps


def _check_same_spaces(env: Any, eval_env: Any) -> None:
    """Refuse an eval env that observes or acts otherwise than the data's env."""
    ours = (env.observation_space.shape, env.action_space.n)
    theirs = (eval_env.observation_space.shape, eval_env.action_space.n)
    if ours != theirs:
        raise ValueError(
            f"eval_config: its env observes {theirs[0]} and acts in Discrete({theirs[1]}), "
            f"the data {ours[0]} and Discrete({ours[1]}); give an eval config with the data's "
            "K and path features"
        )


def _algorithm(configs: list[dict[str, Any]], parts: list[Part]) -> str:
    """Minari's ``algorithm_name``: the policy and epsilon, or a study's axes."""
    epsilons = {c.get("dataset_logging", {}).get("epsilon_mix", 0.0) for c in configs}
    epsilon = f"epsilon_mix {epsilons.pop()}" if len(epsilons) == 1 else "epsilon_mix per point"
    if parts[0].coords is None:
        policy = configs[0].get("policy_settings", {}).get("policy", "unknown")
        return f"{policy} ({epsilon})"
    return f"a study over {' x '.join(parts[0].coords)}, {len(parts)} points ({epsilon})"


def _create(
    minari: Any,
    dataset_id: str,
    episodes: _Episodes,
    specs: tuple[Any, Any],
    env: Any,
    root: Path,
    path: str | os.PathLike[str],
    algorithm: str,
    author: str | None,
    ref_scores: tuple[float, float, int] | None = None,
    note: str = "",
) -> None:
    """Minari writes the dataset under ``root`` (``specs``: the env's and the eval env's),
    an episode at a time, then fusion's metadata (:meth:`_Episodes.described`)."""
    spec, eval_spec = specs
    scores: dict[str, Any] = {}
    if ref_scores is not None:
        low, high, count = ref_scores
        scores = {
            "ref_min_score": float(low),
            "ref_max_score": float(high),
            "num_episodes_average_score": int(count),
        }
    with _datasets_root(root), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*author_email.*")
        dataset = minari.create_dataset_from_buffers(
            dataset_id,
            episodes,  # (an iterable: Minari's HDF5 storage writes each episode as it comes)
            env=spec,
            eval_env=eval_spec,
            action_space=env.action_space,
            observation_space=env.observation_space,
            algorithm_name=algorithm,
            author=author or "fusion",
            code_permalink="https://github.com/SDNNetSim/FUSION",
            description=f"fusion offline-RL transitions of {path}",  # (completed below)
            data_format="hdf5",
            **scores,
        )
        dataset.storage.update_metadata(episodes.described(path, note))
