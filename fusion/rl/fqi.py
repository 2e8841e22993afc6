"""Masked fitted-Q iteration: an offline-RL learner over logged transitions.

Q(s, a) = V(s) + A(s, a), two gradient-boosted regressors (scikit-learn's
``HistGradientBoostingRegressor``): V over the observation, A over the features of the
state and of the chosen action (:func:`action_features`: the request, the chosen path's five
features and where they stand among the feasible paths, extra hops over the fewest and free
slots short of the most, the action index and how many paths are feasible). Each
regression fits V to the target, then A to what V leaves, on the transitions with a choice
(two or more feasible paths): which path is taken moves the return far less than the
traffic that follows does, and fitting the remainder lets the trees spend their splits on
the choice. A is 0 where at most one action is legal (there Q is V). Action ``K`` is
"block", legal only when no path is.

Training uses the logged transitions only. The first regression fits the behaviour's
discounted return (``init="returns"``: Monte-Carlo, a seed's whole horizon in one fit) or
the reward (``init="reward"``); each further one fits
``r + gamma * max over the legal actions of s' of Q(s', a')``, where the legal next actions
are the next transition's mask (block only when no path is feasible): the max never looks
at a path the simulator says is infeasible (:func:`bootstrap_targets`). The model saves to
one ``.npz`` file (the trees as flat arrays, no pickle) and runs without scikit-learn as
:class:`FQIPolicy`.

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
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fusion.datasets.actions import BLOCKED, env_action_count, env_actions, env_masks
from fusion.optional import require
from fusion.rl.model_file import TrainedOn, read_trained_on, write_model
from fusion.sim.policies import PathPolicy
from fusion.storage.observation import (
    PATH_FEATURES,
    STATE_FEATURES,
    observation,
    path_features_of,
)
from fusion.storage.successors import successors

if TYPE_CHECKING:
    from fusion.config.config import Config
    from fusion.datasets.arrays import TransitionArrays

_RELATIVE = ("action", "feasible_paths", "extra_hops", "slots_short_of_most")
_RELATIVE_EXTENDED = ("extra_slots_needed", "extra_km")
_CHUNK = 4096  # rows per tree walk: (rows x trees) index arrays stay small


def action_feature_names(path_features: Sequence[str] = PATH_FEATURES) -> tuple[str, ...]:
    """The columns of :func:`action_features`, in order: the request, the chosen path's
    features, the action and how many paths are feasible, and where the chosen path stands
    among the feasible ones (extra hops over the fewest, free slots short of the most; with
    the extended features also extra slots over the fewest needed and extra km over the
    shortest).

    :param path_features: The observation's path features.

        >>> action_feature_names()[-4:]
        ('action', 'feasible_paths', 'extra_hops', 'slots_short_of_most')
    """
    extended = "path_slots_needed" in path_features
    return (
        *STATE_FEATURES,
        *(f"chosen.{name}" for name in path_features),
        *_RELATIVE,
        *(_RELATIVE_EXTENDED if extended else ()),
    )


def _gap(
    paths: np.ndarray, masks: np.ndarray, chosen: np.ndarray, column: int, most: bool
) -> np.ndarray:
    """Per row, how far the chosen path's ``column`` is from the best feasible path's (the
    fewest, or with ``most`` the most), 0 where no path is feasible."""
    values = paths[:, :, column]
    fill = -np.inf if most else np.inf
    best = np.where(masks, values, fill)
    best = best.max(axis=1) if most else best.min(axis=1)
    ok = masks.any(axis=1)
    best = np.where(ok, best, 0.0)
    gap = best - chosen[:, column] if most else chosen[:, column] - best
    return np.where(ok, gap, 0.0)


def action_features(
    observations: np.ndarray,
    masks: np.ndarray,
    action: int,
    path_features: Sequence[str] = PATH_FEATURES,
) -> np.ndarray:
    """The regressor's input for taking ``action`` in each row:
    ``(N, len(action_feature_names(path_features)))``.

    :param observations: ``(N, 5 + FK)`` observations.
    :param masks: ``(N, K)`` feasibility.
    :param action: ``0 .. K-1`` a path, ``K`` block (its path columns are zeros).
    :param path_features: The observation's F path features.
    """
    n, k = masks.shape
    width = len(path_features)
    names = action_feature_names(path_features)
    state = observations[:, : len(STATE_FEATURES)]
    paths = observations[:, len(STATE_FEATURES) :].reshape(n, k, width)
    feasible = masks.sum(axis=1)
    out = np.zeros((n, len(names)), dtype=np.float32)
    out[:, : len(STATE_FEATURES)] = state
    at = len(STATE_FEATURES) + width
    out[:, at] = action
    out[:, at + 1] = feasible
    if action < k:
        chosen = paths[:, action]
        out[:, len(STATE_FEATURES) : at] = chosen
        out[:, at + 2] = _gap(paths, masks, chosen, path_features.index("path_hops"), False)
        residual = path_features.index("min_residual_slots")
        out[:, at + 3] = _gap(paths, masks, chosen, residual, True)
        if len(names) > at + 4:
            needed = path_features.index("path_slots_needed")
            out[:, at + 4] = _gap(paths, masks, chosen, needed, False)
            out[:, at + 5] = _gap(paths, masks, chosen, path_features.index("length_km"), False)
    return out


@dataclass
class Trees:
    """A fitted ``HistGradientBoostingRegressor`` as flat arrays (every tree's nodes back to
    back), so a model is plain numbers in a file and predicts without scikit-learn.

    :param baseline: The regressor's constant term.
    :param roots: ``(T,)`` each tree's root node.
    :param feature: Per node, the column it splits on.
    :param threshold: Per node, go left when the value is ``<=`` this.
    :param left: Per node, the left child (absolute index).
    :param right: Per node, the right child.
    :param value: Per node, the leaf's contribution.
    :param is_leaf: Per node.
    """

    baseline: float
    roots: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray
    is_leaf: np.ndarray

    @classmethod
    def from_sklearn(cls, regressor: Any) -> Trees:
        """Flatten a fitted regressor (numeric features, no missing values).

        :param regressor: A fitted ``HistGradientBoostingRegressor``.
        """
        parts = [tree.nodes for (tree,) in regressor._predictors]
        sizes = [len(p) for p in parts]
        roots = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        nodes = np.concatenate(parts)
        shift = np.repeat(roots, sizes)
        return cls(
            baseline=float(np.ravel(regressor._baseline_prediction)[0]),
            roots=roots,
            feature=nodes["feature_idx"].astype(np.int64),
            threshold=nodes["num_threshold"].astype(np.float64),
            left=nodes["left"].astype(np.int64) + shift,
            right=nodes["right"].astype(np.int64) + shift,
            value=nodes["value"].astype(np.float64),
            is_leaf=nodes["is_leaf"].astype(bool),
        )

    def predict(self, features: np.ndarray) -> np.ndarray:
        """The regressor's prediction for each row, ``(N,)`` (equal to scikit-learn's).

        :param features: ``(N, columns)``, the columns the regressor was fitted on.
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

    def arrays(self, prefix: str) -> dict[str, np.ndarray]:
        """The arrays to save, named ``<prefix><field>``.

        :param prefix: E.g. ``"value."``.
        """
        return {prefix + f.name: np.asarray(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_arrays(cls, npz: Mapping[str, np.ndarray], prefix: str) -> Trees:
        """Read what :meth:`arrays` wrote.

        :param npz: The loaded arrays.
        :param prefix: The prefix they were saved with.
        """
        values: dict[str, Any] = {f.name: npz[prefix + f.name] for f in fields(cls)}
        values["baseline"] = float(values["baseline"])
        return cls(**values)


@dataclass
class FQIModel:
    """Q(s, a) = V(s) + A(s, a): a state value over the observation, and an advantage over
    :func:`action_features`, defined where a request has a choice (A is 0 where at most one
    action is legal, so there Q is V: the only action's value).

    :param trained_on: K, the path features and the scenario of the training data.
    :param state_value: V's trees, over the ``5 + FK`` observation.
    :param advantage: A's trees, over :func:`action_feature_names`.
    :param support: ``(K + 1, K)`` the behaviour's support (:func:`behaviour_support`).
    :param min_support: A feasible path is a candidate when its rank's share is at least this
        fraction of the most taken rank's (:func:`supported`).
    :param info: Training figures (gamma, iterations, rows, ...).
    """

    trained_on: TrainedOn
    state_value: Trees
    advantage: Trees
    support: np.ndarray
    min_support: float = 0.1
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def k_paths(self) -> int:
        """K, the paths the model scores."""
        return self.trained_on.k_paths

    @property
    def path_features(self) -> tuple[str, ...]:
        """The path features of its observations."""
        return self.trained_on.path_features

    def advantages(self, observations: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """``(N, K)`` A of every path; ``-inf`` where a path is infeasible or outside the
        behaviour's support, 0 where at most one path is a candidate.

        :param observations: ``(N, 5 + 5K)``.
        :param masks: ``(N, K)`` feasibility.
        """
        allowed = supported(masks, self.support, self.min_support)
        out = np.where(allowed, 0.0, -np.inf)
        choice = allowed.sum(axis=1) >= 2
        if choice.any():
            obs, mask = observations[choice], masks[choice]
            scores = np.stack(
                [
                    self.advantage.predict(action_features(obs, mask, a, self.path_features))
                    for a in range(self.k_paths)
                ],
                axis=1,
            )
            out[choice] = np.where(allowed[choice], scores, -np.inf)
        return out

    def q_values(self, observations: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """``(N, K + 1)`` Q of every action, ``-inf`` where it is illegal or unsupported.

        :param observations: ``(N, 5 + 5K)``.
        :param masks: ``(N, K)`` feasibility.
        """
        block = np.where(env_masks(masks)[:, -1:], 0.0, -np.inf)  # legal only where no path is
        relative = np.hstack([self.advantages(observations, masks), block])
        return self.state_value.predict(observations)[:, None] + relative

    def act(self, observations: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """The legal action of highest Q per row, -1 where no path is feasible.

        :param observations: ``(N, 5 + 5K)``.
        :param masks: ``(N, K)`` feasibility.
        """
        best = self.advantages(observations, masks).argmax(axis=1)
        return np.where(masks.any(axis=1), best, BLOCKED)

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> None:
        """Write the model to one ``.npz`` file (atomically, no pickle).

        :param path: The file.
        :param overwrite: Replace an existing file that belongs to no dataset or study.
        """
        import orjson

        arrays: dict[str, Any] = {
            "info": np.array(orjson.dumps(self.info).decode()),
            "support": self.support,
            "min_support": np.array(self.min_support),
            **self.state_value.arrays("value."),
            **self.advantage.arrays("advantage."),
        }
        write_model(path, "fqi", arrays, self.trained_on, overwrite=overwrite)

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
                trained_on=read_trained_on(
                    npz, int(npz["k_paths"]) if "k_paths" in npz.files else None
                ),
                state_value=Trees.from_arrays(npz, "value."),
                advantage=Trees.from_arrays(npz, "advantage."),
                support=npz["support"],
                min_support=float(npz["min_support"]),
                info=orjson.loads(str(npz["info"])),
            )


def feasible_ranks(masks: np.ndarray) -> np.ndarray:
    """``(N, K)``: each feasible path's place among the feasible paths (0: the first, the one
    KSP-FF takes), -1 where a path is infeasible.

    :param masks: ``(N, K)`` feasibility.
    """
    return np.where(masks, np.cumsum(masks, axis=1) - 1, -1)


def behaviour_support(actions: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """``(K + 1, K)``: of the logged decisions with ``n`` feasible paths, the share that took
    the ``r``-th feasible one (row ``n``, column ``r``).

    :param actions: ``(N,)`` logged actions (-1: blocked).
    :param masks: ``(N, K)`` logged feasibility.
    """
    k = masks.shape[1]
    counts = np.zeros((k + 1, k), dtype=np.float64)
    taken = actions >= 0
    feasible = masks.sum(axis=1)[taken]
    ranks = feasible_ranks(masks)[np.flatnonzero(taken), actions[taken]]
    np.add.at(counts, (feasible, ranks), 1.0)
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)


def supported(masks: np.ndarray, support: np.ndarray, min_support: float) -> np.ndarray:
    """The candidate paths: feasible, and (discrete BCQ's constraint, on the feasible path's
    rank) taken by the behaviour at least ``min_support`` times as often as the most taken
    rank among decisions with as many feasible paths. Where the logs hold no decision with
    that many feasible paths, every feasible path is a candidate.

    A policy that ranks paths the logs never took by an extrapolated Q is what offline RL
    must avoid: KSP-FF with epsilon-mix only ever takes the first or second feasible path.

    :param masks: ``(N, K)`` feasibility.
    :param support: From :func:`behaviour_support`.
    :param min_support: In [0, 1]; 0 keeps every feasible path.
    """
    table = support[masks.sum(axis=1)]  # (N, K): shares by rank for each row's count
    best = table.max(axis=1, keepdims=True)
    ok_rank = (table >= min_support * best) | (best == 0)
    ranks = feasible_ranks(masks)
    rows = np.arange(len(masks))[:, None]
    return masks & ok_rank[rows, np.maximum(ranks, 0)]


def next_masks(masks: np.ndarray, dones: np.ndarray) -> np.ndarray:
    """The mask of each transition's successor (rows in ``(seed, t)`` order, as
    :func:`~fusion.datasets.arrays.to_arrays` gives them); all false after a ``done``.

    :param masks: ``(N, K)``.
    :param dones: ``(N,)`` true at each episode's last transition.
    """
    return successors(masks, dones)


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
    none is feasible: an infeasible path's Q never enters the max. A seed's last transition
    has no logged successor (its run ended by the request budget), so its target is its reward.

    :param rewards: ``(N,)``.
    :param dones: ``(N,)``.
    :param next_q: ``(N, K + 1)`` Q of every action in the successor state.
    :param successor_masks: ``(N, K)`` the successor's feasibility (:func:`next_masks`).
    :param gamma: The discount.
    """
    best = np.where(env_masks(successor_masks), next_q, -np.inf).max(axis=1)
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
    iterations: int = 1,
    init: str = "returns",
    max_trees: int = 100,
    max_leaf_nodes: int = 63,
    min_samples_leaf: int = 200,
    min_support: float = 0.1,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    trained_on: TrainedOn | None = None,
) -> FQIModel:
    """Fit Q by masked fitted-Q iteration on logged transitions.

    :param observations: ``(N, 5 + FK)``, rows of an episode consecutive, in ``t`` order.
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
    :param min_support: The behaviour-support threshold of the policy and of the target's
        max (:func:`supported`; 0: every feasible path).
    :param seed: The regressor's random state (the fit is deterministic given it).
    :param progress: Called with one line per iteration.
    :param trained_on: What the data is (default: K from the masks, the path features from
        the observations' width, no scenario).
    :raises ValueError: on mismatched shapes or bad settings.
    """
    ensemble = require("sklearn.ensemble", "rl", "fitted-Q iteration")
    n, k = masks.shape
    if trained_on is None:
        trained_on = TrainedOn(k, path_features_of(observations.shape[1], k))
    features = trained_on.path_features
    if not 0.0 <= gamma < 1.0:
        raise ValueError(f"gamma must lie in [0, 1), got {gamma!r}")
    if iterations < 1:
        raise ValueError(f"iterations must be at least 1, got {iterations!r}")
    if not 0.0 <= min_support <= 1.0:
        raise ValueError(f"min_support must lie in [0, 1], got {min_support!r}")
    if init not in ("returns", "reward"):
        raise ValueError(f"init must be 'returns' or 'reward', got {init!r}")
    if not (len(observations) == len(actions) == len(rewards) == len(dones) == n):
        raise ValueError("observations, actions, rewards, masks and dones differ in length")
    if n == 0:
        raise ValueError("no transitions to train on")
    if next_observations is None:
        next_observations = successors(observations, dones)
    chosen = env_actions(actions, k)
    inputs = np.empty((n, len(action_feature_names(features))), dtype=np.float32)
    for a in range(env_action_count(k)):
        rows = chosen == a
        inputs[rows] = action_features(observations[rows], masks[rows], a, features)
    successor_masks = next_masks(masks, dones)
    successor_inputs = [
        action_features(next_observations, successor_masks, a, features) for a in range(k)
    ]
    target = (
        discounted_returns(rewards, dones, gamma)
        if init == "returns"
        else rewards.astype(np.float64)
    )
    choice = masks.sum(axis=1) >= 2
    support = behaviour_support(actions, masks)
    next_allowed = supported(successor_masks, support, min_support)
    started = time.perf_counter()
    model: FQIModel | None = None

    def fit(x: np.ndarray, y: np.ndarray) -> Any:
        return ensemble.HistGradientBoostingRegressor(
            max_iter=max_trees,
            max_leaf_nodes=max_leaf_nodes,
            min_samples_leaf=min_samples_leaf,
            early_stopping=False,
            random_state=seed,
        ).fit(x, y)

    for iteration in range(iterations):
        value = fit(observations, target)
        v = value.predict(observations)
        advantage = fit(inputs[choice], target[choice] - v[choice]) if choice.any() else None
        if advantage is None:
            raise ValueError("no transition has two feasible paths: nothing to choose between")
        info = {
            "gamma": gamma,
            "iterations": iteration + 1,
            "init": init,
            "rows": n,
            "rows_with_a_choice": int(choice.sum()),
            "max_trees": max_trees,
            "max_leaf_nodes": max_leaf_nodes,
            "min_samples_leaf": min_samples_leaf,
            "min_support": min_support,
        }
        model = FQIModel(
            trained_on,
            Trees.from_sklearn(value),
            Trees.from_sklearn(advantage),
            support,
            min_support,
            info,
        )
        if progress is not None:
            fitted = v.copy()
            fitted[choice] += advantage.predict(inputs[choice])
            progress(
                f"iteration {iteration + 1}/{iterations}: target mean {target.mean():.3f} "
                f"std {target.std():.3f}, fit rmse V {np.sqrt(np.mean((v - target) ** 2)):.3f}"
                f" V+A {np.sqrt(np.mean((fitted - target) ** 2)):.3f} "
                f"({time.perf_counter() - started:.1f} s)"
            )
        if iteration + 1 < iterations:
            next_q = np.repeat(
                value.predict(next_observations)[:, None], env_action_count(k), axis=1
            )
            next_choice = next_allowed.sum(axis=1) >= 2
            for a in range(k):
                rows = next_choice & next_allowed[:, a]
                next_q[rows, a] += advantage.predict(successor_inputs[a][rows])
            next_q[:, :k][successor_masks & ~next_allowed] = -np.inf  # outside the support
            target = bootstrap_targets(rewards, dones, next_q, successor_masks, gamma)
    assert model is not None
    return model


def train_fqi_on(data: TransitionArrays, **options: Any) -> FQIModel:
    """:func:`train_fqi` on the array view of a dataset, merged file or study.

    :param data: From :func:`~fusion.datasets.arrays.to_arrays`.
    :param options: :func:`train_fqi`'s settings (``gamma``, ``iterations``, ...).
    """
    return train_fqi(
        data.observations,
        data.actions,
        data.rewards,
        data.action_masks,
        data.dones,
        next_observations=data.next_observations,
        trained_on=TrainedOn.of_data(data.metadata),
        **options,
    )


class FQIPolicy(PathPolicy):
    """A trained :class:`FQIModel` as a simulator policy: feasible paths by Q, best first
    (by A, which orders them as Q does); paths outside the behaviour's support come last.

    :param model: The model, or the path of its file.
    """

    name = "fqi"

    def __init__(self, model: FQIModel | str | os.PathLike[str]) -> None:
        self.model = model if isinstance(model, FQIModel) else FQIModel.load(model)

    def check_config(self, config: Config) -> None:
        self.model.trained_on.check(config, "the FQI model")

    def rank(self, state: Mapping[str, Any], action_mask: Sequence[bool]) -> list[int]:
        feasible = [i for i, ok in enumerate(action_mask) if ok]
        if len(feasible) < 2:
            return feasible
        k = self.model.k_paths
        obs = observation(state, k, self.model.path_features)[None, :]
        mask = np.zeros((1, k), dtype=bool)
        mask[0, : len(action_mask)] = action_mask[:k]
        scores = self.model.advantages(obs, mask)[0]
        return sorted(feasible, key=lambda i: (-scores[i], i))
