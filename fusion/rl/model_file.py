"""Model files: one ``.npz`` (no pickle) that says its kind and what it was trained on.

Every learner saves through :func:`write_model`, which stores ``kind`` and the
:class:`TrainedOn` record beside its arrays; :func:`model_kind` reads the kind back so that a
loader can dispatch without guessing, and :meth:`TrainedOn.check` refuses a config the model
cannot run under (another K, feature set or scenario), naming both sides.

    >>> import tempfile, os, numpy as np
    >>> p = os.path.join(tempfile.mkdtemp(), "m.npz")
    >>> on = TrainedOn(4, ("path_hops",), {"network": "NSFNet"})
    >>> write_model(p, "bc", {"w1": np.zeros(2)}, on)
    >>> model_kind(p), read_trained_on(np.load(p)) == on
    ('bc', True)
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from fusion.config.config import Config
from fusion.config.features import feature_set_name, path_features
from fusion.errors import ConfigError
from fusion.storage.atomic import atomic_output
from fusion.storage.observation import PATH_FEATURES
from fusion.storage.outputs import check_output

#: The kinds of model file fusion writes: behaviour cloning, masked fitted-Q iteration,
#: afterstate values.
MODEL_KINDS = ("bc", "fqi", "afterstate")
#: The keys that make a model's scenario: the network and spectrum, which K paths are the
#: candidates and in what order, and what the state's ``est_remaining_time`` means.
SCENARIO_KEYS = (
    ("general_settings", "path_order"),
    ("topology_settings", "network"),
    ("topology_settings", "c_band"),
    ("topology_settings", "guard_slots"),
    ("topology_settings", "directed"),
    ("topology_settings", "slot_ghz"),
    ("topology_settings", "modulation"),
    ("dataset_logging", "holding_time_known"),
)


def scenario_of(config: Mapping[str, Mapping[str, Any]] | Config) -> dict[str, Any]:
    """The scenario a model is bound to: :data:`SCENARIO_KEYS` of a config's identity (or of
    a manifest's ``config`` dict, the identity it records), as ``"section.key": value``.

    As in the identity (:mod:`fusion.config.identity`), a topology or modulation file is its
    name and, under ``network_sha256`` / ``modulation_sha256``, the sha256 of its content, so
    a model trained on a topology file does not run on an edited one; a shipped network is
    spelled one way (``nsfnet`` is ``NSFNet``). A manifest written before a key existed lacks
    it; it then had the value :data:`~fusion.config.vocabulary.LATER_KEYS` records.

    :param config: A :class:`Config` or its sections as a dict.

        >>> scenario_of(Config().replace("topology_settings", network="nsfnet"))[
        ...     "topology_settings.network"]
        'NSFNet'
    """
    from fusion.config.identity import content_key, scenario_value
    from fusion.config.vocabulary import FILE_KEYS, LATER_KEYS

    sections = config.identity() if isinstance(config, Config) else config
    out = {}
    for section, key in SCENARIO_KEYS:
        keys = sections.get(section, {})
        value = keys[key] if key in keys else LATER_KEYS.get((section, key))
        out[f"{section}.{key}"] = scenario_value(section, key, value)
        if (section, key) in FILE_KEYS and content_key(key) in keys:
            out[f"{section}.{content_key(key)}"] = keys[content_key(key)]
    return out


@dataclass(frozen=True)
class TrainedOn:
    """What a model was trained on, and so what it can run under.

    :param k_paths: K: the paths it scores.
    :param path_features: The path features of its observations, in order (empty: it reads
        none, as a policy of the live spectrum).
    :param scenario: :func:`scenario_of` the training data's config (empty: unknown, as for
        a lone ``.jsonl`` without a manifest; then only K and the features are checked).
    """

    k_paths: int
    path_features: tuple[str, ...] = PATH_FEATURES
    scenario: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of_data(cls, metadata: Mapping[str, Any]) -> TrainedOn:
        """From the array view's ``metadata`` (:func:`~fusion.datasets.arrays.to_arrays`).

        :param metadata: ``k_paths``, ``path_features`` and, for a dataset, ``config``.
        """
        config = metadata.get("config")
        return cls(
            int(metadata["k_paths"]),
            tuple(metadata["path_features"]),
            scenario_of(config) if config else {},
        )

    def check(self, config: Config, model: str = "the model") -> None:
        """Refuse a config whose K, path features or scenario differ from the training data's.

        :param config: The config a simulation would run with it.
        :param model: The model's name, for the message.
        :raises ConfigError: naming both sides of each difference.
        """
        problems = []
        if config.general.k_paths != self.k_paths:
            problems.append(
                f"[general_settings] k_paths is {config.general.k_paths}, the model was trained "
                f"with K = {self.k_paths}"
            )
        features = path_features(config.dataset.path_features)
        if self.path_features and features != self.path_features:
            problems.append(
                f"[dataset_logging] path_features = {config.dataset.path_features} gives "
                f"{len(features)} features per path, the model was trained on "
                f"{len(self.path_features)} ({feature_set_name(self.path_features)})"
            )
        if self.scenario:
            from fusion.config.identity import file_key_of, scenario_value

            now = scenario_of(config)
            for name, value in self.scenario.items():
                section, key = name.split(".")
                if now.get(name) == scenario_value(section, key, value):
                    continue
                if file_key_of(section, key):
                    problems.append(
                        f"[{section}] {file_key_of(section, key)} "
                        + (
                            f"names a file whose content (sha256 {now[name]}) is not"
                            if now.get(name)
                            else "names no file, not"
                        )
                        + f" the file the model was trained on (sha256 {value})"
                    )
                else:
                    problems.append(
                        f"[{section}] {key} = {now.get(name)!r}, the model was trained on {value!r}"
                    )
        if problems:
            raise ConfigError(f"{config.source}: {model} cannot run here: " + "; ".join(problems))

    def arrays(self) -> dict[str, np.ndarray]:
        """The record as arrays to save."""
        return {
            "trained_on": np.array(
                orjson.dumps(
                    {
                        "k_paths": self.k_paths,
                        "path_features": list(self.path_features),
                        "scenario": self.scenario,
                    }
                ).decode()
            )
        }


def read_trained_on(npz: Mapping[str, np.ndarray], k_paths: int | None = None) -> TrainedOn:
    """The record a model file holds; a file written before models recorded it was trained
    on the seed card's features with its own K.

    :param npz: The loaded file.
    :param k_paths: K of such an older file.
    """
    if "trained_on" not in getattr(npz, "files", npz):
        if k_paths is None:
            raise ValueError("the model file records no K")
        return TrainedOn(k_paths)
    raw = orjson.loads(str(npz["trained_on"]))
    return TrainedOn(int(raw["k_paths"]), tuple(raw["path_features"]), dict(raw["scenario"]))


def write_model(
    path: str | os.PathLike[str],
    kind: str,
    arrays: Mapping[str, Any],
    trained_on: TrainedOn,
    *,
    overwrite: bool = False,
) -> None:
    """Write ``arrays``, ``kind`` and ``trained_on`` to one ``.npz`` file, atomically.

    :param path: The file.
    :param kind: One of :data:`MODEL_KINDS`.
    :param arrays: Name -> array (or scalar).
    :param trained_on: What the model was trained on.
    :param overwrite: Replace an existing file that belongs to no dataset or study.
    :raises OutputConflictError: for a path the output guard refuses
        (:func:`~fusion.storage.outputs.check_output`).
    """
    if kind not in MODEL_KINDS:
        raise ValueError(f"model kind must be one of {MODEL_KINDS}, got {kind!r}")
    for name, value in arrays.items():  # a diverged fit is no model: never saved
        array = np.asarray(value)
        if array.dtype.kind in "fc" and not np.isfinite(array).all():
            raise ValueError(
                f"{path}: the {kind} model's {name!r} holds "
                f"{int((~np.isfinite(array)).sum())} non-finite values (NaN or infinite): "
                "the fit diverged (check the training options, e.g. the ridge or learning "
                "rate); no model was saved"
            )
    check_output(path, overwrite=overwrite)
    with atomic_output(path, replace=overwrite) as handle:
        payload = {"kind": np.array(kind), **arrays, **trained_on.arrays()}
        np.savez(handle, **payload)


def check_model_output(
    data: str | os.PathLike[str], out: str | os.PathLike[str], *, overwrite: bool = False
) -> None:
    """What a training command checks before it reads anything: its model file is no file of
    its input data, of any dataset or study, and no existing file unless ``overwrite``.

    :param data: The dataset, merged file or study trained on.
    :param out: The model file to write.
    :param overwrite: Replace an existing file that belongs to no dataset or study.
    :raises OutputConflictError: naming the file, why, and what to do.
    """
    check_output(out, overwrite=overwrite, inputs=[data])


def model_kind(path: str | os.PathLike[str]) -> str:
    """The kind a model file says it is (``""`` when it names none).

    BC files written before model files said their kind (no ``kind``, a ``w1`` array) are
    read as ``bc``.

    :param path: The file.
    :raises OSError: when the file cannot be read.
    :raises ValueError: when it is not an ``.npz``, or a cut or empty one.
    """
    try:
        with np.load(Path(path), allow_pickle=False) as npz:
            if "kind" in npz.files:
                return str(npz["kind"])
            return "bc" if "w1" in npz.files else ""
    except (zipfile.BadZipFile, EOFError) as exc:
        raise ValueError(f"{path}: a cut or empty .npz ({type(exc).__name__}: {exc})") from None
