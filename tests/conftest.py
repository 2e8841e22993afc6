"""Shared fixtures: a valid example transition like the seed card's, and small datasets."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from fusion.storage import manifest as mf
from fusion.storage.shard_entries import publish_sidecar, read_sidecar
from fusion.storage.shard_names import shard_file_name, sidecar_path
from fusion.storage.shard_writer import DatasetLogger
from fusion.storage.statuses import STATUS_WRITING

EXAMPLE_STATE: dict[str, Any] = {
    "src": 3,
    "dst": 9,
    "slots_needed": 2,
    "est_remaining_time": 1.7,
    "is_disaster": 0,
    "paths": [
        {
            "path_hops": 5,
            "min_residual_slots": 8,
            "frag_indicator": 0.42,
            "failure_mask": 0,
            "dist_to_disaster_centroid": 1,
        },
        {
            "path_hops": 6,
            "min_residual_slots": 12,
            "frag_indicator": 0.1,
            "failure_mask": 0,
            "dist_to_disaster_centroid": 2,
        },
        {
            "path_hops": 7,
            "min_residual_slots": 10,
            "frag_indicator": 0.0,
            "failure_mask": 1,
            "dist_to_disaster_centroid": 0,
        },
        {
            "path_hops": 8,
            "min_residual_slots": 5,
            "frag_indicator": 0.3,
            "failure_mask": 0,
            "dist_to_disaster_centroid": 3,
        },
    ],
}
EXAMPLE_META: dict[str, Any] = {
    "decision_time_ms": 0.35,
    "restoration_latency_ms": 100.0,
    "bp_window_tag": "pre",
    "backup_available": True,
    "was_groomed": False,
}
EXAMPLE_MASK = [True, True, False, True]


def example(i: int = 0) -> dict[str, Any]:
    """Keyword arguments of one valid transition; ``i`` varies it a little."""
    state = copy.deepcopy(EXAMPLE_STATE)
    state["src"] = i % 14
    meta = dict(EXAMPLE_META, bp_window_tag=("pre", "fail", "post")[i % 3], request_id=i)
    blocked = i % 5 == 4
    return {
        "state": state,
        "action": -1 if blocked else (i % 2) * 3,
        "reward": -1.0 if blocked else 1.0,
        "next_state": None,
        "action_mask": [False] * 4 if blocked else list(EXAMPLE_MASK),
        "meta": meta,
    }


def write_shard(directory: Path, seed: int, n: int, **kwargs: Any) -> Path:
    """Write a complete shard of ``n`` example transitions; return its path."""
    with DatasetLogger.open_shard(directory, seed, {"toy": 1}, **kwargs) as log:
        for i in range(n):
            log.log_transition(**example(i + seed))
    return log.output_path


@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    """A dataset of seeds 2, 10 and 1 (written in that order) with 5, 7 and 3 transitions."""
    for seed, n in ((2, 5), (10, 7), (1, 3)):
        write_shard(tmp_path, seed, n)
    return tmp_path


def mark_status(directory: Path, seed: int, status: str) -> None:
    """Make a complete shard look ``writing`` or ``failed`` as the protocol records it: the
    manifest entry says so, and the sidecar (the truth readers overlay) agrees or is absent."""

    def change(manifest: dict[str, Any]) -> None:
        for entry in manifest["shards"]:
            if entry["seed"] == seed:
                entry["status"] = status

    mf.update_manifest(directory, change)
    sidecar = sidecar_path(directory / shard_file_name(seed))
    if status == STATUS_WRITING:
        sidecar.unlink(missing_ok=True)
    else:
        record = read_sidecar(sidecar) or {}
        publish_sidecar(sidecar.with_name(shard_file_name(seed)), {**record, "status": status})


@pytest.fixture(autouse=True)
def _left_behind_datasets_validate(request: pytest.FixtureRequest) -> Any:
    """After each test, ``fusion validate`` every dataset and study it left in its tmp_path
    (tests that damage data on purpose say so with ``@pytest.mark.damages``)."""
    if request.node.get_closest_marker("damages") or "tmp_path" not in request.fixturenames:
        yield
        return
    root: Path = request.getfixturevalue("tmp_path")
    yield
    from fusion.storage.study_layout import STUDY_FILE
    from fusion.storage.validate import validate_dataset

    studies = {p.parent for p in root.rglob(STUDY_FILE)}
    found = sorted(studies) + sorted(
        p.parent for p in root.rglob(mf.MANIFEST_NAME) if not any(s in p.parents for s in studies)
    )
    for path in found:
        report = validate_dataset(path)
        assert report.ok, f"{request.node.name} left an invalid dataset: {report}"


def load_script(name: str):  # type: ignore[no-untyped-def]
    """A script of ``scripts/`` imported as a module (its ``main`` then runs in-process)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def zero_bc_model():  # type: ignore[no-untyped-def]
    """A behaviour-cloning model of all zeros for 25 inputs and 4 paths (the default layout)."""
    import numpy as np

    from fusion.rl.bc import BCModel

    return BCModel(
        mean=np.zeros(25, np.float32),
        scale=np.ones(25, np.float32),
        w1=np.zeros((25, 4), np.float32),
        b1=np.zeros(4, np.float32),
        w2=np.zeros((4, 4), np.float32),
        b2=np.zeros(4, np.float32),
    )
