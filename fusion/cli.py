"""The ``fusion`` command: thin wrappers over library functions.

Exit codes: 0 success, 1 failure (a run failed, a dataset is invalid), 2 usage or config error.

    $ fusion sweep                      # the embedded default config, all cores
    $ fusion merge DATASET -o all.jsonl
    $ fusion validate DATASET
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson

from fusion import __version__
from fusion.config.config import Config
from fusion.config.vocabulary import COMPRESSIONS
from fusion.errors import (
    ConfigError,
    DatasetError,
    DirectoryBusyError,
    ForeignDirectoryError,
    FusionError,
    ManifestConflictError,
    OutputConflictError,
    ShardExistsError,
)
from fusion.errors import UsageError as UsageError  # (its home: errors.py)
from fusion.interop.formats import FORMATS, ExportJob, export_format
from fusion.storage.statuses import STATUS_FAILED

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def _positive_int(text: str) -> int:
    """An argparse type: an integer >= 1 (argparse exits 2 naming the option otherwise)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def _quiet_on_broken_pipe(run: Callable[[], int]) -> int:
    """Run a command; a reader that closed stdout early (``fusion validate D | head``) ends it
    quietly, as Python's docs recommend (stdout pointed at devnull so the exit flush cannot
    fail again)."""
    try:
        code = run()
        sys.stdout.flush()
        return code
    except BrokenPipeError:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return EXIT_FAILURE


def _print_json(value: object) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")


def cmd_merge(args: argparse.Namespace) -> int:
    """``fusion merge DIR -o OUT`` (or ``fusion merge STUDY -o OUT_DIR|OUT [--all]``)."""
    from fusion.storage.merge import merge_shards
    from fusion.storage.study_layout import is_study

    if is_study(args.dataset):
        return _merge_study(args)
    if args.all:
        raise UsageError("--all takes a study (a directory with study.json)")
    info = merge_shards(
        args.dataset,
        args.output,
        order=args.order,
        include_incomplete=args.include_incomplete,
        compress=args.compress,
        overwrite=args.overwrite,
    )
    print(
        f"merged {info['transitions']} transitions from {len(info['shards'])} shards "
        f"(order {info['order']}) into {args.output} [sha256 {info['sha256'][:16]}…]"
    )
    if info["partial"]:
        for seed, why in info["left_out_or_cut"].items():
            print(f"  seed {seed}: {why}", file=sys.stderr)
    return EXIT_OK


def _merge_study(args: argparse.Namespace) -> int:
    from fusion.storage.study_merge import merge_study

    if args.all and args.compress:
        raise UsageError(
            "--all writes one uncompressed file (its points are byte ranges); drop --compress"
        )
    info = merge_study(
        args.dataset,
        args.output,
        args.order,
        all_points=args.all,
        include_incomplete=args.include_incomplete,
        compress=args.compress,
        overwrite=args.overwrite,
    )
    if args.all:
        print(
            f"merged {info['transitions']} transitions from {len(info['points'])} points "
            f"(order {info['order']} within each) into {args.output} "
            f"[sha256 {info['sha256'][:16]}…]"
        )
        return EXIT_OK
    for point in info["points"]:
        print(f"{point['output']}: {point['merge']['transitions']} transitions")
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    """``fusion export DIR --format FORMAT [-o OUT] [--id ID]``: a format of the registry
    (:mod:`fusion.interop.formats`)."""
    fmt = export_format(args.format)
    seeds = _seeds(args)
    job = ExportJob(
        args.dataset,
        args.output,
        None if seeds is None else tuple(seeds),
        args.overwrite,
        args.include_incomplete,
        args.id,
    )
    try:
        fmt.check(job)  # a malformed command line, before any work
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    try:
        count = fmt.export(job)
    except fmt.errors_of_usage as exc:  # e.g. --seeds asks for what is not there
        raise UsageError(str(exc)) from None
    print(fmt.summary(job, count))
    return EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    """``fusion validate DIR``."""
    from fusion.storage.manifest import rebuild_manifest
    from fusion.storage.validate import summary_of, validate_dataset

    if args.rebuild:
        rebuild_manifest(args.dataset)
        print(f"rebuilt {Path(args.dataset) / 'manifest.json'} from the shards and sidecars")
    report = validate_dataset(args.dataset)
    if args.json:
        _print_json(summary_of(report))
    else:
        print(report)
    return EXIT_OK if report.ok else EXIT_FAILURE


def _load(args: argparse.Namespace) -> Config:
    """The config of ``--config`` (or the embedded default) with every ``--set`` applied."""
    from fusion.config.config import load_config
    from fusion.config.grid import apply_sets

    try:
        config = load_config(args.config)
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"--config {args.config}: not UTF-8 text ({exc.reason} at byte {exc.start}); "
            "save the INI file as UTF-8"
        ) from None
    return apply_sets(config, args.set)


def _seeds(args: argparse.Namespace) -> tuple[int, ...] | None:
    """``--seeds`` parsed (``None`` when not given).

    :raises UsageError: naming the option and what is wrong.
    """
    from fusion.config.config import parse_seeds

    if args.seeds is None:
        return None
    try:
        return parse_seeds(args.seeds)
    except ValueError as exc:
        raise UsageError(f"--seeds {args.seeds!r}: {exc}") from None


def cmd_run(args: argparse.Namespace) -> int:
    """``fusion run``: one seed."""
    from fusion.config.config import check_seed
    from fusion.run.simulation import run_one_seed
    from fusion.sim.scenario import check_scenario

    config = _load(args)
    seed = args.seed if args.seed is not None else config.general.seeds[0]
    try:
        check_seed(seed)
    except ValueError as exc:
        raise UsageError(f"--seed: {exc}") from None
    check_scenario(config)  # before the shard is opened: a refused config leaves nothing
    stats, out = run_one_seed(config, seed, args.out, overwrite=args.overwrite)
    print(
        f"seed {seed}: {stats['requests']} requests, blocking probability "
        f"{stats['blocking_probability']:.4f}; shard in {out}"
    )
    return EXIT_OK


def cmd_sweep(args: argparse.Namespace) -> int:
    """``fusion sweep``: every seed (of every grid point: a study), in parallel."""
    from fusion.config.grid import parse_assignment, parse_grid
    from fusion.run.sweep import DatasetExistsError

    config = _load(args)
    if not config.dataset.log_offline_dataset:
        raise UsageError(
            "[dataset_logging] log_offline_dataset is false, and a sweep writes a dataset: "
            "drop that setting (fusion evaluate runs policies without writing one)"
        )
    axes = parse_grid(config, args.grid)
    for text in args.set:  # a --set of an axis would be overridden at every point
        _, key, _ = parse_assignment(text, "--set")
        if any(axis.key == key for axis in axes):
            raise UsageError(f"--set {text!r}: {key} is an axis of this study (--grid or a range)")
    options = {
        "seeds": _seeds(args),
        "workers": args.workers,
        "out": args.out,
        "backend": args.backend,
        "ray_address": args.ray_address,
        "resume": args.resume,
        "overwrite": args.overwrite,
        "quiet": args.quiet,
    }
    try:
        if axes:
            return _study(config, axes, options)
        return _sweep(config, options)
    except (DatasetExistsError, ManifestConflictError) as exc:
        raise UsageError(str(exc)) from None


def _study(config: Config, axes: list[Any], options: dict[str, Any]) -> int:
    from fusion.report.study_inspection import format_study, inspect_study
    from fusion.run.study import run_study

    result = run_study(config, axes, **options)
    print(format_study(inspect_study(result.directory)))
    tasks = sum(len(outs) for _, outs in result.points)
    print(
        f"study: {result.directory} ({len(result.points)} points, {tasks} tasks "
        f"in {result.seconds:.1f} s)"
    )
    failed = [(p, o) for p, outs in result.points for o in outs if o.status == STATUS_FAILED]
    for point, outcome in failed:
        print(f"{point.directory} seed {outcome.seed} FAILED: {outcome.error}", file=sys.stderr)
    return _failed_hint(len(failed))


def _sweep(config: Config, options: dict[str, Any]) -> int:
    from fusion.report.inspection import format_inspection, inspect_dataset
    from fusion.run.sweep import run_sweep

    result = run_sweep(config, **options)
    print(format_inspection(inspect_dataset(result.dataset_dir)))
    print(f"dataset: {result.dataset_dir} ({len(result.seeds)} seeds in {result.seconds:.1f} s)")
    failed = [s for s in result.seeds if s.status == STATUS_FAILED]
    for outcome in failed:
        print(f"seed {outcome.seed} FAILED: {outcome.error}", file=sys.stderr)
    return _failed_hint(len(failed))


def _failed_hint(failed: int) -> int:
    if failed:
        print(f"{failed} seed(s) failed; fix the cause and rerun with --resume", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def cmd_inspect(args: argparse.Namespace) -> int:
    """``fusion inspect DIR``."""
    from fusion.report.inspection import format_inspection, inspect_dataset, plot_blocking
    from fusion.storage.study_layout import is_study

    if is_study(args.dataset):
        return _inspect_study(args)
    if Path(args.dataset).is_file() and Path(args.dataset).name != "manifest.json":
        raise UsageError(
            f"{args.dataset}: inspect takes a dataset directory, its manifest.json or a study "
            "(a merged file's figures are its sources' figures: inspect them)"
        )
    if args.csv:
        raise UsageError("--csv takes a study (a directory with study.json)")
    _check_inspect_outputs(args)
    report = inspect_dataset(args.dataset)
    if args.json:
        _print_json(report)
    else:
        print(format_inspection(report))
    if args.plot:
        _write_plot(lambda tmp: plot_blocking(args.dataset, tmp), args.plot, args.overwrite)
        print(f"plot written to {args.plot}", file=sys.stderr)
    return EXIT_OK


def _check_inspect_outputs(args: argparse.Namespace) -> None:
    """``--csv`` and ``--plot`` through the output guard, before any work (exit 2)."""
    from fusion.storage.outputs import check_output

    outputs = [out for out in (args.csv, args.plot) if out]
    suffix = Path(args.plot).suffix.lower() if args.plot else ""
    if suffix and suffix not in PLOT_SUFFIXES:
        raise UsageError(
            f"--plot {args.plot}: matplotlib writes no {suffix} file; end the name in one of "
            + ", ".join(sorted(PLOT_SUFFIXES))
            + " (no suffix: PNG)"
        )
    if len(outputs) == 2 and Path(args.csv).resolve() == Path(args.plot).resolve():
        raise UsageError(f"--csv and --plot both name {args.csv}; give each its own file")
    check_output(*outputs, overwrite=args.overwrite, inputs=[args.dataset])


#: The figure formats matplotlib's Agg backend writes (``--plot``'s suffix picks one).
PLOT_SUFFIXES = frozenset(
    (".png", ".pdf", ".svg", ".svgz", ".eps", ".ps", ".jpg", ".jpeg", ".tif", ".tiff", ".webp")
)


def _write_plot(draw: Callable[[Path], object], out: str, overwrite: bool) -> None:
    """Draw a figure to a temp file renamed onto ``out`` (a failed plot leaves ``out`` as it
    was); the temp keeps ``out``'s suffix, which picks matplotlib's format (PNG without one)."""
    from fusion.storage.atomic import atomic_path

    with atomic_path(out, suffix=Path(out).suffix or ".png", replace=overwrite) as tmp:
        draw(tmp)


def _inspect_study(args: argparse.Namespace) -> int:
    from fusion.report.study_inspection import (
        format_study,
        inspect_study,
        plot_study,
        write_study_csv,
    )

    _check_inspect_outputs(args)
    report = inspect_study(args.dataset)
    if args.json:
        _print_json(report)
    else:
        print(format_study(report))
    if args.csv:
        write_study_csv(report, args.csv, overwrite=args.overwrite)
        print(f"table written to {args.csv}", file=sys.stderr)
    if args.plot:
        _write_plot(lambda tmp: plot_study(report, tmp), args.plot, args.overwrite)
        print(f"plot written to {args.plot}", file=sys.stderr)
    return EXIT_OK


def cmd_evaluate(args: argparse.Namespace) -> int:
    """``fusion evaluate``: policies on held-out seeds, paired against KSP-FF (``--against``:
    any policy), with ``--normalize`` their normalized scores."""
    from fusion.run.evaluate import (
        BASELINE,
        PolicySpecError,
        evaluate_policies,
        format_evaluation,
    )
    from fusion.sim.policies import POLICIES

    config = _load(args)
    seeds = _seeds(args) or config.general.seeds
    policies = args.policy or list(POLICIES)
    from fusion.config.grid import erlang_axis

    axis = erlang_axis(config)  # a preset's (or the config's) load range, unless --erlang
    loads = [float(v) for v in axis.values] if axis else [config.general.erlang]
    if args.erlang:
        try:
            loads = [float(v) for v in args.erlang.split(",")]
        except ValueError:
            raise UsageError(f"--erlang {args.erlang!r}: expected loads like 200,300") from None
        if len(set(loads)) != len(loads):
            raise UsageError(f"--erlang {args.erlang!r}: a load is given twice")
        for load in loads:  # each checked as [general_settings] erlang is
            config.replace("general_settings", erlang=load)
    try:
        reports = [
            evaluate_policies(
                config.replace("general_settings", erlang=load),
                policies,
                seeds=seeds,
                workers=args.workers,
                against=args.against or [BASELINE],
                normalize=tuple(args.normalize) if args.normalize else None,
            )
            for load in loads
        ]
    except PolicySpecError as exc:
        raise UsageError(str(exc)) from None
    if args.json:
        _print_json(
            [
                {"erlang": r["erlang"], **({"normalize": r["normalize"]} if args.normalize else {})}
                | p
                for r in reports
                for p in r["policies"]
            ]
        )
    else:
        print("\n\n".join(format_evaluation(r) for r in reports))
    return EXIT_OK


def cmd_scenarios(args: argparse.Namespace) -> int:
    """``fusion scenarios``: the literature's presets (``--config NAME``); with a NAME, that
    preset's whole configuration as an INI file (``--json``: as ``Config.to_dict()``)."""
    from fusion.config.presets import PRESETS, preset_config, preset_ini

    if args.name is not None:
        if args.name not in PRESETS:
            raise UsageError(
                f"unknown scenario {args.name!r}; expected one of {', '.join(PRESETS)}"
            )
        if args.json:
            _print_json(preset_config(args.name).to_dict())
        else:
            print(preset_ini(args.name), end="")
        return EXIT_OK
    rows = [preset.describe() for preset in PRESETS.values()]
    if args.json:
        _print_json(rows)
        return EXIT_OK
    print(f"{'name':<24} {'source':<34} {'network':<20} {'links':<10} {'slots':>5}  loads")
    for row in rows:
        loads = row["loads"]
        span = (
            f"{loads[0]}-{loads[-1]} step {loads[1] - loads[0]}"
            if len(loads) > 1
            else f"{loads[0]}"
        )
        links = "directed" if row["directed"] else "undirected"
        print(
            f"{row['name']:<24} {row['source']:<34} {row['network']:<20} {links:<10} "
            f"{row['slots']:>5}  {span} Erlang"
        )
    print("use one with --config NAME (sweep, run, evaluate; the env's config=NAME)")
    print("fusion scenarios NAME prints its every key, as an INI file --config takes")
    return EXIT_OK


def cmd_benchmark_list(args: argparse.Namespace) -> int:
    """``fusion benchmark list``: the suite's datasets, in its file's order."""
    from fusion.benchmark.suite import load_suite

    suite = load_suite(quick=args.quick)
    rows = [spec.describe() for spec in suite.datasets()]
    if args.json:
        _print_json(rows)
        return EXIT_OK
    print(f"suite {suite.version} ({suite.file.name}){' --quick' if suite.quick else ''}")
    print(
        f"{'dataset':<30} {'behaviour':<28} {'erlang':>6}  {'seeds':<10} {'requests':>8} "
        f"{'warm-up':>7}  features"
    )
    for row in rows:
        seeds = row["seeds"]
        span = f"{seeds[0]}-{seeds[-1]}" if len(seeds) > 1 else f"{seeds[0]}"
        print(
            f"{row['name']:<30} {row['policy']:<28.28} {row['erlang']:>6g}  {span:<10} "
            f"{row['requests']:>8} {row['warmup_requests']:>7}  {row['path_features']}"
            + (" +spectrum" if row["log_spectrum"] else "")
        )
    tune, held = suite.seeds("tune"), suite.seeds("eval")
    print(f"expert chosen on seeds {tune[0]}-{tune[-1]}; evaluation seeds {held[0]}-{held[-1]}")
    return EXIT_OK


def cmd_benchmark_build(args: argparse.Namespace) -> int:
    """``fusion benchmark build``: every dataset of the suite (or of ``--preset``), resumed
    when a build was killed, then its data card."""
    from fusion.benchmark.build import BuildResult, build_suite
    from fusion.benchmark.suite import load_suite

    suite = load_suite(quick=args.quick)
    unknown = [name for name in args.preset or [] if name not in suite.presets]
    if unknown:
        raise UsageError(
            f"--preset {unknown[0]!r}: not in suite {suite.version}; expected one of "
            + ", ".join(suite.presets)
        )
    specs = suite.datasets(args.preset or None)

    def show(result: BuildResult) -> None:
        card = result.card
        size = card.get("size", {})
        extra = (
            f" expert {card['policy']}:path_order={card['path_order']}"
            if result.spec.kind == "expert"
            else ""
        )
        print(
            f"{result.spec.name}: {result.status}{extra}; {size.get('transitions', 0)} "
            f"transitions, {size.get('blocked', 0)} blocked, sha256 {card.get('sha256', '')[:16]}… "
            f"({result.seconds:.1f} s)"
        )

    results = build_suite(specs, args.out, workers=args.workers, quiet=args.quiet, on_result=show)
    print(f"benchmark {suite.version}: {len(results)} datasets in {Path(args.out) / suite.version}")
    return EXIT_OK


def cmd_benchmark_publish(args: argparse.Namespace) -> int:
    """``fusion benchmark publish``: each built dataset as a Minari dataset with reference
    scores and an evaluation env (:mod:`fusion.benchmark.minari_publish`)."""
    from fusion.benchmark.minari_publish import PublishResult, publish_suite
    from fusion.benchmark.suite import load_suite

    suite = load_suite(quick=args.quick)
    unknown = [name for name in args.preset or [] if name not in suite.presets]
    if unknown:
        raise UsageError(
            f"--preset {unknown[0]!r}: not in suite {suite.version}; expected one of "
            + ", ".join(suite.presets)
        )

    def show(result: PublishResult) -> None:
        line = f"{result.spec.name}: {result.status} {result.dataset_id}"
        if result.status == "published" and result.references is not None:
            refs = result.references
            line += (
                f"; {result.steps} steps, ref_min_score {refs['ref_min_score']:g} (random), "
                f"ref_max_score {refs['ref_max_score']:g} (expert {refs['expert']['spec']}) "
                f"on {len(refs['seeds'])} evaluation seeds"
            )
        elif result.status == "kept":
            line += " (published before from the same data)"
        print(line)

    specs = suite.datasets(args.preset or None)
    results = publish_suite(
        specs, args.out, suite.seeds("eval"), workers=args.workers, on_result=show
    )
    print(f"benchmark {suite.version}: {len(results)} datasets in Minari")
    return EXIT_OK


def cmd_benchmark_evaluate(args: argparse.Namespace) -> int:
    """``fusion benchmark evaluate``: per preset, the references, KSP-FF and the learners on
    the evaluation seeds, scored into ``OUT/<version>/<preset>/results.json`` (other seeds:
    ``results.seeds-<SEEDS>.json``)."""
    from fusion.benchmark.evaluate import LEARNERS, EvaluateResult, evaluate_suite
    from fusion.benchmark.suite import load_suite

    suite = load_suite(quick=args.quick)
    unknown = [name for name in args.preset or [] if name not in suite.presets]
    if unknown:
        raise UsageError(
            f"--preset {unknown[0]!r}: not in suite {suite.version}; expected one of "
            + ", ".join(suite.presets)
        )
    seeds = _eval_seeds(args.eval_seeds)

    def show(result: EvaluateResult) -> None:
        cells = []
        for name, entry in result.results["policies"].items():
            score = entry.get("score")
            cells.append(
                f"{name} "
                + ("not trained" if "error" in entry else f"{score['mean']:.1f}" if score else "-")
            )
        print(f"{result.preset}: {result.status}; score {', '.join(cells)} ({result.path})")

    evaluate_suite(
        suite,
        args.out,
        presets=args.preset or None,
        learners=args.learner or LEARNERS,
        seeds=seeds,
        workers=args.workers,
        on_result=show,
    )
    return EXIT_OK


def _eval_seeds(text: str | None) -> list[int] | None:
    """``--eval-seeds`` parsed (``None``: not given).

    :raises UsageError: naming the option and what is wrong.
    """
    from fusion.config.config import parse_seeds

    if text is None:
        return None
    try:
        seeds = parse_seeds(text)
    except ValueError as exc:
        raise UsageError(f"--eval-seeds {text!r}: {exc}") from None
    if not seeds:
        raise UsageError(f"--eval-seeds {text!r}: no seeds")
    return list(seeds)


def cmd_benchmark_report(args: argparse.Namespace) -> int:
    """``fusion benchmark report``: the table from the results files, in the suite's order."""
    from fusion.benchmark.report import collect, format_markdown, format_table, plot_table
    from fusion.benchmark.suite import load_suite

    if args.plot:
        suffix = Path(args.plot).suffix.lower()
        if suffix and suffix not in PLOT_SUFFIXES:
            raise UsageError(
                f"--plot {args.plot}: matplotlib writes no {suffix} file; end the name in one of "
                + ", ".join(sorted(PLOT_SUFFIXES))
            )
        from fusion.storage.outputs import check_output

        check_output(args.plot, overwrite=args.overwrite)
    seeds = _eval_seeds(args.eval_seeds)
    suite = load_suite()
    table = collect(suite, args.out, None if seeds == list(suite.seeds("eval")) else seeds)
    if args.json:
        _print_json(table)
    elif args.markdown:
        print(format_markdown(table))
    else:
        print(format_table(table))
    if args.plot:
        _write_plot(lambda tmp: plot_table(table, tmp), args.plot, args.overwrite)
        print(f"plot written to {args.plot}", file=sys.stderr)
    return EXIT_OK


def _add_benchmark(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "benchmark",
        help="the benchmark suite: list, build (data cards), evaluate, report, publish to Minari",
    )
    bench = p.add_subparsers(dest="benchmark_command", required=True)
    q = bench.add_parser("list", help="the suite's datasets: preset, behaviour, load, seeds, sizes")
    q.add_argument("--json", action="store_true", help="print them as JSON")
    q.add_argument("--quick", action="store_true", help="as --quick builds them")
    q.set_defaults(func=cmd_benchmark_list)
    b = bench.add_parser(
        "build", help="build the datasets (resumes a killed build; skips complete ones) and cards"
    )
    b.add_argument(
        "--preset", action="append", metavar="NAME", help="only this preset (repeatable)"
    )
    b.add_argument("--out", default="benchmark", help="output directory (default: benchmark)")
    b.add_argument(
        "--quick", action="store_true", help="tiny seeds and requests: every code path in seconds"
    )
    b.add_argument("--workers", type=_positive_int, help="parallel tasks (default: all cores)")
    b.add_argument("--quiet", action="store_true", help="no progress bars")
    b.set_defaults(func=cmd_benchmark_build)
    m = bench.add_parser(
        "publish",
        help="publish the built datasets to Minari (fusion/<preset>/<behaviour>-v0) with "
        "reference scores and an evaluation env (MINARI_DATASETS_PATH)",
    )
    m.add_argument(
        "--preset", action="append", metavar="NAME", help="only this preset (repeatable)"
    )
    m.add_argument("--out", default="benchmark", help="the build's directory (default: benchmark)")
    m.add_argument(
        "--quick", action="store_true", help="publish a --quick build (as fusion-quick/...)"
    )
    m.add_argument("--workers", type=_positive_int, help="parallel tasks (default: all cores)")
    m.set_defaults(func=cmd_benchmark_publish)
    _add_benchmark_scores(bench)


def _add_benchmark_scores(bench: argparse._SubParsersAction) -> None:
    from fusion.benchmark.evaluate import LEARNERS

    e = bench.add_parser(
        "evaluate",
        help="score random, expert, ksp-ff and the learners on the evaluation seeds, per preset",
    )
    e.add_argument(
        "--preset", action="append", metavar="NAME", help="only this preset (repeatable)"
    )
    e.add_argument("--out", default="benchmark", help="the build's directory (default: benchmark)")
    e.add_argument(
        "--learner",
        action="append",
        choices=LEARNERS,
        help="only this learner (repeatable; default: all), trained on the preset's mixed data",
    )
    e.add_argument("--eval-seeds", help="evaluation seeds like 2000-2004 (default: the suite's)")
    e.add_argument("--quick", action="store_true", help="on a --quick build")
    e.add_argument("--workers", type=_positive_int, help="parallel runs (default: all cores)")
    e.set_defaults(func=cmd_benchmark_evaluate)
    r = bench.add_parser(
        "report", help="the table: preset rows x policy columns (score [95%% CI], blocking)"
    )
    r.add_argument("--out", default="benchmark", help="the build's directory (default: benchmark)")
    shape = r.add_mutually_exclusive_group()
    shape.add_argument("--json", action="store_true", help="print every results file as JSON")
    shape.add_argument(
        "--markdown", action="store_true", help="the table in Markdown (as the README holds it)"
    )
    r.add_argument("--plot", help="a figure of the scores with their intervals (matplotlib)")
    r.add_argument(
        "--eval-seeds", help="the results of evaluate --eval-seeds SEEDS (default: the suite's)"
    )
    _add_overwrite(r, "--plot")
    r.set_defaults(func=cmd_benchmark_report)


def _add_scenarios(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "scenarios",
        help="list the literature's scenarios (--config NAME), or print one's whole config",
    )
    p.add_argument(
        "name",
        nargs="?",
        help="a scenario: print its every key, defaults included, as an INI file for --config",
    )
    p.add_argument("--json", action="store_true", help="print them (or NAME's config) as JSON")
    p.set_defaults(func=cmd_scenarios)


def _add_config_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        help="INI config, or a preset's name (fusion scenarios; default: the embedded default.ini)",
    )
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one config key (repeatable)",
    )


def _add_run(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run one seed's simulation and write its shard")
    _add_config_options(p)
    p.add_argument("--seed", type=int, help="the seed (default: the config's first)")
    p.add_argument("--out", help="dataset directory (default: from dataset_output_path)")
    p.add_argument("--overwrite", action="store_true", help="rewrite the seed's complete shard")
    p.set_defaults(func=cmd_run)


def _add_sweep(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep", help="run every seed in parallel into one dataset (a study with --grid)"
    )
    _add_config_options(p)
    p.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="SECTION.KEY=V1,V2,...",
        help="a study axis (repeatable: the Cartesian product); one dataset per point",
    )
    p.add_argument("--seeds", help="seeds, e.g. 0-7 or 0,3,5 (default: the config's)")
    p.add_argument("--workers", type=_positive_int, help="parallel tasks (default: all cores)")
    p.add_argument("--out", help="dataset directory (default: from dataset_output_path)")
    p.add_argument("--backend", choices=("local", "ray"), default="local")
    p.add_argument("--ray-address", help="join this Ray cluster (default: start a local Ray)")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--resume", action="store_true", help="keep good shards, rerun the rest")
    group.add_argument("--overwrite", action="store_true", help="replace an existing dataset")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_sweep)


def _add_overwrite(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--overwrite",
        action="store_true",
        help=f"replace an existing file at {what}; a dataset's or study's files never are",
    )


def _add_inspect(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("inspect", help="blocking figures per shard (per point) and across seeds")
    p.add_argument("dataset", help="dataset directory, manifest.json, or a study directory")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument(
        "--plot",
        help="PNG: blocking over time (dataset) or against load with 95%% intervals (study)",
    )
    p.add_argument("--csv", help="a study's table as CSV, one row per point")
    _add_overwrite(p, "--csv or --plot")
    p.set_defaults(func=cmd_inspect)


def _add_merge(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("merge", help="merge a dataset's shards (or a study's) into one file")
    p.add_argument("dataset", help="dataset directory (or its manifest.json), or a study")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        help="merged JSON Lines file (a study: a directory of one file per point, or with "
        "--all one file)",
    )
    p.add_argument(
        "--all", action="store_true", help="a study: every point into one file, ranges recorded"
    )
    p.add_argument("--order", choices=("seed", "t"), default="seed")
    p.add_argument(
        "--include-incomplete",
        "--allow-partial",
        action="store_true",
        help="merge what is whole (incomplete shards' whole lines); record the rest",
    )
    p.add_argument(
        "--compress",
        choices=COMPRESSIONS,
        default=None,
        help="the output's name decides its compression (.gz gzip, .zst zstd, else none); "
        "--compress must agree with it (gzip: OUT.jsonl.gz, zstd: OUT.jsonl.zst)",
    )
    _add_overwrite(p, "-o (and its .manifest.json record)")
    p.set_defaults(func=cmd_merge)


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export", help="write a dataset as D4RL-style .npz, as Parquet, or as a Minari dataset"
    )
    p.add_argument(
        "dataset",
        help="dataset directory, manifest.json, a .jsonl[.gz|.zst] file or a study directory",
    )
    p.add_argument(
        "--format",
        choices=tuple(FORMATS),
        required=True,
        help="; ".join(f"{f.name}: {f.help}" for f in FORMATS.values()),
    )
    p.add_argument(
        "-o", "--output", help="; ".join(f"{f.name}: {f.output}" for f in FORMATS.values())
    )
    p.add_argument("--id", help="minari: the new dataset id, NAMESPACE/NAME-vN")
    p.add_argument("--seeds", help="only these seeds: 0-3 or 0,2,5")
    p.add_argument(
        "--include-incomplete",
        action="store_true",
        help="export the whole lines of shards not complete (running, failed); "
        "without it such shards are refused, as merge refuses them",
    )
    replaced = ", ".join(f.name for f in FORMATS.values() if f.overwrites)
    kept = ", ".join(f.name for f in FORMATS.values() if not f.overwrites)
    _add_overwrite(p, f"-o ({replaced}; {kept} never replaces what exists)")
    p.set_defaults(func=cmd_export)


def _add_validate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="check a dataset against its manifest and the schema")
    p.add_argument("dataset", help="dataset directory, manifest.json or a .jsonl file")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument(
        "--rebuild", action="store_true", help="first rebuild manifest.json from sidecars"
    )
    p.set_defaults(func=cmd_validate)


def _add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate", help="run policies on held-out seeds: blocking, 95%% CI, paired vs KSP-FF"
    )
    _add_config_options(p)
    p.add_argument(
        "--policy",
        action="append",
        metavar="NAME|MODEL",
        help="a heuristic or a model file (repeatable; default: every heuristic)",
    )
    p.add_argument("--seeds", help="held-out seeds, e.g. 1000-1002 (default: the config's)")
    p.add_argument("--erlang", help="loads to evaluate at, e.g. 200,300,400 (default: config's)")
    p.add_argument("--workers", type=_positive_int, help="parallel runs (default: all cores)")
    p.add_argument(
        "--against",
        action="append",
        metavar="NAME|MODEL",
        help="pair every policy with this one too: vs_<name> in --json, the first in the table "
        "(repeatable; default: ksp_ff; vs_ksp_ff is always given)",
    )
    p.add_argument(
        "--normalize",
        nargs=2,
        metavar=("RANDOM", "EXPERT"),
        help="add each policy's normalized score, 100 x (BP_RANDOM - BP) / (BP_RANDOM - "
        "BP_EXPERT), mean blockings over the seeds, with its paired 95%% CI (0 = RANDOM, "
        "100 = EXPERT)",
    )
    p.add_argument(
        "--json",
        action="store_true",
        help="one JSON object per policy (and load), with its per-seed blocking",
    )
    p.set_defaults(func=cmd_evaluate)


COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [
    _add_run,
    _add_sweep,
    _add_merge,
    _add_validate,
    _add_inspect,
    _add_export,
    _add_evaluate,
    _add_scenarios,
    _add_benchmark,
]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="fusion", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"fusion {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code.

    :param argv: Arguments (``sys.argv[1:]`` when ``None``).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    _expand_home(args)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return _quiet_on_broken_pipe(lambda: int(args.func(args)))
    except (
        ConfigError,
        UsageError,
        ManifestConflictError,
        OutputConflictError,
        DirectoryBusyError,
        ForeignDirectoryError,
        ShardExistsError,
    ) as exc:
        print(f"fusion {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (DatasetError, FusionError, OSError, ValueError) as exc:
        print(f"fusion {args.command}: failed: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print(f"fusion {args.command}: interrupted", file=sys.stderr)
        return 130


#: The options (and positionals) that name a file or directory, for :func:`_expand_home`.
PATH_ARGUMENTS = ("dataset", "output", "out", "plot", "csv", "config", "policy")


def _expand_home(args: argparse.Namespace) -> None:
    """Expand a leading ``~`` in every path argument, as a shell would have (it does not in
    ``-o=~/x`` or a quoted ``"~/x"``): never a literal ``./~`` directory."""
    for name in PATH_ARGUMENTS:
        value = getattr(args, name, None)
        if isinstance(value, str):
            setattr(args, name, _home(value))
        elif isinstance(value, list):
            setattr(args, name, [_home(v) if isinstance(v, str) else v for v in value])


def _home(value: str) -> str:
    return os.path.expanduser(value) if value.startswith("~") else value


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
