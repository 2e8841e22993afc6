"""A dataset's identity: the sha256 of its resolved config, and what differs between two.

A dataset directory holds the shards of one config; its manifest records the config and its
sha256 (:func:`config_sha256`), and a writer of another config is refused naming the keys
that differ (:func:`check_same_config`).

    >>> config_sha256({"general_settings": {"erlang": 300.0}}) == config_sha256(
    ...     {"general_settings": {"erlang": 300.0}})
    True
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import orjson

from fusion.config.identity import describe_content_difference, file_key_of
from fusion.config.vocabulary import LATER_KEYS
from fusion.errors import ManifestConflictError

__all__ = ["check_same_config", "config_differences", "config_sha256"]


def config_sha256(config: Mapping[str, Any]) -> str:
    """sha256 of the config's canonical JSON (sorted keys): the dataset's identity.

    :param config: The resolved config as plain JSON values.
    :raises ValueError: when the config holds a value JSON cannot represent.
    """
    try:
        blob = orjson.dumps(config, option=orjson.OPT_SORT_KEYS)
    except orjson.JSONEncodeError as exc:
        raise ValueError(f"the config cannot be recorded as JSON: {exc}") from exc
    return hashlib.sha256(blob).hexdigest()


def config_differences(
    made: Mapping[str, Any], now: Mapping[str, Any]
) -> list[tuple[str, str, Any, Any]]:
    """``(section, key, made's value, now's value)`` for each key whose values differ between
    two configs as manifests record them; a key an identity leaves out has the value it had
    before it was added (:data:`~fusion.config.vocabulary.LATER_KEYS`), else ``None``.

        >>> config_differences({"g": {"erlang": 300}}, {"g": {"erlang": 250, "k_paths": 4}})
        [('g', 'erlang', 300, 250), ('g', 'k_paths', None, 4)]
    """
    found = []
    for section in sorted(set(made) | set(now)):
        a, b = made.get(section), now.get(section)
        if not (isinstance(a, Mapping) or a is None) or not (isinstance(b, Mapping) or b is None):
            if a != b:  # (a hand-made config need not have sections)
                found.append((section, "", a, b))
            continue
        a, b = a or {}, b or {}
        for key in sorted(set(a) | set(b)):
            earlier = LATER_KEYS.get((section, key))
            old, new = a.get(key, earlier), b.get(key, earlier)
            if old != new:
                found.append((section, key, old, new))
    return found


def check_same_config(where: str, manifest: Mapping[str, Any], config: Mapping[str, Any]) -> None:
    """Refuse to add to a dataset of another config, naming the keys that differ and the
    values that would add to it.

    :param where: What the message starts with (the manifest, or the directory).
    :param manifest: The dataset's manifest.
    :param config: The writer's config, as a manifest records it.
    :raises ManifestConflictError: when the config sha256s differ.
    """
    want = config_sha256(config)
    if manifest.get("config_sha256") == want:
        return
    differences = config_differences(manifest.get("config") or {}, config)
    said = "; ".join(
        describe_content_difference(section, key, made, now, config)
        or f"{f'[{section}] {key}' if key else section} is {_shown(made)} there, {_shown(now)} here"
        for section, key, made, now in differences[:6]
    ) + ("; ..." if len(differences) > 6 else "")
    sets = " ".join(
        f"--set {section}.{key}={_shown(made)}"
        for section, key, made, _ in differences
        if key and isinstance(made, (bool, int, float, str)) and not file_key_of(section, key)
    )
    raise ManifestConflictError(
        f"{where}: this dataset was made with another config (config sha256 "
        f"{manifest.get('config_sha256')} there, {want} here)"
        + (f": {said}" if said else "")
        + (f"; to add to it, write with the dataset's values ({sets})" if sets else "")
        + "; or use another directory, or overwrite it"
    )


def _shown(value: Any) -> str:
    """A config value as an INI line would give it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "(absent)" if value is None else str(value)
