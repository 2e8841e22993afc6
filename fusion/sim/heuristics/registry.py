"""The heuristics by config name, resolved from the registry's lines
(:data:`fusion.config.heuristics.HEURISTICS`).

Each line names its class as ``module:Class`` inside this package; :func:`heuristic_class`
imports it and checks it is a concrete :class:`~fusion.sim.policy.PathPolicy` whose ``name``
and ``spectrum`` are the line's, so a class and its line cannot disagree.

    >>> list(POLICIES)[:2], make_policy("ksp_lf").spectrum
    (['ksp_ff', 'ksp_lf'], 'last_fit')
"""

from __future__ import annotations

import importlib
import inspect

import numpy as np

from fusion.config.heuristics import HEURISTICS, Heuristic
from fusion.sim.policy import PathPolicy

__all__ = ["FAMILY", "POLICIES", "heuristic_class", "make_policy"]

_PACKAGE = __name__.rpartition(".")[0]


def heuristic_class(line: Heuristic) -> type[PathPolicy]:
    """The class a registry line names, checked against the line.

    :param line: A registry line.
    :raises ImportError: when its module or class does not exist.
    :raises TypeError: when it is no concrete :class:`~fusion.sim.policy.PathPolicy`, or its
        ``name`` or ``spectrum`` differ from the line's (both sides named).
    """
    module_name, _, class_name = line.home.partition(":")
    where = f"heuristic {line.name!r} ({_PACKAGE}.{module_name}:{class_name})"
    module = importlib.import_module(f"{_PACKAGE}.{module_name}")
    cls = getattr(module, class_name, None)
    if cls is None:
        raise ImportError(f"{where}: module {module.__name__} has no class {class_name}")
    if not (isinstance(cls, type) and issubclass(cls, PathPolicy)) or inspect.isabstract(cls):
        raise TypeError(f"{where}: expected a concrete PathPolicy subclass, got {cls!r}")
    for attr in ("name", "spectrum"):
        if getattr(cls, attr) != getattr(line, attr):
            raise TypeError(
                f"{where}: the class's {attr} is {getattr(cls, attr)!r}, "
                f"its registry line's {getattr(line, attr)!r}"
            )
    return cls


#: Every heuristic's class by config name, in the registry's order
#: (:data:`fusion.config.vocabulary.POLICY_NAMES`).
POLICIES: dict[str, type[PathPolicy]] = {line.name: heuristic_class(line) for line in HEURISTICS}

#: XLRON's family in its order, ``ksp_ff`` first.
FAMILY: tuple[type[PathPolicy], ...] = tuple(
    POLICIES[line.name] for line in HEURISTICS if line.xlron
)


def make_policy(name: str, rng: np.random.Generator | None = None) -> PathPolicy:
    """Build a heuristic by its config name (:meth:`~fusion.sim.policy.PathPolicy.for_run`).

    :param name: One of :data:`POLICIES`.
    :param rng: The run's generator, for heuristics that draw at random.
    :raises ValueError: naming the unknown policy and the known ones.
    """
    if name not in POLICIES:
        raise ValueError(f"unknown policy {name!r}; expected one of {list(POLICIES)}")
    return POLICIES[name].for_run(rng)
