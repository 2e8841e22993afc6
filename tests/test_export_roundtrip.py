"""Every export carries every field (issue #31, item 3).

Datasets made by the engine (the seed and the extended feature sets, ``log_spectrum``,
``link_next_state``, another heuristic than KSP-FF (``kca_ff``), a study, its merge, and a
study whose points log different fields and behaviours) are exported; each Parquet row must equal its JSON Lines
record field by field (``state`` and ``meta`` flattened, as documented; a column the record
lacks is null), and the npz and Minari exports must carry every array of the array view.
Hand-fed datasets whose ``meta`` holds keys of the caller's own (a plain one, a study and its
merge) carry them in ``meta_extra``, a JSON object per row.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pyarrow.parquet as pq
import pytest

from fusion.cli import main
from fusion.config.features import RECORD_FIELDS, path_features
from fusion.datasets.arrays import to_arrays
from fusion.errors import DatasetError
from fusion.interop.export import export_dataset
from fusion.storage.shard_writer import DatasetLogger
from fusion.storage.sources import resolve_parts

SMALL = [
    "--set",
    "general_settings.num_requests=300",
    "--set",
    "failure_settings.t_fail_arrival_index=100",
    "--set",
    "failure_settings.t_repair_after_arrivals=100",
]
RUNS = {  # one seed's dataset each, by `fusion run`
    "seed_set": ["--set", "dataset_logging.path_features=seed"],
    "extended": [],
    "spectrum": ["--set", "dataset_logging.log_spectrum=true"],
    "start_slot": ["--set", "policy_settings.policy=kca_ff"],
    "linked": ["--set", "dataset_logging.link_next_state=true"],
}
STUDIES = {  # studies by `fusion sweep --grid`, two seeds a point
    "study": ["--grid", "general_settings.erlang=200,300"],
    "mixed_study": [  # two behaviours (meta.behaviour); only one point logs the spectrum
        "--grid",
        "policy_settings.policy=ksp_ff,kca_ff",
        "--grid",
        "dataset_logging.log_spectrum=false,true",
    ],
}
MADE = [*RUNS, *STUDIES, "merged_study"]
#: Keys of the caller's own in a hand-fed ``meta``: a row ``i`` holds those whose index
#: divides ``i`` (so row 0 holds them all and row 1 only the first); rows of :func:`_own`
#: ``None`` hold none. ``n``'s type varies by row (pyarrow's inference would refuse it).
OWN = (
    lambda i: {"n": i if i % 2 else f"n{i}"},
    lambda i: {"ratio": i / 4, "one": 1.0, "flag": i % 3 == 0},
    lambda i: {"none": None, "tags": [i, "b", None, 1.5, False], "at": "2024-01-02"},
    lambda i: {"nested": {"b": [True], "a": {"z": i, "y": None}}, "{": "\u00e9\n"},
)
#: The declared ``meta`` keys (a record's others are the caller's own).
DECLARED_META = {f.name for f in RECORD_FIELDS["meta"]}


def _own(seed: int, i: int) -> dict[str, Any] | None:
    """The caller's own ``meta`` keys of hand-fed row ``i`` of ``seed`` (seed 0: none)."""
    if seed == 0 or i % 4 == 3:
        return None
    return {
        k: v for index, keys in enumerate(OWN) if i % (index + 1) == 0 for k, v in keys(i).items()
    }


def _hand_fed(directory: Path, seeds: tuple[int, ...], own: bool) -> None:
    """Six transitions a seed by the hand-fed logger, with :func:`_own`'s keys when ``own``."""
    from conftest import example

    for seed in seeds:
        with DatasetLogger.open_shard(directory, seed, {"toy": 1}) as log:
            for i in range(6):
                kw = example(i)
                kw["meta"] |= (_own(seed, i) if own else None) or {}
                log.log_transition(**kw)


@pytest.fixture(scope="module")
def hand_fed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Hand-fed datasets whose ``meta`` holds keys of the caller's own: ``plain`` (seed 0, the
    first read, holds none), ``study`` (its first point holds none) and ``merged_study``."""
    root = tmp_path_factory.mktemp("hand_fed")
    _hand_fed(root / "plain", (0, 1, 2), own=True)
    points = []
    for x in (1, 2):
        _hand_fed(root / "study" / f"x={x}", (1, 2), own=x == 2)
        manifest = json.loads((root / "study" / f"x={x}" / "manifest.json").read_text())
        sha = manifest["config_sha256"]
        points.append({"point": {"x": x}, "dir": f"x={x}", "config_sha256": sha})
    axes = [{"section": "toy", "key": "x", "values": [1, 2]}]
    study = {"format": "fusion-study/1", "axes": axes, "seeds": [1, 2], "points": points}
    (root / "study" / "study.json").write_text(json.dumps(study))
    merged = root / "merged.jsonl"
    assert main(["merge", str(root / "study"), "--all", "-o", str(merged)]) == 0
    return {"plain": root / "plain", "study": root / "study", "merged_study": merged}


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every dataset of :data:`MADE` (made once for the module)."""
    root = tmp_path_factory.mktemp("made")
    paths: dict[str, Path] = {}
    for name, extra in RUNS.items():
        paths[name] = root / name
        assert main(["run", "--seed", "1", "--out", str(paths[name]), *SMALL, *extra]) == 0
    for name, grid in STUDIES.items():
        paths[name] = root / name
        argv = ["sweep", "--seeds", "0-1", "--out", str(paths[name]), "--workers", "1"]
        assert main([*argv, "--quiet", *SMALL, *grid]) == 0
    paths["merged_study"] = root / "merged.jsonl"
    argv = ["merge", str(paths["study"]), "--all", "-o", str(paths["merged_study"])]
    assert main(argv) == 0
    return paths


def _records(path: Path) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Every record of a dataset, study or merged file, read with orjson, by (point, seed, t)."""
    records: dict[tuple[Any, ...], dict[str, Any]] = {}
    for part in resolve_parts(path):
        point = tuple(sorted((part.coords or {}).items()))
        for source in part.resolved.sources:
            with source.open() as handle:
                for line in handle:
                    record = orjson.loads(line)
                    records[point, record["seed"], record["t"]] = record
    return records


def _same(exported: Any, logged: Any, where: str) -> None:
    """``exported`` (read from Parquet) is ``logged`` (read from JSON): objects hold every field
    the logged one holds, with the same value, and null for the rest; numbers are equal and a
    boolean stays a boolean."""
    if isinstance(logged, dict):
        assert isinstance(exported, dict), where
        for name, value in logged.items():
            assert name in exported, f"{where}.{name} is not exported"
            _same(exported[name], value, f"{where}.{name}")
        extra = {name: v for name, v in exported.items() if name not in logged and v is not None}
        assert not extra, f"{where} exports {extra}, which the record lacks"
    elif isinstance(logged, list):
        assert isinstance(exported, list) and len(exported) == len(logged), where
        for index, (a, b) in enumerate(zip(exported, logged, strict=True)):
            _same(a, b, f"{where}[{index}]")
    else:
        assert exported == logged, f"{where}: exported {exported!r}, logged {logged!r}"
        assert isinstance(exported, bool) == isinstance(logged, bool), where


def _round_trip(path: Path, out: Path, name: str) -> int:
    """Export ``path`` to Parquet and check each row against its record field by field, the
    caller's own ``meta`` keys against ``meta_extra``; return the rows holding such keys."""
    records = _records(path)
    assert export_dataset(path, out, "parquet") == len(records)
    table = pq.read_table(out)
    parts = resolve_parts(path)
    axes = list(parts[0].coords or {})
    keys = set()
    owning = 0
    for row in table.to_pylist():
        point = tuple(sorted((axis, row.pop(axis)) for axis in axes))
        key = (point, row["seed"], row["t"])
        keys.add(key)
        record = records[key]
        meta = {k: v for k, v in record["meta"].items() if k in DECLARED_META}
        own = {k: v for k, v in record["meta"].items() if k not in DECLARED_META}
        flat = {k: v for k, v in record.items() if k not in ("state", "meta")}
        flat |= record["state"] | meta  # the documented flattening
        assert len(flat) == len(record) - 2 + len(record["state"]) + len(meta)
        extra = row.pop("meta_extra", None)
        if own:
            owning += 1
            assert extra == orjson.dumps(own, option=orjson.OPT_SORT_KEYS).decode(), key
            assert orjson.loads(extra) == own, key
        else:
            assert extra is None, f"{name}{list(key)}: meta_extra {extra!r}, the record has none"
        done = row.pop("done")
        missing = sorted(set(flat) - set(row))
        assert not missing, f"{name}: {missing} not exported"
        _same(row, flat, f"{name}{list(key)}")
        assert done == ((point, row["seed"], row["t"] + 1) not in records)  # a seed's last
    assert keys == set(records)
    assert ("meta_extra" in table.column_names) == (owning > 0)
    return owning


@pytest.mark.parametrize("name", MADE)
def test_parquet_export_when_read_back_each_row_equals_its_record_field_by_field(
    made, name, tmp_path
):
    assert _round_trip(made[name], tmp_path / "x.parquet", name) == 0


@pytest.mark.parametrize("name", ["plain", "study", "merged_study"])
def test_parquet_export_when_meta_holds_the_callers_own_keys_carries_them_in_meta_extra(
    hand_fed, name, tmp_path
):
    owning = _round_trip(hand_fed[name], tmp_path / "x.parquet", name)
    # (plain: seeds 1 and 2 hold some; a study: those of point x=2)
    assert owning == sum(_own(seed, i) is not None for seed in (1, 2) for i in range(6)) > 0
    schema = pq.read_schema(tmp_path / "x.parquet")
    assert schema.field("meta_extra").type == "string"
    assert schema.names.index("meta_extra") == schema.names.index("done") - 1


def test_parquet_export_when_the_selected_seeds_hold_no_callers_own_keys_has_no_meta_extra(
    hand_fed, tmp_path
):
    out = tmp_path / "x.parquet"
    assert export_dataset(hand_fed["plain"], out, "parquet", seeds=[0]) == 6
    assert "meta_extra" not in pq.read_schema(out).names
    assert export_dataset(hand_fed["plain"], out, "parquet", seeds=[1], overwrite=True) == 6
    assert "meta_extra" in pq.read_schema(out).names


#: Fields of a path object under each feature set (the declaration's count).
_SEED, _EXTENDED = len(path_features("seed")), len(path_features("extended"))


@pytest.mark.parametrize(
    ("name", "held"),
    [
        ("seed_set", {"paths": _SEED, "spectrum": False}),
        ("extended", {"paths": _EXTENDED, "spectrum": False}),
        ("spectrum", {"paths": _EXTENDED + 1, "spectrum": True}),  # links
        ("start_slot", {"paths": _EXTENDED, "spectrum": False}),
        ("mixed_study", {"paths": _EXTENDED + 1, "spectrum": True}),
    ],
)
def test_parquet_export_when_fields_are_optional_has_a_column_exactly_for_those_held(
    made, name, held, tmp_path
):
    out = tmp_path / "x.parquet"
    export_dataset(made[name], out, "parquet")
    schema = pq.read_schema(out)
    assert schema.field("paths").type.value_type.num_fields == held["paths"]
    # every engine record holds start_slot and what produced its action, whatever the policy
    assert {"start_slot", "behaviour", "explored", "propensity"} <= set(schema.names)
    assert ("spectrum" in schema.names) == held["spectrum"]
    assert "next_state" in schema.names
    assert "meta_extra" not in schema.names  # the engine logs no key of a caller's own


@pytest.mark.parametrize("own", [{}, {"colour": "red"}], ids=["no_own_meta", "own_meta"])
@pytest.mark.parametrize("field", ["state.paths[0].colour", "state.colour", "colour"])
def test_parquet_export_when_a_record_holds_an_undeclared_field_refuses_naming_it(
    tmp_path, own, field
):
    from conftest import EXAMPLE_STATE

    lines = []
    for t in range(3):  # the second line holds the field (each line the caller's own meta)
        state = {**EXAMPLE_STATE, "paths": [dict(p) for p in EXAMPLE_STATE["paths"]]}
        line = {"t": t, "seed": 0, "state": state, "action": 0, "reward": 1.0}
        line |= {"next_state": None, "action_mask": [True] * 4}
        line |= {"meta": {"bp_window_tag": "pre", **own}}
        if t == 1:
            *outer, name = field.replace("[0]", "").split(".")
            target = {"": line, "state": state, "state.paths": state["paths"][0]}[".".join(outer)]
            target[name] = 1
        lines.append(orjson.dumps(line) + b"\n")
    (tmp_path / "d.jsonl").write_bytes(b"".join(lines))  # by hand: whoever wrote it
    where = re.escape(f"d.jsonl:2: {field} ")
    with pytest.raises(DatasetError, match=where) as exc:
        export_dataset(tmp_path / "d.jsonl", tmp_path / "x.parquet", "parquet")
    assert "not a field the record declares" in str(exc.value)
    assert not (tmp_path / "x.parquet").exists()


def test_record_declaration_when_compared_with_the_export_has_one_open_group_meta():
    from fusion.interop.parquet_export import EXTRA_COLUMN, parquet_schema
    from fusion.storage.schema import OPEN_GROUPS

    assert {"meta"} == OPEN_GROUPS  # the group whose undeclared keys meta_extra carries
    declared = [f.name for group in ("record", "state", "meta") for f in RECORD_FIELDS[group]]
    assert EXTRA_COLUMN not in declared and EXTRA_COLUMN not in parquet_schema().names


@pytest.mark.parametrize("name", [*RUNS, "study", "merged_study"])
def test_npz_export_when_read_back_carries_every_array_of_the_array_view(made, name, tmp_path):
    out = tmp_path / "x.npz"
    arrays = to_arrays(made[name])
    assert export_dataset(made[name], out, "npz") == len(arrays)
    renamed = {"dones": "timeouts", **{axis: f"point.{axis}" for axis in arrays.columns}}
    with np.load(out, allow_pickle=False) as npz:
        for key, value in arrays.arrays().items():
            np.testing.assert_array_equal(npz[renamed.get(key, key)], value, err_msg=key)
        assert npz["observation_names"].tolist() == arrays.metadata["observation_names"]
        assert npz["observations"].shape[1] == len(arrays.metadata["observation_names"])


@pytest.mark.parametrize("name", ["seed_set", "start_slot"])
def test_minari_export_when_loaded_back_carries_every_array_of_the_array_view(
    made, name, tmp_path, monkeypatch
):
    minari = pytest.importorskip("minari", reason="the minari extra is not installed")
    root = tmp_path / "minari"
    argv = ["export", str(made[name]), "--format", "minari", "--id", "fusion/rt-v0"]
    assert main([*argv, "-o", str(root)]) == 0
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(root))
    loaded = minari.load_dataset("fusion/rt-v0")
    arrays = to_arrays(made[name])
    k = arrays.action_masks.shape[1]
    (episode,) = loaded.iterate_episodes()
    (metadata,) = loaded.storage.get_episode_metadata([episode.id])
    infos = episode.infos
    steps = len(episode.actions)
    carried = {  # each array of the array view, as the Minari episode carries it
        "observations": episode.observations[:-1],
        "next_observations": episode.observations[1:],
        "actions": np.where(episode.actions == k, -1, episode.actions),
        "rewards": episode.rewards,
        "action_masks": infos["action_mask"][:-1, :k],
        "dones": episode.truncations,
        "seeds": np.full(steps, metadata["seed"]),
        "t": np.arange(steps),
        "window_tags": infos["window_tag"][:-1],
        # what produced each action: the behaviour as an index into the dataset's list
        "behaviour": np.array(loaded.storage.metadata["fusion_behaviours"])[
            infos["behaviour"][:-1]
        ],
        "explored": infos["explored"][:-1],
        "propensity": infos["propensity"][:-1],
    }
    assert set(carried) == set(arrays.arrays())
    for key, value in carried.items():
        np.testing.assert_array_equal(value, arrays.arrays()[key], err_msg=key)
    assert infos["window_tag"][-1] == -1


def test_record_declaration_when_compared_with_the_checks_names_the_same_top_level_fields():
    from fusion.config.features import RECORD_FIELDS, STATE_FEATURES
    from fusion.storage.schema import TOP_KEYS

    assert {f.name for f in RECORD_FIELDS["record"]} == TOP_KEYS
    assert [f.name for f in RECORD_FIELDS["state"]][: len(STATE_FEATURES)] == list(STATE_FEATURES)
    flattened = [f.name for group in ("record", "state", "meta") for f in RECORD_FIELDS[group]]
    assert len(flattened) == len(set(flattened))  # the Parquet columns cannot collide
