"""Afterstate values: per-link prices of spectrum, learned from logged transitions.

A routing decision moves the network to a known *afterstate*: the spectrum right after the
request's slots are taken (before the next departures and arrival, which no decision
controls). This learner fits the value of afterstates, ``V(x) = w . phi(x)``, from logs
recorded with ``[dataset_logging] log_spectrum = true``, and the policy routes each request on
the candidate path whose afterstate is worth most, the candidates being a support heuristic's
first choices (:class:`AfterstatePolicy`). ``phi`` sums, over the links, features of each
link's free spectrum (:data:`LINK_FEATURES`: hat functions of its free share, of its longest
block's share and of how high its highest used slot sits, and its share of free blocks), with
one weight per feature shared by every link, plus a per-link weight of the free share and a
constant. The value of a link is
so a learned, concave-or-not, piecewise-linear function of how much of it is free and how
whole: the policy reads as learned link prices that rise as a link fills, and a path costs
what its slots take from the value of the links it crosses. With ``placements`` the policy
weighs where on the path to put the slots as well (first-, last- or best-fit, whichever
leaves the afterstate worth most): a choice the features see, as a placement changes a link's
longest block, its free blocks and its highest slot in use.

Fitting is LSTD(0) on the logged sequence of each seed: ``V(x_t) = r_{t+1} + gamma
V(x_{t+1})``, the next request's reward (+1 routed, -1 blocked) plus the discounted value of
the afterstate that follows, solved in closed form with a small ridge term. The afterstate of
a logged decision is its logged spectrum with the chosen path's slots taken where they were
(``meta.start_slot``, or first-fit where the record has none); a blocked request leaves the
spectrum as it was. Value estimates of afterstates are far less noisy than Monte-Carlo
returns of (state, action) pairs: which path a decision took moves the next thousand
requests' acceptance by a fraction of a request, and the afterstate carries that choice
explicitly, so the regression does not have to find it in the noise.

    >>> import tempfile, os
    >>> from fusion.config.config import load_config
    >>> from fusion.run.simulation import run_simulation
    >>> d = tempfile.mkdtemp()
    >>> cfg = load_config().replace("general_settings", num_requests=3000)
    >>> cfg = cfg.replace("dataset_logging", log_spectrum="true")
    >>> _ = run_simulation(cfg, 1, dataset_dir=d)
    >>> model = train_afterstate(d, gamma=0.99)
    >>> model.weights.shape, model.trained_on.k_paths
    ((22, 25), 4)
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from fusion.config.vocabulary import POLICY_NAMES
from fusion.datasets.spectrum import logged_spectrum
from fusion.errors import ConfigError
from fusion.rl.model_file import TrainedOn, read_trained_on, scenario_of, write_model
from fusion.sim.policies import make_policy
from fusion.sim.policy import DecisionView, PathPolicy
from fusion.sim.spectrum import block_count, first_fit, longest_run, place
from fusion.storage.loader import load_dataset
from fusion.storage.sources import resolve_parts

if TYPE_CHECKING:
    from fusion.config.config import Config

#: The spectrum rules a policy may weigh its placements among (a most-used placement needs
#: the network's slot usage, which the engine keeps only for a most-used run).
PLACEMENTS = ("first_fit", "last_fit", "best_fit")
#: The figures of one link's free spectrum, each over the link's slot count.
LINK_FIGURES = ("free_slots", "free_blocks", "longest_block", "highest_used")
#: Where the hat functions over a link's figures (shares in [0, 1]) peak.
KNOTS = (0.0, 1 / 64, 1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0)
#: The value's features per link: hats over the free share, over the longest block's share
#: and over how high the highest slot in use sits, and the share of free blocks.
LINK_FEATURES = (
    *(f"free_slots~{k:g}" for k in KNOTS),
    *(f"longest_block~{k:g}" for k in KNOTS),
    *(f"highest_used~{k:g}" for k in KNOTS),
    "free_blocks",
)


def check_placements(placements: Sequence[str]) -> None:
    """Refuse placements that are not distinct rules of :data:`PLACEMENTS`.

    :param placements: Spectrum rules.
    :raises ValueError: naming them and the rules expected.

        >>> check_placements(("first_fit", "most_used"))
        Traceback (most recent call last):
        ...
        ValueError: placements must be distinct rules of ['first_fit', 'last_fit', 'best_fit'], got ['first_fit', 'most_used']
    """
    unknown = any(rule not in PLACEMENTS for rule in placements)
    if unknown or len(set(placements)) != len(placements):
        raise ValueError(
            f"placements must be distinct rules of {list(PLACEMENTS)}, got {list(placements)!r}"
        )


def link_figures(free: int, slots: int) -> tuple[float, float, float, float]:
    """:data:`LINK_FIGURES` of one link: shares of the slot count.

    :param free: The link's free-slot bitmask.
    :param slots: Slots per link.

        >>> link_figures(0b1110_0111, 8)
        (0.75, 0.25, 0.375, 0.625)
    """
    used = ((1 << slots) - 1) ^ free
    return (
        free.bit_count() / slots,
        block_count(free) / slots,
        longest_run(free) / slots,
        used.bit_length() / slots,
    )


def hats(x: np.ndarray) -> np.ndarray:
    """Piecewise-linear hat functions of ``x`` in [0, 1] peaking at :data:`KNOTS` (they sum
    to 1 and reproduce any piecewise-linear function with those knots): ``(..., len(KNOTS))``.

    >>> hats(np.array([0.75])).round(2).tolist()
    [[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.5, 0.5]]
    """
    knots = np.asarray(KNOTS)
    x = np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0)[..., None]
    left = np.concatenate(([knots[0] - 1.0], knots[:-1]))
    right = np.concatenate((knots[1:], [knots[-1] + 1.0]))
    rising = (x - left) / (knots - left)
    falling = (right - x) / (right - knots)
    return np.clip(np.minimum(rising, falling), 0.0, 1.0)


def basis(figures: np.ndarray) -> np.ndarray:
    """:data:`LINK_FEATURES` of links' :data:`LINK_FIGURES`: ``(..., 4)`` -> ``(..., F)``.

    :param figures: ``(..., 4)`` :data:`LINK_FIGURES` per link.
    """
    return np.concatenate(
        [hats(figures[..., 0]), hats(figures[..., 2]), hats(figures[..., 3]), figures[..., 1:2]],
        axis=-1,
    )


def _figures(free: Sequence[int], slots: int) -> np.ndarray:
    return np.array([link_figures(mask, slots) for mask in free])


def afterstate(record: Mapping[str, Any], full: int) -> list[int]:
    """The free spectrum of every link right after a logged decision: the logged spectrum
    (:func:`~fusion.datasets.spectrum.logged_spectrum`) with the chosen path's slots taken at
    ``meta.start_slot``, or where first-fit puts them when the record has none.

    :param record: A transition logged with ``log_spectrum = true``.
    :param full: All slots free (``(1 << slots) - 1``).
    :raises KeyError: when the record holds no spectrum.
    :raises ValueError: naming the record when its path's slots are not free there.
    """
    state = record["state"]
    spectrum = logged_spectrum(state["spectrum"], full.bit_length())
    action = record["action"]
    if action >= 0:
        path = state["paths"][action]
        need = int(path["path_slots_needed"])
        start = record["meta"].get("start_slot", -1)
        if start is None or start < 0:
            start = first_fit(spectrum.common_free(path["links"]), need)
        try:
            spectrum.allocate(path["links"], start, need)
        except ValueError as exc:
            raise ValueError(
                f"seed {record.get('seed')} t {record.get('t')}: path {action}: {exc}"
            ) from None
    return spectrum.free


@dataclass
class AfterstateModel:
    """``V(x) = weights . phi(x) + bias`` over :data:`LINK_FEATURES` of every link.

    :param trained_on: K and the scenario of the training data (no path features: the
        policy reads the live spectrum).
    :param weights: ``(links, len(LINK_FEATURES))``: per link, the weight of each feature.
    :param bias: The constant's weight.
    :param slots: Slots per link.
    :param support_policy: The heuristic whose top choices the policy re-ranks (``""``:
        every feasible path is a candidate).
    :param support: How many of its top choices (epsilon-mix logs the first and second: 2).
    :param info: Training figures.
    :param placements: Spectrum rules among which the policy places the request where the
        afterstate is worth most (``()``: by the support heuristic's rule alone).
    """

    trained_on: TrainedOn
    weights: np.ndarray
    bias: float
    slots: int
    support_policy: str = ""
    support: int = 0
    info: dict[str, Any] = field(default_factory=dict)
    placements: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_placements(self.placements)

    def save(self, path: str | os.PathLike[str], *, overwrite: bool = False) -> None:
        """Write the model to one ``.npz`` file (atomically, no pickle).

        :param path: The file.
        :param overwrite: Replace an existing file that belongs to no dataset or study.
        """
        arrays = {
            "weights": self.weights,
            "bias": np.array(self.bias),
            "slots": np.array(self.slots),
            "link_features": np.array(LINK_FEATURES),
            "support_policy": np.array(self.support_policy),
            "support": np.array(self.support),
            "info": np.array(orjson.dumps(self.info).decode()),
            "placements": np.array(self.placements, dtype=str),
        }
        write_model(path, "afterstate", arrays, self.trained_on, overwrite=overwrite)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> AfterstateModel:
        """Read a model written by :meth:`save`.

        :param path: The file.
        :raises ValueError: naming the file when it is not an afterstate model.
        """
        with np.load(Path(path), allow_pickle=False) as npz:
            if "kind" not in npz.files or str(npz["kind"]) != "afterstate":
                raise ValueError(f"{path}: not an afterstate model file (no kind='afterstate')")
            names = (
                tuple(str(n) for n in npz["link_features"]) if "link_features" in npz.files else ()
            )
            if names != LINK_FEATURES:
                raise ValueError(
                    f"{path}: an afterstate model over {len(names)} link features, this fusion "
                    f"computes {len(LINK_FEATURES)} ({', '.join(LINK_FEATURES)}); train it again"
                )
            placements = (
                tuple(str(r) for r in npz["placements"]) if "placements" in npz.files else ()
            )
            try:
                return cls(
                    read_trained_on(npz),
                    npz["weights"],
                    float(npz["bias"]),
                    int(npz["slots"]),
                    str(npz["support_policy"]),
                    int(npz["support"]),
                    orjson.loads(str(npz["info"])),
                    placements,
                )
            except ValueError as exc:
                raise ValueError(f"{path}: {exc}") from None


def _episodes(
    path: str | os.PathLike[str], points: Mapping[str, Sequence[Any]] | None
) -> Iterable[tuple[tuple[Any, ...], Mapping[str, Any]]]:
    for record in load_dataset(path, points=points):
        key = (orjson.dumps(record.get("point")), record["seed"])
        yield key, record


def _first_manifest(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The manifest of the data (of a study's first point), ``None`` for a lone file."""
    parts = resolve_parts(path)
    return parts[0].resolved.manifest if parts else None


def train_afterstate(
    path: str | os.PathLike[str],
    *,
    gamma: float = 0.99,
    ridge: float = 1e-3,
    points: Mapping[str, Sequence[Any]] | None = None,
    support_policy: str = "",
    support: int = 2,
    placements: Sequence[str] = (),
) -> AfterstateModel:
    """Fit afterstate values by LSTD(0) on a dataset, merged file or study logged with
    ``log_spectrum = true``.

    :param path: What :func:`~fusion.storage.loader.load_dataset` reads.
    :param gamma: The discount, in [0, 1).
    :param ridge: Added to the normal equations' diagonal, times the rows.
    :param points: A study's points to train on (default: all).
    :param support_policy: A heuristic (``[policy_settings] policy``) whose top ``support``
        choices the policy re-ranks, the rest following in its order: the paths the logs of
        an epsilon-mixed heuristic cover (``""``: every feasible path, unconstrained).
    :param support: How many of its choices; at least 1.
    :param placements: Spectrum rules (of :data:`PLACEMENTS`) among which the policy places
        each request where the afterstate is worth most, as well as choosing the path (default:
        the support heuristic's rule alone). The value is fitted the same either way; it has
        seen those placements' afterstates only if the logs hold them (the benchmark's
        ``mixed`` data logs every rule), else it extrapolates to them.
    :raises ValueError: for bad settings, or data without the spectrum.
    """
    if not 0.0 <= gamma < 1.0:
        raise ValueError(f"gamma must lie in [0, 1), got {gamma!r}")
    if not 0.0 <= ridge <= 1e6:  # NaN fails this too; a huge ridge overflows to NaN weights
        raise ValueError(f"ridge must be a finite number in [0, 1e6], got {ridge!r}")
    if support_policy and support_policy not in POLICY_NAMES:
        raise ValueError(
            f"support_policy must be one of {list(POLICY_NAMES)} or '', got {support_policy!r}"
        )
    if support < 1:
        raise ValueError(f"support must be at least 1, got {support!r}")
    check_placements(placements)
    manifest = _first_manifest(path)
    config = manifest["config"] if manifest else None
    slots = int(config["topology_settings"]["c_band"]) if config else 0
    rows: list[np.ndarray] = []
    rewards: list[float] = []
    keys: list[tuple[Any, ...]] = []
    k_paths = 0
    for key, record in _episodes(path, points):
        state = record["state"]
        if "spectrum" not in state:
            raise ValueError(
                f"{path}: the data holds no spectrum; log it with [dataset_logging] "
                "log_spectrum = true"
            )
        if not slots:
            slots = 4 * len(state["spectrum"][0])
        if len(state["spectrum"][0]) != 2 * ((slots + 7) // 8):
            raise ValueError(
                f"{path}: seed {record['seed']} t {record['t']}: a link's spectrum has "
                f"{len(state['spectrum'][0])} hex digits, {slots} slots take "
                f"{2 * ((slots + 7) // 8)}; train on points of one c_band"
            )
        k_paths = max(k_paths, len(record["action_mask"]))
        rows.append(_figures(afterstate(record, (1 << slots) - 1), slots))
        rewards.append(float(record["reward"]))
        keys.append(key)
    if len(rows) < 2:
        raise ValueError(f"{path}: fewer than two transitions to learn from")
    figures = np.stack(rows)  # (N, links, len(LINK_FIGURES))
    links = figures.shape[1]
    per_link = basis(figures)  # (N, links, F)
    # shared weights for every feature, plus a per-link weight of the free share (links
    # differ in how many paths cross them), plus a constant
    phi = np.concatenate(
        [per_link.sum(axis=1), figures[:, :, 0], np.ones((len(figures), 1))], axis=1
    )
    reward = np.asarray(rewards)
    same = np.array([a == b for a, b in itertools.pairwise(keys)])
    now, after = phi[:-1][same], phi[1:][same]
    a = now.T @ (now - gamma * after) + ridge * len(now) * np.eye(phi.shape[1])
    b = now.T @ reward[1:][same]
    w = np.linalg.solve(a, b)
    width = len(LINK_FEATURES)
    weights = np.tile(w[:width], (links, 1))
    free_hats = slice(0, len(KNOTS))  # the per-link linear term, as the hats reproduce it
    weights[:, free_hats] += np.outer(w[width : width + links], KNOTS)
    trained_on = TrainedOn(k_paths, (), scenario_of(config) if config else {})
    info = {"gamma": gamma, "ridge": ridge, "rows": int(same.sum())}
    return AfterstateModel(
        trained_on, weights, float(w[-1]), slots, support_policy, support, info, tuple(placements)
    )


class AfterstatePolicy(PathPolicy):
    """An :class:`AfterstateModel` as a simulator policy: the candidate paths ranked by the
    value of the afterstate each leaves (placed by the support heuristic's spectrum rule,
    first-fit without one), best first; ties to the lower index. The candidates are the
    support heuristic's top choices (the model's ``support_policy`` and ``support``; every
    feasible path without one), the other feasible paths follow in its order. With the
    model's ``placements`` it also places the request itself (:attr:`chooses_start`): each
    candidate is valued at the best of those rules' starts, and the chosen path gets that
    start. It reads the live spectrum, never the logged state dict.

    :param model: The model, or the path of its file.
    """

    name = "afterstate"
    reads_state = False  # (a support heuristic that reads it builds it on first read)

    def __init__(self, model: AfterstateModel | str | os.PathLike[str]) -> None:
        self.model = model if isinstance(model, AfterstateModel) else AfterstateModel.load(model)
        self._support = (
            make_policy(self.model.support_policy, np.random.default_rng(0))
            if self.model.support_policy
            else None
        )
        # allocate as the support heuristic does, and value the afterstate that placement leaves
        self.spectrum = (self._support.spectrum if self._support else None) or "first_fit"
        # or weigh the model's placements too, and place where the best afterstate is
        self.chooses_start = bool(self.model.placements)
        self._rules = self.model.placements or (self.spectrum,)
        self._starts: dict[int, int] = {}
        self._ranked: DecisionView | None = None

    def check_config(self, config: Config) -> None:
        self.model.trained_on.check(config, "the afterstate model")
        if config.topology.c_band != self.model.slots:
            raise ConfigError(
                f"{config.source}: [topology_settings] c_band = {config.topology.c_band}, "
                f"the afterstate model was trained on {self.model.slots}"
            )

    def rank(self, state: Mapping[str, Any], action_mask: Sequence[bool]) -> list[int]:
        raise TypeError("the afterstate policy reads the live spectrum: the engine calls it")

    def rank_decision(self, decision: DecisionView) -> list[int]:
        self._starts, self._ranked = {}, decision
        if self._support is None:
            return self._by_value(decision, [i for i, ok in enumerate(decision.mask) if ok])
        order = self._support.rank_decision(decision)
        top = self.model.support
        return self._by_value(decision, order[:top]) + order[top:]

    def start_slot(self, decision: DecisionView, path: int) -> int:
        # the start found as this decision was ranked; a decision never ranked here (a caller
        # that chose the path itself) is valued now
        start = self._starts.get(path) if decision is self._ranked else None
        return self._best(decision, path)[1] if start is None else start

    def _best(self, decision: DecisionView, path: int) -> tuple[float, int]:
        """The gain in value of the best placement of the request on ``path``, and its start
        (of the rules giving the same gain, the first in the model's order).

        :param decision: The arrival.
        :param path: A feasible path's index.
        """
        free, slots, weights = decision.spectrum.free, self.model.slots, self.model.weights
        need = decision.needs[path]
        links = list(decision.links[path])
        before = basis(_figures([free[link] for link in links], slots))
        best: tuple[float, int] | None = None
        for rule in self._rules:
            start = place(rule, decision.commons[path], need, decision.spectrum.usage)
            if best is not None and start == best[1]:
                continue
            taken = ((1 << need) - 1) << start
            after = basis(_figures([free[link] & ~taken for link in links], slots))
            gain = float(((after - before) * weights[links]).sum())
            if best is None or gain > best[0]:
                best = (gain, start)
        assert best is not None
        return best

    def _by_value(self, decision: DecisionView, paths: list[int]) -> list[int]:
        """``paths`` by the value of the afterstate each leaves, best first."""
        if len(paths) < 2 and not self.chooses_start:
            return paths
        scored = []
        for i in paths:
            gain, start = self._best(decision, i)
            self._starts[i] = start
            scored.append((-gain, i))
        scored.sort()
        return [i for _, i in scored]
