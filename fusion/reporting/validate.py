"""Checking a dataset: manifest against files, checksums, and every line against the schema.

>>> import tempfile
>>> from fusion.reporting.dataset_logger import DatasetLogger
>>> d = tempfile.mkdtemp()
>>> with DatasetLogger.open_shard(d, 0, {}) as log:
...     log.log_transition({"src": 0, "dst": 1, "paths": []}, 0, 1.0, None, [True],
...                        {"bp_window_tag": "pre"})
>>> validate_dataset(d).ok
True
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from fusion.errors import DatasetError
from fusion.reporting import manifest as mf
from fusion.reporting.compression import open_binary
from fusion.reporting.loader import WINDOW_TAGS, ShardRef, dataset_shards, is_lone_file

TOP_KEYS = frozenset(
    {"t", "seed", "state", "action", "reward", "next_state", "action_mask", "meta"}
)
STATE_KEYS = ("src", "dst", "slots_needed", "est_remaining_time", "is_disaster", "paths")
PATH_KEYS = (
    "path_hops",
    "min_residual_slots",
    "frag_indicator",
    "failure_mask",
    "dist_to_disaster_centroid",
)
MAX_LINE_PROBLEMS = 20


@dataclass
class ValidationReport:
    """What :func:`validate_dataset` found.

    :param path: What was checked.
    :param problems: One readable sentence per problem (empty when valid).
    :param shards: Per shard: seed, status, lines read, whether it checked out.
    """

    path: str
    problems: list[str] = field(default_factory=list)
    shards: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether nothing is wrong."""
        return not self.problems

    def __str__(self) -> str:
        lines = [f"dataset {self.path}: {'valid' if self.ok else 'INVALID'}"]
        for shard in self.shards:
            mark = "ok" if shard["ok"] else "BAD"
            lines.append(
                f"  seed {shard['seed']:>6}  {shard['status']:<9} {shard['lines']:>9} lines  {mark}"
            )
        if self.problems:
            lines.append(f"{len(self.problems)} problem(s):")
            lines.extend(f"  - {p}" for p in self.problems)
        return "\n".join(lines)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_record(record: Any, expected_t: int | None, expected_seed: int | None) -> list[str]:
    """Problems of one parsed line against the transition schema (empty when it is valid).

    :param record: The parsed line.
    :param expected_t: The ``t`` this line must carry, or ``None`` to skip that check.
    :param expected_seed: The ``seed`` it must carry, or ``None``.
    """
    if not isinstance(record, dict):
        return ["not a JSON object"]
    problems = []
    keys = set(record)
    if keys != TOP_KEYS:
        missing, extra = sorted(TOP_KEYS - keys), sorted(keys - TOP_KEYS)
        problems.append(f"top-level keys: missing {missing}, unexpected {extra}")
        return problems
    t, action, reward, mask = record["t"], record["action"], record["reward"], record["action_mask"]
    if (
        not isinstance(t, int)
        or isinstance(t, bool)
        or (expected_t is not None and t != expected_t)
    ):
        problems.append(f"t is {t!r}, expected {expected_t}")
    if expected_seed is not None and record["seed"] != expected_seed:
        problems.append(f"seed is {record['seed']!r}, expected {expected_seed}")
    state = record["state"]
    paths: list[Any] = []
    if not isinstance(state, dict):
        problems.append("state is not an object")
    else:
        missing_state = [k for k in STATE_KEYS if k not in state]
        if missing_state:
            problems.append(f"state lacks {missing_state}")
        listed = state.get("paths")
        paths = listed if isinstance(listed, list) else []
        for index, path in enumerate(paths):
            if not isinstance(path, dict) or any(not _is_number(path.get(k)) for k in PATH_KEYS):
                problems.append(f"state.paths[{index}] lacks a number for one of {list(PATH_KEYS)}")
                break
    if not isinstance(mask, list) or not all(isinstance(m, bool) for m in mask):
        problems.append("action_mask is not a list of booleans")
        mask = []
    elif paths and len(mask) != len(paths):
        problems.append(f"action_mask has {len(mask)} entries, state.paths {len(paths)}")
    if not isinstance(action, int) or isinstance(action, bool):
        problems.append(f"action is {action!r}, not an integer")
    elif action != -1 and not (0 <= action < len(mask) and mask[action]):
        problems.append(f"action {action} is not -1 nor a feasible index of {mask}")
    if not _is_number(reward) or not math.isfinite(reward):
        problems.append(f"reward is {reward!r}, not a finite number")
    elif isinstance(action, int) and reward != (1.0 if action >= 0 else -1.0):
        problems.append(f"reward {reward} does not match action {action} (+1 routed, -1 blocked)")
    if record["next_state"] is not None and not isinstance(record["next_state"], dict):
        problems.append("next_state is neither null nor an object")
    meta = record["meta"]
    if not isinstance(meta, dict):
        problems.append("meta is not an object")
    elif "bp_window_tag" in meta and meta["bp_window_tag"] not in WINDOW_TAGS:
        problems.append(
            f"meta.bp_window_tag is {meta['bp_window_tag']!r}, not one of {WINDOW_TAGS}"
        )
    return problems


def _check_lines(
    path: Path, expected_seed: int | None, report: ValidationReport, whole_only: bool
) -> int:
    """Check every line of a file; return how many lines were read."""
    count = 0
    shown = 0
    try:
        with open_binary(path) as stream:
            for count, line in enumerate(stream, 1):
                if not line.endswith(b"\n"):
                    if whole_only:
                        return count - 1
                    report.problems.append(f"{path}:{count}: last line has no newline (cut)")
                try:
                    record = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    found = [f"not JSON ({exc})"]
                else:
                    found = check_record(record, count - 1, expected_seed)
                for problem in found:
                    shown += 1
                    if shown <= MAX_LINE_PROBLEMS:
                        report.problems.append(f"{path}:{count}: {problem}")
    except DatasetError as exc:  # a cut or corrupt compressed stream
        report.problems.append(f"{exc} after line {count}")
    if shown > MAX_LINE_PROBLEMS:
        report.problems.append(f"{path}: {shown - MAX_LINE_PROBLEMS} more line problems not shown")
    return count


def _check_shard(ref: ShardRef, report: ValidationReport) -> None:
    before = len(report.problems)
    lines = 0
    if not ref.complete:
        report.problems.append(f"seed {ref.seed}: status {ref.status}, not complete")
    if not ref.path.exists():
        report.problems.append(f"seed {ref.seed}: {ref.path} is missing")
    else:
        if ref.complete:
            sha = mf.file_sha256(ref.path)
            if sha != ref.entry.get("sha256"):
                report.problems.append(
                    f"{ref.path}: sha256 {sha} differs from the manifest's {ref.entry.get('sha256')}"
                )
            size = ref.path.stat().st_size
            if ref.entry.get("bytes") != size:
                report.problems.append(
                    f"{ref.path}: {size} bytes, the manifest says {ref.entry.get('bytes')}"
                )
        lines = _check_lines(ref.path, ref.seed, report, whole_only=not ref.complete)
        if ref.complete and lines != ref.transitions:
            report.problems.append(
                f"{ref.path}: {lines} lines, the manifest says {ref.transitions}"
            )
    report.shards.append(
        {
            "seed": ref.seed,
            "status": ref.status,
            "lines": lines,
            "ok": len(report.problems) == before,
        }
    )


def validate_dataset(path: str | os.PathLike[str]) -> ValidationReport:
    """Check a dataset directory, a manifest, or a lone ``.jsonl`` file.

    Checks: the manifest is readable; every planned seed has a complete shard; files exist and
    match the manifest's sha256, size and line count; no shard file is unlisted; every line
    has the schema's keys and types, ``t`` contiguous from 0, the shard's seed, a mask as long
    as the paths, a legal action and a reward of +1 (routed) or -1 (blocked).

    :param path: What to check.
    :return: The report; ``report.ok`` tells whether it is valid.
    """
    report = ValidationReport(str(path))
    if is_lone_file(path):
        lines = _check_lines(Path(path), None, report, whole_only=False)
        report.shards.append({"seed": "-", "status": "file", "lines": lines, "ok": report.ok})
        return report
    try:
        manifest, refs = dataset_shards(path)
    except DatasetError as exc:
        report.problems.append(str(exc))
        return report
    directory = Path(path) if Path(path).is_dir() else Path(path).parent
    listed = {ref.seed for ref in refs}
    for seed in manifest.get("planned_seeds", []):
        if int(seed) not in listed:
            report.problems.append(f"seed {seed}: planned but no shard was started")
    listed_files = {ref.path.name for ref in refs}
    for item in sorted(directory.iterdir()):
        if mf.parse_shard_name(item.name) and item.name not in listed_files:
            report.problems.append(f"{item}: a shard file the manifest does not list")
    for ref in refs:
        _check_shard(ref, report)
    return report


def summary_of(report: ValidationReport) -> Mapping[str, Any]:
    """The report as plain JSON values (for ``--json``)."""
    return {
        "path": report.path,
        "ok": report.ok,
        "problems": report.problems,
        "shards": report.shards,
    }
