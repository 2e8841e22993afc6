"""Outputs never replace by surprise (issue #30, item 3): one guard for every file a command
writes (merge, export, inspect ``--csv``/``--plot``, the training scripts, Minari)."""

from __future__ import annotations

import shutil
from pathlib import Path
from types import ModuleType

import pytest

from fusion.cli import main
from fusion.storage.validate import validate_dataset

SMALL = ["--set", "general_settings.num_requests=300", "--quiet", "--workers", "1"]


def _sweep(out: Path, seeds: str = "0", *extra: str) -> Path:
    assert main(["sweep", "--seeds", seeds, "--out", str(out), *SMALL, *extra]) == 0
    return out


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Datasets A (seeds 0-1, with the spectrum the afterstate learner needs) and B (seed 0),
    and a study S (two loads, seed 0), made once."""
    root = tmp_path_factory.mktemp("made")
    grid = ["--grid", "general_settings.erlang=200,300"]
    assert main(["sweep", "--seeds", "0", "--out", str(root / "S"), *grid, *SMALL]) == 0
    a = _sweep(root / "A", "0-1", "--set", "dataset_logging.log_spectrum=true")
    return {"A": a, "B": _sweep(root / "B"), "S": root / "S"}


@pytest.fixture
def data(made: dict[str, Path], tmp_path: Path) -> dict[str, Path]:
    """Copies of A, B and S in this test's tmp_path (left valid, as conftest checks)."""
    return {name: Path(shutil.copytree(path, tmp_path / name)) for name, path in made.items()}


def _snapshot(root: Path) -> dict[str, bytes | None]:
    """Every file's bytes and every directory (``None``) below ``root``."""
    return {
        str(p.relative_to(root)): p.read_bytes() if p.is_file() else None for p in root.rglob("*")
    }


@pytest.mark.parametrize("flags", [[], ["--overwrite"]])
def test_merge_when_output_is_a_shard_of_another_dataset_exits_2_and_keeps_it_valid(data, flags):
    before = _snapshot(data["B"])
    target = data["B"] / "offline_data.seed0.jsonl"
    assert main(["merge", str(data["A"]), "-o", str(target), *flags]) == 2
    assert _snapshot(data["B"]) == before and validate_dataset(data["B"]).ok


@pytest.mark.parametrize("flags", [[], ["--overwrite"]])
def test_export_npz_when_output_is_another_datasets_manifest_exits_2_and_keeps_it(data, flags):
    before = _snapshot(data["B"])
    target = data["B"] / "manifest.json"
    assert main(["export", str(data["A"]), "--format", "npz", "-o", str(target), *flags]) == 2
    assert _snapshot(data["B"]) == before and validate_dataset(data["B"]).ok


def test_export_parquet_when_output_exists_exits_2_and_replaces_it_only_with_overwrite(
    data, tmp_path, capsys
):
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes")
    argv = ["export", str(data["A"]), "--format", "parquet", "-o", str(notes)]
    assert main(argv) == 2
    assert notes.read_text() == "my notes"
    assert "--overwrite" in capsys.readouterr().err
    assert main([*argv, "--overwrite"]) == 0
    assert notes.read_bytes()[:4] == b"PAR1"


def test_export_when_output_is_another_apps_manifest_replaces_it_only_with_overwrite(
    data, tmp_path
):
    other = tmp_path / "app" / "manifest.json"
    other.parent.mkdir()
    other.write_text('{"name": "another app"}')
    argv = ["export", str(data["A"]), "--format", "npz", "-o", str(other)]
    assert main(argv) == 2 and other.read_text() == '{"name": "another app"}'
    assert main([*argv, "--overwrite"]) == 0 and other.read_bytes()[:2] == b"PK"
    other.unlink()  # conftest validates every manifest.json left behind


def test_export_when_output_is_a_merge_record_exits_2_even_with_overwrite(data, tmp_path):
    merged = tmp_path / "all.jsonl"
    assert main(["merge", str(data["B"]), "-o", str(merged)]) == 0
    record = tmp_path / "all.jsonl.manifest.json"
    kept = record.read_bytes()
    argv = ["export", str(data["A"]), "--format", "parquet", "-o", str(record), "--overwrite"]
    assert main(argv) == 2 and record.read_bytes() == kept
    assert validate_dataset(merged).ok


def test_merge_when_output_is_an_earlier_merge_replaces_it_and_its_record_only_with_overwrite(
    data, tmp_path
):
    merged = tmp_path / "all.jsonl"
    assert main(["merge", str(data["B"]), "-o", str(merged)]) == 0
    kept = merged.read_bytes()
    assert main(["merge", str(data["A"]), "-o", str(merged)]) == 2
    assert merged.read_bytes() == kept
    assert main(["merge", str(data["A"]), "-o", str(merged), "--overwrite"]) == 0
    assert validate_dataset(merged).ok and len(merged.read_bytes()) > len(kept)


@pytest.mark.parametrize("name", ["study.json", "erlang=200/offline_data.seed0.jsonl"])
@pytest.mark.parametrize("flags", [[], ["--overwrite"]])
def test_inspect_csv_when_output_is_a_file_of_the_study_exits_2_and_leaves_it(data, name, flags):
    study = data["S"]
    before = _snapshot(study)
    assert main(["inspect", str(study), "--csv", str(study / name), *flags]) == 2
    assert _snapshot(study) == before and validate_dataset(study).ok


def _no_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every command's work (planning a merge, reading arrays, inspecting) fail loudly."""
    import fusion.interop.export as export
    import fusion.interop.npz_export as npz_export
    import fusion.report.inspection as inspection
    import fusion.report.study_inspection as study_inspection
    import fusion.storage.merge as merge
    import fusion.storage.study_merge as study_merge

    def work(*args: object, **kwargs: object) -> None:
        raise AssertionError("the command worked before refusing its output")

    for module, name in (
        (merge, "plan_merge"),
        (study_merge, "plan_merge"),
        (npz_export, "to_arrays"),
        (export, "resolve_parts"),
        (inspection, "resolve"),
        (study_inspection, "inspect_study"),
    ):
        monkeypatch.setattr(module, name, work)


@pytest.mark.parametrize(
    ("source", "argv"),
    [
        ("A", ["merge", "-o", "{dir}"]),
        ("A", ["export", "--format", "npz", "-o", "{dir}"]),
        ("A", ["export", "--format", "parquet", "-o", "{dir}"]),
        ("A", ["inspect", "--plot", "{dir}"]),
        ("S", ["inspect", "--csv", "{dir}"]),
        ("S", ["inspect", "--plot", "{dir}"]),
        ("S", ["merge", "-o", "{file}"]),
        ("S", ["merge", "--all", "-o", "{dir}"]),
        ("A", ["merge", "-o", "{file}/all.jsonl"]),
        ("A", ["export", "--format", "npz", "-o", "{file}/x.npz"]),
    ],
)
def test_output_when_of_the_wrong_kind_exits_2_before_any_work_and_creates_nothing(
    data, tmp_path, monkeypatch, source, argv
):
    (tmp_path / "outdir").mkdir()
    (tmp_path / "afile").write_text("mine")
    before = _snapshot(tmp_path)
    _no_work(monkeypatch)
    paths = {"dir": str(tmp_path / "outdir"), "file": str(tmp_path / "afile")}
    argv = [arg.format(**paths) for arg in argv]
    assert main([argv[0], str(data[source]), *argv[1:]]) == 2
    assert _snapshot(tmp_path) == before


def test_export_minari_when_given_a_study_exits_2_and_creates_no_directory(data, tmp_path):
    pytest.importorskip("minari", reason="the minari extra is not installed")
    root = tmp_path / "minari"
    argv = ["export", str(data["S"]), "--format", "minari", "--id", "fusion/s-v0", "-o", str(root)]
    assert main(argv) == 2
    assert not root.exists()


def test_export_minari_when_root_is_a_file_exits_2_and_keeps_it(data, tmp_path):
    pytest.importorskip("minari", reason="the minari extra is not installed")
    root = tmp_path / "minari"
    root.write_text("mine")
    argv = ["export", str(data["A"]), "--format", "minari", "--id", "fusion/a-v0", "-o", str(root)]
    assert main(argv) == 2
    assert root.read_text() == "mine"


def _script(name: str) -> ModuleType:
    from conftest import load_script

    return load_script(name)  # type: ignore[no-any-return]


def _model(tmp_path: Path) -> Path:
    """An existing model file (one the training scripts used to replace without asking)."""
    import numpy as np

    from fusion.rl.model_file import TrainedOn, write_model

    path = tmp_path / "model.npz"
    write_model(path, "bc", {"w1": np.zeros(2)}, TrainedOn(4))
    return path


@pytest.mark.parametrize("script", ["train_offline", "train_bc", "train_afterstate"])
def test_training_script_when_the_model_file_exists_exits_2_without_overwrite_and_keeps_it(
    data, tmp_path, script
):
    model = _model(tmp_path)
    kept = model.read_bytes()
    with pytest.raises(SystemExit) as caught:
        _script(script).main([str(data["A"]), "-o", str(model)])
    assert caught.value.code == 2 and model.read_bytes() == kept


@pytest.mark.parametrize(
    ("script", "extra"),
    [
        ("train_offline", ["--trees", "2"]),
        ("train_bc", ["--epochs", "1"]),
        ("train_afterstate", []),
    ],
)
def test_training_script_when_given_overwrite_replaces_the_model_file(
    data, tmp_path, script, extra
):
    if script == "train_offline":
        pytest.importorskip("sklearn")
    model = _model(tmp_path)
    kept = model.read_bytes()
    assert _script(script).main([str(data["A"]), "-o", str(model), *extra, "--overwrite"]) == 0
    assert model.read_bytes() != kept
