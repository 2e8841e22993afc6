"""Model files: one ``.npz`` (no pickle) that says its kind, written atomically.

Every learner saves through :func:`write_model`, which stores ``kind`` beside its arrays;
:func:`model_kind` reads it back so that a loader can dispatch without guessing.

    >>> import tempfile, os, numpy as np
    >>> p = os.path.join(tempfile.mkdtemp(), "m.npz")
    >>> write_model(p, "bc", {"w1": np.zeros(2)})
    >>> model_kind(p)
    'bc'
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from fusion.storage.atomic import atomic_output

#: The kinds of model file fusion writes: behaviour cloning, masked fitted-Q iteration.
MODEL_KINDS = ("bc", "fqi")


def write_model(path: str | os.PathLike[str], kind: str, arrays: Mapping[str, Any]) -> None:
    """Write ``arrays`` and ``kind`` to one ``.npz`` file, atomically.

    :param path: The file.
    :param kind: One of :data:`MODEL_KINDS`.
    :param arrays: Name -> array (or scalar).
    """
    if kind not in MODEL_KINDS:
        raise ValueError(f"model kind must be one of {MODEL_KINDS}, got {kind!r}")
    with atomic_output(path) as handle:
        np.savez(handle, kind=np.array(kind), **arrays)


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
