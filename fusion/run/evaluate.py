"""Policy evaluation on held-out seeds: blocking with 95% intervals, paired against KSP-FF
(and any other policy), normalized scores between a random and an expert policy.

Every policy runs the same seeds of one config (no logging, so no epsilon-mix); a seed fixes
the traffic and the failure, so the policies of a seed see the same requests and the
difference between two policies on a seed is a paired sample. For each policy the report
gives blocking overall and per window (mean, std and 95% interval across seeds, Student's
t) and the relative difference to ``ksp_ff``, ``(bp - bp_ksp_ff) / bp_ksp_ff`` per seed,
with its interval: negative means less blocking than KSP-FF. The same pair is given against
any policy asked for (``against``: ``vs_<name>``), and with ``normalize`` each policy's
normalized score, D4RL's ``100 x (BP_random - BP) / (BP_random - BP_expert)`` per seed
(:mod:`fusion.report.scores`: 0 = the random policy, 100 = the expert, paired).

A policy is a heuristic's name (:data:`fusion.sim.policies.POLICIES`) or a model file
(a :class:`~fusion.rl.bc.BCModel` or :class:`~fusion.rl.fqi.FQIModel`), with the policy's own
keys after a colon (:data:`POLICY_KEYS`: ``ksp_ff:path_order=hops``). A key that changes the
traffic, the load, the network or the failure is refused there: the policies would no longer
meet the same requests, and the table would show them under a load they did not run at; such
a key is set for every policy (``--erlang``, ``--seeds``, ``--set``).

    >>> from fusion.config.config import load_config
    >>> cfg = load_config().replace("general_settings", num_requests=500)
    >>> report = evaluate_policies(cfg, ["ksp_ff", "shortest_feasible"], seeds=[1, 2], workers=1)
    >>> [p["name"] for p in report["policies"]], report["policies"][0]["vs_ksp_ff"]["mean"]
    (['ksp_ff', 'shortest_feasible'], 0.0)
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from fusion.config.config import SECTIONS, Config, check_seed, section_fields
from fusion.errors import ConfigError
from fusion.errors import PolicySpecError as PolicySpecError  # (its home: errors.py)
from fusion.report.intervals import PROBABILITY, interval
from fusion.report.scores import change_interval, score_interval, seed_scores
from fusion.rl.model_file import model_kind
from fusion.run.pool import run_local, sigterm_as_interrupt
from fusion.sim.engine import SimulationEngine
from fusion.sim.policies import POLICIES, PathPolicy
from fusion.sim.scenario import check_scenario
from fusion.storage.schema import WINDOW_TAGS as WINDOWS

BASELINE = "ksp_ff"

#: The keys a ``--policy`` spec may set: the policy's own (which K paths it weighs and in
#: what order, where it places spectrum, what a learned policy observes). Every other key is
#: the scenario all the policies share, paired seed by seed.
POLICY_KEYS = (
    ("general_settings", "path_order"),
    ("general_settings", "k_paths"),
    ("policy_settings", "spectrum"),
    ("dataset_logging", "path_features"),
    ("dataset_logging", "holding_time_known"),
)
#: A path-only heuristic: a model's spec is checked as one (a model chooses the path only).
_PATH_ONLY = next(name for name, cls in POLICIES.items() if cls.spectrum is None)


def _instead(section: str, key: str, value: str) -> str:
    """What to use instead of a spec's ``[section] key``: the option that sets it for all."""
    if (section, key) in (
        ("general_settings", "erlang"),
        ("general_settings", "erlang_start"),
        ("general_settings", "erlang_stop"),
        ("general_settings", "erlang_step"),
    ):
        return f"the load is every policy's: use --erlang {value or 'LOADS'} (each load a table)"
    if (section, key) == ("general_settings", "seeds"):
        return f"the seeds are every policy's: use --seeds {value or 'SEEDS'}"
    if section == "dataset_logging":
        return "evaluate logs nothing, so it would change nothing"
    what = {
        "general_settings": "traffic",
        "topology_settings": "network",
        "failure_settings": "failure",
    }.get(section, "scenario")
    return (
        f"it changes the {what} every policy must share to be paired: set it for all with "
        f"--set {section}.{key}={value or 'VALUE'}"
    )


def _check_spec_key(spec: str, name: str, section: str, key: str, value: str) -> None:
    """Refuse a spec key that is not the policy's own (:data:`POLICY_KEYS`), naming it and
    what to use instead."""
    if (section, key) in POLICY_KEYS:
        return
    if (section, key) == ("policy_settings", "policy"):
        if name in POLICIES:
            why = f"the spec names the heuristic: write --policy {value or 'NAME'}"
        else:
            why = (
                "a model file is the policy (it ranks the paths itself): the key would be "
                f"ignored; to compare with {value or 'a heuristic'}, add --policy "
                f"{value or 'NAME'}"
            )
    else:
        why = _instead(section, key, value)
    raise PolicySpecError(
        f"policy {spec!r}: [{section}] {key} is not the policy's own ({why}); a spec takes "
        f"{', '.join(k for _, k in POLICY_KEYS)}"
    )


def split_spec(spec: str) -> tuple[str, list[tuple[str, str, str]]]:
    """A ``--policy`` as its policy and config overrides: ``NAME[:KEY=V[,KEY=V...]]``, a key
    being ``SECTION.KEY`` or a key name that only one section has (``path_order``,
    ``spectrum``); a model file's path is taken whole.

    :param spec: The spec, e.g. ``ksp_ff:path_order=hops``.
    :raises PolicySpecError: naming the spec for a malformed or unknown key, or a key that is
        not the policy's own (:data:`POLICY_KEYS`), with what to use instead.

        >>> split_spec("ksp_ff:path_order=hops,spectrum=first_fit")
        ('ksp_ff', [('general_settings', 'path_order', 'hops'), ('policy_settings', 'spectrum', 'first_fit')])
        >>> split_spec("ksp_ff:erlang=200")
        Traceback (most recent call last):
        ...
        fusion.errors.PolicySpecError: policy 'ksp_ff:erlang=200': [general_settings] erlang is not the policy's own (the load is every policy's: use --erlang 200 (each load a table)); ...
    """
    if Path(spec).is_file() or ":" not in spec:
        return spec, []
    name, _, rest = spec.partition(":")
    overrides = []
    for part in rest.split(","):
        key, sep, value = part.partition("=")
        key = key.strip()
        if "." in key:
            sections = [key.split(".", 1)[0]]
            key = key.split(".", 1)[1]
        else:
            sections = [s for s in SECTIONS if key in section_fields(s)]
        if (
            not sep
            or len(sections) != 1
            or sections[0] not in SECTIONS
            or key not in section_fields(sections[0])
        ):
            raise PolicySpecError(
                f"policy {spec!r}: {part!r} is not KEY=VALUE with a config key "
                "(path_order, spectrum, or SECTION.KEY)"
            )
        _check_spec_key(spec, name, sections[0], key, value.strip())
        overrides.append((sections[0], key, value.strip()))
    return name, overrides


def policy_name(spec: str) -> str:
    """What a policy is called in a report: a heuristic's name (with its overrides) or a
    model file's stem.

    :param spec: A heuristic's name or a model file's path.
    """
    name, overrides = split_spec(spec)
    if name not in POLICIES:
        name = Path(name).stem
    return name + "".join(f":{key}={value}" for _, key, value in overrides)


def spec_config(config: Config, spec: str, policy: PathPolicy | None = None) -> Config:
    """The config a policy spec runs with: its heuristic and overrides applied.

    A model chooses the path only: it allocates with ``[policy_settings] spectrum``, unless it
    brings its own rule (the afterstate model places as its support heuristic does, or where
    its values say among its ``placements``), which a
    ``spectrum=`` cannot change and is refused. Its config's ``policy`` then names a path-only
    heuristic, never run (the model is passed to the engine), so that the checks take the
    spectrum rule as the model's.

    :param config: The evaluation's config.
    :param spec: A ``--policy``.
    :param policy: The model the spec names, when the caller loaded it (else loaded here).
    :raises PolicySpecError: naming the spec when an override's value is bad.
    """
    name, overrides = split_spec(spec)
    try:
        if name in POLICIES:
            config = config.replace("policy_settings", policy=name)
        for section, key, value in overrides:
            config = config.replace(section, **{key: value})
        if name in POLICIES:
            check_scenario(config)
            return config
        model = policy if policy is not None else load_policy(spec)
        sets_spectrum = any(key == "spectrum" for _, key, _ in overrides)
        if model is not None and model.spectrum is not None and sets_spectrum:
            raise PolicySpecError(
                f"policy {spec!r}: the {model.name} model places spectrum by its own rule "
                f"({model.spectrum}), so spectrum= would change nothing; drop it"
            )
        config = config.replace("policy_settings", policy=_PATH_ONLY)
        check_scenario(config)
    except ConfigError as exc:
        raise PolicySpecError(f"policy {spec!r}: {exc}") from None
    return config


def load_policy(spec: str) -> PathPolicy | None:
    """A heuristic by name (``None``: the engine builds it from the config, with its own seeded
    generator), or the policy a model file holds.

    :param spec: A heuristic's name or a model file's path.
    :raises PolicySpecError: naming the spec when it is neither.
    """
    spec = split_spec(spec)[0]
    if spec in POLICIES:
        return None
    path = Path(spec)
    if not path.is_file():
        raise PolicySpecError(
            f"policy {spec!r}: not a heuristic ({', '.join(POLICIES)}) nor a model file"
        )
    try:
        with path.open("rb") as head:
            is_zip = head.read(4) == b"PK\x03\x04"
    except OSError as exc:
        raise PolicySpecError(f"policy {spec!r}: cannot be read: {exc}") from None
    if not is_zip:
        raise PolicySpecError(
            f"policy {spec!r}: not a model file (a model file is the .npz archive a "
            "scripts/train_*.py wrote; this file is no .npz), nor a heuristic "
            f"({', '.join(POLICIES)})"
        )
    try:
        kind = model_kind(path)
    except (OSError, ValueError) as exc:
        raise PolicySpecError(f"policy {spec!r}: not a model file (.npz): {exc}") from None
    if kind == "fqi":
        from fusion.rl.fqi import FQIPolicy

        return FQIPolicy(path)
    if kind == "bc":
        from fusion.rl.bc import BCPolicy

        return BCPolicy(path)
    if kind == "afterstate":
        from fusion.rl.afterstate import AfterstatePolicy

        return AfterstatePolicy(path)
    raise PolicySpecError(f"policy {spec!r}: an .npz that holds no FQI, BC or afterstate model")


def _run(config: Config, spec: str, seed: int) -> dict[str, Any]:
    policy = load_policy(spec)
    stats = SimulationEngine(spec_config(config, spec, policy), seed, policy=policy).run()
    requests = stats["requests"]
    return {
        "seed": seed,
        "blocking": stats["blocking_probability"],
        "blocked_by_reach": stats["blocked_by_reach"] / requests if requests else 0.0,
        "per_window": {w: c["blocking_probability"] for w, c in stats["per_window"].items()},
        "requests": requests,
    }


def _checked_arguments(
    config: Any, policies: Any, seeds: Any
) -> tuple[Config, list[str], list[int]]:
    """:func:`evaluate_policies`'s arguments checked, naming the parameter: a
    :class:`Config`, a list of policy specs, distinct seeds (any iterable of integers, numpy
    integers included).

    :raises TypeError: for an argument of the wrong type.
    :raises ValueError: for no seeds, a bad seed, a seed given twice, or no policy.
    """
    if not isinstance(config, Config):
        raise TypeError(
            f"config: expected a fusion Config (fusion.config.config.load_config(...)), got "
            f"{type(config).__name__} {config!r:.60}"
        )
    if isinstance(policies, (str, bytes, os.PathLike)) or not isinstance(policies, Iterable):
        raise TypeError(
            f"policies: expected a list of heuristic names or model files, got "
            f"{type(policies).__name__} {policies!r:.60} (write [{policies!r:.60}] for one)"
        )
    specs = list(policies)
    for spec in specs:
        if not isinstance(spec, (str, os.PathLike)):
            raise TypeError(
                f"policies: expected heuristic names or model file paths, got "
                f"{type(spec).__name__} {spec!r:.60}"
            )
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Iterable):
        raise TypeError(
            f"seeds: expected a list of integer seeds like [1, 2, 3], got "
            f"{type(seeds).__name__} {seeds!r:.60}"
        )
    checked = []
    for seed in seeds:
        if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
            seed = int(seed)
        try:
            checked.append(check_seed(seed))
        except ValueError as exc:
            raise ValueError(f"seeds: {exc}") from None
    if not checked:
        raise ValueError("seeds: no seeds to evaluate on")
    repeated = sorted({s for s in checked if checked.count(s) > 1})
    if repeated:
        raise ValueError(
            f"seeds: {', '.join(map(str, repeated))} given more than once; each seed is one "
            "paired sample, so a repeat would count it twice (and shrink the interval)"
        )
    return config, [os.fspath(spec) for spec in specs], checked


def evaluate_policies(
    config: Config,
    policies: Sequence[str],
    *,
    seeds: Sequence[int],
    workers: int | None = None,
    against: Sequence[str] = (BASELINE,),
    normalize: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """Run each policy on each seed and compare them with KSP-FF (always run, reported first)
    and with each policy of ``against``; with ``normalize``, score each policy between a
    random and an expert policy (:mod:`fusion.report.scores`).

    Every policy ``against`` or ``normalize`` names is run and reported too (after
    ``policies``, if not among them), so its own blocking stands beside the pairs.

    :param config: The config (its ``[policy_settings]`` is ignored; logging is switched off).
    :param policies: Heuristic names or model files, in the order to report them.
    :param seeds: The held-out seeds.
    :param workers: Processes (default: the CPU count; 1 runs in this process).
    :param against: Policy specs to pair every policy with, each giving a ``vs_<name>`` key
        (the first is the one :func:`format_evaluation` shows); ``vs_ksp_ff`` is always given.
    :param normalize: ``(random, expert)`` policy specs: each policy gets a ``score``, 0 for
        the first and 100 for the second, per seed.
    :raises TypeError: naming the parameter, for an argument of the wrong type.
    :raises ValueError: for no seeds, a bad or repeated seed, a bad policy spec (naming
        ``against`` or ``normalize`` for theirs), and for a seed on which the random and the
        expert policies block equally (naming it).
    :return: ``{"erlang", "seeds", "requests", "against", "normalize", "policies": [{"name",
        "spec", "blocking", "per_window", "vs_ksp_ff", "vs_<name>"..., "score", "per_seed"}]}``;
        ``blocking``, the ``vs_`` and ``score`` are :func:`~fusion.report.intervals.interval`
        dicts (``vs_`` relative; ``score`` only with ``normalize``, else ``None``); ``against``
        lists the paired names in order, ``normalize`` is ``{"random", "expert"}`` (names) or
        ``None``; each ``per_seed`` row carries its seed's ``score`` with ``normalize``.

        >>> from fusion.config.config import load_config
        >>> cfg = load_config().replace("general_settings", num_requests=1000, erlang=600)
        >>> report = evaluate_policies(cfg, ["kca_ff"], seeds=[1, 2], workers=1,
        ...     against=["shortest_feasible"], normalize=("random_feasible", "ksp_ff"))
        >>> report["against"], [p["name"] for p in report["policies"]]
        (['shortest_feasible'], ['ksp_ff', 'kca_ff', 'shortest_feasible', 'random_feasible'])
        >>> {p["name"]: p["score"]["mean"] for p in report["policies"]}["random_feasible"]
        0.0
    """
    config, policies, seeds = _checked_arguments(config, policies, seeds)
    against, references = _checked_pairs(against, normalize)
    specs = list(dict.fromkeys([BASELINE, *policies, *against, *references]))
    # evaluate logs nothing, so no epsilon-mix either (the engine mixes only with a writer):
    # a spec's k_paths=1 is not refused for a mix that never runs
    config = config.replace("dataset_logging", log_offline_dataset=False, epsilon_mix=0)
    check_scenario(config)
    roles = {spec: "normalize" for spec in references} | {spec: "against" for spec in against}
    for spec in specs:  # a bad spec fails here, before any run
        try:
            _check_policy(config, spec)
        except PolicySpecError as exc:
            if spec in policies or spec not in roles:
                raise
            raise PolicySpecError(f"{roles[spec]}: {exc}") from None
    tasks = [(config, spec, seed) for spec in specs for seed in seeds]
    results: list[dict[str, Any]] = [{}] * len(tasks)
    with sigterm_as_interrupt():
        run_local(_run, tasks, workers or os.cpu_count() or 1, results.__setitem__, inline=True)
    by_spec = {spec: results[i * len(seeds) : (i + 1) * len(seeds)] for i, spec in enumerate(specs)}
    blocking = {spec: {r["seed"]: r["blocking"] for r in by_spec[spec]} for spec in specs}
    pairs = {policy_name(spec): spec for spec in dict.fromkeys([BASELINE, *against])}
    report_rows = []
    for spec in specs:
        rows = by_spec[spec]
        row: dict[str, Any] = {
            "name": policy_name(spec),
            "spec": spec,
            "seeds": list(seeds),
            "blocking": interval([r["blocking"] for r in rows], PROBABILITY),
            "per_window": {
                tag: interval([r["per_window"][tag] for r in rows], PROBABILITY)
                for tag in WINDOWS
                if all(tag in r["per_window"] for r in rows)
            },
        }
        for name, other in pairs.items():
            row[f"vs_{name}"] = change_interval(blocking[spec], blocking[other])
        row["score"] = None
        if references:
            scores = seed_scores(blocking[spec], *(blocking[ref] for ref in references))
            row["score"] = score_interval(blocking[spec], *(blocking[ref] for ref in references))
            rows = [{**r, "score": scores[r["seed"]]} for r in rows]
        row["blocked_by_reach"] = interval([r["blocked_by_reach"] for r in rows], PROBABILITY)
        row["per_seed"] = rows
        report_rows.append(row)
    return {
        "erlang": config.general.erlang,
        "network": config.topology.network,
        "seeds": list(seeds),
        "requests": config.general.num_requests,
        "against": [policy_name(spec) for spec in against],
        "normalize": (
            None
            if normalize is None
            else {"random": policy_name(references[0]), "expert": policy_name(references[1])}
        ),
        "policies": report_rows,
    }


def _check_policy(config: Config, spec: str) -> None:
    """Fail on a bad spec before any run: unknown, a bad override, or a model trained on
    another K, feature set or scenario.

    :raises PolicySpecError: naming the spec.
    """
    policy = load_policy(spec)
    checked = spec_config(config, spec, policy)
    if policy is not None:
        try:
            policy.check_config(checked)
        except ConfigError as exc:
            raise PolicySpecError(f"policy {spec!r}: {exc}") from None


def _checked_pairs(against: Any, normalize: Any) -> tuple[list[str], tuple[str, ...]]:
    """``against`` and ``normalize`` checked: specs (strings or paths), no two ``against``
    reported under one name, two distinct references.

    :raises TypeError: naming the parameter, for an argument of the wrong type.
    :raises PolicySpecError: naming the parameter, for two specs under one name, no
        ``against``, or one policy as both references.
    """
    if isinstance(against, (str, bytes, os.PathLike)) or not isinstance(against, Iterable):
        raise TypeError(
            f"against: expected a list of policy specs, got {type(against).__name__} "
            f"{against!r:.60} (write [{against!r:.60}] for one)"
        )
    pairs = list(against)
    if normalize is None:
        references: list[Any] = []
    elif isinstance(normalize, (str, bytes, os.PathLike)) or not isinstance(normalize, Iterable):
        raise TypeError(
            f"normalize: expected (random, expert) policy specs, got "
            f"{type(normalize).__name__} {normalize!r:.60}"
        )
    else:
        references = list(normalize)
        if len(references) != 2:
            raise TypeError(
                f"normalize: expected two policy specs (random, expert), got {len(references)}"
            )
    for what, specs in (("against", pairs), ("normalize", references)):
        for spec in specs:
            if not isinstance(spec, (str, os.PathLike)):
                raise TypeError(
                    f"{what}: expected heuristic names or model file paths, got "
                    f"{type(spec).__name__} {spec!r:.60}"
                )
    pairs = list(dict.fromkeys(os.fspath(spec) for spec in pairs))
    references = [os.fspath(spec) for spec in references]
    if not pairs:
        raise PolicySpecError(f"against: no policy to pair with (give at least {BASELINE})")
    names: dict[str, str] = {}
    for spec in dict.fromkeys([BASELINE, *pairs]):
        name = policy_name(spec)
        if name in names:
            raise PolicySpecError(
                f"against: {names[name]!r} and {spec!r} would both be reported as vs_{name}; "
                "rename one model file"
            )
        names[name] = spec
    if references and policy_name(references[0]) == policy_name(references[1]):
        raise PolicySpecError(
            f"normalize: the random ({references[0]!r}) and the expert ({references[1]!r}) "
            f"would both be reported as {policy_name(references[0])}; a score needs two "
            "distinct policies"
        )
    return pairs, tuple(references)


def _change_text(rel: dict[str, Any]) -> str:
    """A relative change with its interval, and the seeds left out of it.

    >>> _change_text({"n": 1, "mean": 0.5, "std": None, "undefined_seeds": [7]})
    '+50.00% (one seed: no interval; seed 7 left out: only this policy blocks)'
    """
    if rel["mean"] is None:
        text = "undefined"
    elif rel["std"] is None:
        text = f"{rel['mean']:+.2%} (one seed: no interval)"
    else:
        text = f"{rel['mean']:+.2%} [{rel['ci95_low']:+.2%}, {rel['ci95_high']:+.2%}]"
    left = rel.get("undefined_seeds")
    if left:
        note = f"seed{'s' if len(left) > 1 else ''} {', '.join(map(str, left))} left out: only this policy blocks"
        text = text[:-1] + f"; {note})" if text.endswith(")") else f"{text} ({note})"
    return text


def format_evaluation(report: Mapping[str, Any]) -> str:
    """The report as a table: blocking [95% CI], per window, the paired difference to the
    first policy of ``against`` (KSP-FF by default) and, with ``normalize``, the score.

    :param report: From :func:`evaluate_policies`.
    """
    seeds = report["seeds"]
    versus_name = (report.get("against") or [BASELINE])[0]
    normalize = report.get("normalize")
    lines = [
        f"evaluate: {report['network']}, {report['erlang']:g} Erlang, {len(seeds)} seeds "
        f"({', '.join(map(str, seeds))}), {report['requests']} requests each",
        f"{'policy':<28} {'blocking [95% CI]':<26} {'pre':>7} {'fail':>7} {'post':>7}   "
        f"vs {versus_name} (paired, relative) [95% CI]"
        + (
            f"   score [95% CI] (paired; 0 = {normalize['random']}, 100 = {normalize['expert']})"
            if normalize
            else ""
        ),
    ]
    reach = report["policies"][0]["blocked_by_reach"]["mean"] if report["policies"] else 0.0
    lines.insert(
        1,
        f"blocked by reach (no format reaches any candidate; no policy can route these): "
        f"{reach:.4f} of requests",
    )
    for row in report["policies"]:
        bp = row["blocking"]
        windows = " ".join(
            f"{row['per_window'][t]['mean']:7.4f}" if t in row["per_window"] else f"{'-':>7}"
            for t in WINDOWS
        )
        rel = row[f"vs_{versus_name}"]
        versus = "(baseline)" if row["name"] == versus_name else _change_text(rel)
        if normalize:
            score = row["score"]
            width = len(f"vs {versus_name} (paired, relative) [95% CI]")
            versus = f"{versus:<{width}}   " + (
                f"{score['mean']:6.1f} [{score['ci95_low']:.1f}, {score['ci95_high']:.1f}]"
                if score["std"] is not None
                else f"{score['mean']:6.1f} (one seed: no interval)"
            )
        lines.append(
            f"{row['name']:<28} "
            + (
                f"{bp['mean']:.4f} [{bp['ci95_low']:.4f}, {bp['ci95_high']:.4f}]"
                if bp["std"] is not None
                else f"{bp['mean']:.4f} {'(one seed)':<16}"
            )
            + f"   {windows}   {versus}"
        )
    return "\n".join(lines)
