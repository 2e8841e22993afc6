"""The ``fusion`` command: thin wrappers over library functions.

Exit codes: 0 success, 1 failure (a run failed, a dataset is invalid), 2 usage or config error.

    $ fusion sweep                      # the embedded default config, all cores
    $ fusion merge DATASET -o all.jsonl
    $ fusion validate DATASET
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import orjson

from fusion import __version__
from fusion.errors import ConfigError, DatasetError, FusionError

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class UsageError(FusionError):
    """A command line that asks for something impossible (exit 2)."""


def _print_json(value: object) -> None:
    sys.stdout.write(orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n")


def cmd_merge(args: argparse.Namespace) -> int:
    """``fusion merge DIR -o OUT``."""
    from fusion.reporting.merge import merge_shards

    info = merge_shards(
        args.dataset,
        args.output,
        order=args.order,
        allow_partial=args.allow_partial,
        compress=args.compress,
    )
    print(
        f"merged {info['transitions']} transitions from {len(info['shards'])} shards "
        f"(order {info['order']}) into {args.output} [sha256 {info['sha256'][:16]}…]"
    )
    if info["partial"]:
        for seed, why in info["left_out_or_cut"].items():
            print(f"  seed {seed}: {why}", file=sys.stderr)
    return EXIT_OK


def cmd_validate(args: argparse.Namespace) -> int:
    """``fusion validate DIR``."""
    from fusion.reporting.manifest import rebuild_manifest
    from fusion.reporting.validate import summary_of, validate_dataset

    if args.rebuild:
        rebuild_manifest(args.dataset)
        print(f"rebuilt {Path(args.dataset) / 'manifest.json'} from the shards and sidecars")
    report = validate_dataset(args.dataset)
    if args.json:
        _print_json(summary_of(report))
    else:
        print(report)
    return EXIT_OK if report.ok else EXIT_FAILURE


def _add_merge(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("merge", help="merge a dataset's shards into one file")
    p.add_argument("dataset", help="dataset directory (or its manifest.json)")
    p.add_argument("-o", "--output", required=True, help="merged JSON Lines file")
    p.add_argument("--order", choices=("seed", "t"), default="seed")
    p.add_argument(
        "--allow-partial", action="store_true", help="merge what is whole; record the rest"
    )
    p.add_argument("--compress", choices=("gzip", "zstd"), default=None)
    p.set_defaults(func=cmd_merge)


def _add_validate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="check a dataset against its manifest and the schema")
    p.add_argument("dataset", help="dataset directory, manifest.json or a .jsonl file")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument(
        "--rebuild", action="store_true", help="first rebuild manifest.json from sidecars"
    )
    p.set_defaults(func=cmd_validate)


COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [_add_merge, _add_validate]


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
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args))
    except (ConfigError, UsageError) as exc:
        print(f"fusion {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (DatasetError, FusionError, OSError, ValueError) as exc:
        print(f"fusion {args.command}: failed: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        print(f"fusion {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
