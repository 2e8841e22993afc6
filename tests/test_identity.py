"""Identity is content: files a config names enter its identity by their content, one config
spelled two ways is one identity, a study's points must hold the config the study recorded,
and an evaluation's policies share one scenario."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from fusion.cli import main
from fusion.config.config import config_from_dict, load_config
from fusion.config.presets import PRESETS
from fusion.datasets.arrays import to_arrays
from fusion.errors import ConfigError, DatasetError
from fusion.rl.model_file import TrainedOn, scenario_of
from fusion.sim.topology import SHIPPED
from fusion.storage import manifest as mf
from fusion.storage.dataset_identity import config_sha256
from fusion.storage.loader import load_dataset

TINY = ["--set", "general_settings.num_requests=300", "--seeds", "0", "--workers", "1", "--quiet"]

#: config_sha256 of the embedded default and of every preset, computed on the commit before
#: content entered the identity: their datasets keep them, byte for byte.
GOLDEN = {
    "<default>": "474011017813a207348b63e336914a2de031b016a2233761d8e25de1cf25d4ef",
    "deeprmsa-nsfnet": "847c48894eb96579fd43a3dcd111b670708046432c95ed2e68b5d5d6fd6ebf62",
    "deeprmsa-cost239": "1cd787873cc43fc3a0433d296df5441cfa9a3866a20410e7ca54fb28ba1684b4",
    "reward-rmsa-nsfnet": "c00be4df91bd2da5d57c83de181ee954c888b9ff4993a220a1a3a9126cca3496",
    "gcn-rmsa-nsfnet": "c00be4df91bd2da5d57c83de181ee954c888b9ff4993a220a1a3a9126cca3496",
    "gcn-rmsa-cost239": "e00c3ca35439a8b46109408a67fb452cfa15fd4e7fca14388fd09cf4c1a88ef2",
    "gcn-rmsa-usnet": "7e8227603b56212956690e7791517e1c6db16c265bad333cd5c050fa1daea8ec",
    "maskrsa-nsfnet": "c44d16b8a6ebe0799d41d993829dc73efa76c5c47c481a541e2ddb3a417cb84f",
    "maskrsa-jpn48": "5c991b8d957c8dafad1b8ae9f7ae01b4099c6e405bcc32a9ab4d7740051a46bc",
    "ptrnet-rsa-40-nsfnet": "eac694bc10fad54f2c61813add57cbca8c37cca123e484fdc42b5eae4d174335",
    "ptrnet-rsa-40-cost239": "abaf9393091d4afb1a544717217887240e8ac53d8afbf275af1e04538abc7546",
    "ptrnet-rsa-40-usnet": "9110cf046763681e6bdfb597ff2a2fb3f47fe42b252281870420868801acf6fa",
    "ptrnet-rsa-80-nsfnet": "855e20c28afdeacfb4f9d9a760805d9bd8dc126999dab0a84e35e61fd5fbb404",
    "ptrnet-rsa-80-cost239": "139cfedf4141141a112dddcd7b51f93405a54fe6802479513f1f1d1e4c09da00",
    "ptrnet-rsa-80-usnet": "56724bb01841933a47f1caa101dc5983ce1f4f8b57c6c5ff268328e4efde46ea",
}

TOY = "0 1 400\n1 2 400\n2 3 400\n3 0 400\n0 2 700\n2 4 300\n"


def _sha(config) -> str:
    return config_sha256(config.identity())


def test_config_sha256_when_default_or_preset_is_the_same_as_before(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no file of the working directory may enter them
    assert set(GOLDEN) == {"<default>", *PRESETS}
    for name, digest in GOLDEN.items():
        assert _sha(load_config(None if name == "<default>" else name)) == digest, name


def test_shipped_networks_when_listed_for_identity_are_those_the_loader_ships():
    from fusion.config.vocabulary import NETWORKS

    assert set(NETWORKS) == set(SHIPPED)
    assert all(SHIPPED[name] == f"{name}.txt" for name in NETWORKS)
    assert all(spelling.lower() == name for name, spelling in NETWORKS.items())


@pytest.mark.parametrize(
    ("section", "key", "name", "text", "edited"),
    [
        ("topology_settings", "network", "topo.txt", TOY, TOY.replace("0 1 400", "0 1 500")),
        (
            "topology_settings",
            "modulation",
            "mod.csv",
            "name,reach_km,spectral_efficiency\nQPSK,2000,2\n16QAM,500,4\n",
            "name,reach_km,spectral_efficiency\nQPSK,2500,2\n16QAM,500,4\n",
        ),
        ("general_settings", "traffic_matrix", "tm.csv", "0,1,1\n1,2,3\n", "0,1,1\n1,2,4\n"),
    ],
)
def test_identity_when_a_named_file_is_edited_changes(
    tmp_path, monkeypatch, section, key, name, text, edited
):
    monkeypatch.chdir(tmp_path)
    Path(name).write_text(text)
    config = load_config().replace(section, **{key: name})
    before = config.identity()
    assert before[section][key] == str((tmp_path / name).resolve())
    assert len(before[section][f"{key}_sha256"]) == 64
    Path(name).write_text(edited)
    assert _sha(config) != config_sha256(before)


def test_resume_when_topology_file_was_edited_exits_2_naming_the_file(tmp_path, capsys):
    topo = tmp_path / "topo.txt"
    topo.write_text(TOY)
    args = ["sweep", "--set", f"topology_settings.network={topo}"]
    args += ["--set", "failure_settings.failed_link=0-1", "--out", str(tmp_path / "d"), *TINY]
    assert main(args) == 0
    topo.write_text(TOY.replace("0 1 400", "0 1 900"))  # the same name, another network
    capsys.readouterr()
    assert main([*args, "--seeds", "0-1", "--resume"]) == 2
    err = capsys.readouterr().err
    assert "[topology_settings] network = '" in err and "topo.txt'" in err
    assert "other content" in err and "sha256" in err
    assert [e["seed"] for e in mf.read_manifest(tmp_path / "d")["shards"]] == [0]


def test_identity_when_one_config_is_spelled_differently_hashes_the_same(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "named.txt").write_text("A B 400\nB C 400\nC A 500\nC D 300\n")
    (tmp_path / "mod.csv").write_text("name,reach_km,spectral_efficiency\nQPSK,2000,2\n")
    (tmp_path / "tm.csv").write_text("A,B,1\nC,D,2\n")

    def config(network, link, node, srlg, modulation, matrix):
        cfg = load_config().replace("topology_settings", network=network, modulation=modulation)
        cfg = cfg.replace("general_settings", traffic_matrix=matrix)
        return cfg.replace("failure_settings", failed_link=link, failed_node=node, srlg_links=srlg)

    named = [
        config("net/named.txt", "A-B", "C", "A-B,C-D", "mod.csv", "tm.csv"),
        config(str(tmp_path / "net/named.txt"), "B-A", "2", "D-C,B-A", "./mod.csv", "tm.csv"),
        config("~/net/named.txt", "1-0", "C", "C-D,A-B,B-A", "~/mod.csv", "~/tm.csv"),
        config(
            "./net/../net/named.txt",
            "0 - 1",
            "2",
            "0-1,2-3",
            str(tmp_path / "mod.csv"),
            str(tmp_path / "tm.csv"),
        ),
    ]
    assert len({_sha(c) for c in named}) == 1
    recorded = named[0].identity()
    assert recorded["failure_settings"]["failed_link"] == "A-B"
    assert recorded["failure_settings"]["srlg_links"] == "A-B,C-D"
    assert recorded["topology_settings"]["network"] == str((tmp_path / "net/named.txt").resolve())
    assert named[2].topology.modulation == str(tmp_path / "mod.csv")  # ~ expanded, as network

    shipped = [
        load_config().replace("topology_settings", network=spelling)
        for spelling in ("NSFNet", "nsfnet", "NSFNET", " NsfNet")
    ]
    shipped.append(
        shipped[1].replace("failure_settings", failed_link="8-7", srlg_links="8-9,7-8,8-7")
    )
    assert {_sha(c) for c in shipped} == {GOLDEN["<default>"]}
    # another content under the same name is another config
    (tmp_path / "net" / "named.txt").write_text("A B 400\nB C 400\nC A 500\nC D 301\n")
    assert _sha(named[0]) != config_sha256(recorded)


def test_model_scenario_when_topology_file_was_edited_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("topo.txt").write_text(TOY)
    cfg = load_config().replace("topology_settings", network="topo.txt")
    cfg = cfg.replace("failure_settings", failed_link="0-1")
    on = TrainedOn(4, (), scenario_of(cfg))
    manifest_config = cfg.identity()
    on.check(cfg)
    on.check(cfg.replace("topology_settings", network=str(tmp_path / "topo.txt")))
    Path("topo.txt").write_text(TOY.replace("2 4 300", "2 4 350"))
    with pytest.raises(ConfigError, match="network names a file whose content"):
        on.check(cfg)
    # a config rebuilt from the data's manifest is the config the data was made with
    with pytest.raises(ConfigError, match=re.escape("topo.txt': the file holds other content")):
        config_from_dict(manifest_config, "manifest.json")


@pytest.fixture(scope="module")
def replaced_study(tmp_path_factory) -> Path:
    """A study of loads 200 and 300 whose point erlang=200 another run replaced with a
    dataset of 900 Erlang (as ``sweep --out S/erlang=200 --overwrite --set
    general_settings.erlang=900`` does)."""
    root = tmp_path_factory.mktemp("replaced")
    study = root / "S"
    grid = ["--grid", "general_settings.erlang=200,300"]
    assert main(["sweep", *grid, "--out", str(study), *TINY]) == 0
    other = root / "other"
    assert main(["sweep", "--set", "general_settings.erlang=900", "--out", str(other), *TINY]) == 0
    shutil.rmtree(study / "erlang=200")
    shutil.move(other, study / "erlang=200")
    return study


@pytest.mark.parametrize(
    "command",
    [
        ["validate"],
        ["inspect"],
        ["inspect", "--json"],
        ["merge", "--all", "-o", "{out}/all.jsonl"],
        ["merge", "-o", "{out}/points"],
        ["export", "--format", "npz", "-o", "{out}/s.npz"],
    ],
)
def test_study_readers_when_a_point_holds_another_config_refuse_naming_it(
    replaced_study, tmp_path, capsys, command
):
    argv = [command[0], str(replaced_study), *(a.format(out=tmp_path) for a in command[1:])]
    assert main(argv) == 1
    captured = capsys.readouterr()
    said = captured.out + captured.err
    assert "study point erlang=200 holds a dataset of another config" in said
    assert "erlang = 200 here, the dataset's config has 900" in said
    assert not list(tmp_path.iterdir())  # nothing written


def test_study_arrays_when_a_point_holds_another_config_refuse_naming_it(replaced_study):
    with pytest.raises(DatasetError, match="study point erlang=200 holds a dataset of another"):
        to_arrays(replaced_study, cache=False)
    with pytest.raises(DatasetError, match="study point erlang=200"):
        list(load_dataset(replaced_study))
    arrays = to_arrays(replaced_study, cache=False, points={"erlang": [300.0]})
    assert set(np.unique(arrays.columns["erlang"])) == {300.0}  # the intact point still reads


@pytest.mark.parametrize(
    ("spec", "instead"),
    [
        ("ksp_ff:erlang=200", "use --erlang 200"),
        ("ksp_ff:general_settings.num_requests=100", "--set general_settings.num_requests=100"),
        ("ksp_lf:network=USNet", "--set topology_settings.network=USNet"),
        ("ksp_ff:seeds=3", "use --seeds 3"),
        ("ksp_ff:holding_time=2", "--set general_settings.holding_time=2"),
    ],
)
def test_evaluate_when_policy_spec_changes_the_traffic_exits_2_naming_the_key(
    capsys, spec, instead
):
    argv = ["evaluate", "--policy", spec, "--seeds", "1", "--workers", "1"]
    assert main([*argv, "--set", "general_settings.num_requests=300"]) == 2
    err = capsys.readouterr().err
    key = spec.split(":")[1].split("=")[0].split(".")[-1]
    assert f"{key} is not the policy's own" in err and instead in err


def _zero_bc(path: Path) -> Path:
    from conftest import zero_bc_model

    zero_bc_model().save(path)
    return path


EVALUATE_BC = ["--seeds", "1", "--workers", "1", "--set", "general_settings.num_requests=300"]
EVALUATE_BC += ["--set", "dataset_logging.path_features=seed"]  # the zero model's features


def test_evaluate_when_model_spec_sets_policy_exits_2_naming_the_model(tmp_path, capsys):
    model = _zero_bc(tmp_path / "bc.npz")
    assert main(["evaluate", "--policy", f"{model}:policy=ksp_lf", *EVALUATE_BC]) == 2
    err = capsys.readouterr().err
    assert "policy is not the policy's own" in err
    assert "a model file is the policy" in err and "--policy ksp_lf" in err


def test_evaluate_when_model_spec_sets_spectrum_names_the_real_cause(tmp_path, capsys):
    from fusion.rl.afterstate import train_afterstate
    from fusion.run.simulation import run_simulation

    bc = _zero_bc(tmp_path / "bc.npz")  # chooses the path only: the spectrum rule applies
    assert main(["evaluate", "--policy", f"{bc}:spectrum=best_fit", *EVALUATE_BC, "--json"]) == 0
    assert f"{bc.stem}:spectrum=best_fit" in capsys.readouterr().out

    cfg = load_config().replace("general_settings", num_requests=300)
    cfg = cfg.replace("dataset_logging", log_spectrum="true", epsilon_mix=0.3)
    run_simulation(cfg, 1, dataset_dir=str(tmp_path / "ds"))
    train_afterstate(tmp_path / "ds").save(tmp_path / "a.npz")  # places as its support does
    argv = ["evaluate", "--policy", f"{tmp_path / 'a.npz'}:spectrum=best_fit", "--seeds", "1"]
    assert main([*argv, "--workers", "1", "--set", "general_settings.num_requests=300"]) == 2
    err = capsys.readouterr().err
    assert "the afterstate model places spectrum by its own rule (first_fit)" in err
    assert "ksp_ff brings its own" not in err


def test_sweep_when_preset_grid_sets_erlang_exits_2_naming_the_range_and_the_way_out(
    tmp_path, capsys
):
    argv = ["sweep", "--config", "gcn-rmsa-nsfnet", "--grid", "general_settings.erlang=100,150"]
    assert main([*argv, "--out", str(tmp_path / "s"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "erlang is already an axis" in err
    assert "erlang_start/stop/step = 154/224/14: 154, 168, 182, 196, 210 Erlang" in err
    clear = "--set general_settings.erlang_start=0 --set general_settings.erlang_stop=0"
    assert clear in err and "--set general_settings.erlang=LOAD" in err
    assert not (tmp_path / "s").exists()


def test_topology_when_its_file_is_edited_in_one_process_is_read_anew(tmp_path):
    from fusion.sim.topology import load_topology

    topo = tmp_path / "t.txt"
    topo.write_text("0 1 100\n1 2 100\n")
    assert load_topology(str(topo)).num_links == 2
    topo.write_text("0 1 100\n1 2 100\n2 0 100\n")
    assert load_topology(str(topo)).num_links == 3
