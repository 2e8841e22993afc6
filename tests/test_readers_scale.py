"""Readers at scale: a t-order merge opens a bounded number of files, whatever the shards."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import example

from fusion.storage import manifest as mf
from fusion.storage import merge as merge_module
from fusion.storage.merge import merge_shards
from fusion.storage.shard_entries import compact_entry
from fusion.storage.shard_names import shard_file_name
from fusion.storage.shard_writer import DatasetLogger


def write_many_shards(directory: Path, seeds: range, lines: int) -> None:
    """Shards as a sweep's workers write them (no manifest commit each), committed once."""
    mf.init_manifest(directory, {"toy": 1}, planned_seeds=list(seeds))
    entries = []
    for seed in seeds:
        log = DatasetLogger.open_shard(directory, seed, {"toy": 1}, commit=False)
        for i in range(lines + seed % 3):  # shards of different lengths
            log.log_transition(**example(i + seed))
        log.close()
        entries.append(compact_entry(log.record))
    mf.commit_entries(directory, entries)


def test_merge_when_order_t_has_more_shards_than_files_it_may_open_gives_the_same_bytes(
    tmp_path, monkeypatch
):
    write_many_shards(tmp_path / "d", range(11), 4)
    direct = merge_shards(tmp_path / "d", tmp_path / "direct.jsonl", order="t")
    for width in (2, 3, 5):  # 11 shards: two and three passes of runs
        monkeypatch.setattr(merge_module, "fan_in", lambda w=width: w)
        out = tmp_path / f"w{width}.jsonl"
        info = merge_shards(tmp_path / "d", out, order="t")
        assert out.read_bytes() == (tmp_path / "direct.jsonl").read_bytes()
        assert info["shards"] == direct["shards"]
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_merge_when_order_t_of_2000_shards_under_ulimit_256_succeeds(tmp_path):
    write_many_shards(tmp_path / "d", range(2000), 2)
    script = textwrap.dedent(
        f"""
        import resource, sys
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))
        from fusion.storage.merge import merge_shards
        info = merge_shards({str(tmp_path / "d")!r}, {str(tmp_path / "t.jsonl")!r}, order="t")
        print(info["transitions"], len(info["shards"]))
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    expected = sum(2 + seed % 3 for seed in range(2000))
    assert done.stdout.split() == [str(expected), "2000"]
    lines = (tmp_path / "t.jsonl").read_bytes().splitlines()
    assert len(lines) == expected
    assert lines[:2] == [
        (tmp_path / "d" / shard_file_name(seed)).read_bytes().splitlines()[0] for seed in (0, 1)
    ]
