"""Publishing the suite to Minari: each built dataset as ``fusion/<preset>/<behaviour>-v0``
with reference scores in Minari's return units and an evaluation env spec.

Each dataset goes through the existing export (:func:`fusion.interop.minari_export.export_minari`:
one episode per seed) into Minari's datasets directory (``MINARI_DATASETS_PATH``, default
``~/.minari/datasets``); a ``--quick`` build publishes under ``fusion-quick/`` instead, so a
test never clashes with a real build. ``mixed`` (a study over the heuristics x path orders)
is published as ONE dataset, ``fusion/<preset>/mixed-v0``: one episode per point and seed,
points in the study's order, ``infos["point"]`` an index into ``metadata["fusion_points"]``
(each episode's policy and path order), and per step what chose the action
(``infos["behaviour"]``, ``infos["explored"]``, ``infos["propensity"]``; see
:mod:`fusion.interop.minari_export`). Its metadata holds:

- ``ref_min_score`` / ``ref_max_score``: the mean episode return of the random policy
  (``random_feasible``) and of the expert (the build's recorded choice) on the suite's
  evaluation seeds, each run through the engine with the preset's config at its load, exactly
  as ``fusion evaluate`` and the benchmark's report run them (each policy routes its own
  warm-up). An episode is one seed's ``N`` measured requests and its rewards are +1 routed,
  -1 blocked, so its return is ``routed - blocked = N (1 - 2 BP)`` (:func:`episode_return`).
  The four datasets of a preset record the same two figures.
- ``eval_env_spec``: ``fusion/EONRouting-v0`` with the preset at its load, the suite's
  requests and warm-up, the dataset's path order (so the action space means what the data's
  actions mean; ``mixed``, whose points rank paths under every order, takes the preset's own,
  as ``ksp-ff``), the evaluation seeds, logging off and a KSP-FF warm-up (the literature's
  baseline; the env runs the warm-up before the agent acts), so
  ``dataset.recover_environment(eval_env=True)`` builds it. ``mixed``'s env spec is that
  config too (its points ran under every path order; see the export).

**The two normalizations.** ``minari.get_normalized_score(dataset, R)`` is
``(R - ref_min_score) / (ref_max_score - ref_min_score)``, on a 0 .. 1 scale (Minari does not
multiply by 100; :mod:`fusion.report.scores` does). With ``N`` the same on every seed (the
suite's ``requests``), ``R = N (1 - 2 BP)`` is affine in blocking, so Minari's score of a mean
return is exactly ``normalized_score(mean BP, mean BP_random, mean BP_expert) / 100``: the
expert's and the random's evaluation returns give 1 and 0, as the report's 100 and 0, and
any other policy's mean return gives the report's score / 100 (the report fixes the
references' mean blocking over the seeds, as Minari's reference scores are fixed).

Publishing again is a no-op for an id that records the same card sha256 and is refused for an
id holding other data (Minari never overwrites an id).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fusion.benchmark.build import dataset_directory, read_choice, rebuild_command
from fusion.benchmark.cards import read_card
from fusion.benchmark.suite import DatasetSpec
from fusion.config.config import Config, format_seeds
from fusion.errors import DatasetError, MinariIdExistsError
from fusion.interop.minari_export import check_dataset_id, export_minari
from fusion.optional import require
from fusion.run.evaluate import evaluate_policies

__all__ = [
    "RANDOM_POLICY",
    "WARMUP_POLICY",
    "PublishResult",
    "episode_return",
    "eval_config",
    "minari_id",
    "publish_suite",
    "reference_returns",
]

#: The policy ``ref_min_score`` is measured on (the suite's ``random`` behaviour).
RANDOM_POLICY = "random_feasible"
#: The policy that routes the evaluation env's warm-up (the literature's baseline).
WARMUP_POLICY = "ksp_ff"
#: The namespaces: a real build's and a ``--quick`` build's (never a reference).
NAMESPACE, QUICK_NAMESPACE = "fusion", "fusion-quick"


@dataclass
class PublishResult:
    """How one dataset's publishing ended.

    :param spec: The dataset.
    :param dataset_id: Its Minari id.
    :param status: ``published`` (now) or ``kept`` (published before with the same card
        sha256).
    :param steps: Steps written (0 unless published now).
    :param references: :func:`reference_returns` of its preset (``None`` unless published now).
    """

    spec: DatasetSpec
    dataset_id: str
    status: str
    steps: int = 0
    references: dict[str, Any] | None = None


def minari_id(spec: DatasetSpec) -> str:
    """A dataset's Minari id: ``fusion/<preset>/<behaviour>-v<N>`` for suite ``vN``, under
    ``fusion-quick/`` when built with ``--quick``.

    >>> from fusion.benchmark.suite import load_suite
    >>> minari_id(load_suite().datasets()[1])
    'fusion/deeprmsa-nsfnet/ksp-ff-v0'
    >>> minari_id(load_suite(quick=True).datasets()[2])
    'fusion-quick/deeprmsa-nsfnet/expert-v0'
    """
    version = spec.version[1:] if spec.version[:1] == "v" else spec.version
    namespace = QUICK_NAMESPACE if spec.quick else NAMESPACE
    dataset_id = f"{namespace}/{spec.preset}/{spec.behaviour}-v{version}"
    check_dataset_id(dataset_id)
    return dataset_id


def episode_return(blocking: float, requests: int) -> float:
    """An evaluation episode's return from its blocking: ``routed - blocked = N (1 - 2 BP)``
    for ``N`` requests with reward +1 routed, -1 blocked.

    :param blocking: The seed's request blocking probability (``blocked / N``).
    :param requests: ``N``, the measured requests (the episode's steps).

    >>> episode_return(0.25, 200), episode_return(0.0, 150)
    (100.0, 150.0)
    """
    blocked = round(blocking * requests)  # (BP is blocked / N: the count comes back exactly)
    return float(requests - 2 * blocked)


def eval_config(spec: DatasetSpec, path_order: str, seeds: Sequence[int]) -> Config:
    """The evaluation env's config: the preset at its load with the suite's sizes, the
    dataset's path order, the evaluation seeds, logging off (no epsilon-mix, no spectrum) and
    a :data:`WARMUP_POLICY` warm-up: the same for every dataset of a preset but the path
    order.

    :param spec: The dataset.
    :param path_order: Its path order (the expert's choice for ``expert``).
    :param seeds: The evaluation seeds.

    >>> from fusion.benchmark.suite import load_suite
    >>> cfg = eval_config(load_suite().datasets()[0], "hops", [1000, 1001])
    >>> cfg.general.seeds, cfg.general.path_order, cfg.policy.policy, cfg.dataset.log_offline_dataset
    ((1000, 1001), 'hops', 'ksp_ff', False)
    >>> mixed = load_suite().datasets()[3]
    >>> eval_config(mixed, "hops", [1000]).to_dict() == eval_config(
    ...     load_suite().datasets()[1], "hops", [1000]).to_dict()
    True
    """
    config = spec.config(WARMUP_POLICY, path_order)
    config = config.replace("general_settings", seeds=format_seeds(list(seeds)))
    return config.replace(
        "dataset_logging", log_offline_dataset=False, epsilon_mix=0, log_spectrum="false"
    )


def reference_returns(
    spec: DatasetSpec,
    expert: str,
    seeds: Sequence[int],
    workers: int | None = None,
) -> dict[str, Any]:
    """The random policy's and the expert's episode returns on the evaluation seeds, through
    the engine with the preset's config at its load (:func:`fusion.run.evaluate.evaluate_policies`).

    :param spec: Any dataset of the preset (its config; the policy is set per run).
    :param expert: The expert's ``fusion evaluate`` spec (its recorded choice).
    :param seeds: The evaluation seeds.
    :param workers: Processes (default: every core; 1 runs here).
    :raises ValueError: when the expert's mean return is not above the random policy's (no
        scale between them), naming the preset and the seeds.
    :return: ``{"seeds", "requests", "random", "expert", "ref_min_score", "ref_max_score"}``;
        ``random`` / ``expert`` are ``{"spec", "blocking", "returns"}`` per seed.
    """
    report = evaluate_policies(
        spec.config(), [RANDOM_POLICY, expert], seeds=list(seeds), workers=workers
    )
    rows = {row["spec"]: row for row in report["policies"]}
    references: dict[str, Any] = {"seeds": list(seeds), "requests": report["requests"]}
    for role, policy in (("random", RANDOM_POLICY), ("expert", expert)):
        per_seed = rows[policy]["per_seed"]
        references[role] = {
            "spec": policy,
            "blocking": {r["seed"]: r["blocking"] for r in per_seed},
            "returns": {r["seed"]: episode_return(r["blocking"], r["requests"]) for r in per_seed},
        }
    low, high = (
        sum(references[role]["returns"].values()) / len(seeds) for role in ("random", "expert")
    )
    if not high > low:
        raise ValueError(
            f"{spec.preset}: on evaluation seeds {format_seeds(list(seeds))} the expert "
            f"({expert}) returns {high:g} on average and the random policy {low:g}: no scale "
            "between them (use more requests or other seeds)"
        )
    references["ref_min_score"], references["ref_max_score"] = low, high
    return references


def _sha_note(sha256: str) -> str:
    return f"card sha256 {sha256}"


def _published(dataset_id: str) -> dict[str, Any] | None:
    """The metadata of a local Minari dataset ``dataset_id``, ``None`` when there is none
    (under ``MINARI_DATASETS_PATH``, default ``~/.minari/datasets``, as the export's)."""
    where = os.environ.get("MINARI_DATASETS_PATH")
    root = Path.home() / ".minari" / "datasets" if where is None else Path(where)
    if not (root / dataset_id).exists():
        return None
    minari = require("minari", "minari", "fusion benchmark publish")
    return dict(minari.load_dataset(dataset_id).storage.metadata)


def publish_suite(
    specs: Sequence[DatasetSpec],
    out: str | os.PathLike[str],
    eval_seeds: Sequence[int],
    *,
    workers: int | None = None,
    on_result: Callable[[PublishResult], None] | None = None,
) -> list[PublishResult]:
    """Publish each built dataset to Minari, ``mixed`` as one dataset of its study (see the
    module docstring).

    :param specs: The datasets (:meth:`~fusion.benchmark.suite.Suite.datasets`).
    :param out: The build's output directory.
    :param eval_seeds: The suite's evaluation seeds (the reference returns and the eval env).
    :param workers: Processes for the reference runs (default: every core).
    :param on_result: Called as each dataset ends (the command prints a line).
    :raises DatasetError: for a dataset not built (naming the command that builds it), or
        built with another ``--quick``.
    :raises MinariIdExistsError: for an id that holds other data.
    :raises ValueError: as :func:`reference_returns`.
    """
    references: dict[str, dict[str, Any]] = {}  # per preset, run once when needed
    results = []
    for spec in specs:
        dataset_id = minari_id(spec)
        result = _publish_one(spec, dataset_id, out, eval_seeds, workers, references)
        results.append(result)
        if on_result is not None:
            on_result(result)
    return results


def _publish_one(
    spec: DatasetSpec,
    dataset_id: str,
    out: str | os.PathLike[str],
    eval_seeds: Sequence[int],
    workers: int | None,
    references: dict[str, dict[str, Any]],
) -> PublishResult:
    directory = dataset_directory(out, spec)
    card = read_card(directory)
    if card is None or not card.get("sha256"):
        raise DatasetError(
            f"{directory}: not built (no card); build it first: {rebuild_command(spec, out)}"
        )
    if bool(card.get("quick")) != spec.quick:
        built = "with" if card.get("quick") else "without"
        raise DatasetError(
            f"{directory}: built {built} --quick, so publish it {built} --quick (a --quick "
            f"build is published as {QUICK_NAMESPACE}/..., never as a reference)"
        )
    existing = _published(dataset_id)
    if existing is not None:
        if _sha_note(card["sha256"]) in str(existing.get("description", "")):
            return PublishResult(spec, dataset_id, "kept")
        raise MinariIdExistsError(
            f"Minari dataset {dataset_id!r} exists and holds other data than {directory} "
            f"(its description does not record {_sha_note(card['sha256'])}); Minari never "
            f"overwrites an id: remove it (minari delete {dataset_id}) to publish this build"
        )
    choice = read_choice(spec, out)
    if spec.preset not in references:
        references[spec.preset] = reference_returns(spec, choice["spec"], eval_seeds, workers)
    refs = references[spec.preset]
    path_order = choice["path_order"] if spec.kind == "expert" else spec.config().general.path_order
    config = eval_config(spec, path_order, eval_seeds)
    mixed = spec.kind == "mixed"
    what = "a study of every heuristic under every path order, " if mixed else ""
    note = (
        f"benchmark {spec.version} dataset {spec.name}, {what}{_sha_note(card['sha256'])}; "
        f"ref_min_score / ref_max_score: the mean episode return (routed - blocked) of "
        f"{RANDOM_POLICY} and of the expert {choice['spec']} on evaluation seeds "
        f"{format_seeds(list(eval_seeds))}, each routing its own warm-up; "
        f"{'env and eval env' if mixed else 'eval env'}: the preset "
        f"at {spec.erlang:g} Erlang, path_order {path_order}, a {WARMUP_POLICY} warm-up"
    )
    steps = export_minari(
        directory,
        dataset_id,
        author="fusion benchmark",
        eval_config=config.to_dict(),
        ref_scores=(refs["ref_min_score"], refs["ref_max_score"], len(eval_seeds)),
        note=note,
    )
    return PublishResult(spec, dataset_id, "published", steps, refs)
