"""Where an arrival's time goes: cProfile of one seed per scenario, logging off and on.

    python scripts/profile_arrival.py [-n 30000]

Prints, per scenario (the default, ``deeprmsa-nsfnet`` at 250 E, ``ptrnet-rsa-40-nsfnet`` at
200 E), the microseconds per request under cProfile and the seven functions with the most own
time (``docs/profile.md`` holds a run). cProfile inflates every call: read the shares.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile

from fusion.config.config import load_config
from fusion.run.simulation import run_simulation
from fusion.sim.engine import SimulationEngine


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=30_000, help="requests per run")
    n = parser.parse_args(argv).n
    scenarios = {
        "default": load_config().replace("general_settings", num_requests=n),
        "deeprmsa-nsfnet 250E": load_config("deeprmsa-nsfnet").replace(
            "general_settings", num_requests=n, warmup_requests=0
        ),
        "ptrnet-rsa-40-nsfnet 200E": load_config("ptrnet-rsa-40-nsfnet").replace(
            "general_settings", num_requests=n, warmup_requests=0, erlang=200
        ),
    }
    for name, cfg in scenarios.items():
        SimulationEngine(cfg.replace("general_settings", num_requests=5000), 1).run()  # warm
        for mode in ("off", "on"):
            profile = cProfile.Profile()
            with tempfile.TemporaryDirectory() as work:
                on = cfg.replace(
                    "dataset_logging", dataset_output_path=f"{work}/offline_data.jsonl"
                )
                profile.enable()
                if mode == "off":
                    SimulationEngine(cfg, 1).run()
                else:
                    run_simulation(on, 1, overwrite=True)
                profile.disable()
            stats = pstats.Stats(profile)
            print(f"## {name}, logging {mode}: {1e6 * stats.total_tt / n:.1f} us per request")
            rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:7]  # type: ignore[attr-defined]
            for (where, line, function), (_, calls, own, _, _) in rows:
                print(
                    f"  {1e6 * own / n:6.2f} us  {function} ({where.split('/')[-1]}:{line}) "
                    f"x{calls / n:.2f}/req"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
