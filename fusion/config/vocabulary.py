"""The names every layer shares, each defined once: bit rates, policies, compressions,
failure kinds, and the config keys that do not change what a seed's transitions are.

The config checks values against these; the simulator, the storage layer and the CLI build
their registries, choices and file names from them.

    >>> SHARD_COMPRESSIONS, SUFFIXES["zstd"]
    (('none', 'gzip', 'zstd'), '.zst')
"""

from __future__ import annotations

#: FUSION's bit rates (Gbps), the keys of its modulation table, in order.
BIT_RATES = (25, 50, 100, 200, 400)
#: FUSION's default request mix over :data:`BIT_RATES`.
BANDWIDTH_MIX = (0.1, 0.1, 0.5, 0.2, 0.1)

#: ``[policy_settings] policy``: the heuristics of :mod:`fusion.sim.policies`.
POLICY_NAMES = ("ksp_ff", "shortest_feasible", "least_congested", "random_feasible")

#: ``[failure_settings] failure_type``.
FAILURE_TYPES = ("none", "link", "node", "srlg", "geo")

#: Stream compressions every reader takes, and the suffix each adds to a ``.jsonl`` name.
COMPRESSIONS = ("gzip", "zstd")
SUFFIXES = {"gzip": ".gz", "zstd": ".zst"}
#: ``[dataset_logging] shard_compression``: ``none`` or one of :data:`COMPRESSIONS`.
SHARD_COMPRESSIONS = ("none", *COMPRESSIONS)

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
