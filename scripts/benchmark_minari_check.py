"""Check every published benchmark dataset in Minari: it loads, ``minari.get_normalized_score``
of the random and the expert policies' mean evaluation returns gives 0 and 1, and its
evaluation env steps.

Run after ``fusion benchmark build``, ``evaluate`` and ``publish`` into the same ``OUT``, with
the ``MINARI_DATASETS_PATH`` the datasets were published to::

    python scripts/benchmark_minari_check.py benchmark

It prints a line per dataset and exits 1 when one does not load, scores otherwise or does
not step.
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
import orjson

from fusion.benchmark.evaluate import results_path
from fusion.benchmark.minari_publish import episode_return, minari_id
from fusion.benchmark.suite import load_suite
from fusion.optional import require


def check(out: str, steps: int = 50) -> bool:
    """Check each dataset of the suite; print a line each.

    :param out: The build's output directory (its ``results.json`` files give the returns).
    :param steps: How many steps to take in each evaluation env.
    :return: Whether every dataset passed.
    """
    minari = require("minari", "minari", "this check")
    ok = True
    for spec in load_suite().datasets():
        dataset_id = minari_id(spec)
        try:
            data = minari.load_dataset(dataset_id)
            results = orjson.loads(results_path(out, spec.version, spec.preset).read_bytes())
        except Exception as exc:  # (a line per dataset, whatever went wrong)
            print(f"{dataset_id}: FAILED ({exc})")
            ok = False
            continue
        try:
            scores = {}
            for reference in ("random", "expert"):
                returns = [
                    episode_return(seed["blocking"], results["requests"])
                    for seed in results["policies"][reference]["per_seed"]
                ]
                scores[reference] = float(minari.get_normalized_score(data, np.mean(returns)))
            env = data.recover_environment(eval_env=True)
            _, info = env.reset(seed=results["seeds"][0])  # an evaluation seed
            taken = 0
            for _ in range(steps):
                action = int(np.flatnonzero(info["action_mask"])[0])
                _, _, terminated, truncated, info = env.step(action)
                taken += 1
                if terminated or truncated:
                    break
        except Exception as exc:  # (a line per dataset, whatever went wrong)
            print(f"{dataset_id}: FAILED ({exc})")
            ok = False
            continue
        passed = abs(scores["random"]) < 1e-9 and abs(scores["expert"] - 1.0) < 1e-9 and taken > 0
        ok = ok and passed
        print(
            f"{dataset_id}: {data.total_episodes} episodes, {data.total_steps} steps; normalized "
            f"score of the references' returns: random {scores['random']:.6f}, expert "
            f"{scores['expert']:.6f}; eval env stepped {taken}{'' if passed else ' FAILED'}"
        )
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="the build's output directory (fusion benchmark --out)")
    args = parser.parse_args(argv)
    return 0 if check(args.out) else 1


if __name__ == "__main__":
    sys.exit(main())
