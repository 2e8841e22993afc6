"""A dataset's manifest records the path features its shards hold; readers use that list and
guess only for data made before it was recorded."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import orjson
import pytest
from conftest import example

from fusion.config.config import load_config
from fusion.config.features import PATH_FEATURE_SETS, path_features
from fusion.datasets.arrays import to_arrays
from fusion.datasets.columns import read_columns
from fusion.errors import DatasetError, ManifestConflictError
from fusion.run.simulation import run_simulation
from fusion.run.sweep import run_sweep
from fusion.storage import manifest as mf
from fusion.storage.merge import merge_shards
from fusion.storage.shard_names import merged_sidecar_path, sidecar_path
from fusion.storage.shard_writer import DatasetLogger
from fusion.storage.sources import resolve
from fusion.storage.validate import validate_dataset

ARRAYS = ("observations", "actions", "rewards", "action_masks", "next_observations", "dones")


def _config(requests: int = 300, **logging: str):
    cfg = load_config().replace("general_settings", num_requests=requests)
    return cfg.replace("dataset_logging", **logging) if logging else cfg


def _manifest(directory: Path) -> dict:
    return json.loads((directory / mf.MANIFEST_NAME).read_text())


@pytest.mark.parametrize("setting", sorted(PATH_FEATURE_SETS))
def test_manifest_when_a_simulation_writes_records_its_path_features(tmp_path, setting):
    run_simulation(_config(path_features=setting), 3, dataset_dir=str(tmp_path))
    manifest = _manifest(tmp_path)
    assert manifest["path_features"] == list(path_features(setting))
    sidecar = json.loads(sidecar_path(tmp_path / manifest["shards"][0]["file"]).read_text())
    assert sidecar["path_features"] == list(path_features(setting))
    assert "path_features" not in manifest["shards"][0]


def test_manifest_when_a_sweep_writes_holds_the_list_once_not_per_entry(tmp_path):
    run_sweep(
        _config(200, path_features="seed"), seeds=[1, 2, 3], workers=1, out=tmp_path, quiet=True
    )
    manifest = _manifest(tmp_path)
    assert manifest["path_features"] == list(path_features("seed"))
    assert len(manifest["shards"]) == 3
    assert all("path_features" not in entry for entry in manifest["shards"])


def test_to_arrays_when_the_manifest_predates_the_field_reads_the_same_arrays(tmp_path):
    new, old = tmp_path / "new", tmp_path / "old"
    for seed in (1, 2):
        run_simulation(_config(400), seed, dataset_dir=str(new))
    shutil.copytree(new, old)
    manifest = _manifest(old)
    del manifest["path_features"]  # a dataset made before manifests recorded it
    (old / mf.MANIFEST_NAME).write_bytes(orjson.dumps(manifest))
    for sidecar in old.glob("*.shard.json"):
        record = json.loads(sidecar.read_text())
        del record["path_features"]
        sidecar.write_text(json.dumps(record))
    made_now, made_before = to_arrays(new, cache=False), to_arrays(old, cache=False)
    assert made_now.metadata["path_features"] == made_before.metadata["path_features"]
    for name in ARRAYS:
        assert np.array_equal(getattr(made_now, name), getattr(made_before, name)), name
    assert made_now.observations.shape[1] == 5 + len(path_features("extended")) * 4


@pytest.mark.damages
@pytest.mark.parametrize(
    ("value", "said"),
    [(["path_hops", "bogus"], "bogus"), (["path_hops", "path_hops"], "more than once"), (3, "3")],
)
def test_read_manifest_when_path_features_is_bad_names_the_file_and_field(tmp_path, value, said):
    run_simulation(_config(100), 1, dataset_dir=str(tmp_path))
    manifest = _manifest(tmp_path)
    manifest["path_features"] = value
    (tmp_path / mf.MANIFEST_NAME).write_bytes(orjson.dumps(manifest))
    with pytest.raises(DatasetError, match=r"manifest\.json: path_features is .*" + said):
        mf.read_manifest(tmp_path)


def test_hand_fed_logger_when_config_names_no_set_records_its_first_paths_features(tmp_path):
    with DatasetLogger.open_shard(tmp_path, 4, {"toy": 1}) as log:
        for i in range(3):
            log.log_transition(**example(i))
    held = list(example()["state"]["paths"][0])
    assert _manifest(tmp_path)["path_features"] == held
    assert json.loads(sidecar_path(log.output_path).read_text())["path_features"] == held
    (tmp_path / mf.MANIFEST_NAME).unlink()
    assert mf.rebuild_manifest(tmp_path)["path_features"] == held  # restored from the sidecar


def test_columns_when_a_list_is_recorded_read_exactly_it(tmp_path):
    state = dict(example()["state"])
    state["paths"] = [{"path_hops": 2, "free_slots": 7}, {"path_hops": 3, "free_slots": 1}]
    with DatasetLogger.open_shard(
        tmp_path, 1, {"toy": 1}, path_features=["path_hops", "free_slots"]
    ) as log:
        log.log_transition(state, 0, 1.0, None, [True, True], {"bp_window_tag": "pre"})
    source = resolve(tmp_path).sources[0]
    assert source.path_features == ("path_hops", "free_slots")
    columns = read_columns(source.path, part=source)
    assert columns.path_features == ("path_hops", "free_slots")
    assert columns.path_values.tolist() == [[2.0, 7.0], [3.0, 1.0]]


@pytest.mark.damages
def test_columns_when_paths_hold_a_feature_the_list_lacks_raise_naming_the_file(tmp_path):
    held = ["path_hops", "free_slots"]
    with DatasetLogger.open_shard(tmp_path, 1, {"toy": 1}, path_features=held) as log:
        state = dict(example()["state"])
        state["paths"] = [{"path_hops": 2, "free_slots": 7}]
        log.log_transition(state, 0, 1.0, None, [True], {"bp_window_tag": "pre"})
    manifest = _manifest(tmp_path)  # a hand edit: the record now lists less than the data
    manifest["path_features"] = ["path_hops"]
    (tmp_path / "manifest.json").write_bytes(orjson.dumps(manifest))
    assert any("free_slots" in p for p in validate_dataset(tmp_path).problems)
    source = resolve(tmp_path).sources[0]
    with pytest.raises(DatasetError, match=r"seed1\.jsonl: state\.paths\[\]: .*free_slots"):
        read_columns(source.path, part=source)


def test_init_manifest_when_recorded_features_differ_refuses_naming_both(tmp_path):
    mf.init_manifest(tmp_path, {"toy": 1}, path_features=path_features("seed"))
    with pytest.raises(ManifestConflictError, match="length_km"):
        mf.init_manifest(tmp_path, {"toy": 1}, path_features=path_features("extended"))


def test_init_manifest_when_made_before_takes_the_writers_list(tmp_path):
    mf.init_manifest(tmp_path, {"toy": 1})
    assert "path_features" not in _manifest(tmp_path)
    mf.init_manifest(tmp_path, {"toy": 1}, path_features=path_features("seed"))
    assert _manifest(tmp_path)["path_features"] == list(path_features("seed"))


def test_merge_when_the_dataset_records_its_features_carries_them_to_the_merged_file(tmp_path):
    run_simulation(_config(100, path_features="seed"), 2, dataset_dir=str(tmp_path / "d"))
    out = tmp_path / "all.jsonl"
    merge_shards(tmp_path / "d", out)
    record = json.loads(merged_sidecar_path(out).read_text())
    assert record["path_features"] == list(path_features("seed"))
    assert resolve(out).sources[0].path_features == path_features("seed")


def test_hand_fed_writer_when_paths_differ_from_the_recorded_list_refuses_as_validate_does(
    tmp_path,
):
    def paths_of(*names: str) -> dict:
        kw = example(0)
        kw["state"]["paths"] = [dict.fromkeys(names, 1) for _ in kw["state"]["paths"]]
        return kw

    with DatasetLogger.open_shard(tmp_path, 0, {"toy": 1}) as log:  # the first shard's list
        log.log_transition(**paths_of("path_hops", "free_slots"))
    assert _manifest(tmp_path)["path_features"] == ["path_hops", "free_slots"]
    # a later shard of the dataset must hold the list the manifest now records
    later = DatasetLogger.open_shard(tmp_path, 1, {"toy": 1})
    with pytest.raises(ValueError, match=r"t=0: .*\['path_hops'\], but the dataset's record"):
        later.log_transition(**paths_of("path_hops"))
    later.log_transition(**paths_of("path_hops", "free_slots"))
    later.close()
    # a list given to the writer binds it too
    given = DatasetLogger.open_shard(
        tmp_path / "given", 0, {"toy": 1}, path_features=path_features("seed")
    )
    with pytest.raises(ValueError, match=r"lists the seed set"):
        given.log_transition(**paths_of("path_hops", "free_slots"))
    given.close()
    assert validate_dataset(tmp_path).ok and validate_dataset(tmp_path / "given").ok


def test_hand_fed_writer_when_the_first_state_has_no_path_records_the_later_ones(tmp_path):
    empty, later = example(0), example(1)
    empty["state"]["paths"], empty["action_mask"], empty["action"] = [], [], -1
    empty["reward"] = -1.0
    with DatasetLogger.open_shard(tmp_path, 0, {"toy": 1}) as log:
        log.log_transition(**empty)
        log.log_transition(**later)
    held = [n for n in PATH_FEATURE_SETS["extended"] if n in later["state"]["paths"][0]]
    assert _manifest(tmp_path)["path_features"] == held
