"""The routing decisions of one seed's simulation as a Gymnasium episode.

This is the simulator itself (:class:`~fusion.sim.engine.SimulationEngine`), driven from
outside: :meth:`EONRoutingEnv.reset` starts a seed's run and stops at its first arrival,
:meth:`EONRoutingEnv.step` carries out the agent's path and runs on to the next arrival. One
episode is one seed's run; it is truncated after the last request (the request budget ends
the run, not a terminal state of the network: as ``fusion export --format npz`` marks each
shard's last transition a timeout, not a terminal).

- Observation: the array view's vector (:func:`fusion.storage.observation.observation`),
  ``5 + FK`` float32 in upstream FUSION's order, F the path features of ``[dataset_logging]
  path_features`` (named by :attr:`EONRoutingEnv.observation_names`); the bounds are each
  feature's range in the record's declaration (:mod:`fusion.config.features`).
- Action: ``Discrete(K + 1)``, the block action's environment encoding
  (:mod:`fusion.datasets.actions`); ``0 .. K-1`` route on that path, ``K`` blocks. Legal actions
  are ``info["action_mask"]`` (K + 1 bools, also :meth:`EONRoutingEnv.action_masks` for
  sb3-contrib's MaskablePPO): the feasible paths, and ``K`` only when no path is feasible, so
  a logged action ``-1`` is action ``K``. An illegal action blocks the request
  (``info["legal"]`` is false).
- Reward: as logged, +1 when the request is routed, -1 when it is blocked.

A policy of the package drives it through :attr:`EONRoutingEnv.state` (the logged state dict):

    >>> from fusion.sim.policies import KSPFFPolicy
    >>> env = EONRoutingEnv(overrides={"general_settings": {"num_requests": 200}})
    >>> obs, info = env.reset(seed=3)
    >>> done, total = False, 0.0
    >>> while not done:
    ...     path = KSPFFPolicy().select_path(env.state, info["action_mask"][:-1])
    ...     obs, reward, terminated, done, info = env.step(path if path >= 0 else env.k_paths)
    ...     total += reward
    >>> info["stats"]["requests"], total == 200 - 2 * info["stats"]["blocked"]
    (200, True)
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import gymnasium
import numpy as np
from gymnasium import spaces

from fusion.config.config import (
    MAX_SEED,
    SECTION_ALIASES,
    SECTIONS,
    Config,
    config_from_dict,
    key_field,
    load_config,
    section_name,
)
from fusion.config.features import feature_bounds, path_features
from fusion.datasets.actions import env_action_count, env_mask, logged_action
from fusion.errors import ConfigError
from fusion.sim.engine import Decision, SimulationEngine
from fusion.sim.scenario import build_scenario
from fusion.storage.observation import STATE_FEATURES, observation, observation_names

ENV_ID = "fusion/EONRouting-v0"

ConfigLike = Config | str | os.PathLike[str] | Mapping[str, Mapping[str, Any]] | None


def _resolve(
    config: ConfigLike = None, overrides: Mapping[str, Mapping[str, Any]] | None = None
) -> Config:
    """The config given, as it is (logging settings included), with ``overrides`` applied.

    :raises ConfigError: naming the parameter (``config`` or ``overrides``), the section and
        key, and what was expected.
    """
    if isinstance(config, Config):
        resolved = config
    elif isinstance(config, Mapping):
        _check_sections("config", config)
        try:
            resolved = config_from_dict(config, "config")
        except ConfigError:
            raise
        except (TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"config: {exc}") from None
    elif config is None or isinstance(config, (str, os.PathLike)):
        resolved = load_config(config)
    else:
        raise ConfigError(
            f"config: expected a Config, an INI path, a preset's name, a dict of sections "
            f"({_SHAPE}) or None, got {type(config).__name__} {config!r:.60}"
        )
    if overrides is None:
        return resolved
    if not isinstance(overrides, Mapping):
        raise ConfigError(
            f"overrides: expected a dict of sections ({_SHAPE}), got "
            f"{type(overrides).__name__} {overrides!r:.60}"
        )
    _check_sections("overrides", overrides)
    for section, changes in overrides.items():
        try:
            resolved = resolved.replace(section, **changes)
        except ConfigError as exc:
            raise ConfigError(f"overrides: {exc}") from None
    return resolved


#: The shape of a ``config`` or ``overrides`` dict, shown in errors.
_SHAPE = '{"general_settings": {"num_requests": 500}}'


def _check_sections(parameter: str, sections: Mapping[Any, Any]) -> None:
    """Refuse a ``config`` / ``overrides`` dict that is not ``{section: {key: value}}`` with
    known sections (upstream's aliases taken) and keys, naming the parameter.

    :raises ConfigError: naming the parameter, the section or key, and what was expected.
    """
    for section, keys in sections.items():
        where = f"{parameter}[{section!r}]"
        if not isinstance(section, str):
            raise ConfigError(f"{where}: a section name must be a str, as in {_SHAPE}")
        if "." in section and section.split(".", 1)[0] in SECTIONS | SECTION_ALIASES.keys():
            raise ConfigError(
                f"{where}: a section name, not SECTION.KEY: write it as "
                f'{{"{section.split(".", 1)[0]}": {{"{section.split(".", 1)[1]}": ...}}}}'
            )
        section_name(parameter, section)
        if not isinstance(keys, Mapping):
            raise ConfigError(
                f"{where}: expected a dict of keys and values, as in {_SHAPE}, got "
                f"{type(keys).__name__} {keys!r:.60}"
            )
        for key in keys:
            if not isinstance(key, str):
                raise ConfigError(f"{where}: a key must be a str, got {key!r:.60}")
            key_field(parameter, section, key)


def config_of(
    config: ConfigLike = None, overrides: Mapping[str, Mapping[str, Any]] | None = None
) -> Config:
    """The config an environment runs: a :class:`Config`, an INI path, a dict of sections
    (as a manifest records it) or ``None`` (the embedded default), with ``overrides`` applied.

    :param config: The config.
    :param overrides: ``{section: {key: value}}`` changes.
    """
    # The agent is the policy (the behaviour policy runs the warm-up only), no shard is written.
    return _resolve(config, overrides).replace("dataset_logging", log_offline_dataset=False)


def warmup_epsilon(config: Config) -> float:
    """The epsilon-mix of the behaviour policy during a run's warm-up: ``epsilon_mix`` when the
    config logs (as ``fusion run`` does then), 0 when it does not.

    :param config: The config as given (before :func:`config_of` turns logging off).

        >>> from fusion.config.config import load_config
        >>> warmup_epsilon(load_config()), warmup_epsilon(config_of(None))
        (0.1, 0.0)
    """
    return config.dataset.epsilon_mix if config.dataset.log_offline_dataset else 0.0


def _bounds(config: Config, num_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """Each observation value's bounds: every feature's range in the declaration
    (:func:`~fusion.config.features.feature_bounds`), laid out as an observation is
    (:func:`~fusion.storage.observation.observation`: a state whose K paths all sit at the
    bound); an unbounded high is float32's largest value."""
    features = path_features(config.dataset.path_features)
    sizes = {"nodes": num_nodes, "slots": config.topology.c_band}
    k = config.general.k_paths
    sides = []
    for state, path in zip(
        feature_bounds(STATE_FEATURES, **sizes), feature_bounds(features, **sizes), strict=True
    ):
        bound: dict[str, Any] = dict(zip(STATE_FEATURES, state, strict=True))
        bound["paths"] = [dict(zip(features, path, strict=True))] * k
        sides.append(observation(bound, k, features))
    low, high = sides
    return low, np.minimum(high, np.finfo(np.float32).max)


#: Unseeded resets draw their simulation seed from ``HELD_OUT_SEEDS`` (never one of the config's
#: seeds): a dataset swept with seeds below it is never replayed by an agent's training.
HELD_OUT_SEEDS = (2**30, MAX_SEED)


class EONRoutingEnv(gymnasium.Env[np.ndarray, np.int64]):
    """Route each request of one seed's simulation: a Gymnasium environment.

    :param config: A :class:`Config`, an INI path, a preset's name (``deeprmsa-nsfnet``), a
        dict of sections, or ``None`` for the embedded default.
    :param overrides: ``{section: {key: value}}`` applied on top (e.g. ``num_requests``).

    ``reset(seed=N)`` runs simulation seed N (the same traffic as ``fusion run`` with that
    seed) and seeds the environment's generator; ``reset()`` without a seed draws the
    simulation seed from that generator in :data:`HELD_OUT_SEEDS` (``2**30`` and up), never
    one of the config's seeds: an agent trained on the environment never replays the traffic
    of a dataset swept with the same config (nor of any sweep with seeds below ``2**30``).
    ``warmup_requests`` run first as the logged run ran them (the behaviour policy, with its
    ``epsilon_mix`` when the config logs), so an episode starts from the network the log's
    first state saw; ``info["request_id"]`` counts from there, as the log's ``meta.request_id``.
    """

    metadata: dict[str, Any] = {"render_modes": []}  # noqa: RUF012 (Gymnasium's class attribute)

    def __init__(
        self,
        config: ConfigLike = None,
        overrides: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        given = _resolve(config, overrides)
        self._warmup_epsilon = warmup_epsilon(given)
        self._warmup = given.general.warmup_requests
        self.config = given.replace("dataset_logging", log_offline_dataset=False)
        self.k_paths = self.config.general.k_paths
        self.path_features = path_features(self.config.dataset.path_features)
        #: What each observation value is (the array view's ``observation_names``).
        self.observation_names = observation_names(self.k_paths, self.path_features)
        num_nodes = build_scenario(self.config).topology.num_nodes  # checks the keys too
        low, high = _bounds(self.config, num_nodes)
        self._size = len(low)
        self.observation_space = spaces.Box(low, high, dtype=np.float32)
        self.action_space = spaces.Discrete(env_action_count(self.k_paths))
        self.engine: SimulationEngine | None = None
        self.sim_seed: int | None = None
        self._decision: Decision | None = None
        self._legal = [False] * env_action_count(self.k_paths)

    @property
    def state(self) -> dict[str, Any]:
        """The current request's state dict, as a shard logs it."""
        if self._decision is None:
            raise RuntimeError("no request is waiting: call reset() first")
        return self._decision.state

    def action_masks(self) -> np.ndarray:
        """The legal actions now (K + 1 bools), the method MaskablePPO calls."""
        return np.array(self._legal, dtype=bool)

    def _observe(self) -> tuple[np.ndarray, dict[str, Any]]:
        decision = self._decision
        if decision is None:
            self._legal = env_mask([False] * self.k_paths)  # the run is over: block only
            return np.zeros(self._size, dtype=np.float32), {"action_mask": self.action_masks()}
        legal = self._legal = env_mask(decision.mask)  # (a list: read per step, never shared)
        return observation(decision.state, self.k_paths, self.path_features), {
            "action_mask": np.array(legal, dtype=bool),
            "request_id": decision.request - self._warmup,  # as the log's meta.request_id
        }

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start a seed's run; return its first request's observation and info.

        :param seed: The simulation seed (default: one drawn in :data:`HELD_OUT_SEEDS`).
        :param options: None are defined (a key given is refused, not ignored).
        :raises ValueError: naming the options given.
        """
        if options:
            raise ValueError(f"reset() takes no options, got {sorted(options)}")
        super().reset(seed=seed)
        if seed is not None:
            self.sim_seed = seed
        else:
            own = set(self.config.general.seeds)
            low, high = HELD_OUT_SEEDS
            self.sim_seed = int(self.np_random.integers(low, high + 1))
            while self.sim_seed in own:
                self.sim_seed = int(self.np_random.integers(low, high + 1))
        # the env reads every state (the observation): built with the mask, in one pass
        # its warm-up is the logged run's: the behaviour policy with the log's epsilon-mix
        self.engine = SimulationEngine(
            self.config, self.sim_seed, eager_state=True, epsilon=self._warmup_epsilon
        )
        self._decision = self.engine.next_decision()
        obs, info = self._observe()
        info["seed"] = self.sim_seed
        return obs, info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Route (or block) the waiting request and run on to the next one.

        :param action: ``0 .. K-1`` a path, ``K`` block.
        """
        if self.engine is None or self._decision is None:
            raise RuntimeError("the episode is over (or not started): call reset()")
        if action.__class__ is not int:  # (a plain int is the common case: no checks)
            if isinstance(action, np.ndarray) and action.shape == ():
                action = action.item()
            if isinstance(action, (bool, np.bool_)) or not isinstance(action, (int, np.integer)):
                raise ValueError(
                    f"action must be an integer in 0 .. {self.k_paths}, got {action!r} "
                    f"({type(action).__name__})"
                )
        choice = int(action)
        if not 0 <= choice <= self.k_paths:
            raise ValueError(f"action must lie in 0 .. {self.k_paths}, got {action!r}")
        legal = self._legal[choice]
        decision = self._decision
        routed = self.engine.decide(decision, logged_action(choice, self.k_paths))
        reward = 1.0 if routed else -1.0
        self._decision = self.engine.next_decision()
        truncated = self._decision is None
        obs, info = self._observe()
        info["legal"] = legal
        info["routed"] = routed
        if truncated:
            info["stats"] = self.engine.stats()
        return obs, reward, False, truncated, info
