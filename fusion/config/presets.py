"""The literature's benchmark scenarios as embedded configs: ``--config NAME`` takes them
wherever it takes a file (``sweep``, ``run``, ``evaluate``, the env's ``config=``).

The setups are those deep-RL papers on routing and spectrum assignment report blocking for,
as collected and re-run in XLRON's JOCN 2024 review (micdoh/XLRON,
``experimental/JOCN2024``): Poisson arrivals, uniform traffic over node pairs, k = 5 candidate
paths by length, 3,000 warm-up requests then 10,000 measured, 10 seeds. A preset carries its
paper's loads (``erlang_start/stop/step``: ``fusion sweep --config NAME`` runs the study over
them; ``erlang`` is the highest, for a single run), has no failure, and logs KSP-FF with
``epsilon_mix = 0`` (the benchmark's own behaviour; ``--set dataset_logging.epsilon_mix=0.1``
mixes in second choices).

    >>> sorted(PRESETS)[:3]
    ['deeprmsa-cost239', 'deeprmsa-nsfnet', 'gcn-rmsa-cost239']
    >>> preset_config("deeprmsa-nsfnet").topology.directed
    True

``fusion scenarios NAME`` prints a preset's whole configuration (:func:`preset_ini`): every
key, defaults included, as an INI file that ``--config`` takes back to the same config sha256.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fusion.config.config import Config, config_from_mapping, config_ini


@dataclass(frozen=True)
class Preset:
    """One scenario.

    :param name: Its ``--config`` name.
    :param source: The paper or family it comes from.
    :param network: The topology (``fusion/data/topologies``).
    :param directed: Whether each fibre direction has its own spectrum.
    :param slots: Slots per link.
    :param loads: The paper's loads in Erlang.
    :param keys: Section -> key -> INI value, beyond the common ones.
    """

    name: str
    source: str
    network: str
    directed: bool
    slots: int
    loads: tuple[int, ...]
    keys: dict[str, dict[str, str]]

    def sections(self) -> dict[str, dict[str, str]]:
        """Every section's INI values (the common ones, then the scenario's)."""
        start, step = self.loads[0], (self.loads[1] - self.loads[0]) if len(self.loads) > 1 else 0
        general = {
            "erlang": str(self.loads[-1]),
            "erlang_start": str(start) if step else "0",
            "erlang_stop": str(self.loads[-1] + step) if step else "0",
            "erlang_step": str(step),
            "num_requests": "10000",
            "warmup_requests": "3000",
            "k_paths": "5",
            "seeds": "0-9",
            "path_order": "length",
        }
        out: dict[str, dict[str, str]] = {
            "general_settings": general,
            "topology_settings": {
                "network": self.network,
                "directed": str(self.directed).lower(),
                "c_band": str(self.slots),
            },
            "failure_settings": {"failure_type": "none"},
            "policy_settings": {"policy": "ksp_ff"},
            "dataset_logging": {
                "dataset_output_path": f"datasets/{self.name}/offline_data.jsonl",
                "epsilon_mix": "0.0",
            },
        }
        for section, keys in self.keys.items():
            out.setdefault(section, {}).update(keys)
        return out

    def describe(self) -> dict[str, Any]:
        """What ``fusion scenarios --json`` prints."""
        return {
            "name": self.name,
            "source": self.source,
            "network": self.network,
            "directed": self.directed,
            "slots": self.slots,
            "loads": list(self.loads),
        }


def _rmsa(
    hold: int, truncated: bool, rates: str = "uniform:25-100", guard: int = 1
) -> dict[str, dict[str, str]]:
    return {
        "general_settings": {
            "holding_time": str(hold),
            "bit_rates": rates,
            "holding_time_truncation": "2" if truncated else "0",
        },
        "topology_settings": {"modulation": "deeprmsa", "guard_slots": str(guard)},
    }


def _rsa(slots: str) -> dict[str, dict[str, str]]:
    return {
        "general_settings": {"holding_time": "10", "bit_rates": slots},
        "topology_settings": {"modulation": "none", "guard_slots": "0"},
    }


_PTRNET_80 = "1,1,1,1,1,1,1,1,1,1,1,1,1,1,2,2,2,3,3,4"  # {1 x14, 2 x3, 3 x2, 4 x1}
_DEEPRMSA = "DeepRMSA (Chen et al., JLT 2019)"


def _loads(start: int, stop: int, step: int) -> tuple[int, ...]:
    return tuple(range(start, stop + 1, step))


#: Every preset by name, in the order of ``docs/literature.md``'s table.
PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("deeprmsa-nsfnet", _DEEPRMSA, "nsfnet_deeprmsa", True, 100, (250,), _rmsa(25, True)),
        Preset(
            "deeprmsa-cost239", _DEEPRMSA, "cost239_deeprmsa", True, 100, (600,), _rmsa(30, True)
        ),
        Preset(
            "reward-rmsa-nsfnet",
            "Reward-RMSA",
            "nsfnet_deeprmsa",
            True,
            100,
            _loads(168, 210, 14),
            _rmsa(14, True),
        ),
        Preset(
            "gcn-rmsa-nsfnet",
            "GCN-RMSA",
            "nsfnet_deeprmsa",
            True,
            100,
            _loads(154, 210, 14),
            _rmsa(14, True),
        ),
        Preset(
            "gcn-rmsa-cost239",
            "GCN-RMSA",
            "cost239_deeprmsa",
            True,
            100,
            _loads(368, 460, 23),
            _rmsa(23, True),
        ),
        Preset(
            "gcn-rmsa-usnet",
            "GCN-RMSA",
            "usnet_gcnrnn",
            True,
            100,
            _loads(320, 400, 20),
            _rmsa(20, True),
        ),
        Preset(
            "maskrsa-nsfnet",
            "MaskRSA",
            "nsfnet_deeprmsa",
            False,
            80,
            _loads(80, 160, 10),
            _rmsa(12, False, "uniform:25-50", 0),
        ),
        Preset(
            "maskrsa-jpn48",
            "MaskRSA",
            "jpn48",
            False,
            80,
            _loads(120, 160, 10),
            _rmsa(12, False, "uniform:25-50", 0),
        ),
        Preset(
            "ptrnet-rsa-40-nsfnet",
            "PtrNet-RSA",
            "nsfnet_deeprmsa",
            False,
            40,
            _loads(180, 240, 10),
            _rsa("1"),
        ),
        Preset(
            "ptrnet-rsa-40-cost239",
            "PtrNet-RSA",
            "cost239_ptrnet_real",
            False,
            40,
            _loads(340, 420, 20),
            _rsa("1"),
        ),
        Preset(
            "ptrnet-rsa-40-usnet",
            "PtrNet-RSA",
            "usnet_ptrnet",
            False,
            40,
            _loads(210, 280, 10),
            _rsa("1"),
        ),
        Preset(
            "ptrnet-rsa-80-nsfnet",
            "PtrNet-RSA",
            "nsfnet_deeprmsa",
            False,
            80,
            _loads(200, 240, 10),
            _rsa(_PTRNET_80),
        ),
        Preset(
            "ptrnet-rsa-80-cost239",
            "PtrNet-RSA",
            "cost239_ptrnet_real",
            False,
            80,
            _loads(420, 460, 20),
            _rsa(_PTRNET_80),
        ),
        Preset(
            "ptrnet-rsa-80-usnet",
            "PtrNet-RSA",
            "usnet_ptrnet",
            False,
            80,
            _loads(260, 330, 10),
            _rsa(_PTRNET_80),
        ),
    )
}


def preset_config(name: str) -> Config:
    """The config of a preset.

    :param name: A key of :data:`PRESETS`.
    :raises KeyError: for an unknown name.
    """
    return config_from_mapping(PRESETS[name].sections(), f"<preset {name}>")


def preset_ini(name: str) -> str:
    """A preset's whole configuration as an INI file: every section and key, defaults
    included, each under its help text; saved and given to ``--config`` it makes the same
    config (and config sha256) as ``--config NAME``.

    :param name: A key of :data:`PRESETS`.
    :raises KeyError: for an unknown name.

        >>> text = preset_ini("ptrnet-rsa-40-nsfnet")
        >>> "c_band = 40" in text and "failure_type = none" in text and "seeds = 0-9" in text
        True
    """
    preset = PRESETS[name]
    loads = ", ".join(map(str, preset.loads))
    header = (
        f"fusion scenarios {name}: {preset.source}\n"
        f"{preset.network}, {'directed' if preset.directed else 'undirected'}, "
        f"{preset.slots} slots; loads {loads} Erlang.\n"
        f"Every key, defaults included: save this and pass it to --config; it makes the same "
        f"config\n(and config sha256) as --config {name}."
    )
    return config_ini(preset_config(name), header)
