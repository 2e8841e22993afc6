"""Shards and the manifest: registration, sidecars, concurrency, refusal, rebuilding."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import orjson
import pytest
from conftest import example, write_shard

from fusion.errors import DatasetError, ManifestConflictError, ShardBusyError, ShardExistsError
from fusion.storage import manifest as mf
from fusion.storage.dataset_identity import config_sha256
from fusion.storage.loader import load_dataset
from fusion.storage.shard_names import sidecar_path
from fusion.storage.shard_writer import DatasetLogger
from fusion.storage.validate import validate_dataset

TESTS = Path(__file__).parent


def test_open_shard_when_closed_records_complete_entry_matching_file(tmp_path):
    path = write_shard(tmp_path, 3, 10)
    assert path.name == "offline_data.seed3.jsonl"
    manifest = mf.read_manifest(tmp_path)
    (entry,) = manifest["shards"]
    data = path.read_bytes()
    assert entry["status"] == "complete"
    assert entry["transitions"] == 10 == data.count(b"\n")
    assert entry["bytes"] == len(data)
    assert entry["sha256"] == hashlib.sha256(data).hexdigest()
    assert [orjson.loads(line)["t"] for line in data.splitlines()] == list(range(10))
    assert {orjson.loads(line)["seed"] for line in data.splitlines()} == {3}
    stats = entry["stats"]
    assert stats["accepted"] + stats["blocked"] == 10
    assert stats["blocked"] == sum(1 for i in range(10) if (i + 3) % 5 == 4)
    assert sum(stats["path_chosen"]) == stats["accepted"]
    assert set(stats["per_window"]) == {"pre", "fail", "post"}
    assert manifest["config"] == {"toy": 1}
    assert manifest["config_sha256"] == config_sha256({"toy": 1})
    assert manifest["format"] == mf.FORMAT_NAME and manifest["schema_version"] == 1
    sidecar = orjson.loads(sidecar_path(path).read_bytes())
    assert (
        sidecar["sha256"] == entry["sha256"]
        and sidecar["config_sha256"] == manifest["config_sha256"]
    )


@pytest.mark.damages
def test_open_shard_when_writing_lists_writing_then_failed_on_error(tmp_path):
    with pytest.raises(RuntimeError), DatasetLogger.open_shard(tmp_path, 5, {}) as log:
        log.log_transition(**example(0))
        assert mf.read_manifest(tmp_path)["shards"][0]["status"] == "writing"
        raise RuntimeError("simulator broke")
    entry = mf.read_manifest(tmp_path)["shards"][0]
    assert entry["status"] == "failed"
    assert "simulator broke" in entry["error"]
    assert entry["transitions"] == 1


def test_open_shard_when_second_writer_same_seed_is_refused(tmp_path):
    with DatasetLogger.open_shard(tmp_path, 1, {}) as log:
        log.log_transition(**example(0))
        with pytest.raises(ShardBusyError, match="seed 1"):
            DatasetLogger.open_shard(tmp_path, 1, {})
        log.log_transition(**example(1))
    assert [t["t"] for t in load_dataset(tmp_path)] == [0, 1]


@pytest.mark.damages
def test_open_shard_when_other_process_writes_same_seed_is_refused(tmp_path):
    proc = subprocess.Popen([sys.executable, str(TESTS / "_workers.py"), str(tmp_path), "4"])
    try:
        shard = tmp_path / "offline_data.seed4.jsonl"
        deadline = time.monotonic() + 30
        while not (shard.exists() and shard.stat().st_size > 0) and time.monotonic() < deadline:
            time.sleep(0.05)
        with pytest.raises(ShardBusyError):
            DatasetLogger.open_shard(tmp_path, 4, {"toy": 1})
    finally:
        proc.kill()
        proc.wait()


def test_open_shard_when_complete_is_not_overwritten_unless_asked(tmp_path):
    path = write_shard(tmp_path, 2, 4)
    before = path.read_bytes()
    with pytest.raises(ShardExistsError, match="overwrite"):
        DatasetLogger.open_shard(tmp_path, 2, {"toy": 1})
    assert path.read_bytes() == before
    write_shard(tmp_path, 2, 6, overwrite=True)
    assert mf.read_manifest(tmp_path)["shards"][0]["transitions"] == 6


def test_open_shard_when_config_differs_is_refused_naming_hashes(tmp_path):
    write_shard(tmp_path, 0, 1)
    with pytest.raises(ManifestConflictError, match="sha256"):
        DatasetLogger.open_shard(tmp_path, 1, {"toy": 2})


@pytest.mark.parametrize("seed", [-1, 2**31, "3", 1.0])
def test_open_shard_when_seed_out_of_range_raises(tmp_path, seed):
    with pytest.raises(ValueError, match="seed"):
        DatasetLogger.open_shard(tmp_path, seed, {})


def test_open_shard_when_stem_given_names_files_with_it(tmp_path):
    with DatasetLogger.open_shard(tmp_path, 9, {}, stem="nsf") as log:
        log.log_transition(**example(0))
    assert (tmp_path / "nsf.seed9.jsonl").exists()
    assert len(list(load_dataset(tmp_path))) == 1


def test_manifest_when_eight_processes_write_at_once_lists_all_sorted(tmp_path):
    from _workers import write_one_shard

    ctx = multiprocessing.get_context("spawn")
    seeds = [7, 3, 12, 0, 5, 10, 1, 2]
    with ctx.Pool(8) as pool:
        names = pool.starmap(write_one_shard, [(str(tmp_path), s, 50) for s in seeds])
    assert len(names) == 8
    manifest = mf.read_manifest(tmp_path)
    assert [e["seed"] for e in manifest["shards"]] == sorted(seeds)
    assert all(e["status"] == "complete" and e["transitions"] == 50 for e in manifest["shards"])
    assert manifest["planned_seeds"] == sorted(seeds)
    assert validate_dataset(tmp_path).ok


def test_read_manifest_when_unreadable_names_file_and_rebuild_recovers(dataset):
    good = mf.read_manifest(dataset)
    (dataset / "manifest.json").write_bytes(b'{"format": "fusion-offl')
    with pytest.raises(DatasetError, match=str(dataset / "manifest.json")):
        mf.read_manifest(dataset)
    rebuilt = mf.rebuild_manifest(dataset)
    assert rebuilt["config_sha256"] == good["config_sha256"]
    strip = ("started", "finished", "updated")
    assert [{k: v for k, v in e.items() if k not in strip} for e in rebuilt["shards"]] == [
        {k: v for k, v in e.items() if k not in strip} for e in good["shards"]
    ]
    assert validate_dataset(dataset).ok


@pytest.mark.damages
def test_writer_when_sigkilled_mid_shard_leaves_readable_manifest_and_whole_lines(tmp_path, caplog):
    write_shard(tmp_path, 1, 5)
    proc = subprocess.Popen([sys.executable, str(TESTS / "_workers.py"), str(tmp_path), "2"])
    shard = tmp_path / "offline_data.seed2.jsonl"
    deadline = time.monotonic() + 30
    while not (shard.exists() and shard.stat().st_size > 20_000) and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    # A write cut mid-line leaves bytes with no newline; make sure that case is covered too.
    with open(shard, "ab") as f:
        f.write(b'{"t": 999999, "seed": 2, "sta')
    manifest = mf.read_manifest(tmp_path)
    status = {e["seed"]: e["status"] for e in manifest["shards"]}
    assert status == {1: "complete", 2: "writing"}
    report = validate_dataset(tmp_path)
    assert not report.ok and any("seed 2" in p and "not complete" in p for p in report.problems)
    default = list(load_dataset(tmp_path))
    assert {t["seed"] for t in default} == {1}
    assert "seed 2" in caplog.text
    partial = [t for t in load_dataset(tmp_path, include_incomplete=True) if t["seed"] == 2]
    whole_lines = shard.read_bytes().count(b"\n")
    assert len(partial) == whole_lines > 0
    assert [t["t"] for t in partial] == list(range(whole_lines))
