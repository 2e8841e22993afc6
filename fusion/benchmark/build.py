"""Building the suite: each dataset through the sweep (or, for ``mixed``, the study) code, then
its data card.

Every dataset goes into ``OUT/<version>/<preset>/<behaviour>/`` and is run with the sweeps'
``--resume`` semantics: one run owns the directory (the sweep's lease), complete shards whose
sha256 still matches are kept and every other seed runs again, so a build killed at any point
is finished by building again. A dataset whose card is written and whose shards are all
complete is skipped. The ``expert`` is chosen first, on the suite's tuning seeds, by paired
blocking (:func:`choose_expert`, every heuristic under every path order through
:func:`fusion.run.evaluate.evaluate_policies`); its choice is kept in
``OUT/<version>/<preset>/expert.choice.json`` and written into the expert's card.

    >>> import tempfile
    >>> from fusion.benchmark.suite import load_suite
    >>> suite = load_suite(quick=True)
    >>> spec = suite.datasets(["maskrsa-nsfnet"])[1]
    >>> out = tempfile.mkdtemp()
    >>> [r.status for r in build_suite([spec], out, workers=1, quiet=True)]
    ['built']
    >>> [r.status for r in build_suite([spec], out, workers=1, quiet=True)]
    ['kept']
"""

from __future__ import annotations

import hashlib
import os
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from tqdm import tqdm

from fusion import __version__
from fusion.benchmark.cards import (
    WALL_CLOCK_FIELD,
    check_shards,
    content_sha256,
    dataset_size,
    read_card,
    write_card,
)
from fusion.benchmark.files import write_own_json
from fusion.benchmark.suite import DatasetSpec, expert_candidates, mixed_grid
from fusion.config.grid import parse_grid
from fusion.errors import DatasetError, FusionError
from fusion.report.scores import change_interval
from fusion.run.evaluate import evaluate_policies, split_spec
from fusion.run.study import run_study
from fusion.run.sweep import run_sweep
from fusion.storage.dataset_identity import config_sha256
from fusion.storage.statuses import STATUS_FAILED

__all__ = [
    "BuildResult",
    "build_suite",
    "choice_inputs",
    "choose_expert",
    "dataset_directory",
    "read_choice",
]

CHOICE_FILE = "expert.choice.json"


@dataclass
class BuildResult:
    """How one dataset's build ended.

    :param spec: The dataset.
    :param directory: Its directory.
    :param status: ``built`` (run now, wholly or resumed) or ``kept`` (complete already).
    :param card: Its card.
    :param seconds: Time spent on it in this build.
    """

    spec: DatasetSpec
    directory: Path
    status: str
    card: dict[str, Any]
    seconds: float


def dataset_directory(out: str | os.PathLike[str], spec: DatasetSpec) -> Path:
    """``OUT/<version>/<preset>/<behaviour>``.

    >>> from fusion.benchmark.suite import load_suite
    >>> dataset_directory("b", load_suite().datasets()[0]).as_posix()
    'b/v0/deeprmsa-nsfnet/random'
    """
    return Path(out).expanduser() / spec.version / spec.preset / spec.behaviour


def rebuild_command(spec: DatasetSpec, out: str | os.PathLike[str]) -> str:
    """The command that rebuilds a dataset (and the others of its preset).

    >>> from fusion.benchmark.suite import load_suite
    >>> rebuild_command(load_suite(quick=True).datasets()[0], "b")
    'fusion benchmark build --preset deeprmsa-nsfnet --out b --quick'
    """
    words = ["fusion", "benchmark", "build", "--preset", spec.preset, "--out", os.fspath(out)]
    if spec.quick:
        words.append("--quick")
    return shlex.join(words)


def choose_expert(
    spec: DatasetSpec, out: str | os.PathLike[str], workers: int | None = None
) -> dict[str, Any]:
    """The expert of a preset: of every heuristic under every path order, the one with the
    lowest blocking on the tuning seeds (each candidate runs the same seeds, so the
    differences are paired; a tie goes to the first in the registry's order). Kept in
    ``OUT/<version>/<preset>/expert.choice.json`` and read back by a later build only when
    everything the choice depends on is the same (:func:`choice_inputs`: the preset's config,
    seeds, load, sizes, the candidates, fusion's version); else chosen again.

    The runner-up is recorded with the paired change of the chosen one against it
    (``vs_runner_up``, a 95 % interval over the tuning seeds): an interval that holds 0 says
    the choice is a near tie, which a reader of the card should know.

    :param spec: The ``expert`` dataset.
    :param out: The build's output directory.
    :param workers: Processes.
    :return: ``{"spec", "policy", "path_order", "blocking", "ksp_ff_blocking",
        "vs_ksp_ff", "runner_up", "vs_runner_up", "candidates", **choice_inputs(spec)}``.
    """
    path = dataset_directory(out, spec).with_name(CHOICE_FILE)
    inputs = choice_inputs(spec)
    try:
        kept = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        kept = None
    if isinstance(kept, dict) and all(kept.get(k) == v for k, v in inputs.items()):
        return kept
    candidates = expert_candidates()
    report = evaluate_policies(spec.config(), candidates, seeds=spec.tune_seeds, workers=workers)
    rows = [r for r in report["policies"] if r["spec"] in set(candidates)]
    ranked = sorted(rows, key=lambda r: r["blocking"]["mean"])  # stable: a tie keeps order
    best, runner_up = ranked[0], ranked[1]
    baseline = report["policies"][0]
    name, overrides = split_spec(best["spec"])
    per_seed = {r["spec"]: {s["seed"]: s["blocking"] for s in r["per_seed"]} for r in rows}
    choice = {
        "spec": best["spec"],
        "policy": name,
        "path_order": next(v for _, k, v in overrides if k == "path_order"),
        "blocking": best["blocking"]["mean"],
        "ksp_ff_blocking": baseline["blocking"]["mean"],
        "vs_ksp_ff": best["vs_ksp_ff"],
        "runner_up": runner_up["spec"],
        "vs_runner_up": change_interval(per_seed[best["spec"]], per_seed[runner_up["spec"]]),
        **inputs,
        "candidates": {r["spec"]: r["blocking"]["mean"] for r in rows},
    }
    write_own_json(path, choice, own=("spec", "candidates"))
    return choice


def choice_inputs(spec: DatasetSpec) -> dict[str, Any]:
    """What the expert's choice depends on, recorded in ``expert.choice.json``: a kept
    choice is reused only when all of it is the same.

        >>> from fusion.benchmark.suite import load_suite
        >>> sorted(choice_inputs(load_suite(quick=True).datasets()[2]))
        ['candidates_sha256', 'config_sha256', 'erlang', 'fusion_version', 'quick', 'requests', 'tune_seeds', 'warmup_requests']
    """
    blob = orjson.dumps(expert_candidates())
    return {
        "config_sha256": config_sha256(spec.config().identity()),
        "erlang": spec.erlang,
        "tune_seeds": list(spec.tune_seeds),
        "requests": spec.requests,
        "warmup_requests": spec.warmup_requests,
        "quick": spec.quick,
        "candidates_sha256": hashlib.sha256(blob).hexdigest(),
        "fusion_version": __version__,
    }


def read_choice(spec: DatasetSpec, out: str | os.PathLike[str]) -> dict[str, Any]:
    """The preset's expert choice, as its build recorded it (``expert.choice.json``).

    :param spec: One of the preset's datasets.
    :param out: The build's output directory.
    :raises DatasetError: naming the file and the command that builds it, when it is missing,
        unreadable or lacks the choice.
    """
    path = dataset_directory(out, spec).with_name(CHOICE_FILE)
    try:
        choice = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise DatasetError(
            f"{path}: no expert choice of {spec.preset} ({exc}); build it first: "
            f"{rebuild_command(spec, out)}"
        ) from None
    if not isinstance(choice, dict) or not {"spec", "path_order"} <= choice.keys():
        raise DatasetError(f"{path}: expected the keys 'spec' and 'path_order' of the choice")
    return choice


def _restore_choice(spec: DatasetSpec, directory: Path, card: dict[str, Any]) -> None:
    """A complete expert dataset whose ``expert.choice.json`` went missing gets it back from
    its card (which records the choice it was built with), so that evaluate and publish find
    it; a choice file present is left as it is."""
    path = directory.with_name(CHOICE_FILE)
    if spec.kind == "expert" and not path.exists() and isinstance(card.get("expert_choice"), dict):
        write_own_json(path, card["expert_choice"], own=("spec", "candidates"))


def _is_complete(spec: DatasetSpec, directory: Path) -> bool:
    """Whether the dataset was built whole for this very spec: its card names the spec's
    seeds, sizes and quickness, and every planned shard is still complete and the bytes its
    manifest records."""
    card = read_card(directory)
    if card is None or not card.get("sha256"):
        return False
    wanted = {
        "seeds": list(spec.seeds),
        "requests": spec.requests,
        "warmup_requests": spec.warmup_requests,
        "quick": spec.quick,
        "erlang": spec.erlang,
    }
    if any(card.get(k) != v for k, v in wanted.items()):
        return False
    try:
        check_shards(directory)  # a planned shard not complete, or changed since: build again
    except (DatasetError, FusionError, OSError, KeyError):
        return False
    return True


def _run(
    spec: DatasetSpec,
    directory: Path,
    out: str | os.PathLike[str],
    workers: int | None,
    quiet: bool,
) -> tuple[dict[str, Any], str]:
    """Run (or resume) one dataset; return what its card says of its behaviour and its
    config sha256.

    :raises FusionError: when a seed failed (building again resumes it).
    """
    behaviour: dict[str, Any]
    if spec.kind == "mixed":
        config = spec.config()
        axes = parse_grid(config, mixed_grid())
        study = run_study(
            config, axes, seeds=spec.seeds, workers=workers, out=directory, resume=True, quiet=quiet
        )
        failed = [o for _, outs in study.points for o in outs if o.status == STATUS_FAILED]
        behaviour = {"grid": {axis.key: list(axis.values) for axis in axes}}
    else:
        policy, path_order = spec.policy, ""
        behaviour = {"policy": spec.policy}
        if spec.kind == "expert":
            choice = choose_expert(spec, out, workers)
            policy, path_order = choice["policy"], choice["path_order"]
            behaviour = {"policy": policy, "path_order": path_order, "expert_choice": choice}
        config = spec.config(policy, path_order)
        sweep = run_sweep(
            config, seeds=spec.seeds, workers=workers, out=directory, resume=True, quiet=quiet
        )
        failed = [o for o in sweep.seeds if o.status == STATUS_FAILED]
    if failed:
        raise FusionError(
            f"{directory}: {len(failed)} run(s) failed ({failed[0].error}); fix the cause and "
            "build again to resume"
        )
    return behaviour, config_sha256(config.identity())


def _card(
    spec: DatasetSpec,
    directory: Path,
    behaviour: dict[str, Any],
    config_hash: str,
) -> dict[str, Any]:
    return {
        "suite": spec.version,
        "dataset": spec.name,
        "preset": spec.preset,
        "behaviour": spec.behaviour,
        "kind": spec.kind,
        **behaviour,
        "erlang": spec.erlang,
        "seeds": list(spec.seeds),
        "requests": spec.requests,
        "warmup_requests": spec.warmup_requests,
        "epsilon_mix": spec.epsilon_mix,
        "log_spectrum": spec.log_spectrum,
        "path_features": spec.path_features,
        "shard_compression": spec.shard_compression,
        "quick": spec.quick,
        "size": dataset_size(directory),
        "sha256": content_sha256(directory),
        "sha256_of": (
            "the records without " + ".".join(WALL_CLOCK_FIELD) + ", keys sorted, shards in "
            "seed order (points in study order): fusion.benchmark.cards.content_sha256"
        ),
        "config_sha256": config_hash,
        "directory": spec.behaviour + "/",
        "rebuild": rebuild_command(spec, "OUT"),
        "rebuild_out": f"OUT: the directory that holds {spec.version}/ (this card is "
        f"OUT/{spec.version}/{spec.preset}/{spec.behaviour}.card.json)",
        "fusion_version": __version__,
    }


def build_suite(
    specs: Sequence[DatasetSpec],
    out: str | os.PathLike[str],
    *,
    workers: int | None = None,
    quiet: bool = False,
    on_result: Callable[[BuildResult], None] | None = None,
) -> list[BuildResult]:
    """Build (or resume, or skip when complete) each dataset, then write its card.

    :param specs: The datasets (:meth:`Suite.datasets`).
    :param out: The output directory (datasets go to ``OUT/<version>/<preset>/<behaviour>``).
    :param workers: Parallel tasks (default: every core).
    :param quiet: No progress bars.
    :param on_result: Called as each dataset ends (the command prints a line).
    :raises FusionError: when a run failed (building again resumes).
    :raises ManifestConflictError: when a directory holds a dataset of another config (a
        quick build where a full one is, or the reverse).
    """
    results = []
    bar = tqdm(
        total=len(specs),
        unit="dataset",
        desc="benchmark",
        disable=quiet or not sys.stderr.isatty(),
        file=sys.stderr,
    )
    try:
        for spec in specs:
            started = time.monotonic()
            directory = dataset_directory(out, spec)
            bar.set_postfix_str(spec.name)
            if _is_complete(spec, directory):
                card = read_card(directory) or {}
                _restore_choice(spec, directory, card)
                result = BuildResult(spec, directory, "kept", card, 0.0)
            else:
                behaviour, config_hash = _run(spec, directory, out, workers, quiet)
                card = _card(spec, directory, behaviour, config_hash)
                write_card(directory, card)
                result = BuildResult(spec, directory, "built", card, time.monotonic() - started)
            results.append(result)
            if on_result is not None:
                on_result(result)
            bar.update(1)
    finally:
        bar.close()
    return results
