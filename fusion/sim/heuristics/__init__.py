"""The field's heuristics: XLRON's family of twelve, each a path rule and a spectrum rule, and
fusion's path-only ones; one class each, one module per idea, one registry.

Reference: micdoh/XLRON ``xlron/heuristics/heuristics.py``. Every heuristic ranks the feasible
candidate paths (the engine's mask) and allocates with its spectrum rule
(:func:`fusion.sim.spectrum.place`; a path-only one takes ``[policy_settings] spectrum``); the
action logged is the path index, ``meta.start_slot`` the chosen start (for every heuristic) and
``meta.behaviour`` its name and spectrum rule (``lf_ksp/last_fit``). Ties go to the lower
path index (and the lower slot), as XLRON's ``argmin``/``argmax`` take the first.

The modules: :mod:`~fusion.sim.heuristics.first_feasible` (``ksp_*``),
:mod:`~fusion.sim.heuristics.spectrum_ranked` (``*_ksp``),
:mod:`~fusion.sim.heuristics.fragmentation` (``kmc_ff``, ``kmf_ff``, ``kme_ff``),
:mod:`~fusion.sim.heuristics.congestion` (``kca_ff``), :mod:`~fusion.sim.heuristics.path_only`,
and :mod:`~fusion.sim.heuristics.base` for what they share. Which class a config name means is
the registry's line (:data:`fusion.config.heuristics.HEURISTICS`), resolved and checked by
:mod:`~fusion.sim.heuristics.registry`; adding a heuristic is its class and that one line.
The registry as a table (written into this docstring on import, from the registry):

{table}

Where ours differ from XLRON's: ``best_fit`` takes the smallest free block of the path's
common spectrum that holds the request (XLRON averages per-link block fits and adds gap
terms); the family ranks feasible paths only (XLRON's ``kca_ff`` may pick an infeasible path
and block); ``most_used`` counts, per slot, the links on which it is taken.

    >>> make_policy("ksp_lf").spectrum, sorted(h.name for h in FAMILY)[:3]
    ('last_fit', ['bf_ksp', 'ff_ksp', 'kca_ff'])
"""

from fusion.config.heuristics import heuristic_table
from fusion.sim.heuristics.first_feasible import KSPFFPolicy
from fusion.sim.heuristics.path_only import (
    LeastCongestedPolicy,
    RandomFeasiblePolicy,
    ShortestFeasiblePolicy,
)
from fusion.sim.heuristics.registry import FAMILY, POLICIES, heuristic_class, make_policy

__doc__ = (__doc__ or "").replace("{table}", heuristic_table("rst"))

__all__ = [
    "FAMILY",
    "POLICIES",
    "KSPFFPolicy",
    "LeastCongestedPolicy",
    "RandomFeasiblePolicy",
    "ShortestFeasiblePolicy",
    "heuristic_class",
    "heuristic_table",
    "make_policy",
]
