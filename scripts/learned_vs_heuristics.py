"""A learned policy against every heuristic under every path order, on held-out seeds.

    python scripts/learned_vs_heuristics.py MODEL.npz [--config NAME] [--erlang E] [--seeds 1000-1002]

Runs ``fusion evaluate``'s comparison (:func:`fusion.run.evaluate.evaluate_policies`) with
every heuristic of ``[policy_settings] policy`` (random_feasible aside) under every
``path_order`` the scenario allows, and each model under the path order it was trained with. It prints each
policy's blocking, then the model's paired relative blocking against KSP-FF and against the
**best heuristic on those seeds** (the lowest mean blocking), with the 95 % interval of the
paired differences (Student's t over the seeds).
"""

from __future__ import annotations

import argparse
import sys

from fusion.config.config import load_config, parse_seeds
from fusion.config.vocabulary import PATH_ORDERS, POLICY_NAMES
from fusion.errors import FusionError
from fusion.report.intervals import interval
from fusion.run.evaluate import PolicySpecError, evaluate_policies, spec_config


def heuristic_specs(config: object) -> list[str]:
    """Every heuristic under every path order the scenario allows, as ``--policy`` specs."""
    specs = []
    for name in POLICY_NAMES:
        if name == "random_feasible":
            continue
        for order in PATH_ORDERS:
            spec = f"{name}:path_order={order}"
            try:
                spec_config(config, spec)  # type: ignore[arg-type]
            except PolicySpecError:
                continue  # e.g. spectral_resources with FUSION's per-rate table
            specs.append(spec)
    return specs


def _model_spec(path: str) -> str:
    """The model's ``--policy`` spec: its file, under the path order it was trained with."""
    import numpy as np

    from fusion.rl.model_file import read_trained_on

    with np.load(path, allow_pickle=False) as npz:
        scenario = read_trained_on(npz, 0).scenario if "trained_on" in npz.files else {}
    order = scenario.get("general_settings.path_order")
    return f"{path}:path_order={order}" if order else path


def _paired(model: list[float], other: list[float]) -> dict[str, float | None]:
    return interval([(m - o) / o if o else 0.0 for m, o in zip(model, other, strict=True)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="model files (.npz; none: the heuristics only)")
    parser.add_argument("--config", help="a config file or preset (default: the embedded one)")
    parser.add_argument("--erlang", type=float, help="the load (default: the config's)")
    parser.add_argument("--seeds", default="1000-1002", help="held-out seeds")
    parser.add_argument("--requests", type=int, help="requests per seed (default: the config's)")
    parser.add_argument("--workers", type=int, help="processes")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        if args.erlang is not None:
            config = config.replace("general_settings", erlang=args.erlang)
        if args.requests is not None:
            config = config.replace("general_settings", num_requests=args.requests)
        seeds = parse_seeds(args.seeds)
        specs = heuristic_specs(config)
        args.models = [_model_spec(path) for path in args.models]
        report = evaluate_policies(
            config, [*specs, *args.models], seeds=seeds, workers=args.workers
        )
    except PolicySpecError as exc:
        parser.error(str(exc))
    except (FusionError, ValueError) as exc:
        print(f"learned_vs_heuristics: {exc}", file=sys.stderr)
        return 1
    rows = {row["spec"]: row for row in report["policies"]}
    per_seed = {spec: [r["blocking"] for r in row["per_seed"]] for spec, row in rows.items()}
    heuristics = [s for s in rows if s not in args.models]
    ranked = sorted(heuristics, key=lambda s: rows[s]["blocking"]["mean"])
    print(
        f"{args.config or 'default'} at {config.general.erlang:g} Erlang, seeds {list(seeds)}, "
        f"{config.general.num_requests} requests each"
    )
    print(f"{'policy':<44} {'blocking %':>11} {'vs KSP-FF %':>12}")
    for spec in [*ranked, *args.models]:
        row = rows[spec]
        print(
            f"{spec:<44} {100 * row['blocking']['mean']:>11.3f} "
            f"{100 * row['vs_ksp_ff']['mean']:>+12.2f}"
        )
    best = ranked[0]
    print(f"best heuristic on these seeds: {best}")
    for model in args.models:
        for label, other in (("KSP-FF", "ksp_ff"), ("the best heuristic", best)):
            if other not in per_seed:
                other = "ksp_ff:path_order=length" if other == "ksp_ff" else other
            paired = _paired(per_seed[model], per_seed[other])
            low, high = paired["ci95_low"], paired["ci95_high"]
            span = f"[{100 * low:+.2f}, {100 * high:+.2f}]" if low is not None else "[n/a]"
            print(
                f"{model}: paired relative blocking vs {label} ({other}): "
                f"{100 * paired['mean']:+.2f} % {span}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
