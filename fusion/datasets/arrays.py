"""The array view of a dataset: numpy arrays ready for offline RL, in ``(seed, t)`` order.

:func:`to_arrays` reads a dataset directory, its ``manifest.json`` or a lone ``.jsonl`` (plain,
``.gz`` or ``.zst``) and returns a :class:`TransitionArrays`:

- ``observations``: float32 ``(N, 5 + FK)`` in upstream FUSION's order (``src, dst,
  slots_needed, est_remaining_time, is_disaster``, then for each path ``path_hops,
  min_residual_slots, frag_indicator, failure_mask, dist_to_disaster_centroid`` and, in data
  logged with ``path_features = extended``, its eight extended features;
  ``metadata["observation_names"]`` and ``metadata["path_features"]`` spell it out).
- ``actions`` int64 (-1: blocked), ``rewards`` float32, ``action_masks`` bool ``(N, K)``.
- ``next_observations``: the observation of the next transition of the same shard (zeros
  after a shard's last transition); ``dones``: true at each shard's last transition.
  Linking happens before any ``window`` filter, so a transition keeps its true successor.
- ``seeds``, ``t`` int64; ``window_tags`` int8, an index into ``metadata["window_tags"]``
  (``pre``, ``fail``, ``post``; -1 when a line has none).
- what produced each action, from ``meta``, when the data holds it (engine records since the
  ``behaviour`` edition; ``None`` for data made before): ``behaviour`` str
  (``"ksp_ff/first_fit"``; ``""`` on a line without it), ``explored`` bool, ``propensity``
  float64 (NaN on a line without it).

Rows are sorted by ``(seed, t)`` whatever order a file holds them in, so a dataset and its
merge (in either order) give the same arrays. The first call on a dataset writes an ``.npz``
cache beside it (see :mod:`fusion.datasets.array_cache`).

    >>> import tempfile
    >>> from fusion.storage.shard_writer import DatasetLogger
    >>> d = tempfile.mkdtemp()
    >>> state = {"src": 0, "dst": 1, "slots_needed": 3, "est_remaining_time": 1.0, "is_disaster": 0,
    ...          "paths": [{"path_hops": 2, "min_residual_slots": 9, "frag_indicator": 0.0,
    ...                     "failure_mask": 0, "dist_to_disaster_centroid": -1}]}
    >>> with DatasetLogger.open_shard(d, 5, {}) as log:
    ...     for _ in range(3):
    ...         log.log_transition(state, 0, 1.0, None, [True], {"bp_window_tag": "pre"})
    >>> arrays = to_arrays(d)
    >>> arrays.observations.shape, arrays.dones.tolist(), arrays.metadata["k_paths"]
    ((3, 10), [False, False, True], 1)
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, cast

import numpy as np

from fusion.datasets import array_cache
from fusion.datasets.actions import env_actions, env_masks
from fusion.datasets.columns import (
    BEHAVIOUR_FIELDS,
    BEHAVIOUR_FILL,
    Columns,
    check_parsed,
    read_columns,
)
from fusion.errors import DatasetError
from fusion.storage.observation import (
    PATH_FEATURES,
    STATE_FEATURES,
    observation_names,
    observation_rows,
    observation_size,
    path_features_of,
    scatter_rows,
)
from fusion.storage.schema import WINDOW_TAGS, check_window
from fusion.storage.sources import Resolved, Source, resolve_parts, warn_skipped
from fusion.storage.successors import episode_ends, successors

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class TransitionArrays:
    """A dataset as arrays, one row per transition, in ``(seed, t)`` order.

    :param observations: float32 ``(N, 5 + 5K)``.
    :param actions: int64 ``(N,)``, -1 for a blocked request.
    :param rewards: float32 ``(N,)``.
    :param action_masks: bool ``(N, K)``.
    :param next_observations: float32 ``(N, 5 + 5K)``; zeros where ``dones``.
    :param dones: bool ``(N,)``, true at the last transition of each shard.
    :param seeds: int64 ``(N,)``.
    :param t: int64 ``(N,)``.
    :param window_tags: int8 ``(N,)``, index into ``metadata["window_tags"]``, -1 if none.
    :param behaviour: str ``(N,)``, ``meta.behaviour`` (the policy and spectrum rule that
        chose the action); ``None`` when no line holds it.
    :param explored: bool ``(N,)``, ``meta.explored``; ``None`` when no line holds it.
    :param propensity: float64 ``(N,)``, ``meta.propensity``; ``None`` when no line holds it.
    :param metadata: Feature order, K, sources and their sha256, filters, cache use.
    :param columns: A study's grid axes, one ``(N,)`` array each (``erlang`` float64,
        ``policy`` str), so training can condition or filter on them; empty otherwise.
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    action_masks: np.ndarray
    next_observations: np.ndarray
    dones: np.ndarray
    seeds: np.ndarray
    t: np.ndarray
    window_tags: np.ndarray
    behaviour: np.ndarray | None = None
    explored: np.ndarray | None = None
    propensity: np.ndarray | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    columns: dict[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.actions)

    @property
    def env_actions(self) -> np.ndarray:
        """The actions in the environment's (and Minari's) encoding: ``Discrete(K + 1)``,
        blocked (-1 here) as ``K`` (:func:`~fusion.datasets.actions.env_actions`)."""
        return env_actions(self.actions, self.action_masks.shape[1])

    @property
    def env_action_masks(self) -> np.ndarray:
        """The masks in the environment's encoding: ``(N, K + 1)``, block legal only where no
        path is feasible (:func:`~fusion.datasets.actions.env_masks`)."""
        return env_masks(self.action_masks)

    def arrays(self) -> dict[str, np.ndarray]:
        """Every array by name (everything but ``metadata`` and the arrays the data does not
        hold; a study's axis columns too)."""
        named = {
            name: getattr(self, name)
            for name in self.__dataclass_fields__
            if name not in ("metadata", "columns") and getattr(self, name) is not None
        }
        return {**named, **self.columns}

    def take(self, rows: np.ndarray) -> TransitionArrays:
        """The rows selected by an index or boolean array, metadata kept.

        :param rows: Row indices or a boolean mask of length N.
        """
        own = {k: v[rows] for k, v in self.arrays().items() if k not in self.columns}
        return TransitionArrays(
            **own,
            metadata=self.metadata,
            columns={k: v[rows] for k, v in self.columns.items()},
        )


def _read_checked(source: Source, verify: bool) -> Columns:
    """One source's columns, checked as :func:`~fusion.storage.loader.read_source` checks."""
    if source.complete and verify:
        source.check_sha256()
    columns = read_columns(source.path, whole_lines_only=source.whole_lines_only, part=source)
    check_parsed(source, columns.seeds, columns.t)
    return columns


def _assemble(parts: list[Columns]) -> dict[str, np.ndarray]:
    """Concatenate per-file columns into the base arrays, K = the longest path list or mask."""
    k = max(
        [int(c.path_counts.max(initial=0)) for c in parts]
        + [int(c.mask_counts.max(initial=0)) for c in parts]
        + [0]
    )
    n = sum(len(c) for c in parts)
    features = _common_features(parts)
    observations = np.zeros((n, observation_size(k, features)), dtype=np.float32)
    masks = np.zeros((n, k), dtype=bool)
    start = 0
    for c in parts:
        rows = slice(start, start + len(c))
        observation_rows(observations[rows], c.state, c.path_values, c.path_counts)
        scatter_rows(masks[rows], c.mask_values, c.mask_counts)
        start += len(c)

    def cat(name: str, dtype: Any) -> np.ndarray:
        arrays = [getattr(c, name) for c in parts]
        return np.concatenate(arrays).astype(dtype, copy=False) if arrays else np.zeros(0, dtype)

    return {
        "observations": observations,
        "actions": cat("actions", np.int64),
        "rewards": cat("rewards", np.float32),
        "action_masks": masks,
        "seeds": cat("seeds", np.int64),
        "t": cat("t", np.int64),
        "window_tags": cat("windows", np.int8),
        **_behaviour([(c.behaviour, len(c)) for c in parts]),
    }


def _behaviour(parts: Sequence[tuple[Mapping[str, np.ndarray], int]]) -> dict[str, np.ndarray]:
    """The ``meta`` fields of what produced each action that some part holds, concatenated (a
    part without one fills its rows as :data:`~fusion.datasets.columns.BEHAVIOUR_FILL`).

    :param parts: Each part's behaviour columns (name -> array; a field it lacks is absent)
        and its rows.
    """
    held = [name for name in BEHAVIOUR_FIELDS if any(name in columns for columns, _ in parts)]
    return {
        name: np.concatenate(
            [columns.get(name, np.full(rows, BEHAVIOUR_FILL[name])) for columns, rows in parts]
        )
        for name in held
    }


def _common_features(parts: list[Columns]) -> tuple[str, ...]:
    """The path features every file holds (files that list no path hold any set)."""
    sets = {c.path_features for c in parts if c.path_features is not None}
    if len(sets) > 1:
        first = next(c for c in parts if c.path_features is not None)
        other = next(c for c in parts if c.path_features not in (None, first.path_features))
        raise DatasetError(
            f"files hold different path features: {first.source} "
            f"{list(first.path_features or ())}, {other.source} "
            f"{list(other.path_features or ())}; read them apart"
        )
    return sets.pop() if sets else PATH_FEATURES


def _in_order(base: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    seeds, t = base["seeds"], base["t"]
    if len(t) < 2:
        return base
    ordered = (seeds[1:] > seeds[:-1]) | ((seeds[1:] == seeds[:-1]) & (t[1:] > t[:-1]))
    if ordered.all():
        return base
    order = np.lexsort((t, seeds))
    return {name: array[order] for name, array in base.items()}


def _linked(base: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    dones = episode_ends(base["seeds"])
    return successors(base["observations"], dones), dones


def _parse(sources: list[Source], verify: bool) -> tuple[dict[str, np.ndarray], tuple[str, ...]]:
    """Parse every source, a file per thread as well (pyarrow drops the GIL while parsing);
    the base arrays and the path features the files hold."""
    with ThreadPoolExecutor(max(1, min(len(sources), os.cpu_count() or 1))) as pool:
        parts = list(pool.map(lambda source: _read_checked(source, verify), sources))
    return _in_order(_assemble(parts)), _common_features(parts)


def to_arrays(
    path: str | os.PathLike[str],
    *,
    seeds: Iterable[int] | None = None,
    window: str | None = None,
    include_incomplete: bool = False,
    cache: bool = True,
    verify: bool = False,
    points: Mapping[str, Sequence[Any]] | None = None,
) -> TransitionArrays:
    """Load a dataset as arrays (see the module docstring for every array).

    :param path: A dataset directory, its ``manifest.json``, a ``.jsonl[.gz|.zst]`` file, or
        a study directory: its points' arrays in point order, with one column per axis.
    :param seeds: Only these seeds.
    :param window: Only transitions of this BP window (``pre``, ``fail``, ``post``).
    :param include_incomplete: Also read shards not ``complete`` (their whole lines; no cache).
    :param cache: Use and write the ``.npz`` cache beside the data.
    :param verify: Check each file's sha256 against its record before parsing it.
    :param points: A study's points to read: axis -> values (``{"erlang": [300]}``).
    :raises DatasetError: naming the file (and line) of missing, cut or malformed data, or of
        a line whose seed or ``t`` does not belong where it is.

    Example::

        >>> import tempfile, os
        >>> from fusion.storage.shard_writer import DatasetLogger
        >>> p = os.path.join(tempfile.mkdtemp(), "one.jsonl")
        >>> s = {"src": 0, "dst": 1, "slots_needed": 3, "est_remaining_time": 1.0, "is_disaster": 0,
        ...      "paths": []}
        >>> with DatasetLogger(p, {"seed": 1}) as log:
        ...     log.log_transition(s, -1, -1.0, None, [False, False], {})
        >>> a = to_arrays(p, cache=False)
        >>> a.actions.tolist(), a.action_masks.shape, a.observations.dtype.name
        ([-1], (1, 2), 'float32')
    """
    check_window(window)
    wanted = None if seeds is None else sorted({int(s) for s in seeds})
    parts = resolve_parts(path, include_incomplete=include_incomplete, points=points)
    if len(parts) == 1 and parts[0].coords is None:  # one dataset or file
        return _from_resolved(path, parts[0].resolved, wanted, window, cache, verify)
    return _combine(
        path,
        [
            (
                dict(part.coords or {}),
                part.name,
                # a point's own directory has its cache; a merged study's range has none
                _from_resolved(
                    part.path, part.resolved, wanted, window, cache and part.of_study_dir, verify
                ),
            )
            for part in parts
        ],
    )


def shard_arrays(
    path: str | os.PathLike[str], resolved: Resolved, source: Source
) -> TransitionArrays:
    """One shard's arrays, from what :func:`~fusion.storage.sources.resolve` already found
    (no cache, no second look at the manifest): for a reader that walks a dataset a shard at a
    time, as the Minari export does, at a cost per shard that does not grow with the dataset.

    :param path: The dataset, for messages.
    :param resolved: Its sources, as resolved.
    :param source: The shard, one of ``resolved.sources``.
    """
    one = replace(resolved, sources=[source], skipped=[])
    return _from_resolved(path, one, None, None, cache=False, verify=False)


def _from_resolved(
    path: str | os.PathLike[str],
    resolved: Resolved,
    wanted: list[int] | None,
    window: str | None,
    cache: bool,
    verify: bool,
) -> TransitionArrays:
    """The arrays of what :func:`~fusion.storage.sources.resolve` found (one dataset)."""
    chosen = resolved.only(wanted)
    warn_skipped(chosen)
    sources = resolved.sources
    cacheable = cache and not any(s.whole_lines_only for s in sources)
    base: dict[str, np.ndarray] | None = None
    held: Sequence[str] | None = None  # the path features the files hold, as read
    from_cache = False
    if cacheable:
        target = array_cache.cache_path(resolved.directory, resolved.stem)
        key = array_cache.cache_key([(s.path, s.lines, s.sha256, s.path_features) for s in sources])
        hit = array_cache.load_cache(target, key)
        if hit is not None:
            if verify:  # the cache key trusts sizes and line counts; verify trusts bytes only
                for source in sources:
                    source.check_sha256()
            base, held, from_cache = hit[0], hit[1].get("path_features"), True
        elif wanted is None or resolved.is_file:
            base, held = _parse(sources, verify)
            array_cache.save_cache(
                target,
                key,
                base,
                {"sources": [str(s.path) for s in sources], "path_features": list(held)},
            )
    if base is None:
        base, held = _parse(chosen.sources, verify)
    next_observations, dones = _linked(base)
    keep = np.ones(len(dones), dtype=bool)
    if wanted is not None:
        keep &= np.isin(base["seeds"], wanted)
    if window is not None:
        keep &= base["window_tags"] == WINDOW_TAGS.index(window)
    k = base["action_masks"].shape[1]
    if held is None:  # a cache written before it recorded them: the manifests' list, or width
        lists = {s.path_features for s in chosen.sources}
        held = lists.pop() if len(lists) == 1 else None
    features = path_features_of(base["observations"].shape[1], k, held)
    metadata = {
        "observation_names": observation_names(k, features),
        "state_features": list(STATE_FEATURES),
        "path_features": list(features),
        "k_paths": k,
        "window_tags": list(WINDOW_TAGS),
        "source": str(path),
        "sources": [
            {"file": s.path.name, "seed": s.seed, "sha256": s.sha256} for s in chosen.sources
        ],
        "seeds": wanted,
        "window": window,
        "from_cache": from_cache,
        "config": resolved.manifest.get("config") if resolved.manifest else None,
    }
    result = TransitionArrays(
        **cast(dict[str, Any], base),
        next_observations=next_observations,
        dones=dones,
        metadata=metadata,
    )
    return result if keep.all() else replace(result.take(keep), metadata=metadata)


def _combine(
    path: str | os.PathLike[str], parts: list[tuple[dict[str, Any], str, TransitionArrays]]
) -> TransitionArrays:
    """Points' arrays concatenated in point order, one column per grid axis."""
    if not parts:
        raise DatasetError(f"{path}: the study has no points")
    ks = {part.metadata["k_paths"] for _, _, part in parts}
    if len(ks) > 1:
        raise DatasetError(
            f"{path}: the points have different k_paths {sorted(ks)}; read them apart"
        )
    sets = {len(part.metadata["path_features"]) for _, _, part in parts}
    if len(sets) > 1:
        raise DatasetError(
            f"{path}: the points hold different path features ({sorted(sets)} per path); "
            "read them apart"
        )
    names = list(parts[0][0])
    columns = {
        name: np.concatenate([np.full(len(part), coords[name]) for coords, _, part in parts])
        for name in names
    }
    first = parts[0][2]
    own = [k for k in first.arrays() if k not in first.columns and k not in BEHAVIOUR_FIELDS]
    merged: dict[str, Any] = {
        k: np.concatenate([part.arrays()[k] for _, _, part in parts]) for k in own
    }
    # a point made before the fields existed fills its rows
    merged.update(
        _behaviour(
            [
                (
                    {n: getattr(part, n) for n in BEHAVIOUR_FIELDS if getattr(part, n) is not None},
                    len(part),
                )
                for _, _, part in parts
            ]
        )
    )
    metadata = dict(first.metadata)
    metadata.update(
        source=str(path),
        points=[
            {"point": coords, "dir": where, "rows": len(part)} for coords, where, part in parts
        ],
        sources=[s for _, _, part in parts for s in part.metadata["sources"]],
        from_cache=all(part.metadata["from_cache"] for _, _, part in parts),
    )
    return TransitionArrays(**merged, metadata=metadata, columns=columns)
