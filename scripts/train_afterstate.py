"""Train an afterstate-value policy on logs recorded with ``log_spectrum = true``.

    python scripts/train_afterstate.py DATASET_OR_STUDY -o afterstate.npz \\
        --support-policy ksp_ff --support 2 [--gamma 0.99] [--points policy_settings.policy=ksp_ff] \\
        [--placements first_fit,last_fit,best_fit]

Fits per-link prices of spectrum by LSTD on the logged afterstates
(:mod:`fusion.rl.afterstate`) and saves one ``.npz`` (no pickle) that ``fusion evaluate
--policy afterstate.npz:path_order=ORDER`` runs (the path order the data was logged with; a
model meeting another exits 2 naming both). ``--support-policy NAME --support N``: the policy
re-ranks that heuristic's N first choices by afterstate value and keeps its order for the rest
(epsilon-mixed logs cover a heuristic's first and second choices: N = 2). ``--placements``:
the policy also places each request itself, wherever among those rules' starts the afterstate
is worth most (the benchmark's ``afterstate-placed``, where the choice is made on tuning seeds).
"""

from __future__ import annotations

import argparse
import sys
import time

from fusion.config.grid import parse_points
from fusion.config.vocabulary import POLICY_NAMES
from fusion.errors import FusionError
from fusion.rl.afterstate import PLACEMENTS, check_placements, train_afterstate
from fusion.rl.model_file import check_model_output
from fusion.rl.options import float_in, int_in


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", help="a dataset, a merged file or a study")
    parser.add_argument("-o", "--out", required=True, help="the model file (.npz)")
    parser.add_argument(
        "--gamma", type=float_in(0.0, 1.0, high_open=True), default=0.99, help="discount"
    )
    parser.add_argument(
        "--ridge",
        type=float_in(0.0, 1e6),
        default=1e-3,
        help="added to the normal equations' diagonal, times the rows (0 .. 1e6)",
    )
    parser.add_argument(
        "--support-policy",
        default="",
        choices=["", *POLICY_NAMES],
        help="the heuristic whose first choices the policy re-ranks (default: none)",
    )
    parser.add_argument(
        "--support", type=int_in(1, 100), default=2, help="how many of its choices (1 .. 100)"
    )
    parser.add_argument(
        "--placements",
        default="",
        metavar="RULE,RULE",
        help=(
            "spectrum rules among which the policy places each request where the afterstate "
            f"is worth most ({','.join(PLACEMENTS)}; default: the support heuristic's rule)"
        ),
    )
    parser.add_argument(
        "--points",
        action="append",
        default=[],
        metavar="SECTION.KEY=V1,V2",
        help="a study's points to train on (repeatable; default: every point)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing model file at -o"
    )
    args = parser.parse_args(argv)
    if not 0.0 <= args.gamma < 1.0:
        parser.error(f"--gamma {args.gamma}: expected a discount in [0, 1)")
    if args.support < 1:
        parser.error(f"--support {args.support}: expected an integer >= 1")
    placements = tuple(rule.strip() for rule in args.placements.split(",") if rule.strip())
    try:
        check_placements(placements)
    except ValueError as exc:
        parser.error(f"--placements {args.placements}: {exc}")
    try:
        points = parse_points(args.points)
        check_model_output(args.dataset, args.out, overwrite=args.overwrite)
    except FusionError as exc:
        parser.error(str(exc))
    try:
        started = time.perf_counter()
        model = train_afterstate(
            args.dataset,
            gamma=args.gamma,
            ridge=args.ridge,
            points=points or None,
            support_policy=args.support_policy,
            support=args.support,
            placements=placements,
        )
        model.save(args.out, overwrite=args.overwrite)
    except (FusionError, ValueError, OSError) as exc:
        print(f"train_afterstate: {exc}", file=sys.stderr)
        return 1
    order = model.trained_on.scenario.get("general_settings.path_order", "length")
    print(
        f"model: {args.out}: {model.weights.shape[0]} links x {model.weights.shape[1]} "
        f"features from {model.info['rows']} afterstate pairs in "
        f"{time.perf_counter() - started:.1f} s; run it as {args.out}:path_order={order}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
