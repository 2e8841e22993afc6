"""A study's grid: axes over config keys, their Cartesian product, each point's config.

An axis is one ``[section] key`` and its values, from ``--grid SECTION.KEY=v1,v2,...`` or
from FUSION's ``erlang_start`` / ``erlang_stop`` / ``erlang_step``, which mean what they mean
in upstream FUSION's ``NetworkSimulator.run_generic_sim``: ``range(start, stop, step)`` over
integers, ``erlang_stop`` excluded (200, 500, 100 give 200, 300, 400). Every value is parsed
and checked as the INI value would be. Values are sorted (numbers by value, text by name), so
the points' order, ``200 < 300 < 1000``, is that of their directory names too: numbers are
zero-padded to the axis's widest (``erlang=0300``, ``erlang=1000``).

    >>> from fusion.config.config import load_config
    >>> cfg = load_config()
    >>> axes = parse_grid(cfg, ["general_settings.erlang=300,200", "policy_settings.policy=ksp_ff"])
    >>> [p.directory for p in grid_points(cfg, axes)]
    ['erlang=200/policy=ksp_ff', 'erlang=300/policy=ksp_ff']
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fusion.config.config import Config, key_field, section_attr
from fusion.config.vocabulary import NOT_IDENTITY
from fusion.errors import ConfigError

#: Keys of a run's identity that still cannot vary across a study's points (why).
NOT_AXES = {
    ("dataset_logging", "log_offline_dataset"): "a study writes a dataset at every point",
}

ERLANG_RANGE = ("erlang_start", "erlang_stop", "erlang_step")

#: The bytes a point's directory name keeps as they are; any other is percent-encoded.
_SAFE = re.compile(rb"[A-Za-z0-9._=-]")
#: The longest file name most file systems take (bytes).
MAX_NAME_BYTES = 255


def _encoded(text: str) -> str:
    """``text`` with every byte but ``[A-Za-z0-9._=-]`` percent-encoded (``%`` too): one
    path component that no value can escape or nest in, and distinct values stay distinct.

        >>> _encoded("q/../t.txt"), _encoded("ksp_ff")
        ('q%2F..%2Ft.txt', 'ksp_ff')
    """
    return "".join(
        chr(b) if _SAFE.fullmatch(bytes([b])) else f"%{b:02X}" for b in text.encode("utf-8")
    )


@dataclass(frozen=True)
class Axis:
    """One config key and the values a study takes it through.

    :param section: The INI section, e.g. ``general_settings``.
    :param key: The key, e.g. ``erlang``; also the axis's name.
    :param values: The parsed values, sorted.
    """

    section: str
    key: str
    values: tuple[Any, ...]

    @property
    def name(self) -> str:
        """The axis's name in directories, ``study.json`` and readers' ``points=``."""
        return self.key

    def label(self, value: Any) -> str:
        """``value`` as it appears in a directory name (numbers padded to sort)."""
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return str(value).lower() if isinstance(value, bool) else str(value)
        text = _number(value)
        width = max(len(_number(v).split(".")[0]) for v in self.values)
        whole, dot, frac = text.partition(".")
        return whole.zfill(width) + dot + frac

    def component(self, value: Any) -> str:
        """The directory name of ``value`` on this axis, ``name=label``: one safe path
        component (see :func:`_encoded`), ``erlang=200``, ``network=.%2Ftopo.txt``."""
        return f"{self.name}={_encoded(self.label(value))}"

    def check_names(self, where: str) -> None:
        """Refuse an axis a value of which makes a directory name too long.

        :raises ConfigError: naming the axis, the value and the limit.
        """
        for value in self.values:
            name = self.component(value)
            if len(name.encode("utf-8")) > MAX_NAME_BYTES:
                raise ConfigError(
                    f"{where}: the point directory of {self.name}={value!r} would be "
                    f"{name[:40]}... ({len(name.encode('utf-8'))} bytes), over the "
                    f"{MAX_NAME_BYTES} bytes a file name can have; use shorter values "
                    "(numbers are zero-padded to the axis's widest)"
                )

    def to_json(self) -> dict[str, Any]:
        """The axis as ``study.json`` records it."""
        return {"section": self.section, "key": self.key, "values": list(self.values)}


@dataclass(frozen=True)
class Point:
    """One grid point: its coordinates, its resolved config and its directory (relative).

    :param coords: Axis name -> value, in axis order.
    :param config: The config of this point's dataset.
    :param directory: ``erlang=200/policy=ksp_ff``: one level per axis.
    """

    coords: dict[str, Any]
    config: Config
    directory: str


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def parse_assignment(text: str, option: str) -> tuple[str, str, str]:
    """``SECTION.KEY=VALUE`` -> ``(section, key, value)``, the names checked.

    :param text: The option's argument.
    :param option: ``--grid`` or ``--set``, named in errors.
    :raises ConfigError: for a malformed argument, an unknown section or key.
    """
    name, sep, value = text.partition("=")
    section, dot, key = name.strip().partition(".")
    if not sep or not dot or not section or not key:
        raise ConfigError(f"{option} {text!r}: expected SECTION.KEY=VALUE")
    key_field(f"{option} {text!r}", section, key)
    return section, key, value.strip()


def apply_sets(config: Config, sets: Sequence[str]) -> Config:
    """The config with every ``--set SECTION.KEY=VALUE`` applied (checked like the INI), in
    order. A load set as ``general_settings.erlang`` replaces a load range (``erlang_start /
    stop / step``, as a preset of a paper's loads has): one load asked for is one load run.

    :raises ConfigError: naming the option, key and what was expected.
    """
    for text in sets:
        section, key, value = parse_assignment(text, "--set")
        config = _replace(config, section, key, value, f"--set {text!r}")
        if (section, key) == ("general_settings", "erlang"):
            config = config.replace("general_settings", **dict.fromkeys(ERLANG_RANGE, 0))
    return config


def _replace(config: Config, section: str, key: str, value: Any, where: str) -> Config:
    try:
        return config.replace(section, **{key: value})
    except ConfigError as exc:
        raise ConfigError(f"{where}: {exc}") from None


def parse_grid(config: Config, grids: Sequence[str]) -> list[Axis]:
    """The study's axes: the config's erlang range (first), then every ``--grid`` in order.

    :param config: The base config (its ``erlang_start/stop/step`` make a load axis).
    :param grids: ``SECTION.KEY=v1,v2,...`` arguments.
    :raises ConfigError: for an unknown key, a bad or repeated value, an empty list, a key
        given twice or one that cannot be an axis.
    """
    axes = [axis] if (axis := erlang_axis(config)) else []
    for text in grids:
        section, key, raw = parse_assignment(text, "--grid")
        why = NOT_IDENTITY.get((section, key)) or NOT_AXES.get((section, key))
        if why:
            raise ConfigError(f"--grid {text!r}: [{section}] {key} cannot be an axis ({why})")
        if any(a.key == key for a in axes):
            raise ConfigError(
                f"--grid {text!r}: {key} is already an axis of this study{_from_range(config, axes, key)}"
            )
        parts = [part.strip() for part in raw.split(",")]
        if not raw or any(not part for part in parts):
            raise ConfigError(f"--grid {text!r}: expected a list of values like {key}=a,b,c")
        values = [_parsed(config, section, key, part, f"--grid {text!r}") for part in parts]
        if len(set(values)) != len(values):
            raise ConfigError(f"--grid {text!r}: a value is given twice")
        _refuse_same_identity(config, section, key, parts, values, f"--grid {text!r}")
        axis = Axis(section, key, tuple(sorted(values)))
        axis.check_names(f"--grid {text!r}")
        axes.append(axis)
    return axes


def _refuse_same_identity(
    config: Config, section: str, key: str, parts: Sequence[str], values: Sequence[Any], where: str
) -> None:
    """Refuse two values of one axis that are one config (``nsfnet`` and ``NSFNet``, link
    ``7-8`` and ``8-7``, ``t.txt`` and ``./t.txt``): their points would be one dataset twice.

    :raises ConfigError: naming both values.
    """
    seen: list[tuple[str, dict[str, dict[str, Any]]]] = []
    for part, value in zip(parts, values, strict=True):
        identity = config.replace(section, **{key: value}).identity()
        for other, known in seen:
            if known == identity:
                raise ConfigError(
                    f"{where}: {other!r} and {part!r} are one config (the same config "
                    f"identity, so the same config_sha256): give each {key} once"
                )
        seen.append((part, identity))


def _from_range(config: Config, axes: Sequence[Axis], key: str) -> str:
    """Where an ``erlang`` axis came from, when it is the config's load range, and how to
    replace it (``""`` otherwise)."""
    if key != "erlang" or not axes or axes[0] != erlang_axis(config):
        return ""
    start, stop, step = (getattr(config.general, k) for k in ERLANG_RANGE)
    loads = ", ".join(_number(v) for v in axes[0].values)
    clear = " ".join(f"--set general_settings.{k}=0" for k in ERLANG_RANGE)
    return (
        f" ({config.source} sweeps the loads of its erlang_start/stop/step = "
        f"{start}/{stop}/{step}: {loads} Erlang); to sweep other loads, clear that range "
        f"first ({clear} --grid general_settings.erlang=...), or run one load with "
        "--set general_settings.erlang=LOAD, which replaces the range"
    )


def parse_points(items: Sequence[str]) -> dict[str, list[Any]]:
    """A study's points to read, from ``SECTION.KEY=v1,v2`` arguments (``--points``): axis
    name -> values, each parsed as the INI's key parses it (``erlang`` a float).

    :param items: The arguments.
    :raises ConfigError: for a malformed argument, an unknown key or a bad value.

        >>> parse_points(["general_settings.erlang=200,300", "policy_settings.policy=ksp_ff"])
        {'erlang': [200.0, 300.0], 'policy': ['ksp_ff']}
    """
    points: dict[str, list[Any]] = {}
    for text in items:
        section, key, raw = parse_assignment(text, "--points")
        where = f"--points {text!r}"
        values = [part.strip() for part in raw.split(",")]
        if not raw or any(not part for part in values):
            raise ConfigError(f"{where}: expected a list of values like {key}=a,b")
        points[key] = [_parsed(Config(), section, key, part, where) for part in values]
    return points


def _parsed(config: Config, section: str, key: str, value: str, where: str) -> Any:
    """``value`` parsed and checked as the INI's ``[section] key`` would be."""
    return getattr(
        getattr(_replace(config, section, key, value, where), section_attr(section)), key
    )


def erlang_axis(config: Config) -> Axis | None:
    """The load axis of FUSION's ``erlang_start`` / ``erlang_stop`` / ``erlang_step``
    (``None`` when they are unset, all 0).

    :raises ConfigError: when only some are set, the step is not positive or the range is empty.
    """
    general = config.general
    start, stop, step = (getattr(general, key) for key in ERLANG_RANGE)
    if (start, stop, step) == (0, 0, 0):
        return None
    where = f"{config.source}: [general_settings] erlang_start/stop/step = {start}/{stop}/{step}"
    if step <= 0:
        raise ConfigError(
            f"{where}: erlang_step must be > 0 (the range is range(start, stop, step))"
        )
    loads = [float(e) for e in range(start, stop, step)]
    if not loads or loads[0] <= 0:
        raise ConfigError(
            f"{where}: expected loads > 0 in range(start, stop, step), erlang_stop excluded"
        )
    return Axis("general_settings", "erlang", tuple(loads))


def grid_points(config: Config, axes: Sequence[Axis]) -> list[Point]:
    """Every point of the grid, in order (the first axis varies slowest).

    Each point's config is the base config with its coordinates set and the erlang range
    cleared: the config a user would write to sweep that point alone.
    """
    base = config.replace("general_settings", erlang_start=0, erlang_stop=0, erlang_step=0)
    points = []
    for values in itertools.product(*(axis.values for axis in axes)):
        point_config = base
        for axis, value in zip(axes, values, strict=True):
            point_config = point_config.replace(axis.section, **{axis.key: value})
        coords = {axis.name: value for axis, value in zip(axes, values, strict=True)}
        directory = "/".join(
            axis.component(value) for axis, value in zip(axes, values, strict=True)
        )
        points.append(Point(coords, point_config, directory))
    return points
