"""Compressed shards and merges, truncation, exports, and the DuckDB / Polars recipes."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np
import orjson
import pyarrow.parquet as pq
import pytest
from conftest import example, write_shard

from fusion.cli import main
from fusion.config.config import load_config
from fusion.datasets.arrays import to_arrays
from fusion.errors import DatasetError
from fusion.interop.export import export_dataset
from fusion.run.simulation import run_simulation
from fusion.storage import manifest as mf
from fusion.storage.compression import compress_file, open_binary
from fusion.storage.integrity import file_sha256
from fusion.storage.loader import complete_shard_files, load_dataset
from fusion.storage.merge import merge_shards
from fusion.storage.shard_names import shard_file_name
from fusion.storage.shard_writer import DatasetLogger
from fusion.storage.validate import validate_dataset

KINDS = [("gzip", ".gz"), ("zstd", ".zst")]


def _records(path: Path) -> list[dict]:
    return list(load_dataset(path))


@pytest.mark.parametrize(("kind", "suffix"), KINDS)
def test_shard_when_compress_asked_replaces_plain_and_reads_back_the_same(
    dataset, tmp_path, kind, suffix
):
    packed = tmp_path / "packed"
    for seed, n in ((2, 5), (10, 7), (1, 3)):
        write_shard(packed, seed, n, compress=kind)
    assert sorted(
        p.name for p in packed.glob("*.jsonl*") if not p.name.endswith((".lock", ".json"))
    ) == [f"offline_data.seed{s}.jsonl{suffix}" for s in (1, 10, 2)]
    manifest = mf.read_manifest(packed)
    for entry in manifest["shards"]:
        stored = packed / entry["file"]
        assert entry["compression"] == kind and entry["bytes"] == stored.stat().st_size
        assert entry["sha256"] == file_sha256(stored)
        plain = dataset / shard_file_name(entry["seed"])
        assert (
            entry["raw_sha256"] == file_sha256(plain) and entry["raw_bytes"] == plain.stat().st_size
        )
        with open_binary(stored) as handle:
            assert handle.read() == plain.read_bytes()
    assert _records(packed) == _records(dataset)
    assert validate_dataset(packed).ok
    for name, array in to_arrays(dataset, cache=False).arrays().items():
        np.testing.assert_array_equal(getattr(to_arrays(packed, cache=False), name), array)
    merge_shards(packed, tmp_path / "a.jsonl")
    merge_shards(dataset, tmp_path / "b.jsonl")
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    mf.manifest_path(packed).unlink()
    assert [e["file"] for e in mf.rebuild_manifest(packed)["shards"]] == [
        f"offline_data.seed{s}.jsonl{suffix}" for s in (1, 2, 10)
    ]


def test_shard_when_config_asks_zstd_simulation_writes_zst_and_overwrite_replaces_it(tmp_path):
    cfg = load_config().replace("general_settings", num_requests=400)
    cfg = cfg.replace("dataset_logging", shard_compression="zstd")
    run_simulation(cfg, 5, dataset_dir=str(tmp_path))
    assert (tmp_path / "offline_data.seed5.jsonl.zst").exists()
    assert not (tmp_path / "offline_data.seed5.jsonl").exists()
    plain = cfg.replace("dataset_logging", shard_compression="none")
    run_simulation(plain, 5, dataset_dir=str(tmp_path), overwrite=True)
    assert not (tmp_path / "offline_data.seed5.jsonl.zst").exists()
    assert mf.read_manifest(tmp_path)["shards"][0]["file"] == "offline_data.seed5.jsonl"
    assert len(_records(tmp_path)) == 400


@pytest.mark.parametrize(("kind", "suffix"), KINDS)
def test_merge_when_compressed_round_trips_and_is_deterministic(dataset, tmp_path, kind, suffix):
    merge_shards(dataset, tmp_path / "plain.jsonl")
    out = tmp_path / f"all.jsonl{suffix}"
    info = merge_shards(dataset, out, compress=kind)
    with open_binary(out) as handle:
        assert handle.read() == (tmp_path / "plain.jsonl").read_bytes()
    assert info["sha256_file"] == file_sha256(out) and info["transitions"] == 15
    first = out.read_bytes()
    merge_shards(dataset, out, compress=kind, overwrite=True)
    assert out.read_bytes() == first
    assert _records(out) == _records(dataset)
    for name, array in to_arrays(dataset, cache=False).arrays().items():
        np.testing.assert_array_equal(getattr(to_arrays(out, cache=False), name), array)


def _cut(path: Path, keep: float = 0.6) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


@pytest.mark.damages
@pytest.mark.parametrize(("kind", "suffix"), KINDS)
def test_shard_when_compressed_file_is_cut_is_reported_never_loaded_as_complete(
    tmp_path, kind, suffix
):
    write_shard(tmp_path, 1, 3, compress=kind)
    write_shard(tmp_path, 2, 400, compress=kind)
    shard = tmp_path / f"offline_data.seed2.jsonl{suffix}"
    _cut(shard)
    with pytest.raises(DatasetError, match=r"seed2\.jsonl"):
        _records(tmp_path)
    with pytest.raises(DatasetError, match=r"seed2\.jsonl"):
        to_arrays(tmp_path, cache=False)
    report = validate_dataset(tmp_path)
    assert not report.ok and any("seed2" in p for p in report.problems)
    with pytest.raises(DatasetError, match="seed 2: corrupt"):
        merge_shards(tmp_path, tmp_path / "m.jsonl")
    assert main(["validate", str(tmp_path)]) == 1


@pytest.mark.damages
def test_shard_when_zstd_frame_is_whole_but_lines_are_missing_line_count_catches_it(tmp_path):
    write_shard(tmp_path, 3, 50, compress="zstd")
    shard = tmp_path / "offline_data.seed3.jsonl.zst"
    with open_binary(shard) as handle:
        lines = handle.read().splitlines(keepends=True)
    short = tmp_path / "short.jsonl"
    short.write_bytes(b"".join(lines[:30]))
    compress_file(short, shard, "zstd")  # a valid frame that decodes without error
    with pytest.raises(DatasetError, match="30 lines, the manifest promises 50"):
        _records(tmp_path)
    with pytest.raises(DatasetError, match="30 lines, the manifest promises 50"):
        to_arrays(tmp_path, cache=False)
    assert not validate_dataset(tmp_path).ok


def test_merged_file_when_cut_at_a_line_end_fails_its_sidecar_count(dataset, tmp_path):
    out = tmp_path / "all.jsonl.gz"
    merge_shards(dataset, out, compress="gzip")
    with open_binary(out) as handle:
        lines = handle.read().splitlines(keepends=True)
    out.write_bytes(gzip.compress(b"".join(lines[:10]), mtime=0))
    with pytest.raises(DatasetError, match=r"10 lines, all\.jsonl\.gz\.manifest\.json promises 15"):
        _records(out)


def test_export_npz_when_written_has_d4rl_keys_matching_the_arrays(dataset, tmp_path):
    out = tmp_path / "d4rl.npz"
    assert main(["export", str(dataset), "--format", "npz", "-o", str(out)]) == 0
    arrays = to_arrays(dataset)
    with np.load(out, allow_pickle=False) as npz:
        np.testing.assert_array_equal(npz["observations"], arrays.observations)
        np.testing.assert_array_equal(npz["next_observations"], arrays.next_observations)
        np.testing.assert_array_equal(npz["actions"], arrays.actions)
        np.testing.assert_array_equal(npz["rewards"], arrays.rewards)
        np.testing.assert_array_equal(npz["action_masks"], arrays.action_masks)
        np.testing.assert_array_equal(npz["timeouts"], arrays.dones)
        assert not npz["terminals"].any()
        assert npz["observation_names"].tolist() == arrays.metadata["observation_names"]


def test_export_parquet_when_read_back_has_one_typed_row_per_transition(dataset, tmp_path):
    out = tmp_path / "all.parquet"
    assert export_dataset(dataset, out, "parquet") == 15
    table = pq.read_table(out)
    records = _records(dataset)
    assert table.column("seed").to_pylist() == [r["seed"] for r in records]
    assert table.column("t").to_pylist() == [r["t"] for r in records]
    assert table.column("action").to_pylist() == [r["action"] for r in records]
    assert table.column("action_mask").to_pylist() == [r["action_mask"] for r in records]
    assert table.column("src").to_pylist() == [r["state"]["src"] for r in records]
    assert table.column("paths").to_pylist() == [r["state"]["paths"] for r in records]
    assert table.column("bp_window_tag").to_pylist() == [
        r["meta"]["bp_window_tag"] for r in records
    ]
    assert table.column("done").to_pylist() == [False] * 2 + [True] + [False] * 4 + [True] + [
        False
    ] * 6 + [True]
    path_type = table.schema.field("paths").type.value_type
    assert str(path_type.field("frag_indicator").type) == "double"
    assert str(path_type.field("path_hops").type) == "int32"
    assert str(table.schema.field("reward").type) == "double"
    assert str(table.schema.field("src").type) == "int32"


def test_export_when_format_or_seeds_bad_exits_2_and_writes_nothing(dataset, tmp_path):
    assert (
        main(
            [
                "export",
                str(dataset),
                "--format",
                "npz",
                "-o",
                str(tmp_path / "x.npz"),
                "--seeds",
                "1-x",
            ]
        )
        == 2
    )
    with pytest.raises(SystemExit) as exc:
        main(["export", str(dataset), "--format", "csv", "-o", str(tmp_path / "x.csv")])
    assert exc.value.code == 2
    assert not list(tmp_path.glob("x.*"))


def test_export_parquet_when_a_line_has_a_wrong_type_names_the_file(tmp_path):
    p = tmp_path / "bad.jsonl"
    kwargs = example(0)
    with DatasetLogger(p, {"seed": 0}) as log:
        log.log_transition(**kwargs)
        log.log_transition(**kwargs)
    # The writer refuses such a line (test_writer_when_value_is_what_readers_refuse_...): a
    # file edited afterwards holds one.
    first, second = p.read_bytes().splitlines(keepends=True)
    p.write_bytes(first + second.replace(b'"src":', b'"src":"three","was":', 1))
    with pytest.raises(DatasetError, match=r"bad\.jsonl"):
        export_dataset(p, tmp_path / "bad.parquet", "parquet")
    assert not (tmp_path / "bad.parquet").exists()


def test_duckdb_recipe_when_reading_shards_orders_by_integer_seed_and_counts_match(dataset):
    duckdb = pytest.importorskip("duckdb")
    files = [str(p) for p in complete_shard_files(dataset)]
    rows = duckdb.execute(
        "SELECT seed, t, action, state.src AS src FROM read_json(?, format='newline_delimited') "
        "ORDER BY seed, t",
        [files],
    ).fetchall()
    manifest = mf.read_manifest(dataset)
    assert len(rows) == sum(e["transitions"] for e in manifest["shards"]) == 15
    assert [(s, t) for s, t, _, _ in rows] == [(r["seed"], r["t"]) for r in _records(dataset)]
    assert [s for s, *_ in rows][:4] == [1, 1, 1, 2]
    pytest.importorskip("pandas")  # the README's .df(): pandas comes with the dev extra
    frame = duckdb.execute(
        "SELECT seed, t, action, state.src AS src, meta.bp_window_tag AS window "
        "FROM read_json(?, format='newline_delimited') ORDER BY seed, t",
        [files],
    ).df()
    assert len(frame) == 15 and list(frame["seed"][:4]) == [1, 1, 1, 2]


def test_polars_recipe_when_reading_shards_orders_by_integer_seed_and_counts_match(
    dataset, tmp_path
):
    pl = pytest.importorskip("polars")
    write_shard(tmp_path / "z", 2, 4, compress="zstd")
    for directory in (dataset, tmp_path / "z"):
        files = [str(p) for p in complete_shard_files(directory)]
        frame = pl.scan_ndjson(files).select("seed", "t", "action").sort("seed", "t").collect()
        manifest = mf.read_manifest(directory)
        assert frame.height == sum(e["transitions"] for e in manifest["shards"])
        assert list(zip(frame["seed"], frame["t"], strict=True)) == [
            (r["seed"], r["t"]) for r in _records(directory)
        ]


def test_compress_file_when_run_twice_gives_identical_bytes(tmp_path):
    src = tmp_path / "a.jsonl"
    src.write_bytes(b"".join(orjson.dumps({"i": i}) + b"\n" for i in range(1000)))
    for kind in ("gzip", "zstd"):
        first = compress_file(src, tmp_path / f"1.{kind}", kind)
        second = compress_file(src, tmp_path / f"2.{kind}", kind)
        assert first == second
        assert first[0] == hashlib.sha256((tmp_path / f"1.{kind}").read_bytes()).hexdigest()
