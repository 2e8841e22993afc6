"""The heuristics registry: one line per routing heuristic, the one list of them.

Each :class:`Heuristic` line names a heuristic (its ``[policy_settings] policy`` value), where
its class lives in :mod:`fusion.sim.heuristics` (``module:Class``), its spectrum rule, a
one-line description of its path rule, and whether it is one of XLRON's family. Everything
else that lists heuristics reads this: :data:`fusion.config.vocabulary.POLICY_NAMES`, the
config's check of ``policy`` and its help (the ``default.ini`` comment), the simulator's
classes by name (:mod:`fusion.sim.heuristics`, which checks each class against its line), and
the tables of the README and of :mod:`fusion.sim.heuristics` (:func:`heuristic_table`).

This module sits in the config layer, below the simulator: it names the classes and never
imports them. Adding a heuristic is its class in a module of ``fusion/sim/heuristics/`` and
one line in :data:`HEURISTICS`.

    >>> [h.name for h in HEURISTICS][:3], HEURISTICS[0].home
    (['ksp_ff', 'ksp_lf', 'ksp_bf'], 'first_feasible:KSPFFPolicy')
    >>> print(heuristic_table("markdown").splitlines()[2])
    | `ksp_ff` | the first feasible candidate | `first_fit` |
"""

from __future__ import annotations

import re
from dataclasses import KW_ONLY, dataclass
from typing import Literal

__all__ = [
    "HEURISTICS",
    "SPECTRUM_RULES",
    "Heuristic",
    "check_registry",
    "heuristic_table",
    "policy_help",
]

#: ``[policy_settings] spectrum``, and a heuristic's own rule: where in the chosen path's free
#: spectrum a request goes (:func:`fusion.sim.spectrum.place`).
SPECTRUM_RULES = ("first_fit", "last_fit", "best_fit", "most_used")

_NAME = re.compile(r"[a-z][a-z0-9_]*")
_HOME = re.compile(r"[a-z][a-z0-9_]*:[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Heuristic:
    """One heuristic's registry line.

    :param name: Its config name (``[policy_settings] policy``), lower case.
    :param home: Where its class lives: ``module:Class``, the module inside
        :mod:`fusion.sim.heuristics`.
    :param spectrum: Its spectrum rule (one of :data:`SPECTRUM_RULES`), or ``None`` for a
        path-only heuristic, which takes ``[policy_settings] spectrum``.
    :param path: One line: which feasible path it takes.
    :param xlron: Whether it is one of XLRON's family (``xlron/heuristics/heuristics.py``).
    :raises ValueError: for a name, home or spectrum rule of the wrong form, naming it.

        >>> Heuristic("toy", "toy:ToyPolicy", None, "the last feasible one").xlron
        False
        >>> Heuristic("Bad", "m:C", None, "x")
        Traceback (most recent call last):
        ...
        ValueError: heuristic 'Bad': name must be lower case letters, digits and _
    """

    name: str
    home: str
    spectrum: str | None
    path: str
    _: KW_ONLY
    xlron: bool = False

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ValueError(
                f"heuristic {self.name!r}: name must be lower case letters, digits and _"
            )
        if not _HOME.fullmatch(self.home):
            raise ValueError(
                f"heuristic {self.name!r}: home {self.home!r} must read 'module:Class' "
                "(a module of fusion.sim.heuristics)"
            )
        if self.spectrum is not None and self.spectrum not in SPECTRUM_RULES:
            raise ValueError(
                f"heuristic {self.name!r}: spectrum {self.spectrum!r} must be None or one of "
                f"{', '.join(SPECTRUM_RULES)}"
            )
        if not self.path.strip() or "|" in self.path or "\n" in self.path:
            raise ValueError(f"heuristic {self.name!r}: path must be one line without '|'")


# fmt: off
#: Every heuristic, in the order configs, listings and ``fusion evaluate`` give them: XLRON's
#: family of twelve, ``ksp_ff`` first, then fusion's path-only ones.
HEURISTICS: tuple[Heuristic, ...] = (
    Heuristic("ksp_ff", "first_feasible:KSPFFPolicy", "first_fit", "the first feasible candidate", xlron=True),
    Heuristic("ksp_lf", "first_feasible:KSPLFPolicy", "last_fit", "the first feasible candidate", xlron=True),
    Heuristic("ksp_bf", "first_feasible:KSPBFPolicy", "best_fit", "the first feasible candidate", xlron=True),
    Heuristic("ksp_mu", "first_feasible:KSPMUPolicy", "most_used", "the first feasible candidate", xlron=True),
    Heuristic("ff_ksp", "spectrum_ranked:FFKSPPolicy", "first_fit", "the lowest first-fit start over all candidates", xlron=True),
    Heuristic("lf_ksp", "spectrum_ranked:LFKSPPolicy", "last_fit", "the highest last-fit start over all candidates", xlron=True),
    Heuristic("bf_ksp", "spectrum_ranked:BFKSPPolicy", "best_fit", "the tightest best-fit block over all candidates", xlron=True),
    Heuristic("mu_ksp", "spectrum_ranked:MUKSPPolicy", "most_used", "the most used start slot over all candidates", xlron=True),
    Heuristic("kmc_ff", "fragmentation:KMCFFPolicy", "first_fit", "fewest new free blocks its first-fit allocation opens on its links", xlron=True),
    Heuristic("kmf_ff", "fragmentation:KMFFFPolicy", "first_fit", "fewest free slots stranded just below its first-fit allocation", xlron=True),
    Heuristic("kme_ff", "fragmentation:KMEFFPolicy", "first_fit", "lowest entropy of its links' free blocks after allocation (sum of b/S ln(S/b))", xlron=True),
    Heuristic("kca_ff", "congestion:KCAFFPolicy", "first_fit", "lowest sum over links of km x 1 / (1 - occupied / (slots + 1))", xlron=True),
    Heuristic("shortest_feasible", "path_only:ShortestFeasiblePolicy", None, "fewest hops"),
    Heuristic("least_congested", "path_only:LeastCongestedPolicy", None, "most free slots on its busiest link"),
    Heuristic("random_feasible", "path_only:RandomFeasiblePolicy", None, "a uniformly random feasible candidate (seeded per run)"),
)
# fmt: on


def check_registry(lines: tuple[Heuristic, ...]) -> None:
    """Refuse a registry that names a heuristic or a class twice (run on :data:`HEURISTICS`
    at import: a developer's slip).

    :param lines: The registry's lines.
    :raises ValueError: naming the name or class registered twice.

        >>> check_registry(HEURISTICS[:1] * 2)
        Traceback (most recent call last):
        ...
        ValueError: heuristic 'ksp_ff' is registered twice
    """
    names: set[str] = set()
    homes: set[str] = set()
    for line in lines:
        if line.name in names:
            raise ValueError(f"heuristic {line.name!r} is registered twice")
        if line.home in homes:
            raise ValueError(f"heuristic {line.name!r}: class {line.home} is registered twice")
        names.add(line.name)
        homes.add(line.home)


check_registry(HEURISTICS)


def policy_help() -> str:
    """The help of ``[policy_settings] policy`` (and its ``default.ini`` comment): every name,
    those with their own spectrum rule first.

        >>> policy_help().split(";")[1]
        ' or path-only (take `spectrum`): shortest_feasible, least_congested, random_feasible'
    """
    own = ", ".join(h.name for h in HEURISTICS if h.spectrum is not None)
    path_only = ", ".join(h.name for h in HEURISTICS if h.spectrum is None)
    return f"with their own spectrum rule: {own}; or path-only (take `spectrum`): {path_only}"


def heuristic_table(style: Literal["markdown", "rst"] = "markdown") -> str:
    """The registry as a table: the README's (``markdown``: name, path rule and spectrum rule)
    or :mod:`fusion.sim.heuristics`' (``rst``).

    :param style: ``markdown`` or ``rst``.
    :raises ValueError: for another style.

        >>> print(heuristic_table("rst").splitlines()[3])
        ksp_ff             first_fit  the first feasible candidate
    """
    if style == "markdown":
        rows = [
            "| policy | path | spectrum |",
            "|---|---|---|",
        ]
        for h in HEURISTICS:
            rule = f"`{h.spectrum}`" if h.spectrum else "`[policy_settings] spectrum`"
            rows.append(f"| `{h.name}` | {h.path} | {rule} |")
        return "\n".join(rows)
    if style != "rst":
        raise ValueError(f"table style {style!r}: expected markdown or rst")
    cells = [("name", "spectrum", "path")]
    cells += [(h.name, h.spectrum or "(config)", h.path) for h in HEURISTICS]
    widths = [max(len(row[i]) for row in cells) for i in range(3)]
    rule = "  ".join("=" * w for w in widths)
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    return "\n".join([rule, lines[0], rule, *lines[1:], rule])
