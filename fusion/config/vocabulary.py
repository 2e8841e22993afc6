"""The names every layer shares, each defined once: bit rates, policies, compressions,
failure kinds, and the config keys that do not change what a seed's transitions are.

The heuristics' names and spectrum rules come from their registry
(:mod:`fusion.config.heuristics`). The config checks values against these; the simulator, the
storage layer and the CLI build their registries, choices and file names from them.

    >>> SHARD_COMPRESSIONS, SUFFIXES["zstd"]
    (('none', 'gzip', 'zstd'), '.zst')
"""

from __future__ import annotations

from fusion.config.heuristics import HEURISTICS
from fusion.config.heuristics import SPECTRUM_RULES as SPECTRUM_RULES

#: FUSION's bit rates (Gbps), the keys of its modulation table, in order.
BIT_RATES = (25, 50, 100, 200, 400)
#: FUSION's default request mix over :data:`BIT_RATES`.
BANDWIDTH_MIX = (0.1, 0.1, 0.5, 0.2, 0.1)

#: ``[policy_settings] policy``: every heuristic's name, in the registry's order
#: (:data:`fusion.config.heuristics.HEURISTICS`: XLRON's family of twelve, then fusion's
#: path-only ones).
POLICY_NAMES: tuple[str, ...] = tuple(h.name for h in HEURISTICS)

#: ``[general_settings] path_order``: which k paths are the candidates and in what order.
PATH_ORDERS = ("length", "hops", "hops_length", "spectral_resources")

#: ``[failure_settings] failure_type``.
FAILURE_TYPES = ("none", "link", "node", "srlg", "geo")

#: Stream compressions every reader takes, and the suffix each adds to a ``.jsonl`` name.
COMPRESSIONS = ("gzip", "zstd")
SUFFIXES = {"gzip": ".gz", "zstd": ".zst"}
#: ``[dataset_logging] shard_compression``: ``none`` or one of :data:`COMPRESSIONS`.
SHARD_COMPRESSIONS = ("none", *COMPRESSIONS)
#: The longest line a shard may hold, in bytes (the readers parse in blocks of 4 MiB): the
#: writer and ``fusion validate`` refuse longer ones, the scenario check refuses a config whose
#: lines would be (:func:`fusion.sim.scenario.line_bytes`).
MAX_LINE_BYTES = 1 << 20

#: Keys added after the first datasets were made, with the value every dataset made before the
#: key existed has: a dataset's config identity lists such a key only when it is set away from
#: that value, so those datasets keep their config sha256. (``path_features`` and
#: ``holding_time_known`` changed the default itself: a default dataset made now has a new
#: identity, as its transitions differ.)
LATER_KEYS = {
    ("general_settings", "bit_rates"): "fusion",
    ("general_settings", "holding_time_truncation"): 0.0,
    ("general_settings", "warmup_requests"): 0,
    ("general_settings", "path_order"): "length",
    ("general_settings", "traffic_matrix"): "uniform",
    ("topology_settings", "directed"): False,
    ("topology_settings", "slot_ghz"): 12.5,
    ("topology_settings", "modulation"): "fusion",
    ("policy_settings", "spectrum"): "first_fit",
    ("dataset_logging", "path_features"): "seed",
    ("dataset_logging", "holding_time_known"): True,
    ("dataset_logging", "log_spectrum"): False,
}

#: Keys that say where, which seeds or how stored, not what a seed's transitions are: they
#: stay out of a dataset's config identity and cannot be a study axis (the reason says what
#: to do instead).
NOT_IDENTITY = {
    ("general_settings", "seeds"): "use --seeds",
    ("general_settings", "erlang_start"): "give the loads as general_settings.erlang",
    ("general_settings", "erlang_stop"): "give the loads as general_settings.erlang",
    ("general_settings", "erlang_step"): "give the loads as general_settings.erlang",
    ("dataset_logging", "dataset_output_path"): "use --out",
    ("dataset_logging", "shard_compression"): "it changes how shards are stored, not what",
}

#: The networks shipped in ``fusion/data/topologies`` (``<name>.txt``), by the lower-case name
#: the topology loader looks them up by (any case), with the spelling a config identity gives
#: them: ``nsfnet`` and ``NSFNET`` are both ``NSFNet``.
NETWORKS = {
    "nsfnet": "NSFNet",
    "usnet": "USNet",
    "toy": "toy",
    "nsfnet_deeprmsa": "nsfnet_deeprmsa",
    "cost239_deeprmsa": "cost239_deeprmsa",
    "cost239_ptrnet_real": "cost239_ptrnet_real",
    "usnet_gcnrnn": "usnet_gcnrnn",
    "usnet_ptrnet": "usnet_ptrnet",
    "jpn48": "jpn48",
}

#: The keys that may name a file (``[topology_settings] network`` when it is no shipped
#: network, a ``.csv`` ``modulation`` or ``traffic_matrix``): a config identity records such a
#: file by its name and, under ``<key>_sha256``, the sha256 of its content.
FILE_KEYS = (
    ("topology_settings", "network"),
    ("topology_settings", "modulation"),
    ("general_settings", "traffic_matrix"),
)
