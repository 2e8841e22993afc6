"""The declared benchmark suite: a versioned data file in the package, loaded and checked.

A suite (``fusion/benchmark/suites/v0.json``) names presets at a load each, behaviours, and
three disjoint seed ranges: ``train`` (the datasets' seeds), ``tune`` (where the expert is
chosen) and ``eval`` (held out for scores). :func:`load_suite` checks every key and names the
file and key of what is wrong; :meth:`Suite.datasets` gives one :class:`DatasetSpec` per
preset and behaviour, in the file's order (presets outer).

    >>> suite = load_suite()
    >>> suite.version, len(suite.datasets()), suite.datasets()[0].name
    ('v0', 32, 'deeprmsa-nsfnet/random')
    >>> quick = load_suite(quick=True).datasets()[0]
    >>> quick.seeds, quick.requests, quick.quick
    ((0, 1), 150, True)
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import orjson

from fusion.config.config import Config, config_from_mapping, parse_seeds
from fusion.config.features import PATH_FEATURE_SETS
from fusion.config.heuristics import HEURISTICS
from fusion.config.presets import PRESETS
from fusion.config.vocabulary import PATH_ORDERS, SHARD_COMPRESSIONS
from fusion.errors import ConfigError

__all__ = [
    "KINDS",
    "DatasetSpec",
    "Suite",
    "load_suite",
    "suite_path",
]

#: How a behaviour chooses: one ``heuristic`` (its ``policy``), the ``expert`` (the best
#: heuristic under any path order on the tuning seeds), or ``mixed`` (a study over every
#: heuristic of the registry under every path order).
KINDS = ("heuristic", "expert", "mixed")
SEED_ROLES = ("train", "tune", "eval")
DEFAULT_VERSION = "v0"


def suite_path(version: str = DEFAULT_VERSION) -> Path:
    """The shipped suite file of a version.

    :param version: The suite's version (``v0``).
    """
    return Path(str(resources.files("fusion.benchmark") / "suites" / f"{version}.json"))


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset of the suite: a preset at a load, logged by one behaviour.

    :param preset: The preset's name (``fusion scenarios``).
    :param behaviour: The behaviour's name (``random``, ``ksp-ff``, ``expert``, ``mixed``).
    :param kind: One of :data:`KINDS`.
    :param policy: The heuristic (kind ``heuristic``), else ``""``.
    :param erlang: The load.
    :param seeds: The seeds logged.
    :param tune_seeds: The seeds the expert is chosen on.
    :param requests: Measured requests per seed.
    :param warmup_requests: Warm-up requests per seed (not logged).
    :param epsilon_mix: The probability of the policy's second choice.
    :param log_spectrum: Whether each state holds every link's occupancy.
    :param path_features: The feature set per path.
    :param shard_compression: The shards' compression.
    :param quick: Whether shrunk by ``--quick`` (no reference).
    :param version: The suite's version.
    """

    preset: str
    behaviour: str
    kind: str
    policy: str
    erlang: float
    seeds: tuple[int, ...]
    tune_seeds: tuple[int, ...]
    requests: int
    warmup_requests: int
    epsilon_mix: float
    log_spectrum: bool
    path_features: str
    shard_compression: str
    quick: bool
    version: str

    @property
    def name(self) -> str:
        """``preset/behaviour``."""
        return f"{self.preset}/{self.behaviour}"

    def config(self, policy: str = "", path_order: str = "") -> Config:
        """The dataset's config: its preset with the suite's load, sizes, seeds and logging.

        :param policy: The heuristic (default: the spec's; the expert's choice for ``expert``).
        :param path_order: The path order (default: the preset's).

            >>> spec = load_suite().datasets()[1]
            >>> cfg = spec.config()
            >>> cfg.policy.policy, cfg.general.erlang, cfg.dataset.shard_compression
            ('ksp_ff', 250.0, 'zstd')
        """
        sections = {k: dict(v) for k, v in PRESETS[self.preset].sections().items()}
        sections["general_settings"].update(
            erlang=str(self.erlang),
            erlang_start="0",
            erlang_stop="0",
            erlang_step="0",
            num_requests=str(self.requests),
            warmup_requests=str(self.warmup_requests),
            seeds=",".join(map(str, self.seeds)),
        )
        if path_order:
            sections["general_settings"]["path_order"] = path_order
        sections["policy_settings"]["policy"] = policy or self.policy or "ksp_ff"
        sections["dataset_logging"].update(
            epsilon_mix=str(self.epsilon_mix),
            log_spectrum=str(self.log_spectrum).lower(),
            path_features=self.path_features,
            shard_compression=self.shard_compression,
        )
        return config_from_mapping(sections, f"<benchmark {self.version} {self.name}>")

    def describe(self) -> dict[str, Any]:
        """What ``fusion benchmark list --json`` prints of it."""
        return {
            "name": self.name,
            "preset": self.preset,
            "behaviour": self.behaviour,
            "kind": self.kind,
            "policy": self.policy
            or (
                "chosen on the tuning seeds"
                if self.kind == "expert"
                else "the registry x path orders"
            ),
            "erlang": self.erlang,
            "seeds": list(self.seeds),
            "requests": self.requests,
            "warmup_requests": self.warmup_requests,
            "epsilon_mix": self.epsilon_mix,
            "log_spectrum": self.log_spectrum,
            "path_features": self.path_features,
            "quick": self.quick,
        }


def mixed_grid() -> list[str]:
    """The ``--grid`` of a ``mixed`` behaviour: every heuristic of the registry under every
    path order.

        >>> [g.split("=")[0] for g in mixed_grid()]
        ['policy_settings.policy', 'general_settings.path_order']
    """
    return [
        "policy_settings.policy=" + ",".join(h.name for h in HEURISTICS),
        "general_settings.path_order=" + ",".join(PATH_ORDERS),
    ]


def expert_candidates() -> list[str]:
    """The policies the expert is chosen from: every heuristic under every path order, as
    ``fusion evaluate`` specs.

        >>> len(expert_candidates()) == len(HEURISTICS) * len(PATH_ORDERS)
        True
    """
    return [f"{h.name}:path_order={order}" for h in HEURISTICS for order in PATH_ORDERS]


@dataclass(frozen=True)
class Suite:
    """A loaded, checked suite.

    :param version: Its version.
    :param file: The file it was read from.
    :param data: The file's content.
    :param quick: Whether shrunk (``--quick``).
    """

    version: str
    file: Path
    data: Mapping[str, Any]
    quick: bool = False

    @property
    def presets(self) -> list[str]:
        """The presets, in the file's order."""
        return [p["name"] for p in self.data["presets"]]

    def seeds(self, role: str) -> tuple[int, ...]:
        """The seeds of a role (``train``, ``tune``, ``eval``), shrunk when quick."""
        seeds = parse_seeds(self.data["seeds"][role])
        quick = self.data["quick"]
        if self.quick and role in ("train", "tune"):
            seeds = seeds[: quick[f"{role}_seeds"]]
        return seeds

    def datasets(self, presets: Sequence[str] | None = None) -> list[DatasetSpec]:
        """Every dataset, presets outer, in the file's order.

        :param presets: Only these presets (default: all).
        """
        quick = self.data["quick"]
        requests = quick["requests"] if self.quick else self.data["requests"]
        warmup = quick["warmup_requests"] if self.quick else self.data["warmup_requests"]
        out = []
        for preset in self.data["presets"]:
            if presets is not None and preset["name"] not in presets:
                continue
            for behaviour in self.data["behaviours"]:
                seeds = self.seeds("train")
                if "seeds" in behaviour:
                    seeds = parse_seeds(behaviour["seeds"])
                    if self.quick:
                        seeds = seeds[: quick["mixed_seeds"]]
                out.append(
                    DatasetSpec(
                        preset=preset["name"],
                        behaviour=behaviour["name"],
                        kind=behaviour["kind"],
                        policy=behaviour.get("policy", ""),
                        erlang=float(preset["erlang"]),
                        seeds=seeds,
                        tune_seeds=self.seeds("tune"),
                        requests=int(requests),
                        warmup_requests=int(warmup),
                        epsilon_mix=float(behaviour["epsilon_mix"]),
                        log_spectrum=bool(behaviour.get("log_spectrum", False)),
                        path_features=self.data["path_features"],
                        shard_compression=self.data["shard_compression"],
                        quick=self.quick,
                        version=self.version,
                    )
                )
        return out


def load_suite(path: str | os.PathLike[str] | None = None, *, quick: bool = False) -> Suite:
    """Read and check a suite file.

    :param path: The file (default: the shipped ``v0``).
    :param quick: Shrink seeds and requests (``--quick``).
    :raises ConfigError: naming the file and key: a missing or mistyped key, an unknown
        preset, behaviour kind or heuristic, a load the preset does not publish, overlapping
        seed ranges, a behaviour's seeds outside the training range.
    """
    file = Path(path) if path is not None else suite_path()
    try:
        data = orjson.loads(file.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise ConfigError(f"{file}: cannot read the suite: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: expected a JSON object at the top")
    _check(file, data)
    return Suite(str(data["version"]), file, data, quick)


def _need(
    file: Path, where: Mapping[str, Any], key: str, kind: type | tuple[type, ...], at: str
) -> Any:
    if key not in where:
        raise ConfigError(f"{file}: {at}{key}: missing")
    value = where[key]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ConfigError(f"{file}: {at}{key}: expected {_kind_name(kind)}, got {value!r}")
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(
        {
            str: "text",
            int: "an integer",
            float: "a number",
            bool: "true or false",
            list: "a list",
            dict: "an object",
        }[k]
        for k in kinds
    )


def _seeds_of(file: Path, text: str, key: str) -> tuple[int, ...]:
    try:
        return parse_seeds(text)
    except ValueError as exc:
        raise ConfigError(f"{file}: {key}: {exc}") from None


def _check(file: Path, data: Mapping[str, Any]) -> None:
    """Every key of a suite, naming the file and key of the first that is wrong."""
    _need(file, data, "version", str, "")
    seeds = _need(file, data, "seeds", dict, "")
    ranges = {
        role: _seeds_of(file, _need(file, seeds, role, str, "seeds."), f"seeds.{role}")
        for role in SEED_ROLES
    }
    for i, first in enumerate(SEED_ROLES):
        for second in SEED_ROLES[i + 1 :]:
            common = sorted(set(ranges[first]) & set(ranges[second]))
            if common:
                raise ConfigError(
                    f"{file}: seeds.{first} and seeds.{second} overlap (seed "
                    f"{', '.join(map(str, common[:5]))}); training, tuning and evaluation "
                    "seeds must be disjoint"
                )
    for key in ("requests", "warmup_requests"):
        if _need(file, data, key, int, "") < (1 if key == "requests" else 0):
            raise ConfigError(f"{file}: {key}: expected a positive integer, got {data[key]}")
    if _need(file, data, "path_features", str, "") not in PATH_FEATURE_SETS:
        raise ConfigError(
            f"{file}: path_features: {data['path_features']!r} is none of {', '.join(PATH_FEATURE_SETS)}"
        )
    if _need(file, data, "shard_compression", str, "") not in SHARD_COMPRESSIONS:
        raise ConfigError(
            f"{file}: shard_compression: {data['shard_compression']!r} is none of {', '.join(SHARD_COMPRESSIONS)}"
        )
    quick = _need(file, data, "quick", dict, "")
    for key in ("train_seeds", "tune_seeds", "mixed_seeds", "requests", "warmup_requests"):
        if _need(file, quick, key, int, "quick.") < (0 if key == "warmup_requests" else 1):
            raise ConfigError(f"{file}: quick.{key}: expected a positive integer, got {quick[key]}")
    presets = _need(file, data, "presets", list, "")
    if not presets:
        raise ConfigError(f"{file}: presets: expected at least one preset")
    names: set[str] = set()
    for i, preset in enumerate(presets):
        at = f"presets[{i}]."
        if not isinstance(preset, dict):
            raise ConfigError(f"{file}: presets[{i}]: expected an object with name and erlang")
        name = _need(file, preset, "name", str, at)
        if name not in PRESETS:
            raise ConfigError(
                f"{file}: {at}name: unknown preset {name!r}; expected one of {', '.join(PRESETS)}"
            )
        if name in names:
            raise ConfigError(f"{file}: {at}name: preset {name!r} is listed twice")
        names.add(name)
        erlang = _need(file, preset, "erlang", (int, float), at)
        if erlang not in PRESETS[name].loads:
            raise ConfigError(
                f"{file}: {at}erlang: {erlang} is not one of {name}'s published loads "
                f"({', '.join(map(str, PRESETS[name].loads))})"
            )
    _check_behaviours(file, _need(file, data, "behaviours", list, ""), ranges["train"])


def _check_behaviours(file: Path, behaviours: list[Any], train: tuple[int, ...]) -> None:
    heuristics = [h.name for h in HEURISTICS]
    if not behaviours:
        raise ConfigError(f"{file}: behaviours: expected at least one behaviour")
    names: set[str] = set()
    for i, behaviour in enumerate(behaviours):
        at = f"behaviours[{i}]."
        if not isinstance(behaviour, dict):
            raise ConfigError(f"{file}: behaviours[{i}]: expected an object with name and kind")
        name = _need(file, behaviour, "name", str, at)
        if not name or not all(c.isalnum() or c == "-" for c in name) or name in names:
            raise ConfigError(
                f"{file}: {at}name: {name!r} must be letters, digits and '-', once per suite"
            )
        names.add(name)
        kind = _need(file, behaviour, "kind", str, at)
        if kind not in KINDS:
            raise ConfigError(
                f"{file}: {at}kind: unknown behaviour kind {kind!r} of {name!r}; expected one "
                f"of {', '.join(KINDS)}"
            )
        if kind == "heuristic":
            policy = _need(file, behaviour, "policy", str, at)
            if policy not in heuristics:
                raise ConfigError(
                    f"{file}: {at}policy: unknown heuristic {policy!r}; expected one of "
                    f"{', '.join(heuristics)}"
                )
        elif "policy" in behaviour:
            raise ConfigError(f"{file}: {at}policy: a {kind} behaviour chooses its own policies")
        epsilon = _need(file, behaviour, "epsilon_mix", (int, float), at)
        if not 0 <= epsilon <= 1:
            raise ConfigError(f"{file}: {at}epsilon_mix: expected 0 .. 1, got {epsilon}")
        if "log_spectrum" in behaviour:
            _need(file, behaviour, "log_spectrum", bool, at)
        if "seeds" in behaviour:
            own = _seeds_of(file, _need(file, behaviour, "seeds", str, at), f"{at}seeds")
            outside = sorted(set(own) - set(train))
            if outside:
                raise ConfigError(
                    f"{file}: {at}seeds: {', '.join(map(str, outside[:5]))} outside seeds.train "
                    "(a dataset logs training seeds only)"
                )
        unknown = set(behaviour) - {
            "name",
            "kind",
            "policy",
            "epsilon_mix",
            "log_spectrum",
            "seeds",
        }
        if unknown:
            raise ConfigError(f"{file}: {at}{sorted(unknown)[0]}: unknown key")
