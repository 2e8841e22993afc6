"""Masked behaviour cloning in numpy: a small MLP that imitates the logging policy.

The model maps an observation (:mod:`fusion.storage.observation`) to one logit per path;
infeasible paths are masked out before the softmax, so the policy can only choose paths the
simulator says are feasible (the mask is part of the data, not something the model must
learn). Blocked requests (action -1, no feasible path) carry no decision and are left out.
Training is Adam on the masked cross-entropy, with minibatches from
:class:`~fusion.datasets.sampler.MinibatchSampler`, so a run is a function of the data and
the seed. :class:`BCPolicy` runs a saved model inside the simulator.

    >>> import numpy as np
    >>> from fusion.storage.observation import observation_size
    >>> rng = np.random.default_rng(0)
    >>> obs = rng.normal(size=(400, observation_size(3))).astype(np.float32)
    >>> masks = rng.random((400, 3)) < 0.7
    >>> masks[:, 2] = True
    >>> first = masks.argmax(axis=1)
    >>> model = train_bc(obs, first, masks, epochs=30, seed=0)
    >>> float((model.act(obs, masks) == first).mean()) > 0.95
    True
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fusion.config.config import Config
from fusion.datasets.actions import BLOCKED
from fusion.datasets.sampler import MinibatchSampler
from fusion.rl.model_file import TrainedOn, read_trained_on, write_model
from fusion.sim.policies import PathPolicy
from fusion.storage.observation import observation, path_features_of

_MASKED = -1e9
_WEIGHTS = ("w1", "b1", "w2", "b2", "mean", "scale")


@dataclass
class BCModel:
    """A one-hidden-layer MLP over standardised observations.

    :param w1: ``(F, H)`` weights.
    :param b1: ``(H,)`` biases.
    :param w2: ``(H, K)`` weights.
    :param b2: ``(K,)`` biases.
    :param mean: ``(F,)`` feature means of the training data.
    :param scale: ``(F,)`` feature standard deviations (1 where a feature is constant).
    :param trained_on: K, features and scenario of the training data (default: from the
        weights' shapes, no scenario).
    """

    w1: np.ndarray
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    trained_on: TrainedOn | None = None

    def __post_init__(self) -> None:
        if self.trained_on is None:
            k = int(self.w2.shape[1])
            self.trained_on = TrainedOn(k, path_features_of(int(self.w1.shape[0]), k))

    @property
    def path_features(self) -> tuple[str, ...]:
        """The path features of its observations."""
        assert self.trained_on is not None
        return self.trained_on.path_features

    @property
    def k_paths(self) -> int:
        """K, the number of paths the model scores."""
        return int(self.w2.shape[1])

    def logits(self, observations: np.ndarray) -> np.ndarray:
        """One score per path, ``(N, K)``.

        :param observations: ``(N, F)`` observations.
        """
        hidden = np.maximum((observations - self.mean) / self.scale @ self.w1 + self.b1, 0.0)
        return np.asarray(hidden @ self.w2 + self.b2)

    def act(self, observations: np.ndarray, masks: np.ndarray) -> np.ndarray:
        """The best feasible path per row, -1 where no path is feasible.

        :param observations: ``(N, F)`` observations.
        :param masks: ``(N, K)`` feasibility.
        """
        scores = np.where(masks, self.logits(observations), -np.inf)
        return np.where(masks.any(axis=1), scores.argmax(axis=1), BLOCKED)

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> None:
        """Write the weights to an ``.npz`` file (atomically).

        :param path: The file.
        :param overwrite: Replace an existing file that belongs to no dataset or study.
        """
        assert self.trained_on is not None
        weights = {name: getattr(self, name) for name in _WEIGHTS}
        write_model(path, "bc", weights, self.trained_on, overwrite=overwrite)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> BCModel:
        """Read weights written by :meth:`save`.

        :param path: The file.
        """
        with np.load(Path(path), allow_pickle=False) as npz:
            weights = {name: npz[name] for name in _WEIGHTS}
            k = int(weights["w2"].shape[1])
            on = read_trained_on(npz, k) if "trained_on" in npz.files else None
            return cls(**weights, trained_on=on)


def _masked_softmax(logits: np.ndarray, masks: np.ndarray) -> np.ndarray:
    scores = np.where(masks, logits, _MASKED)
    scores -= scores.max(axis=1, keepdims=True)
    weights = np.exp(scores) * masks
    return np.asarray(weights / weights.sum(axis=1, keepdims=True))


def train_bc(
    observations: np.ndarray,
    actions: np.ndarray,
    masks: np.ndarray,
    *,
    hidden: int = 64,
    epochs: int = 5,
    batch_size: int = 256,
    learning_rate: float = 3e-3,
    seed: int = 0,
    trained_on: TrainedOn | None = None,
) -> BCModel:
    """Fit a :class:`BCModel` to the decisions in the data (rows with ``action >= 0``).

    :param observations: ``(N, F)`` float observations.
    :param actions: ``(N,)`` chosen path indices (-1 rows are skipped).
    :param masks: ``(N, K)`` feasibility; every chosen action must be feasible.
    :param hidden: Hidden units.
    :param epochs: Passes over the data.
    :param batch_size: Rows per Adam step.
    :param learning_rate: Adam's step size.
    :param seed: Seeds the initial weights and the minibatch order.
    :param trained_on: What the data is (default: from the shapes, no scenario).
    :raises ValueError: when there is no decision to learn from or an action is infeasible.
    """
    for name, value, low in (
        ("hidden", hidden, 1),
        ("epochs", epochs, 1),
        ("batch_size", batch_size, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if not (isinstance(learning_rate, (int, float)) and 0 < learning_rate < float("inf")):
        raise ValueError(f"learning_rate must be a finite number > 0, got {learning_rate!r}")
    decided = actions >= 0
    x = np.asarray(observations[decided], dtype=np.float64)
    y = np.asarray(actions[decided], dtype=np.int64)
    m = np.asarray(masks[decided], dtype=bool)
    if len(y) == 0:
        raise ValueError("no decisions to learn from: every action is -1 (blocked)")
    if not m[np.arange(len(y)), y].all():
        raise ValueError("an action is not feasible under its mask; the data is inconsistent")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    features, k = x.shape[1], m.shape[1]
    mean = x.mean(axis=0)
    scale = np.where(x.std(axis=0) > 1e-9, x.std(axis=0), 1.0)
    params = {
        "w1": rng.normal(0.0, np.sqrt(2.0 / features), (features, hidden)),
        "b1": np.zeros(hidden),
        "w2": rng.normal(0.0, np.sqrt(1.0 / hidden), (hidden, k)),
        "b2": np.zeros(k),
    }
    moments = {name: (np.zeros_like(p), np.zeros_like(p)) for name, p in params.items()}
    z = (x - mean) / scale
    sampler = MinibatchSampler(len(y), batch_size, seed)
    step = 0
    for epoch in range(epochs):
        for rows in sampler.epoch(epoch):
            step += 1
            grads = _gradients(params, z[rows], y[rows], m[rows])
            for name, grad in grads.items():
                first, second = moments[name]
                first *= 0.9
                first += 0.1 * grad
                second *= 0.999
                second += 0.001 * grad * grad
                corrected = first / (1 - 0.9**step)
                params[name] -= (
                    learning_rate * corrected / (np.sqrt(second / (1 - 0.999**step)) + 1e-8)
                )
    return BCModel(
        **{name: p.astype(np.float32) for name, p in params.items()},
        mean=mean.astype(np.float32),
        scale=scale.astype(np.float32),
        trained_on=trained_on,
    )


def _gradients(
    params: Mapping[str, np.ndarray], z: np.ndarray, y: np.ndarray, m: np.ndarray
) -> dict[str, np.ndarray]:
    """Gradients of the mean masked cross-entropy."""
    pre = z @ params["w1"] + params["b1"]
    hidden = np.maximum(pre, 0.0)
    probs = _masked_softmax(hidden @ params["w2"] + params["b2"], m)
    probs[np.arange(len(y)), y] -= 1.0
    d_logits = probs / len(y)
    d_hidden = (d_logits @ params["w2"].T) * (pre > 0)
    return {
        "w2": hidden.T @ d_logits,
        "b2": d_logits.sum(axis=0),
        "w1": z.T @ d_hidden,
        "b1": d_hidden.sum(axis=0),
    }


class BCPolicy(PathPolicy):
    """A trained :class:`BCModel` as a simulator policy: feasible paths ranked by its logits.

    :param model: The model, or the path of its saved weights.
    """

    name = "bc"

    def __init__(self, model: BCModel | str | os.PathLike[str]) -> None:
        self.model = model if isinstance(model, BCModel) else BCModel.load(model)

    def check_config(self, config: Config) -> None:
        assert self.model.trained_on is not None
        self.model.trained_on.check(config, "the BC model")

    def rank(self, state: Mapping[str, Any], action_mask: Sequence[bool]) -> list[int]:
        feasible = [i for i, ok in enumerate(action_mask) if ok]
        if len(feasible) < 2:
            return feasible
        obs = observation(state, self.model.k_paths, self.model.path_features)
        scores = self.model.logits(obs[None, :])[0]
        return sorted(feasible, key=lambda i: (-scores[i], i))


def agreement(
    model: BCModel, observations: np.ndarray, masks: np.ndarray, targets: np.ndarray
) -> float:
    """Share of decisions (rows with a feasible path) where the model picks ``targets``.

    :param model: The model.
    :param observations: ``(N, F)`` observations.
    :param masks: ``(N, K)`` feasibility.
    :param targets: ``(N,)`` the reference choices (e.g. logged actions, or KSP-FF's).
    """
    decided = masks.any(axis=1)
    if not decided.any():
        return float("nan")
    chosen = model.act(observations[decided], masks[decided])
    return float((chosen == targets[decided]).mean())
