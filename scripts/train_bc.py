"""Train masked behaviour cloning on some seeds of a dataset and test it on a held-out seed.

    python scripts/train_bc.py datasets/nsfnet_default                 # last seed held out
    python scripts/train_bc.py DIR --train-seeds 42-44 --test-seed 45 --simulate

Prints the BC policy's agreement with the logged actions and with KSP-FF (the first feasible
path) on the held-out seed's decisions; with ``--simulate`` it also runs the trained policy
inside the simulator on the held-out seed (logging off) and prints its blocking probability
next to KSP-FF's on the same seed. The weights go to ``bc_policy.npz`` in the working
directory (``-o``/``--out`` to choose; never into the dataset).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from fusion.config.config import config_from_dict, parse_seeds
from fusion.datasets.actions import first_feasible_actions
from fusion.datasets.arrays import to_arrays
from fusion.errors import FusionError
from fusion.rl.bc import BCModel, BCPolicy, agreement, train_bc
from fusion.rl.model_file import TrainedOn, check_model_output
from fusion.rl.options import SEED_RANGE, int_in
from fusion.sim.engine import SimulationEngine
from fusion.sim.policies import KSPFFPolicy
from fusion.storage.manifest import read_manifest


def _simulate(directory: Path, seed: int, model: BCModel, requests: int | None) -> None:
    manifest = read_manifest(directory)
    config = config_from_dict(manifest["config"], str(directory / "manifest.json"))
    config = config.replace("dataset_logging", log_offline_dataset=False)
    if requests is not None:
        config = config.replace("general_settings", num_requests=requests)
    for label, policy in (("ksp_ff", KSPFFPolicy()), ("bc", BCPolicy(model))):
        started = time.perf_counter()
        stats = SimulationEngine(config, seed, policy=policy).run()
        print(
            f"simulate seed {seed}: {label:<7} blocking probability "
            f"{stats['blocking_probability']:.4f} over {stats['requests']} requests "
            f"({time.perf_counter() - started:.1f} s)"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", type=Path, help="a dataset directory (with manifest.json)")
    parser.add_argument(
        "--train-seeds", help="seeds to train on, e.g. 42-44 (default: all but the test seed)"
    )
    parser.add_argument(
        "--test-seed", type=int_in(*SEED_RANGE), help="the held-out seed (default: the largest)"
    )
    parser.add_argument(
        "--epochs", type=int_in(1, 10_000), default=3, help="passes over the data (1 .. 10000)"
    )
    parser.add_argument(
        "--hidden", type=int_in(1, 4096), default=64, help="hidden units (1 .. 4096)"
    )
    parser.add_argument(
        "--seed",
        type=int_in(*SEED_RANGE),
        default=0,
        help=f"training seed (weights, batches; {SEED_RANGE[0]} .. {SEED_RANGE[1]})",
    )
    parser.add_argument(
        "-o",
        "--out",
        type=Path,
        default=Path("bc_policy.npz"),
        help="weights file (default: bc_policy.npz in the working directory)",
    )
    parser.add_argument(
        "--simulate", action="store_true", help="also run BC and KSP-FF in the simulator"
    )
    parser.add_argument(
        "--requests",
        type=int_in(1, 10**8),
        help="requests per simulation (default: the dataset's)",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing model file at -o"
    )
    args = parser.parse_args(argv)
    try:
        check_model_output(args.dataset, args.out, overwrite=args.overwrite)
    except FusionError as exc:
        parser.error(str(exc))
    try:
        data = to_arrays(args.dataset)
        seeds = sorted({int(s) for s in np.unique(data.seeds)})
        if len(seeds) < 2:
            parser.error(f"{args.dataset}: needs at least 2 seeds (one to hold out), has {seeds}")
        test = args.test_seed if args.test_seed is not None else seeds[-1]
        train = (
            list(parse_seeds(args.train_seeds))
            if args.train_seeds
            else [s for s in seeds if s != test]
        )
        missing = sorted({test, *train} - set(seeds))
        if missing or test in train:
            parser.error(
                f"seeds {missing} are not in the dataset {seeds}"
                if missing
                else "the test seed is among the training seeds"
            )
        rows = np.isin(data.seeds, train)
        started = time.perf_counter()
        model = train_bc(
            data.observations[rows],
            data.actions[rows],
            data.action_masks[rows],
            hidden=args.hidden,
            epochs=args.epochs,
            seed=args.seed,
            trained_on=TrainedOn.of_data(data.metadata),
        )
        print(
            f"trained on seeds {train}: {int((data.actions[rows] >= 0).sum())} decisions, "
            f"{args.epochs} epochs in {time.perf_counter() - started:.1f} s"
        )
        held = data.seeds == test
        obs, masks, actions = data.observations[held], data.action_masks[held], data.actions[held]
        first_feasible = first_feasible_actions(masks)
        print(f"held-out seed {test}: {int(masks.any(axis=1).sum())} decisions")
        print(f"  agreement with the logged actions : {agreement(model, obs, masks, actions):.4f}")
        print(
            f"  agreement with KSP-FF             : {agreement(model, obs, masks, first_feasible):.4f}"
        )
        model.save(args.out, overwrite=args.overwrite)  # the guard: never a dataset's file
        print(f"weights: {args.out}")
        if args.simulate:
            _simulate(args.dataset, test, model, args.requests)
    except FusionError as exc:
        print(f"train_bc: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
