"""Evaluating the suite: the references, KSP-FF and the learners on the evaluation seeds, scored.

Per preset, on the evaluation seeds (the suite's, or any others), every policy runs the same
seeds (paired): ``random`` (``random_feasible``), ``expert`` (the heuristic and path order the
build chose, ``expert.choice.json``), ``ksp-ff``, and each learner (:data:`LEARNERS`) trained
on the preset's ``mixed`` dataset with the hyperparameters :data:`HYPERPARAMETERS` fixes for
the whole suite. Each gets its blocking, its normalized score (:mod:`fusion.report.scores`:
0 = random, 100 = expert, the references' mean blocking over the seeds fixed as D4RL's and
Minari's are, with a paired Student's t 95% interval) and its change against KSP-FF, paired.

A learner trains on the ``mixed`` points of one path order (:data:`TRAIN_ON`): an action is
a path index under one order, so pooling the four orders would alias one index under four
paths. That order is the preset's own, and the model runs under it as ``ksp-ff`` does; a
learner whose ``support_policy`` is :data:`EXPERT` (``afterstate-expert``) re-ranks the
expert's first two choices instead, so it trains on the points of the expert's path order and
runs under that order, as the expert does. The expert is chosen on the tuning seeds only, so
this per-preset choice is a rule stated in advance, never a look at the evaluation seeds.
``afterstate-placed`` is ``afterstate-expert`` that may also place each request itself (first-,
last- or best-fit, where the afterstate is worth most): whether it does is chosen per preset
on the same tuning seeds (:data:`TUNED`), the model recording what each choice blocked there.

Evaluation seeds over which ``random`` and ``expert`` block alike on average (tiny ``--quick``
runs where both block nothing) leave no room for a score: no policy is scored, the seeds are
named under ``unscored_seeds``, and the blocking and the change against KSP-FF are kept.

Results go to ``OUT/<version>/<preset>/results.json``, models to ``OUT/<version>/<preset>/
models/<learner>.npz`` with a ``.json`` beside each (the data's sha256 and the
hyperparameters): evaluating again skips a preset whose results are for the same seeds,
learners, data and hyperparameters, and reuses a model trained on the same data; a model file
for another scenario is refused (:meth:`~fusion.rl.model_file.TrainedOn.check`), never
replaced.

    >>> sorted(HYPERPARAMETERS) == sorted(LEARNERS), TRAIN_ON
    (True, 'mixed')
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from fusion import __version__
from fusion.benchmark.build import dataset_directory, read_choice, rebuild_command
from fusion.benchmark.cards import read_card
from fusion.benchmark.files import write_own_json
from fusion.benchmark.suite import DatasetSpec, Suite
from fusion.config.config import Config, format_seeds
from fusion.errors import ConfigError, DatasetError, FusionError
from fusion.report.scores import score_interval, seed_scores
from fusion.run.evaluate import evaluate_policies, split_spec

if TYPE_CHECKING:
    from fusion.rl.afterstate import AfterstateModel

__all__ = [
    "HYPERPARAMETERS",
    "LEARNERS",
    "POLICY_COLUMNS",
    "TRAIN_ON",
    "EvaluateResult",
    "evaluate_preset",
    "evaluate_suite",
    "results_path",
]

#: A learner's ``support_policy`` that stands for the preset's expert: its recorded choice (a
#: heuristic and a path order, chosen on the tuning seeds) is the support, and the learner
#: trains on the ``mixed`` points of the expert's path order and runs under it.
EXPERT = "expert"
#: A learner's ``placements`` chosen per preset on the suite's tuning seeds: the support's
#: spectrum rule alone, or placing each request where the afterstate is worth most among
#: :data:`~fusion.rl.afterstate.PLACEMENTS`, whichever blocks less there (a tie keeps the
#: support's rule). A rule stated in advance, applied on seeds no score is measured on.
TUNED = "tuned"
#: The learners ``--learner`` chooses from (``fusion/rl``), in the table's order.
LEARNERS = ("bc", "fqi", "afterstate", "afterstate-expert", "afterstate-placed")
#: Every learner's hyperparameters, fixed for the whole suite: no preset is tuned by hand (the
#: issue's complaint about the recipes). They are the library's and the training scripts'
#: defaults: BC as :func:`~fusion.rl.bc.train_bc`; FQI as ``scripts/train_offline.py`` (one
#: regression on the behaviour's returns, 100 trees, support 0.1); afterstate as
#: ``scripts/train_afterstate.py`` with the support the README's recipe uses (it re-ranks
#: KSP-FF's first two choices, what an epsilon-mixed log covers).
HYPERPARAMETERS: dict[str, dict[str, Any]] = {
    "bc": {"hidden": 64, "epochs": 5, "batch_size": 256, "learning_rate": 3e-3, "seed": 0},
    "fqi": {
        "gamma": 0.99,
        "iterations": 1,
        "init": "returns",
        "max_trees": 100,
        "min_support": 0.1,
        "seed": 0,
    },
    "afterstate": {"gamma": 0.99, "ridge": 1e-3, "support_policy": "ksp_ff", "support": 2},
    "afterstate-expert": {
        "gamma": 0.99,
        "ridge": 1e-3,
        "support_policy": EXPERT,
        "support": 2,
    },
    "afterstate-placed": {
        "gamma": 0.99,
        "ridge": 1e-3,
        "support_policy": EXPERT,
        "support": 2,
        "placements": TUNED,
    },
}
#: What ``--quick`` changes (as it shrinks the data): fewer trees, so that every code path runs
#: in seconds; a quick result is no reference.
QUICK_HYPERPARAMETERS: dict[str, dict[str, Any]] = {"fqi": {"max_trees": 5}}


def hyperparameters(learner: str, quick: bool = False) -> dict[str, Any]:
    """A learner's hyperparameters (:data:`HYPERPARAMETERS`, with ``--quick``'s changes).

    >>> hyperparameters("fqi", quick=True)["max_trees"], hyperparameters("fqi")["max_trees"]
    (5, 100)
    """
    return {**HYPERPARAMETERS[learner], **(QUICK_HYPERPARAMETERS.get(learner, {}) if quick else {})}


#: The dataset every learner trains on: the only one that covers more than one choice per
#: state (epsilon 0.2 over every heuristic) and logs the spectrum the afterstate learner needs.
TRAIN_ON = "mixed"
#: The references and the baseline: table column -> the ``fusion evaluate`` policy (the
#: expert's is read from its choice).
REFERENCES = {"random": "random_feasible", "expert": "", "ksp-ff": "ksp_ff"}
#: Every column of the table, in order.
POLICY_COLUMNS = (*REFERENCES, *LEARNERS)
RESULTS_FILE = "results.json"


@dataclass
class EvaluateResult:
    """How one preset's evaluation ended.

    :param preset: The preset.
    :param path: Its ``results.json``.
    :param status: ``evaluated`` or ``kept`` (results for the same seeds existed).
    :param results: The file's content.
    """

    preset: str
    path: Path
    status: str
    results: dict[str, Any]


def results_path(
    out: str | os.PathLike[str],
    version: str,
    preset: str,
    seeds: Sequence[int] | None = None,
) -> Path:
    """``OUT/<version>/<preset>/results.json`` for the suite's evaluation seeds;
    ``results.seeds-<SEEDS>.json`` for others (``--eval-seeds``), so that a check on seeds
    nobody tuned on sits beside the suite's figures, never over them.

    >>> results_path("b", "v0", "maskrsa-nsfnet").as_posix()
    'b/v0/maskrsa-nsfnet/results.json'
    >>> results_path("b", "v0", "maskrsa-nsfnet", [2000, 2001, 2002, 2009]).name
    'results.seeds-2000-2002,2009.json'
    """
    directory = Path(out).expanduser() / version / preset
    if seeds is None:
        return directory / RESULTS_FILE
    return directory / f"results.seeds-{format_seeds(list(seeds))}.json"


def _spec(specs: Sequence[DatasetSpec], behaviour: str) -> DatasetSpec:
    return next(s for s in specs if s.behaviour == behaviour)


def _built_card(spec: DatasetSpec, out: str | os.PathLike[str]) -> dict[str, Any]:
    """A built dataset's card, checked to be of this spec (quick or not, same seeds).

    :raises FusionError: naming the dataset and the command that builds it.
    """
    directory = dataset_directory(out, spec)
    card = read_card(directory)
    build = rebuild_command(spec, out)
    if card is None or not card.get("sha256"):
        raise FusionError(f"{directory}: dataset {spec.name} is not built; run `{build}` first")
    if card.get("quick") != spec.quick or card.get("seeds") != list(spec.seeds):
        raise ConfigError(
            f"{directory}: dataset {spec.name} was built "
            f"{'with' if card.get('quick') else 'without'} --quick on seeds {card.get('seeds')}; "
            f"this evaluation wants {'a --quick' if spec.quick else 'a full'} build on seeds "
            f"{list(spec.seeds)}: run `{build}` (another --out for the other size)"
        )
    return card


def _tune_placements(
    trained: AfterstateModel, config: Config, seeds: Sequence[int], workers: int | None
) -> AfterstateModel:
    """:data:`TUNED`: the model with the placements that block less on the tuning ``seeds``
    (the support's rule on a tie), what each blocked there kept in its ``info``.

    :param trained: The model as trained (no placements).
    :param config: The preset's config under the model's path order.
    :param seeds: The suite's tuning seeds.
    :param workers: Processes.
    """
    from fusion.rl.afterstate import PLACEMENTS

    started = time.monotonic()

    choices: tuple[tuple[str, ...], ...] = ((), PLACEMENTS)
    order = config.general.path_order
    with tempfile.TemporaryDirectory() as tmp:
        specs = []
        for n, placements in enumerate(choices):
            file = Path(tmp) / f"placements{n}.npz"
            replace(trained, placements=placements).save(file)
            specs.append(f"{file}:path_order={order}")
        report = evaluate_policies(config, specs, seeds=seeds, workers=workers)
    blocking = {row["spec"]: row["blocking"]["mean"] for row in report["policies"]}
    tried = [blocking[spec] for spec in specs]
    best = min(range(len(choices)), key=lambda n: (tried[n], n))
    info = {
        **trained.info,
        "placements_tuned": {
            "seeds": list(seeds),
            "blocking": {",".join(c) or "support rule": tried[n] for n, c in enumerate(choices)},
            "seconds": round(time.monotonic() - started, 3),
        },
    }
    return replace(trained, placements=choices[best], info=info)


def _train(
    learner: str,
    data_dir: Path,
    points: dict[str, list[Any]],
    model: Path,
    options: Mapping[str, Any],
    tune: tuple[Config, Sequence[int], int | None] | None = None,
) -> None:
    """Train one learner on the dataset's points and save it (replacing a stale one).

    :param learner: Of :data:`LEARNERS`.
    :param data_dir: The ``mixed`` study.
    :param points: Its points to train on (one path order).
    :param model: The model file.
    :param options: The hyperparameters (an afterstate learner's ``support_policy`` resolved).
    :param tune: The config (under the points' order), tuning seeds and workers a
        :data:`TUNED` choice is made with.
    """
    if learner.startswith("afterstate"):
        from fusion.rl.afterstate import train_afterstate
        from fusion.rl.model_file import TrainedOn, scenario_of
        from fusion.storage.sources import resolve_parts

        options = dict(options)
        tuned = options.get("placements") == TUNED
        if tuned:
            del options["placements"]
        trained = train_afterstate(data_dir, points=points, **options)
        # train_afterstate records the scenario of the study's first point, not of the first
        # point it read: the record is set to the selected points' (one path order)
        manifest = resolve_parts(data_dir, points=points)[0].resolved.manifest
        if manifest:
            on = trained.trained_on
            trained = replace(
                trained,
                trained_on=TrainedOn(on.k_paths, on.path_features, scenario_of(manifest["config"])),
            )
        if tuned:
            if tune is None:
                raise ValueError(f"{learner}: placements are tuned, and no tuning seeds given")
            trained = _tune_placements(trained, *tune)
        trained.save(model, overwrite=True)
        return
    from fusion.datasets.arrays import to_arrays

    data = to_arrays(data_dir, points=points, cache=False)  # a reference dataset stays as built
    if learner == "bc":
        from fusion.rl.bc import train_bc
        from fusion.rl.model_file import TrainedOn

        train_bc(
            data.observations,
            data.actions,
            data.action_masks,
            trained_on=TrainedOn.of_data(data.metadata),
            **options,
        ).save(model, overwrite=True)
    else:
        from fusion.rl.fqi import train_fqi_on

        train_fqi_on(data, **options).save(model, overwrite=True)


def _check_model_scenario(model: Path, config: Config) -> None:
    """Refuse a model file here that was trained on another scenario (never replaced).

    :raises ConfigError: naming the file and each difference.
    """
    from fusion.run.evaluate import load_policy

    policy = load_policy(os.fspath(model))
    if policy is not None:
        policy.check_config(config)


def _model(
    learner: str,
    preset_dir: Path,
    data_dir: Path,
    data_sha256: str,
    points: dict[str, list[Any]],
    config: Config,
    options: Mapping[str, Any],
    tune_seeds: Sequence[int],
    workers: int | None,
) -> tuple[Path, dict[str, Any]]:
    """The learner's model file: reused when trained on the same data and hyperparameters
    (and, for a :data:`TUNED` choice, tuning seeds), else trained now.

    :return: The file and its record (``.json`` beside it).
    :raises ConfigError: for a model file of another scenario in the way.
    """
    model = preset_dir / "models" / f"{learner}.npz"
    record_file = model.with_suffix(".json")
    wanted: dict[str, Any] = {
        "learner": learner,
        "dataset": TRAIN_ON,
        "dataset_sha256": data_sha256,
        "points": points,
        "hyperparameters": dict(options),
    }
    if options.get("placements") == TUNED:
        wanted["tune_seeds"] = list(tune_seeds)
    if model.exists():
        try:
            _check_model_scenario(model, config)
        except ConfigError as exc:
            raise ConfigError(
                f"{model}: a {learner} model of another scenario is in the way ({exc}); it is "
                "not replaced: move it away or evaluate into another --out"
            ) from None
        try:
            record = orjson.loads(record_file.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            record = None
        if isinstance(record, dict) and {k: record.get(k) for k in wanted} == wanted:
            return model, record
    model.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    _train(learner, data_dir, points, model, options, (config, tune_seeds, workers))
    record = {**wanted, "train_seconds": round(time.monotonic() - started, 3)}
    write_own_json(record_file, record, own=tuple(wanted))
    return model, record


def _scored(
    row: Mapping[str, Any],
    random: Mapping[int, float],
    expert: Mapping[int, float],
    unscored: Sequence[int],
) -> dict[str, Any]:
    """One policy's entry: blocking, score over the scored seeds, change against KSP-FF."""
    blocking = {r["seed"]: r["blocking"] for r in row["per_seed"]}
    scored = {seed: bp for seed, bp in blocking.items() if seed not in unscored}
    scores = seed_scores(scored, random, expert) if scored else {}
    return {
        "spec": row["spec"],
        "blocking": row["blocking"],
        "score": score_interval(scored, random, expert) if scored else None,
        "vs_ksp_ff": row["vs_ksp_ff"],
        "per_seed": [
            {"seed": seed, "blocking": bp, "score": scores.get(seed)}
            for seed, bp in blocking.items()
        ],
    }


def evaluate_preset(
    suite: Suite,
    preset: str,
    out: str | os.PathLike[str],
    *,
    learners: Sequence[str] = LEARNERS,
    seeds: Sequence[int] | None = None,
    workers: int | None = None,
) -> EvaluateResult:
    """Evaluate one preset (or keep its results when they are for the same seeds and learners).

    :param suite: The suite (quick or not, as built).
    :param preset: One of its presets.
    :param out: The build's output directory.
    :param learners: Of :data:`LEARNERS`, in the table's order.
    :param seeds: The evaluation seeds (default: the suite's).
    :param workers: Processes for the runs.
    :raises FusionError: when a dataset or the expert's choice is not built (naming the build
        command).
    :raises ConfigError: for a build of the other size, or a model file of another scenario.

        >>> import tempfile
        >>> from fusion.benchmark.suite import load_suite
        >>> evaluate_preset(load_suite(quick=True), "maskrsa-nsfnet", tempfile.mkdtemp())
        Traceback (most recent call last):
        ...
        fusion.errors.FusionError: ...: dataset maskrsa-nsfnet/random is not built; run `fusion benchmark build --preset maskrsa-nsfnet --out ... --quick` first
    """
    unknown = [name for name in learners if name not in LEARNERS]
    if unknown:
        raise ConfigError(f"learner {unknown[0]!r}: expected one of {', '.join(LEARNERS)}")
    learners = [name for name in LEARNERS if name in learners]
    specs = suite.datasets([preset])
    held = list(seeds if seeds is not None else suite.seeds("eval"))
    mixed = _spec(specs, TRAIN_ON)
    cards = {spec.behaviour: _built_card(spec, out) for spec in specs}
    expert = str(read_choice(_spec(specs, "expert"), out)["spec"])
    config = _spec(specs, "ksp-ff").config()
    others = None if held == list(suite.seeds("eval")) else held  # (beside the suite's figures)
    path = results_path(out, suite.version, preset, others)
    identity = {
        "suite": suite.version,
        "preset": preset,
        "quick": suite.quick,
        "erlang": mixed.erlang,
        "seeds": held,
        "requests": config.general.num_requests,
        "warmup_requests": config.general.warmup_requests,
        "learners": learners,
        "expert": expert,
        "trained_on": {"dataset": TRAIN_ON, "sha256": cards[TRAIN_ON]["sha256"]},
        "hyperparameters": {name: hyperparameters(name, suite.quick) for name in learners},
    }
    try:
        kept = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        kept = None
    if isinstance(kept, dict) and {k: kept.get(k) for k in identity} == identity:
        return EvaluateResult(preset, path, "kept", kept)
    dropped = [n for n in (kept or {}).get("learners", []) if n not in learners]
    if isinstance(kept, dict) and dropped:  # the figures of a learner not asked for now
        raise ConfigError(
            f"{path}: holds the figures of {', '.join(dropped)}, which this evaluation leaves "
            f"out (--learner {' '.join(learners)}); evaluating would drop them: give every "
            "learner the file holds, or evaluate into another --out"
        )
    started = time.monotonic()
    expert_policy, expert_overrides = split_spec(expert)
    expert_order = next(
        (v for _, k, v in expert_overrides if k == "path_order"), config.general.path_order
    )
    models: dict[str, str] = {}
    failures: dict[str, str] = {}
    train_seconds: dict[str, float] = {}
    for name in learners:
        options = hyperparameters(name, suite.quick)
        order = config.general.path_order
        if options.get("support_policy") == EXPERT:  # the expert's support, under its order
            options, order = {**options, "support_policy": expert_policy}, expert_order
        try:
            model, record = _model(
                name,
                path.parent,
                dataset_directory(out, mixed),
                cards[TRAIN_ON]["sha256"],
                {"path_order": [order]},
                config.replace("general_settings", path_order=order),
                options,
                mixed.tune_seeds,
                workers,
            )
        except ConfigError:  # a model file of another scenario in the way: refused, kept
            raise
        except (ValueError, DatasetError) as exc:  # a learner that cannot use these data
            failures[name] = f"cannot train on {mixed.name}: {exc}"
            continue
        models[name] = f"{os.fspath(model)}:path_order={order}"
        train_seconds[name] = record.get("train_seconds", 0.0)
    specs_by_column = {"random": REFERENCES["random"], "expert": expert, **models}
    evaluated = time.monotonic()
    report = evaluate_policies(config, list(specs_by_column.values()), seeds=held, workers=workers)
    rows = {row["spec"]: row for row in report["policies"]}
    specs_by_column["ksp-ff"] = REFERENCES["ksp-ff"]
    blocking = {
        column: {r["seed"]: r["blocking"] for r in rows[spec]["per_seed"]}
        for column, spec in specs_by_column.items()
    }
    random, best = blocking["random"], blocking["expert"]
    # the references' gap is over all the seeds: only when it is none is no seed scored
    unscored = list(held) if sum(random[s] for s in held) == sum(best[s] for s in held) else []
    policies: dict[str, Any] = {}
    for column in POLICY_COLUMNS:
        if column in specs_by_column:
            policies[column] = _scored(rows[specs_by_column[column]], random, best, unscored)
        elif column in failures:
            policies[column] = {"error": failures[column]}
    results = {
        **identity,
        "network": report["network"],
        "unscored_seeds": unscored,
        "unscored_why": (
            "random and expert block alike on average over the evaluation seeds (no room for "
            "a score); the blocking and vs_ksp_ff are kept"
            if unscored
            else ""
        ),
        "policies": policies,
        "seconds": {
            "train": train_seconds,
            "evaluate": round(time.monotonic() - evaluated, 3),
            "total": round(time.monotonic() - started, 3),
        },
        "command": _command(preset, out, suite.quick, learners, seeds),
        "fusion_version": __version__,
    }
    write_own_json(path, results, own=("policies", "seeds"))
    return EvaluateResult(preset, path, "evaluated", results)


def _command(
    preset: str,
    out: str | os.PathLike[str],
    quick: bool,
    learners: Sequence[str],
    seeds: Sequence[int] | None,
) -> str:
    """The command that evaluates a preset so.

    >>> _command("p", "b", True, ["bc"], [1, 2])
    'fusion benchmark evaluate --preset p --out b --learner bc --eval-seeds 1,2 --quick'
    """
    words = ["fusion", "benchmark", "evaluate", "--preset", preset, "--out", os.fspath(out)]
    if list(learners) != list(LEARNERS):
        for name in learners:
            words += ["--learner", name]
    if seeds is not None:
        words += ["--eval-seeds", ",".join(map(str, seeds))]
    if quick:
        words.append("--quick")
    return " ".join(words)


def evaluate_suite(
    suite: Suite,
    out: str | os.PathLike[str],
    *,
    presets: Sequence[str] | None = None,
    learners: Sequence[str] = LEARNERS,
    seeds: Sequence[int] | None = None,
    workers: int | None = None,
    on_result: Callable[[EvaluateResult], None] | None = None,
) -> list[EvaluateResult]:
    """:func:`evaluate_preset` for each preset, in the suite's order.

    :param suite: The suite.
    :param out: The build's output directory.
    :param presets: Only these (default: all).
    :param learners: Of :data:`LEARNERS`.
    :param seeds: The evaluation seeds (default: the suite's).
    :param workers: Processes.
    :param on_result: Called as each preset ends.
    """
    if seeds is not None:
        seen = sorted(
            set(seeds) & set(suite.seeds("train")) | set(seeds) & set(suite.seeds("tune"))
        )
        if seen:
            print(
                f"note: evaluation seed(s) {', '.join(map(str, seen[:5]))} are training or "
                "tuning seeds of the suite; their scores are not held out",
                file=sys.stderr,
            )
    results = []
    for preset in suite.presets:
        if presets is not None and preset not in presets:
            continue
        result = evaluate_preset(
            suite, preset, out, learners=learners, seeds=seeds, workers=workers
        )
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results
