"""Every reader tells the truth: the cases a careful user found, one test each, and one
cross-reader test over a dataset, its manifest and both merges."""

from __future__ import annotations

import dataclasses
import errno
import os
import re
import shutil
import subprocess

import numpy as np
import orjson
import pyarrow.parquet as pq
import pytest
from conftest import example, write_shard

from fusion.cli import main
from fusion.datasets.arrays import to_arrays
from fusion.errors import DatasetError, ShardWriteError
from fusion.interop.export import export_dataset
from fusion.storage import manifest as mf
from fusion.storage.loader import load_dataset
from fusion.storage.merge import merge_shards
from fusion.storage.schema import MAX_LINE_BYTES
from fusion.storage.shard_names import merged_sidecar_path, shard_file_name, sidecar_path
from fusion.storage.shard_writer import DatasetLogger
from fusion.storage.validate import validate_dataset


def _keys(rows):
    return [(r["seed"], r["t"], r["action"]) for r in rows]


def _array_keys(data):
    return list(zip(data.seeds.tolist(), data.t.tolist(), data.actions.tolist(), strict=True))


def _parquet_keys(path):
    table = pq.read_table(path)
    return list(
        zip(
            table.column("seed").to_pylist(),
            table.column("t").to_pylist(),
            table.column("action").to_pylist(),
            strict=True,
        )
    )


def _npz_keys(path):
    with np.load(path) as npz:
        return list(
            zip(npz["seeds"].tolist(), npz["t"].tolist(), npz["actions"].tolist(), strict=True)
        )


@pytest.fixture
def inputs(dataset, tmp_path_factory):
    """The dataset dir, its manifest, and its seed-order and t-order merges."""
    out = tmp_path_factory.mktemp("merged")
    merge_shards(dataset, out / "by_seed.jsonl", order="seed")
    merge_shards(dataset, out / "by_t.jsonl", order="t")
    return {
        "dir": dataset,
        "manifest": dataset / mf.MANIFEST_NAME,
        "seed-merge": out / "by_seed.jsonl",
        "t-merge": out / "by_t.jsonl",
    }


@pytest.mark.parametrize("seeds", [None, [2], [1, 10]])
@pytest.mark.parametrize("window", [None, "fail"])
def test_readers_when_given_any_form_of_one_dataset_give_the_same_rows(
    inputs, tmp_path, seeds, window
):
    expected = None
    for name, path in inputs.items():
        streamed = _keys(load_dataset(path, seeds=seeds, window=window))
        # load_dataset streams a lone file in its own order (a t-order merge stays
        # interleaved); within a seed, t always ascends. The array view and exports sort.
        rows = sorted(streamed)
        for seed in {r[0] for r in rows}:
            assert [r for r in streamed if r[0] == seed] == [r for r in rows if r[0] == seed]
        if name != "t-merge":
            assert streamed == rows, name
        arrays = _array_keys(to_arrays(path, seeds=seeds, window=window, cache=False))
        assert arrays == rows, name
        if window is None:  # the exports take seeds; window is a reader's filter
            export_dataset(path, tmp_path / f"{name}.parquet", "parquet", seeds=seeds)
            export_dataset(path, tmp_path / f"{name}.npz", "npz", seeds=seeds)
            assert _parquet_keys(tmp_path / f"{name}.parquet") == rows, name
            assert _npz_keys(tmp_path / f"{name}.npz") == rows, name
        expected = rows if expected is None else expected
        assert rows == expected, name
    assert expected, "the selection should not be empty"


@pytest.mark.parametrize("order", ["seed", "t"])
def test_validate_when_merged_file_of_many_seeds_is_ok(dataset, tmp_path, order):
    out = tmp_path / "all.jsonl"
    merge_shards(dataset, out, order=order)
    report = validate_dataset(out)
    assert report.ok, report.problems
    assert main(["validate", str(out)]) == 0


def test_validate_when_merged_file_loses_a_line_names_the_seed(dataset, tmp_path):
    out = tmp_path / "all.jsonl"
    merge_shards(dataset, out, order="t")
    lines = out.read_bytes().splitlines(keepends=True)
    out.write_bytes(b"".join(lines[:4] + lines[5:]))
    problems = validate_dataset(out).problems
    assert any("expected" in p and "for seed" in p for p in problems), problems


def _swap_seed_files(dataset, a, b):
    fa, fb = dataset / shard_file_name(a), dataset / shard_file_name(b)
    tmp = dataset / "swap.tmp"
    fa.rename(tmp)
    fb.rename(fa)
    tmp.rename(fb)


@pytest.mark.damages
def test_readers_when_shard_files_swapped_refuse_naming_file_and_seed(tmp_path):
    for seed in (2, 3):
        write_shard(tmp_path, seed, 6)  # same length: the manifest's counts cannot tell
    _swap_seed_files(tmp_path, 2, 3)
    with pytest.raises(DatasetError, match=r"seed2\.jsonl:1: seed is 3, but this is the shard"):
        list(load_dataset(tmp_path, seeds=[2]))
    with pytest.raises(DatasetError, match="seed is 3"):
        to_arrays(tmp_path, seeds=[2], cache=False)
    with pytest.raises(DatasetError, match="seed is 3"):
        export_dataset(tmp_path, tmp_path / "x.parquet", "parquet", seeds=[2])
    assert main(["export", str(tmp_path), "--format", "npz", "-o", str(tmp_path / "x.npz")]) == 1
    assert not validate_dataset(tmp_path).ok


@pytest.mark.damages
def test_readers_when_manifest_lists_a_seed_twice_refuse_and_validate_fails(dataset):
    manifest = orjson.loads((dataset / mf.MANIFEST_NAME).read_bytes())
    manifest["shards"].append(dict(manifest["shards"][0]))
    (dataset / mf.MANIFEST_NAME).write_bytes(orjson.dumps(manifest))
    for read in (lambda: list(load_dataset(dataset)), lambda: to_arrays(dataset, cache=False)):
        with pytest.raises(DatasetError, match="a second time"):
            read()
    with pytest.raises(DatasetError, match="a second time"):
        merge_shards(dataset, dataset.parent / "m.jsonl")
    report = validate_dataset(dataset)
    assert not report.ok and "a second time" in report.problems[0]


@pytest.mark.damages
@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda m: m.update(shards=None), "shards"),
        (lambda m: m["shards"][0].update(file=None), "shards[0].file"),
        (lambda m: m["shards"].__setitem__(0, "a string"), "shards[0]"),
        (lambda m: m["shards"][0].update(seed="two"), "shards[0].seed"),
        (lambda m: m["shards"][0].update(transitions="abc"), "shards[0].transitions"),
        (lambda m: m["shards"][0].update(file="../../etc/passwd"), "shards[0].file"),
    ],
)
def test_bad_manifest_when_read_names_file_and_field_never_a_traceback(
    dataset, capsys, change, field
):
    manifest = orjson.loads((dataset / mf.MANIFEST_NAME).read_bytes())
    change(manifest)
    (dataset / mf.MANIFEST_NAME).write_bytes(orjson.dumps(manifest))
    with pytest.raises(DatasetError, match=rf"manifest\.json: {re.escape(field)} is"):
        mf.read_manifest(dataset)
    assert main(["validate", str(dataset)]) == 1
    assert main(["merge", str(dataset), "-o", str(dataset.parent / "m.jsonl")]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and field in err


def test_resume_when_manifest_is_garbage_rebuilds_it_from_sidecars(tmp_path):
    from fusion.config.config import load_config
    from fusion.run.sweep import run_sweep

    cfg = load_config().replace("general_settings", num_requests=200)
    run_sweep(cfg, seeds=[0, 1], workers=1, out=tmp_path, quiet=True)
    manifest = orjson.loads((tmp_path / mf.MANIFEST_NAME).read_bytes())
    manifest["shards"][0]["transitions"] = "abc"
    (tmp_path / mf.MANIFEST_NAME).write_bytes(orjson.dumps(manifest))
    result = run_sweep(cfg, seeds=[0, 1], workers=1, out=tmp_path, resume=True, quiet=True)
    assert [s.status for s in result.seeds] == ["kept", "kept"]
    entries = mf.read_manifest(tmp_path)["shards"]
    assert [e["transitions"] for e in entries] == [200, 200]


@pytest.mark.damages
def test_merged_file_when_output_and_its_record_disagree_readers_refuse(dataset, tmp_path):
    out = tmp_path / "all.jsonl"
    merge_shards(dataset, out)
    (dataset / shard_file_name(10)).unlink()
    mf.update_manifest(dataset, lambda m: m["shards"].pop())
    stale = out.read_bytes()
    # another output published over the first, its record not (yet) replaced
    out.write_bytes(stale[: stale.index(b'{"t":0,"seed":10')])
    for read in (
        lambda: list(load_dataset(out)),
        lambda: to_arrays(out, cache=False),
        lambda: export_dataset(out, tmp_path / "x.parquet", "parquet"),
    ):
        with pytest.raises(DatasetError, match=r"all\.jsonl\.manifest\.json (promises|records)"):
            read()
    assert not validate_dataset(out).ok


def test_merge_when_it_fails_after_starting_keeps_the_old_output_whole_with_its_record(
    dataset, tmp_path, monkeypatch
):
    import fusion.storage.merge as merge

    out = tmp_path / "all.jsonl"
    merge_shards(dataset, out)

    def broken(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(merge, "_copy_seed_order", broken)
    with pytest.raises(OSError):
        merge_shards(dataset, out, overwrite=True)
    # a failure leaves the old file as it was, still described by its own record
    assert out.exists() and merged_sidecar_path(out).exists()
    assert validate_dataset(out).ok
    assert not list(tmp_path.glob(".*.tmp"))


class _FullDisk:
    """A raw file that takes ``room`` bytes, then fails as a full disk does."""

    def __init__(self, raw, room):
        self._raw, self._room = raw, room

    def write(self, data):
        if self._room <= 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        taken = self._raw.write(bytes(data[: self._room]))
        self._room -= taken
        return taken

    def __getattr__(self, name):
        return getattr(self._raw, name)


def _fill_until_it_fails(log, start=0):
    for i in range(start, 1_000_000):
        log.log_transition(**example(i))
    raise AssertionError("the disk never filled")


def test_shard_when_disk_fills_is_failed_with_the_error_and_lock_released(tmp_path):
    write_shard(tmp_path, 1, 5)
    before = (tmp_path / shard_file_name(1)).read_bytes()
    log = DatasetLogger.open_shard(tmp_path, 2, {"toy": 1}, flush_every=10)
    log._sink._file = _FullDisk(log._file, room=25_000)
    with pytest.raises(ShardWriteError, match=r"seed2\.jsonl: writing the shard failed"), log:
        _fill_until_it_fails(log)
    entry = mf.read_manifest(tmp_path)["shards"][1]
    assert entry["status"] == "failed" and "No space left" in entry["error"]
    shard = tmp_path / shard_file_name(2)
    assert shard.read_bytes().endswith(b"\n") and entry["transitions"] > 0
    assert entry["bytes"] == shard.stat().st_size
    rows = list(load_dataset(tmp_path, include_incomplete=True))
    assert len([r for r in rows if r["seed"] == 2]) == entry["transitions"]
    assert (tmp_path / shard_file_name(1)).read_bytes() == before
    DatasetLogger.open_shard(tmp_path, 2, {"toy": 1}).close()  # the lock was released


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root and mount(8)")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_shard_when_real_tmpfs_fills_ends_failed_and_manifest_stays_valid(small_disk):
    write_shard(small_disk, 1, 5)
    before = (small_disk / shard_file_name(1)).read_bytes()
    log = DatasetLogger.open_shard(small_disk, 2, {"toy": 1}, flush_every=50)
    with pytest.raises(ShardWriteError, match="No space left on device"), log:
        _fill_until_it_fails(log)
    manifest = mf.read_manifest(small_disk)
    entry = manifest["shards"][1]
    assert entry["status"] == "failed" and "No space left" in entry["error"]
    assert (small_disk / shard_file_name(1)).read_bytes() == before
    assert [r["seed"] for r in load_dataset(small_disk)] == [1] * 5
    whole = list(load_dataset(small_disk, seeds=[2], include_incomplete=True))
    assert len(whole) == entry["transitions"] > 0


@pytest.mark.damages
def test_cli_run_when_disk_full_names_the_path(tmp_path, monkeypatch, capsys):
    import fusion.storage.shard_writer as dl

    real = dl.HashingSink.write

    def full(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(dl.HashingSink, "write", full)
    code = main(["run", "--out", str(tmp_path), "--seed", "3"])
    monkeypatch.setattr(dl.HashingSink, "write", real)
    assert code == 1
    err = capsys.readouterr().err
    assert "offline_data.seed3.jsonl" in err and "No space left" in err
    assert mf.read_manifest(tmp_path)["shards"][0]["status"] == "failed"


@dataclasses.dataclass
class _Info:
    delay: float


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"action": -1.0}, "action"),
        ({"action": np.float64(-1)}, "action"),
        ({"action": True}, "action"),
        ({"reward": True}, "reward"),
        ({"reward": None}, "reward"),
        ({"action_mask": [1, 0, 0, 1]}, "action_mask"),
        ({"state": "not a dict"}, "state"),
        ({"meta": ["not", "a", "dict"]}, "meta"),
        ({"meta": {"info": _Info(float("nan"))}}, "meta.info.delay"),
        ({"next_state": 3}, "next_state"),
    ],
)
def test_writer_when_value_is_what_readers_refuse_raises_naming_field(tmp_path, change, field):
    path = tmp_path / "x.jsonl"
    with DatasetLogger(path, {"seed": 1}) as log:
        kw = {**example(0), **change}
        with pytest.raises(ValueError, match=field.replace(".", r"\.")):
            log.log_transition(**kw)
    assert path.read_bytes() == b""


def test_writer_when_paths_are_an_array_raises_naming_them(tmp_path):
    with DatasetLogger(tmp_path / "x.jsonl", {"seed": 1}) as log:
        kw = example(0)
        kw["state"]["paths"] = np.zeros((4, 5))
        with pytest.raises(ValueError, match=r"state\.paths must be a list"):
            log.log_transition(**kw)


def test_writer_when_numpy_scalars_given_writes_plain_values_readers_take(tmp_path):
    path = tmp_path / "x.jsonl"
    with DatasetLogger(path, {"seed": 1}) as log:
        kw = example(1)  # action 3, feasible
        kw.update(action=np.int64(3), reward=np.float64(1.0))
        kw["action_mask"] = np.array(kw["action_mask"])
        log.log_transition(**kw)
        log.log_transition(**{**example(4), "action": np.int64(-1)})
    record = orjson.loads(path.read_bytes().splitlines()[0])
    assert record["action"] == 3 and record["reward"] == 1.0
    assert record["action_mask"] == [True, True, False, True]
    assert validate_dataset(path).ok
    assert to_arrays(path, cache=False).actions.tolist() == [3, -1]


def test_writer_when_line_is_too_long_for_readers_refuses_it(tmp_path):
    with DatasetLogger(tmp_path / "x.jsonl", {"seed": 1}) as log:
        kw = example(0)
        kw["meta"]["blob"] = "x" * MAX_LINE_BYTES
        with pytest.raises(ValueError, match="bytes as JSON, over the"):
            log.log_transition(**kw)


def test_validate_when_a_line_is_too_long_reports_it(tmp_path):
    path = tmp_path / "x.jsonl"
    with DatasetLogger(path, {"seed": 1}) as log:
        log.log_transition(**example(0))
    record = orjson.loads(path.read_bytes())
    record["meta"]["blob"] = "x" * MAX_LINE_BYTES
    path.write_bytes(orjson.dumps(record) + b"\n")
    assert any("a line may hold" in p for p in validate_dataset(path).problems)


@pytest.mark.damages
def test_readers_when_a_digit_is_flipped_and_verify_asked_refuse(dataset):
    shard = dataset / shard_file_name(10)
    data = shard.read_bytes()
    index = data.index(b'"min_residual_slots":8') + len(b'"min_residual_slots":')
    shard.write_bytes(data[:index] + b"9" + data[index + 1 :])
    with pytest.raises(DatasetError, match="sha256"):
        list(load_dataset(dataset, verify=True))
    with pytest.raises(DatasetError, match="sha256"):
        to_arrays(dataset, cache=False, verify=True)
    assert any("sha256" in p for p in validate_dataset(dataset).problems)


def test_validate_when_a_killed_writer_left_a_temp_file_warns_and_stays_valid(dataset):
    (dataset / ".manifest.json.a1b2c3d4.tmp").write_bytes(b"{")
    report = validate_dataset(dataset)
    assert report.ok and any("temp file" in w for w in report.warnings)


def test_published_files_when_written_follow_the_umask_like_shards(dataset, tmp_path):
    merge_shards(dataset, tmp_path / "m.jsonl")
    shard_mode = (dataset / shard_file_name(2)).stat().st_mode & 0o777
    for path in (
        dataset / mf.MANIFEST_NAME,
        sidecar_path(dataset / shard_file_name(2)),
        tmp_path / "m.jsonl",
        merged_sidecar_path(tmp_path / "m.jsonl"),
    ):
        assert path.stat().st_mode & 0o777 == shard_mode, path


@pytest.mark.damages
def test_validate_when_a_sidecar_is_deleted_reports_it(dataset):
    sidecar_path(dataset / shard_file_name(2)).unlink()
    problems = validate_dataset(dataset).problems
    assert any("sidecar" in p and "seed 2" in p for p in problems), problems


def test_cli_run_when_seed_negative_exits_2(tmp_path, capsys):
    assert main(["run", "--seed", "-1", "--out", str(tmp_path)]) == 2
    assert "--seed" in capsys.readouterr().err


def test_readers_when_seed_asked_of_a_dataset_that_lacks_it_warn(dataset, caplog):
    assert list(load_dataset(dataset, seeds=[99])) == []
    assert "seed 99 is not in this dataset" in caplog.text


@pytest.mark.damages
def test_loader_when_a_shard_line_is_duplicated_refuses_naming_line(tmp_path):
    path = write_shard(tmp_path, 4, 5)
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join([*lines[:3], lines[2], *lines[4:]]))  # same size, t repeated
    with pytest.raises(DatasetError, match=r"seed4\.jsonl:4: t is 2, expected 3"):
        list(load_dataset(tmp_path))
