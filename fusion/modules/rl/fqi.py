"""Masked fitted-Q iteration: an offline-RL learner over logged transitions.

Q(s, a) is one gradient-boosted regressor (scikit-learn's ``HistGradientBoostingRegressor``)
over the features of the state and of the chosen action (:func:`action_features`): the
request, the chosen path's five features and where they stand among the feasible paths
(extra hops over the fewest, free slots short of the most), the action index and how many
paths are feasible. Action ``K`` is "block", legal only when no path is.

Training uses the logged transitions only. Iteration 0 regresses the behaviour's discounted
return (``init="returns"``: Monte-Carlo, a whole seed's horizon in one fit) or the reward
(``init="reward"``); each further iteration regresses the target
``r + gamma * max over the legal actions of s' of Q(s', a')``, where the legal next actions
are the next transition's mask (block only when no path is feasible): the max never
looks at a path the simulator says is infeasible. The model saves to one ``.npz`` file
(the trees as flat arrays, no pickle) and runs without scikit-learn as :class:`FQIPolicy`.

    >>> rng = np.random.default_rng(0)
    >>> n, k = 600, 2
    >>> masks = np.ones((n, k), bool)
    >>> obs = rng.integers(1, 4, size=(n, 5 + 5 * k)).astype(np.float32)
    >>> actions = rng.integers(0, k, size=n)
    >>> rewards = np.where(actions == 1, 1.0, -1.0).astype(np.float32)  # path 1 pays
    >>> dones = np.zeros(n, bool); dones[-1] = True
    >>> model = train_fqi(obs, actions, rewards, masks, dones, gamma=0.5, iterations=2)
    >>> model.act(obs[:5], masks[:5]).tolist()
    [1, 1, 1, 1, 1]
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fusion.modules.rl.features import PATH_FEATURES, STATE_FEATURES, observation
from fusion.modules.rl.policies import PathPolicy
from fusion.optional import require
from fusion.reporting.atomic import atomic_output

#: The columns of :func:`action_features`, in order.
ACTION_FEATURES = (
    *STATE_FEATURES,
    *(f"chosen.{name}" for name in PATH_FEATURES),
    "action",
    "feasible_paths",
    "extra_hops",
    "slots_short_of_most",
)
_HOPS = PATH_FEATURES.index("path_hops")
_CHUNK = 4096  # rows per tree walk: (rows x trees) index arrays stay small
_RESIDUAL = PATH_FEATURES.index("min_residual_slots")


def action_features(observations: np.ndarray, masks: np.ndarray, action: int) -> np.ndarray:
    """The regressor's input for taking ``action`` in each row: ``(N, len(ACTION_FEATURES))``.

    :param observations: ``(N, 5 + 5K)`` observations.
    :param masks: ``(N, K)`` feasibility.
    :param action: ``0 .. K-1`` a path, ``K`` block (its path columns are zeros).
    """
    n, k = masks.shape
    state = observations[:, : len(STATE_FEATURES)]
    paths = observations[:, len(STATE_FEATURES) :].reshape(n, k, len(PATH_FEATURES))
    feasible = masks.sum(axis=1, keepdims=True)
    out = np.zeros((n, len(ACTION_FEATURES)), dtype=np.float32)
    out[:, : len(STATE_FEATURES)] = state
    at = len(STATE_FEATURES)
    out[:, at + len(PATH_FEATURES)] = action
    out[:, at + len(PATH_FEATURES) + 1] = feasible[:, 0]
    if action < k:
        chosen = paths[:, action]
        out[:, at : at + len(PATH_FEATURES)] = chosen
        fewest = np.where(masks, paths[:, :, _HOPS], np.inf).min(axis=1)
        most = np.where(masks, paths[:, :, _RESIDUAL], -np.inf).max(axis=1)
        any_ok = feasible[:, 0] > 0
        out[:, -2] = np.where(any_ok, chosen[:, _HOPS] - np.where(any_ok, fewest, 0), 0)
        out[:, -1] = np.where(any_ok, np.where(any_ok, most, 0) - chosen[:, _RESIDUAL], 0)
    return out


@dataclass
class FQIModel:
    """The fitted Q-function as flat tree arrays (every tree's nodes back to back).

    :param k_paths: K.
    :param baseline: The regressor's constant term.
    :param roots: ``(T,)`` each tree's root node.
    :param feature: Per node, the column it splits on.
    :param threshold: Per node, go left when the value is ``<=`` this.
    :param left: Per node, the left child (absolute index).
    :param right: Per node, the right child.
    :param value: Per node, the leaf's contribution.
    :param is_leaf: Per node.
    :param info: Training figures (gamma, iterations, rows, ...).
    """

    k_paths: int
    baseline: float
    roots: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray
    is_leaf: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_sklearn(cls, regressor: Any, k_paths: int, info: Mapping[str, Any]) -> FQIModel:
        """Flatten a fitted ``HistGradientBoostingRegressor``.

        :param regressor: The fitted regressor (numeric features, no missing values).
        :param k_paths: K.
        :param info: Training figures to keep with the model.
        """
        parts, roots, offset = [], [], 0
        for (tree,) in regressor._predictors:
            nodes = tree.nodes
            parts.append(nodes)
            roots.append(offset)
            offset += len(nodes)
        nodes = np.concatenate(parts)
        shift = np.repeat(np.array(roots), [len(p) for p in parts])
        return cls(
            k_paths=k_paths,
            baseline=float(np.ravel(regressor._baseline_prediction)[0]),
            roots=np.array(roots, dtype=np.int64),
            feature=nodes["feature_idx"].astype(np.int64),
            threshold=nodes["num_threshold"].astype(np.float64),
            left=nodes["left"].astype(np.int64) + shift,
            right=nodes["right"].astype(np.int64) + shift,
            value=nodes["value"].astype(np.float64),
            is_leaf=nodes["is_leaf"].astype(bool),
            info=dict(info),
        )

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Q for each row of :func:`action_features` output, ``(N,)``.

        :param features: ``(N, len(ACTION_FEATURES))``.
        """
        if len(features) > _CHUNK:
            return np.concatenate(
                [self.predict(features[i : i + _CHUNK]) for i in range(0, len(features), _CHUNK)]
            )
        rows = np.arange(len(features))[:, None]
        node = np.broadcast_to(self.roots, (len(features), len(self.roots))).copy()
        while True:
            inner = ~self.is_leaf[node]
            if not inner.any():
                break
            go_left = features[rows, self.feature[node]] <= self.threshold[node]
            node = np.where(inner, np.where(go_left, self.left[node], self.right[node]), node)
        return np.asarray(self.baseline + self.value[node].sum(axis=1))

    def q_values(self, observations: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """``(N, K + 1)`` Q of every action, ``-inf`` where the action is illegal.

        :param observations: ``(N, 5 + 5K)``.
        :param masks: ``(N, K)`` feasibility.
        """
        legal = np.hstack([masks, ~masks.any(axis=1, keepdims=True)])
        q = np.stack(
            [
                self.predict(action_features(observations, masks, a))
                for a in range(self.k_paths + 1)
            ],
            axis=1,
        )
        return np.where(legal, q, -np.inf)

    def act(self, observations: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """The legal action of highest Q per row, -1 where no path is feasible.

        :param observations: ``(N, 5 + 5K)``.
        :param masks: ``(N, K)`` feasibility.
        """
        best = self.q_values(observations, masks)[:, : self.k_paths].argmax(axis=1)
        return np.where(masks.any(axis=1), best, -1)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the model to one ``.npz`` file (atomically, no pickle).

        :param path: The file.
        """
        import orjson

        arrays = {name: getattr(self, name) for name in _ARRAYS}
        with atomic_output(path) as handle:
            np.savez(
                handle,
                kind=np.array("fqi"),
                k_paths=np.array(self.k_paths),
                baseline=np.array(self.baseline),
                info=np.array(orjson.dumps(self.info).decode()),
                **arrays,
            )

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> FQIModel:
        """Read a model written by :meth:`save`.

        :param path: The file.
        :raises ValueError: naming the file when it is not an FQI model.
        """
        import orjson

        with np.load(Path(path), allow_pickle=False) as npz:
            if "kind" not in npz.files or str(npz["kind"]) != "fqi":
                raise ValueError(f"{path}: not an FQI model file (no kind='fqi')")
            return cls(
                k_paths=int(npz["k_paths"]),
                baseline=float(npz["baseline"]),
                info=orjson.loads(str(npz["info"])),
                **{name: npz[name] for name in _ARRAYS},
            )


_ARRAYS = ("roots", "feature", "threshold", "left", "right", "value", "is_leaf")


def next_masks(masks: np.ndarray, dones: np.ndarray) -> np.ndarray:
    """The mask of each transition's successor (rows in ``(seed, t)`` order, as
    :func:`~fusion.datasets.arrays.to_arrays` gives them); all false after a ``done``.

    :param masks: ``(N, K)``.
    :param dones: ``(N,)`` true at each episode's last transition.
    """
    out = np.zeros_like(masks)
    out[:-1] = masks[1:]
    out[dones] = False
    return out


def discounted_returns(rewards: np.ndarray, dones: np.ndarray, gamma: float) -> np.ndarray:
    """Each transition's discounted return to the end of its episode.

    :param rewards: ``(N,)``.
    :param dones: ``(N,)``.
    :param gamma: The discount.
    """
    out = np.empty(len(rewards), dtype=np.float64)
    running = 0.0
    for i in range(len(rewards) - 1, -1, -1):
        if dones[i]:
            running = 0.0
        running = float(rewards[i]) + gamma * running
        out[i] = running
    return out


def bootstrap_targets(
    rewards: np.ndarray,
    dones: np.ndarray,
    next_q: np.ndarray,
    successor_masks: np.ndarray,
    gamma: float,
) -> np.ndarray:
    """``r + gamma * max over legal a' of Q(s', a')`` (just ``r`` at an episode's end).

    Legal next actions are the successor's feasible paths, and block (column K) only when
    none is feasible: an infeasible path's Q never enters the max.

    :param rewards: ``(N,)``.
    :param dones: ``(N,)``.
    :param next_q: ``(N, K + 1)`` Q of every action in the successor state.
    :param successor_masks: ``(N, K)`` the successor's feasibility (:func:`next_masks`).
    :param gamma: The discount.
    """
    legal = np.hstack([successor_masks, ~successor_masks.any(axis=1, keepdims=True)])
    best = np.where(legal, next_q, -np.inf).max(axis=1)
    return np.asarray(rewards, dtype=np.float64) + gamma * np.where(dones, 0.0, best)


def train_fqi(
    observations: np.ndarray,
    actions: np.ndarray,
    rewards: np.ndarray,
    masks: np.ndarray,
    dones: np.ndarray,
    *,
    next_observations: np.ndarray | None = None,
    gamma: float = 0.99,
    iterations: int = 3,
    init: str = "returns",
    max_trees: int = 100,
    max_leaf_nodes: int = 63,
    min_samples_leaf: int = 200,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
) -> FQIModel:
    """Fit Q by masked fitted-Q iteration on logged transitions.

    :param observations: ``(N, 5 + 5K)``, rows of an episode consecutive, in ``t`` order.
    :param actions: ``(N,)`` logged actions, -1 for blocked (action K).
    :param rewards: ``(N,)``.
    :param masks: ``(N, K)`` logged feasibility.
    :param dones: ``(N,)`` true at each episode's last transition.
    :param next_observations: ``(N, 5 + 5K)`` successors (default: the next row).
    :param gamma: The discount, in [0, 1).
    :param iterations: Regressions (at least 1: the first fits the ``init`` target).
    :param init: ``"returns"`` (the behaviour's discounted return) or ``"reward"``.
    :param max_trees: Boosting rounds per regression.
    :param max_leaf_nodes: Leaves per tree.
    :param min_samples_leaf: Rows per leaf, at least.
    :param seed: The regressor's random state (the fit is deterministic given it).
    :param progress: Called with one line per iteration.
    :raises ValueError: on mismatched shapes or bad settings.
    """
    ensemble = require("sklearn.ensemble", "rl", "fitted-Q iteration")
    n, k = masks.shape
    if not 0.0 <= gamma < 1.0:
        raise ValueError(f"gamma must lie in [0, 1), got {gamma!r}")
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1, got {iterations!r}")
    if init not in ("returns", "reward"):
        raise ValueError(f"init must be 'returns' or 'reward', got {init!r}")
    if not (len(observations) == len(actions) == len(rewards) == len(dones) == n):
        raise ValueError("observations, actions, rewards, masks and dones differ in length")
    if n == 0:
        raise ValueError("no transitions to train on")
    if next_observations is None:
        next_observations = np.zeros_like(observations)
        next_observations[:-1] = observations[1:]
    chosen = np.where(actions < 0, k, actions)
    inputs = np.empty((n, len(ACTION_FEATURES)), dtype=np.float32)
    for a in range(k + 1):
        rows = chosen == a
        inputs[rows] = action_features(observations[rows], masks[rows], a)
    successor_masks = next_masks(masks, dones)
    successor_inputs = [
        action_features(next_observations, successor_masks, a) for a in range(k + 1)
    ]
    target = (
        discounted_returns(rewards, dones, gamma)
        if init == "returns"
        else rewards.astype(np.float64)
    )
    started = time.perf_counter()
    model: FQIModel | None = None
    for iteration in range(iterations):
        regressor = ensemble.HistGradientBoostingRegressor(
            max_iter=max_trees,
            max_leaf_nodes=max_leaf_nodes,
            min_samples_leaf=min_samples_leaf,
            early_stopping=False,
            random_state=seed,
        )
        regressor.fit(inputs, target)
        info = {
            "gamma": gamma,
            "iterations": iteration + 1,
            "init": init,
            "rows": n,
            "max_trees": max_trees,
            "max_leaf_nodes": max_leaf_nodes,
            "min_samples_leaf": min_samples_leaf,
        }
        model = FQIModel.from_sklearn(regressor, k, info)
        fitted = regressor.predict(inputs)
        if progress is not None:
            residual = float(np.sqrt(np.mean((fitted - target) ** 2)))
            progress(
                f"iteration {iteration + 1}/{iterations}: target mean {target.mean():.3f}, "
                f"fit rmse {residual:.3f} ({time.perf_counter() - started:.1f} s)"
            )
        if iteration + 1 < iterations:
            next_q = np.stack([regressor.predict(x) for x in successor_inputs], axis=1)
            target = bootstrap_targets(rewards, dones, next_q, successor_masks, gamma)
    assert model is not None
    return model


class FQIPolicy(PathPolicy):
    """A trained :class:`FQIModel` as a simulator policy: feasible paths by Q, best first.

    :param model: The model, or the path of its file.
    """

    name = "fqi"

    def __init__(self, model: FQIModel | str | os.PathLike[str]) -> None:
        self.model = model if isinstance(model, FQIModel) else FQIModel.load(model)

    def rank(self, state: Mapping[str, Any], action_mask: Sequence[bool]) -> list[int]:
        feasible = [i for i, ok in enumerate(action_mask) if ok]
        if len(feasible) < 2:
            return feasible
        k = self.model.k_paths
        obs = observation(state, k)[None, :]
        mask = np.zeros((1, k), dtype=bool)
        mask[0, : len(action_mask)] = action_mask[:k]
        rows = np.vstack([action_features(obs, mask, a) for a in feasible])
        scores = self.model.predict(rows)
        return [feasible[j] for j in sorted(range(len(feasible)), key=lambda j: (-scores[j], j))]
