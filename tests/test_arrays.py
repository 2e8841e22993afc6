"""The array view: shapes and order, next-state linking, the npz cache, the seeded sampler."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa
import pytest
from conftest import example, write_shard

from fusion.config.config import load_config
from fusion.datasets import arrays as arrays_module
from fusion.datasets.arrays import to_arrays
from fusion.datasets.sampler import MinibatchSampler, iter_minibatches
from fusion.errors import DatasetError
from fusion.run.simulation import run_simulation
from fusion.storage.loader import load_dataset
from fusion.storage.merge import merge_shards
from fusion.storage.observation import PATH_FEATURES, STATE_FEATURES, observation
from fusion.storage.shard_writer import DatasetLogger


def _expected_row(state: dict) -> list[float]:
    row = [float(state[k]) for k in STATE_FEATURES]
    for path in state["paths"]:
        row += [float(path[k]) for k in PATH_FEATURES]
    return row


def test_to_arrays_when_hand_built_records_gives_shapes_dtypes_and_feature_order(dataset):
    records = list(load_dataset(dataset))
    a = to_arrays(dataset, cache=False)
    n = len(records)
    assert len(a) == n == 15
    assert a.observations.shape == (n, 25) and a.observations.dtype == np.float32
    assert a.next_observations.shape == (n, 25) and a.next_observations.dtype == np.float32
    assert a.actions.dtype == np.int64 and a.rewards.dtype == np.float32
    assert a.action_masks.shape == (n, 4) and a.action_masks.dtype == bool
    assert a.dones.dtype == bool and a.seeds.dtype == np.int64 and a.t.dtype == np.int64
    for i, record in enumerate(records):
        assert a.observations[i].tolist() == np.float32(_expected_row(record["state"])).tolist()
        assert a.actions[i] == record["action"] and a.rewards[i] == record["reward"]
        assert a.action_masks[i].tolist() == record["action_mask"]
        assert (a.seeds[i], a.t[i]) == (record["seed"], record["t"])
    assert a.seeds.tolist() == [1] * 3 + [2] * 5 + [10] * 7
    names = a.metadata["observation_names"]
    assert names[:5] == ["src", "dst", "slots_needed", "est_remaining_time", "is_disaster"]
    assert (
        names[5:10] == [f"path0.{k}" for k in PATH_FEATURES]
        and names[-1] == "path3.dist_to_disaster_centroid"
    )
    assert a.metadata["k_paths"] == 4


def test_to_arrays_when_linked_next_is_following_row_within_shard_never_across(dataset):
    a = to_arrays(dataset, cache=False)
    ends = [2, 7, 14]  # last rows of seeds 1, 2, 10
    assert np.flatnonzero(a.dones).tolist() == ends
    for i in range(len(a)):
        if i in ends:
            assert not a.next_observations[i].any()
        else:
            assert a.seeds[i + 1] == a.seeds[i]
            np.testing.assert_array_equal(a.next_observations[i], a.observations[i + 1])


def test_to_arrays_when_window_or_seeds_given_keeps_true_successors(dataset):
    full = to_arrays(dataset, cache=False)
    fail = to_arrays(dataset, window="fail", seeds=[2, 10], cache=False)
    keep = (full.window_tags == 1) & np.isin(full.seeds, [2, 10])
    assert len(fail) == int(keep.sum()) > 0
    np.testing.assert_array_equal(fail.next_observations, full.next_observations[keep])
    assert fail.metadata["window"] == "fail" and fail.metadata["seeds"] == [2, 10]


def test_to_arrays_when_merged_file_in_either_order_equals_the_dataset(dataset, tmp_path):
    want = to_arrays(dataset, cache=False)
    for order in ("seed", "t"):
        merge_shards(dataset, tmp_path / f"merged_{order}.jsonl", order=order)
        got = to_arrays(tmp_path / f"merged_{order}.jsonl", cache=False)
        for name, array in want.arrays().items():
            np.testing.assert_array_equal(getattr(got, name), array, err_msg=f"{order}: {name}")


def test_load_dataset_when_t_ordered_merge_links_next_within_seed(dataset, tmp_path):
    merge_shards(dataset, tmp_path / "by_t.jsonl", order="t")
    linked = list(load_dataset(tmp_path / "by_t.jsonl", link_next=True))
    by_key = {(r["seed"], r["t"]): r for r in linked}
    assert len(by_key) == 15
    for (seed, t), record in by_key.items():
        following = by_key.get((seed, t + 1))
        assert record["next_state"] == (following["state"] if following else None)


def _small_sim(tmp_path: Path, seeds: tuple[int, ...], link: bool, n: int = 1500) -> Path:
    out = tmp_path / ("linked" if link else "plain")
    cfg = load_config().replace("general_settings", num_requests=n)
    cfg = cfg.replace("failure_settings", t_repair_after_arrivals=n // 4)
    cfg = cfg.replace("dataset_logging", link_next_state=str(link))
    for seed in seeds:
        run_simulation(cfg, seed, dataset_dir=str(out))
    return out


def test_to_arrays_when_logged_with_link_next_state_agrees_with_load_time(tmp_path):
    out = _small_sim(tmp_path, (3, 4), link=True)
    a = to_arrays(out, cache=False)
    logged = list(load_dataset(out))
    assert len(logged) == len(a)
    for i, record in enumerate(logged):
        if record["next_state"] is None:
            assert a.dones[i] and not a.next_observations[i].any()
        else:
            assert not a.dones[i]
            np.testing.assert_array_equal(
                a.next_observations[i],
                observation(record["next_state"], 4, a.metadata["path_features"]),
            )
    relinked = list(load_dataset(out, link_next=True))
    assert [r["next_state"] for r in relinked] == [r["next_state"] for r in logged]


def test_to_arrays_when_called_twice_reuses_the_cache(dataset, monkeypatch):
    first = to_arrays(dataset)
    assert not first.metadata["from_cache"]
    assert (dataset / "offline_data.arrays.npz").exists()

    def no_parsing(*args: object, **kwargs: object) -> None:
        raise AssertionError("parsed JSON although the cache is valid")

    monkeypatch.setattr(arrays_module, "read_columns", no_parsing)
    second = to_arrays(dataset)
    assert second.metadata["from_cache"]
    for name, array in first.arrays().items():
        np.testing.assert_array_equal(getattr(second, name), array)
    only = to_arrays(dataset, seeds=[10], window="post")
    assert only.metadata["from_cache"] and set(only.seeds.tolist()) == {10}


def test_to_arrays_when_a_shard_changes_rebuilds_the_cache(dataset):
    to_arrays(dataset)
    write_shard(dataset, 2, 9, overwrite=True)  # rewritten: new sha256 in the manifest
    again = to_arrays(dataset)
    assert not again.metadata["from_cache"] and int((again.seeds == 2).sum()) == 9
    assert to_arrays(dataset).metadata["from_cache"]
    shard = dataset / "offline_data.seed10.jsonl"
    stat = shard.stat()
    os.utime(shard, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # touched by hand
    assert not to_arrays(dataset).metadata["from_cache"]


def test_to_arrays_when_cache_is_garbage_warns_and_rebuilds(dataset, caplog):
    to_arrays(dataset)
    (dataset / "offline_data.arrays.npz").write_bytes(b"not a zip")
    with caplog.at_level(logging.WARNING):
        a = to_arrays(dataset)
    assert not a.metadata["from_cache"] and "unreadable array cache" in caplog.text
    assert to_arrays(dataset).metadata["from_cache"]


@pytest.mark.damages
def test_to_arrays_when_line_is_corrupt_names_file_and_line(dataset):
    shard = dataset / "offline_data.seed2.jsonl"
    lines = shard.read_bytes().splitlines(keepends=True)
    lines[3] = b'{"t": 3, "seed": 2, oops}\n'
    shard.write_bytes(b"".join(lines))
    with pytest.raises(DatasetError, match=r"offline_data\.seed2\.jsonl:4"):
        to_arrays(dataset, cache=False)


def test_to_arrays_when_field_missing_names_file_line_and_field(tmp_path):
    p = tmp_path / "x.jsonl"  # written by hand: the writer refuses such a line
    lines = [{"t": t, "seed": 0, **example(0)} for t in range(2)]
    for path in lines[1]["state"]["paths"]:  # (every path: one lacking alone is refused)
        del path["min_residual_slots"]
    p.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
    with pytest.raises(
        DatasetError, match=r"x\.jsonl:2: field 'state\.paths\[\]\.min_residual_slots'"
    ):
        to_arrays(p, cache=False)


@pytest.mark.damages
def test_to_arrays_when_complete_shard_was_cut_raises_line_count(dataset):
    shard = dataset / "offline_data.seed10.jsonl"
    shard.write_bytes(b"".join(shard.read_bytes().splitlines(keepends=True)[:4]))
    with pytest.raises(DatasetError, match="manifest promises 7"):
        to_arrays(dataset)


@pytest.mark.damages
def test_to_arrays_when_shard_incomplete_skips_unless_asked(tmp_path, caplog):
    write_shard(tmp_path, 1, 3)
    log = DatasetLogger.open_shard(tmp_path, 2, {"toy": 1})
    for i in range(4):
        log.log_transition(**example(i))
    log.flush()
    with open(log.output_path, "ab") as handle:
        handle.write(b'{"t": 4, "se')  # the writer died mid-line
    with caplog.at_level(logging.WARNING):
        assert set(to_arrays(tmp_path).seeds.tolist()) == {1}
    assert "seed 2 is writing" in caplog.text
    both = to_arrays(tmp_path, include_incomplete=True)
    assert int((both.seeds == 2).sum()) == 4 and not both.metadata["from_cache"]


def test_sampler_when_dataset_is_one_merged_file_or_four_shards_gives_same_batches(tmp_path):
    shards = tmp_path / "four"
    for seed, n in ((7, 6), (3, 5), (12, 9), (0, 4)):  # written out of order
        write_shard(shards, seed, n)
    merge_shards(shards, tmp_path / "one.jsonl", order="t")
    sharded, single = to_arrays(shards, cache=False), to_arrays(tmp_path / "one.jsonl", cache=False)
    assert len(sharded) == len(single) == 24
    a, b = MinibatchSampler(len(sharded), 5, seed=7), MinibatchSampler(len(single), 5, seed=7)
    for epoch in range(3):
        pairs = zip(
            iter_minibatches(sharded, a, epoch), iter_minibatches(single, b, epoch), strict=True
        )
        for x, y in pairs:
            for name in x:
                np.testing.assert_array_equal(x[name], y[name])
    assert [list(r) for r in a.epoch(0)] != [list(r) for r in a.epoch(1)]
    assert [list(r) for r in a.epoch(0)] != [
        list(r) for r in MinibatchSampler(24, 5, seed=8).epoch(0)
    ]


def test_sampler_when_split_over_workers_parts_make_the_one_worker_batch():
    whole = list(MinibatchSampler(103, 10, seed=1).epoch(2))
    parts = [
        list(MinibatchSampler(103, 10, seed=1, rank=r, world_size=3).epoch(2)) for r in range(3)
    ]
    for b, batch in enumerate(whole):
        assert sorted(np.concatenate([p[b] for p in parts]).tolist()) == sorted(batch.tolist())
    assert len(MinibatchSampler(103, 10, seed=1, drop_last=True)) == 10


@pytest.mark.parametrize("features", [("frag_indicator",), PATH_FEATURES])
@pytest.mark.parametrize("k", [2, 4, 6])
def test_observation_when_paths_fewer_or_more_than_k_lays_out_k_padded(features, k):
    state = example(3)["state"]  # four paths
    vector = observation(state, k, features)
    expected = [float(state[name]) for name in STATE_FEATURES]
    for index in range(k):
        paths = state["paths"]
        expected += [float(paths[index][f]) if index < len(paths) else 0.0 for f in features]
    assert vector.dtype == np.float32
    assert vector.tolist() == np.array(expected, dtype=np.float32).tolist()


def test_column_readers_schemas_when_compared_with_the_declaration_type_each_field_by_it():
    from fusion.config.features import FEATURES, PATH_FEATURE_SETS, RECORD_FIELDS
    from fusion.datasets import columns, spectrum
    from fusion.datasets.arrow_types import arrow_type

    declared = {group: {f.name: f for f in fields} for group, fields in RECORD_FIELDS.items()}
    every_feature = [f.name for f in RECORD_FIELDS["path"] if f.name in FEATURES]
    assert set(every_feature) == {name for fs in PATH_FEATURE_SETS.values() for name in fs}

    def check(struct: object, group: str, features_as_float: bool) -> None:
        for field in struct:  # type: ignore[attr-defined]
            spec = declared[group][field.name]
            base = spec.kind.removesuffix(" list")
            if base in declared:
                inner = field.type.value_type if spec.kind.endswith(" list") else field.type
                check(inner, base, features_as_float)
            elif features_as_float and field.name in FEATURES:
                assert field.type == pa.float64(), f"{group}.{field.name}"
            else:
                assert field.type == arrow_type(spec), f"{group}.{field.name}: {field.type}"

    check(columns.SCHEMA, "record", features_as_float=True)
    path_type = columns.SCHEMA.field("state").type.field("paths").type.value_type
    assert [f.name for f in path_type] == every_feature  # every set's, in declared order
    check(spectrum._SCHEMA, "record", features_as_float=False)
