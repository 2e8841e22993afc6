"""Optional packages: import them when a feature needs them, or say which extra to install.

>>> require("json", "dev", "an example").__name__
'json'
>>> require("no_such_package_here", "ray", "the ray backend")
Traceback (most recent call last):
...
fusion.errors.MissingDependencyError: the ray backend needs the no_such_package_here package: pip install 'fusion-offline[ray]'
"""

from __future__ import annotations

import importlib
from types import ModuleType

from fusion.errors import MissingDependencyError


def require(module: str, extra: str | None, purpose: str) -> ModuleType:
    """Import ``module``, or raise :class:`MissingDependencyError` naming the extra to install.

    :param module: The module to import (``"ray"``, ``"matplotlib.pyplot"``).
    :param extra: The ``fusion-offline`` extra that installs it (``None``: a core dependency,
        so the install itself is broken).
    :param purpose: What needs it, for the message (``"--plot"``).
    :raises MissingDependencyError: when the import fails.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        package = module.split(".", 1)[0]
        target = "fusion-offline" if extra is None else f"'fusion-offline[{extra}]'"
        raise MissingDependencyError(
            f"{purpose} needs the {package} package: pip install {target}"
        ) from exc
