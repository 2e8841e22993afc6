"""The policy interface: what a routing policy is given and what it answers.

A policy ranks the feasible candidate paths of a request, best first. Path-only policies
read the logged state and mask (:meth:`PathPolicy.rank`); the engine asks
:meth:`PathPolicy.rank_decision`, which also offers the live spectrum
(:class:`DecisionView`), for the heuristics that weigh it (:mod:`fusion.sim.heuristics`,
one class each, named in :data:`fusion.config.heuristics.HEURISTICS`).
A policy may bring its own spectrum rule (``spectrum``); ``None`` takes the config's
``[policy_settings] spectrum``. What the engine logs of a selection besides the path
(``meta.propensity``, ``meta.explored``) the policy reports as it selects
(:attr:`PathPolicy.propensity`, :attr:`PathPolicy.explored`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np

    from fusion.config.config import Config


class SpectrumView(Protocol):
    """The live spectrum a decision sees (:class:`~fusion.sim.spectrum.SpectrumState`):
    ``slots`` per link, each link's ``free`` bitmask and ``free_count``, and per slot the
    links it is taken on (``usage``, kept for a most-used rule, else ``None``)."""

    @property
    def slots(self) -> int: ...
    @property
    def free(self) -> list[int]: ...
    @property
    def free_count(self) -> list[int]: ...
    @property
    def usage(self) -> list[int] | None: ...


class DecisionView(Protocol):
    """What a policy may read of one arrival (:class:`~fusion.sim.engine.Decision`).

    ``commons[i]``: the slots free on every link of path ``i`` (bitmask); ``needs[i]``: the
    slots the request takes on it, guard band included (0: out of reach); ``links[i]``: its
    link indices; ``lengths``: every link's km.
    """

    @property
    def state(self) -> dict[str, Any]: ...
    @property
    def mask(self) -> list[bool]: ...
    @property
    def commons(self) -> list[int]: ...
    @property
    def needs(self) -> list[int]: ...
    @property
    def links(self) -> list[tuple[int, ...]]: ...
    @property
    def spectrum(self) -> SpectrumView: ...
    @property
    def lengths(self) -> Sequence[float]: ...


class UniformSource(Protocol):
    """What epsilon-mix draws from: a ``numpy.random.Generator``, or any ``random()``."""

    def random(self) -> float:
        """A uniform draw in [0, 1)."""
        ...


class PathPolicy(ABC):
    """Chooses one of K candidate paths for a request."""

    #: The name used in configs (``[policy_settings] policy``).
    name: str = ""
    #: The spectrum rule the engine allocates with (``None``: the config's).
    spectrum: str | None = None
    #: Whether :meth:`rank_decision` reads the decision's state (the default does): the
    #: engine then builds it with the mask in one pass rather than on first read.
    reads_state: bool = True
    #: Whether the policy takes the first feasible path in the candidates' order (KSP-FF's
    #: family): with nothing logged the engine then stops at that path, never looking at the
    #: rest (the policy is not asked).
    first_feasible: bool = False
    #: The probability the policy gave its last selection's first choice (what a logged
    #: transition's ``meta.propensity`` holds): 1.0 for a deterministic policy (and for a block).
    #: A policy that draws at random must set it as it selects, and draw its order uniformly
    #: (each feasible path as likely at every rank, as a shuffle does), so that epsilon-mix's
    #: second choice has that probability too (:class:`~fusion.sim.policies.EpsilonMixPolicy`).
    propensity: float = 1.0
    #: Whether the last selection took epsilon-mix's branch, the second choice (only
    #: :class:`~fusion.sim.policies.EpsilonMixPolicy` sets it; ``meta.explored``).
    explored: bool = False
    #: Whether the policy places the request itself (:meth:`start_slot`) rather than by its
    #: ``spectrum`` rule (a learned policy that weighs placements too); the engine then
    #: restores a failure's lightpaths first-fit and logs the behaviour as ``<name>/chosen``.
    chooses_start: bool = False

    @classmethod
    def for_run(cls, rng: np.random.Generator | None = None) -> PathPolicy:
        """The policy a run uses (what :func:`~fusion.sim.policies.make_policy` builds): a
        policy that draws at random takes the run's seeded generator, the others ignore it.

        :param rng: The run's generator.
        """
        del rng  # a deterministic policy draws nothing
        return cls()

    def check_config(self, config: Config) -> None:
        """Refuse a config this policy cannot run under (a learned policy trained on another
        K, feature set or scenario); heuristics run under any.

        :param config: The config the engine runs.
        :raises ConfigError: naming what differs, both sides.
        """
        del config  # a heuristic reads the live spectrum, whatever the scenario

    @abstractmethod
    def rank(self, state: Mapping[str, Any], action_mask: Sequence[bool]) -> list[int]:
        """Feasible path indices, best first (empty when none is feasible).

        :param state: The request's state (the seed card's keys).
        :param action_mask: One boolean per path: feasible now.
        """

    def rank_decision(self, decision: DecisionView) -> list[int]:
        """The ranking the engine asks for, with the live spectrum at hand (by default
        :meth:`rank` on the decision's state and mask).

        :param decision: The arrival.
        """
        return self.rank(decision.state, decision.mask)

    def start_slot(self, decision: DecisionView, path: int) -> int:
        """Where to put the request on a feasible ``path`` (asked only of a policy that
        :attr:`chooses_start`, after it ranked the decision).

        :param decision: The arrival.
        :param path: The chosen feasible path's index.
        """
        raise NotImplementedError(f"{self.name} places by its spectrum rule")

    def select_path(self, state: Mapping[str, Any], action_mask: Sequence[bool]) -> int:
        """The best feasible path index, or -1 when none is feasible.

        :param state: The request's state.
        :param action_mask: One boolean per path.
        """
        ranking = self.rank(state, action_mask)
        return ranking[0] if ranking else -1

    def select_decision(self, decision: DecisionView) -> int:
        """The best feasible path of a decision, or -1 (what the engine calls).

        :param decision: The arrival.
        """
        ranking = self.rank_decision(decision)
        return ranking[0] if ranking else -1
