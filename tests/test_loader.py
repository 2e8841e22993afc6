"""Loading: (seed, t) order with integer seeds, filters, strictness, incomplete shards."""

from __future__ import annotations

import pytest
from conftest import example, write_shard

from fusion.errors import DatasetError
from fusion.storage.loader import filter_by_window, load_dataset
from fusion.storage.shard_names import shard_file_name
from fusion.storage.shard_writer import DatasetLogger


def test_load_dataset_when_directory_yields_seed_then_t_with_integer_seeds(dataset):
    keys = [(t["seed"], t["t"]) for t in load_dataset(dataset)]
    assert keys == [(1, i) for i in range(3)] + [(2, i) for i in range(5)] + [
        (10, i) for i in range(7)
    ]


def test_load_dataset_when_manifest_path_given_equals_directory(dataset):
    assert list(load_dataset(dataset / "manifest.json")) == list(load_dataset(dataset))


def test_load_dataset_when_seeds_and_window_given_filters(dataset):
    got = list(load_dataset(dataset, seeds=[10, 1], window="fail"))
    assert {t["seed"] for t in got} == {1, 10}
    assert all(t["meta"]["bp_window_tag"] == "fail" for t in got)
    assert got == [
        t
        for t in load_dataset(dataset)
        if t["seed"] in (1, 10) and t["meta"]["bp_window_tag"] == "fail"
    ]


def test_filter_by_window_when_dataset_or_file_given_matches_load(dataset):
    assert filter_by_window(dataset, "pre") == list(load_dataset(dataset, window="pre"))
    lone = dataset / shard_file_name(2)
    assert filter_by_window(lone, "post") == [
        t for t in load_dataset(dataset, seeds=[2]) if t["meta"]["bp_window_tag"] == "post"
    ]


def test_load_dataset_when_window_unknown_raises(dataset):
    with pytest.raises(ValueError, match="window"):
        list(load_dataset(dataset, window="during"))


@pytest.mark.damages
def test_load_dataset_when_complete_shard_has_corrupt_line_names_file_and_line(dataset):
    shard = dataset / shard_file_name(2)
    lines = shard.read_bytes().splitlines(keepends=True)
    lines[3] = b'{"t": 3, oops}\n'
    shard.write_bytes(b"".join(lines))
    with pytest.raises(DatasetError, match=rf"{shard.name}:4: not a JSON object"):
        list(load_dataset(dataset))


@pytest.mark.damages
def test_load_dataset_when_complete_shard_was_cut_raises_line_count(dataset):
    shard = dataset / shard_file_name(10)
    shard.write_bytes(b"".join(shard.read_bytes().splitlines(keepends=True)[:4]))
    with pytest.raises(DatasetError, match="4 lines, the manifest promises 7"):
        list(load_dataset(dataset))


def test_load_dataset_when_link_next_fills_next_state_within_shard(dataset):
    got = list(load_dataset(dataset, link_next=True))
    plain = list(load_dataset(dataset))
    for i, tr in enumerate(got):
        same_shard_next = i + 1 < len(got) and plain[i + 1]["seed"] == tr["seed"]
        assert tr["next_state"] == (plain[i + 1]["state"] if same_shard_next else None)


def test_load_dataset_when_lone_file_of_seed_api_reads_it(tmp_path):
    path = tmp_path / "x.jsonl"
    with DatasetLogger(path, {"seed": 3}) as log:
        for i in range(4):
            log.log_transition(**example(i))
    assert [t["t"] for t in load_dataset(path)] == [0, 1, 2, 3]


@pytest.mark.damages
def test_load_dataset_when_shard_failed_skips_unless_include_incomplete(tmp_path, caplog):
    write_shard(tmp_path, 0, 3)
    with pytest.raises(KeyError), DatasetLogger.open_shard(tmp_path, 1, {"toy": 1}) as log:
        log.log_transition(**example(0))
        raise KeyError("boom")
    assert {t["seed"] for t in load_dataset(tmp_path)} == {0}
    assert "failed" in caplog.text
    assert [t["seed"] for t in load_dataset(tmp_path, include_incomplete=True)] == [0, 0, 0, 1]
