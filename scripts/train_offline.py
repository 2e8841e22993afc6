"""Train a masked fitted-Q policy on logged transitions; optionally evaluate it against KSP-FF.

    python scripts/train_offline.py DATASET_OR_STUDY -o fqi.npz
    python scripts/train_offline.py DIR -o fqi.npz --gamma 0.995 --evaluate --seeds 1000-1002
    python scripts/train_offline.py STUDY -o fqi.npz --points policy_settings.policy=ksp_ff,ff_ksp

Training reads only the logs (:func:`fusion.datasets.arrays.to_arrays`); it prints the data's
figures and one line per iteration. ``--evaluate`` runs ``fusion evaluate``'s comparison on
held-out seeds of the embedded default config (``--config``, ``--erlang`` to change it): KSP-FF,
shortest_feasible and the trained model, each paired against KSP-FF.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from fusion.config.config import load_config, parse_seeds
from fusion.config.grid import parse_points
from fusion.datasets.actions import first_feasible_actions
from fusion.datasets.arrays import to_arrays
from fusion.errors import FusionError
from fusion.rl.fqi import train_fqi_on
from fusion.rl.model_file import check_model_output
from fusion.rl.options import SEED_RANGE, float_in, int_in
from fusion.run.evaluate import evaluate_policies, format_evaluation


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", help="a dataset, a merged file or a study")
    parser.add_argument("-o", "--out", required=True, help="the model file (.npz)")
    parser.add_argument(
        "--gamma", type=float_in(0.0, 1.0, high_open=True), default=0.99, help="discount"
    )
    parser.add_argument(
        "--iterations",
        type=int_in(1, 1000),
        default=1,
        help="regressions (1: returns only; at most 1000)",
    )
    parser.add_argument("--init", choices=("returns", "reward"), default="returns")
    parser.add_argument(
        "--trees",
        type=int_in(1, 100_000),
        default=100,
        help="boosting rounds per regression (1 .. 100000)",
    )
    parser.add_argument(
        "--min-support",
        type=float_in(0.0, 1.0),
        default=0.1,
        help="behaviour-support threshold (0: none)",
    )
    parser.add_argument(
        "--seed", type=int_in(*SEED_RANGE), default=0, help="the regressor's random state"
    )
    parser.add_argument(
        "--points",
        action="append",
        default=[],
        metavar="SECTION.KEY=V1,V2",
        help="a study's points to train on (repeatable; default: every point)",
    )
    parser.add_argument("--evaluate", action="store_true", help="then evaluate vs KSP-FF")
    parser.add_argument("--config", help="evaluation config (default: the embedded default)")
    parser.add_argument("--seeds", default="1000-1002", help="held-out evaluation seeds")
    parser.add_argument(
        "--erlang",
        type=float_in(0.0, 1e9, low_open=True),
        help="evaluation load (default: the config's)",
    )
    parser.add_argument("--workers", type=int_in(1, 1024), help="evaluation processes (1 .. 1024)")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing model file at -o"
    )
    args = parser.parse_args(argv)
    # every flag is checked before the data is read or a tree is grown (exit 2, as argparse)
    if not 0.0 <= args.gamma < 1.0:
        parser.error(f"--gamma {args.gamma}: expected a discount in [0, 1)")
    if args.iterations < 1 or args.trees < 1:
        parser.error("--iterations and --trees take integers >= 1")
    if not 0.0 <= args.min_support <= 1.0:
        parser.error(f"--min-support {args.min_support}: expected a share in [0, 1]")
    if args.workers is not None and args.workers < 1:
        parser.error(f"--workers {args.workers}: expected an integer >= 1")
    try:
        points = parse_points(args.points)
    except FusionError as exc:
        parser.error(str(exc))
    eval_config = None
    eval_seeds: tuple[int, ...] = ()
    if args.evaluate:
        try:
            eval_config = load_config(args.config)
            if args.erlang is not None:
                eval_config = eval_config.replace("general_settings", erlang=args.erlang)
            eval_seeds = parse_seeds(args.seeds)
        except (FusionError, ValueError) as exc:
            parser.error(str(exc))
    try:  # last: every flag is checked before the output's check reads the input's layout
        check_model_output(args.dataset, args.out, overwrite=args.overwrite)
    except FusionError as exc:
        parser.error(str(exc))
    try:
        started = time.perf_counter()
        data = to_arrays(args.dataset, points=points or None)
        decisions = data.action_masks.any(axis=1)
        print(
            f"data: {len(data)} transitions from {len(np.unique(data.seeds))} seed(s) "
            f"({int(data.dones.sum())} episodes), {int(decisions.sum())} with a feasible path, "
            f"{int((data.action_masks.sum(axis=1) >= 2).sum())} with a choice; "
            f"read in {time.perf_counter() - started:.1f} s"
        )
        model = train_fqi_on(
            data,
            gamma=args.gamma,
            iterations=args.iterations,
            init=args.init,
            max_trees=args.trees,
            min_support=args.min_support,
            seed=args.seed,
            progress=print,
        )
        model.save(args.out, overwrite=args.overwrite)
        chosen = model.act(data.observations, data.action_masks)
        first = first_feasible_actions(data.action_masks)
        print(
            f"model: {args.out} ({len(model.state_value.roots)} + {len(model.advantage.roots)} "
            f"trees for V and A); on the "
            f"training decisions it agrees with KSP-FF on {np.mean(chosen[decisions] == first[decisions]):.4f}"
            f" and with the logged actions on {np.mean(chosen[decisions] == data.actions[decisions]):.4f}"
        )
        if eval_config is not None:
            report = evaluate_policies(
                eval_config,
                ["ksp_ff", "shortest_feasible", args.out],
                seeds=eval_seeds,
                workers=args.workers,
            )
            print(format_evaluation(report))
    except (FusionError, ValueError, OSError) as exc:
        print(f"train_offline: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
