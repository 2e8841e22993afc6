"""Merging shards: deterministic bytes, both orders, refusal and partial merges, the CLI."""

from __future__ import annotations

import orjson
import pytest
from conftest import mark_status, write_shard

from fusion.cli import main
from fusion.errors import DatasetError
from fusion.storage.merge import merge_shards, merged_sidecar_path
from fusion.storage.shard_names import shard_file_name


def _shard_bytes(directory, seed):
    return (directory / shard_file_name(seed)).read_bytes()


def test_merge_when_order_seed_concatenates_shards_by_integer_seed(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "all.jsonl"
    info = merge_shards(dataset, out)
    expected = b"".join(_shard_bytes(dataset, s) for s in (1, 2, 10))
    assert out.read_bytes() == expected
    side = orjson.loads(merged_sidecar_path(out).read_bytes())
    assert side == info
    assert [(s["seed"], s["lines"], s["byte_start"], s["byte_end"]) for s in side["shards"]] == [
        (1, 3, 0, len(_shard_bytes(dataset, 1))),
        (
            2,
            5,
            len(_shard_bytes(dataset, 1)),
            len(_shard_bytes(dataset, 1)) + len(_shard_bytes(dataset, 2)),
        ),
        (10, 7, len(expected) - len(_shard_bytes(dataset, 10)), len(expected)),
    ]
    import hashlib

    assert side["sha256"] == hashlib.sha256(expected).hexdigest() and side["transitions"] == 15
    assert side["order"] == "seed" and not side["partial"]


def test_merge_when_run_twice_or_written_in_reverse_gives_identical_bytes(tmp_path):
    forward, backward = tmp_path / "f", tmp_path / "b"
    for seed in (0, 1, 2, 3):
        write_shard(forward, seed, 4 + seed)
    for seed in (3, 2, 1, 0):
        write_shard(backward, seed, 4 + seed)
    outs = [
        merge_shards(d, tmp_path / f"{d.name}{i}.jsonl", order=o)
        for d in (forward, backward)
        for i, o in enumerate(("seed", "t"))
    ]
    assert (tmp_path / "f0.jsonl").read_bytes() == (tmp_path / "b0.jsonl").read_bytes()
    assert (tmp_path / "f1.jsonl").read_bytes() == (tmp_path / "b1.jsonl").read_bytes()
    merge_shards(forward, tmp_path / "again.jsonl")
    assert (tmp_path / "again.jsonl").read_bytes() == (tmp_path / "f0.jsonl").read_bytes()
    assert outs[0]["sha256"] == outs[2]["sha256"]


def test_merge_when_order_t_round_robins_ties_by_seed(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "t.jsonl"
    merge_shards(dataset, out, order="t")
    keys = [(r["t"], r["seed"]) for r in map(orjson.loads, out.read_bytes().splitlines())]
    assert keys == sorted(keys)
    assert len(keys) == 15


@pytest.mark.damages
def test_merge_when_shard_incomplete_refuses_by_name_and_writes_nothing(dataset, tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("out")

    mark_status(dataset, 2, "writing")
    with pytest.raises(DatasetError, match="seed 2: incomplete"):
        merge_shards(dataset, out_dir / "m.jsonl")
    assert list(out_dir.iterdir()) == []


@pytest.mark.damages
def test_merge_when_shard_corrupt_refuses_by_name_and_leaves_no_temp(dataset, tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("out")
    shard = dataset / shard_file_name(10)
    data = bytearray(shard.read_bytes())
    data[10:12] = b"99"
    shard.write_bytes(bytes(data))
    for order in ("seed", "t"):
        with pytest.raises(DatasetError, match="seed 10: corrupt"):
            merge_shards(dataset, out_dir / "m.jsonl", order=order)
    assert list(out_dir.iterdir()) == []


@pytest.mark.damages
def test_merge_when_allow_partial_takes_whole_lines_and_records_gaps(dataset, tmp_path_factory):
    out = tmp_path_factory.mktemp("out") / "m.jsonl"
    (dataset / shard_file_name(1)).unlink()
    shard2 = dataset / shard_file_name(2)
    shard2.write_bytes(shard2.read_bytes() + b'{"t": 5, "se')
    mark_status(dataset, 2, "writing")
    info = merge_shards(dataset, out, include_incomplete=True)
    seeds = [orjson.loads(line)["seed"] for line in out.read_bytes().splitlines()]
    assert seeds == [2] * 5 + [10] * 7
    assert info["partial"] is True
    assert set(info["left_out_or_cut"]) == {"1", "2"}


@pytest.mark.damages
def test_cli_merge_when_dataset_incomplete_exits_1_and_with_allow_partial_exits_0(
    dataset, tmp_path_factory, capsys
):
    out = tmp_path_factory.mktemp("out") / "m.jsonl"
    mark_status(dataset, 1, "failed")
    assert main(["merge", str(dataset), "-o", str(out)]) == 1
    assert "seed 1" in capsys.readouterr().err
    assert not out.exists()
    assert main(["merge", str(dataset), "-o", str(out), "--allow-partial", "--order", "t"]) == 0
    assert out.exists()


def test_cli_merge_when_arguments_missing_exits_2(dataset):
    with pytest.raises(SystemExit) as info:
        main(["merge", str(dataset)])
    assert info.value.code == 2
