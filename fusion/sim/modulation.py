"""Distance-adaptive modulation: how many slots a request takes on a path of a given length.

Three kinds of table (``[topology_settings] modulation``):

- ``fusion``: FUSION's table of reach and slots per bit rate (:data:`MODULATION_TABLE`); a
  lightpath uses the most efficient format whose reach covers its path.
- ``deeprmsa`` or a ``name,reach_km,spectral_efficiency`` CSV: formats by spectral efficiency
  (DeepRMSA's: BPSK 100,000 km SE 1, QPSK 2,500 km SE 2, 8QAM 1,250 km SE 3, 16QAM 625 km
  SE 4); the most efficient format reaching the path takes
  ``ceil(bit_rate / (SE x slot_ghz))`` slots.
- ``none``: no modulation (RSA/RWA); the drawn "bit rate" is the request's slot count.

Guard slots are the engine's to add. 0 slots means no format reaches the path.

    >>> slots_for(100, 2000.0)
    ('16-QAM', 2)
    >>> slots_for(400, 2000.0) is None
    True
    >>> table = ModulationTable.build("deeprmsa", slot_ghz=12.5)
    >>> table.slots(100, 2000.0), table.slots(100, 500.0), table.efficiency(1000.0)
    (4, 2, 3.0)
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from fusion.config.vocabulary import BANDWIDTH_MIX, BIT_RATES
from fusion.errors import ConfigError

__all__ = [
    "BANDWIDTH_MIX",
    "BIT_RATES",
    "DEEPRMSA_FORMATS",
    "MODULATION_TABLE",
    "ModulationTable",
    "slots_for",
]

# bit rate (Gbps) -> [(format, reach km, slots of 12.5 GHz)], most efficient first
MODULATION_TABLE: dict[int, list[tuple[str, float, int]]] = {
    25: [("64-QAM", 3664, 1), ("16-QAM", 9500, 1), ("QPSK", 22160, 1)],
    50: [("64-QAM", 1832, 1), ("16-QAM", 4750, 1), ("QPSK", 11080, 2)],
    100: [("64-QAM", 916, 2), ("16-QAM", 2375, 2), ("QPSK", 5540, 4)],
    200: [("64-QAM", 458, 3), ("16-QAM", 1187, 4), ("QPSK", 2770, 8)],
    400: [("64-QAM", 229, 6), ("16-QAM", 594, 8), ("QPSK", 1385, 16)],
}
#: Bits per symbol of FUSION's formats (their spectral efficiency in b/s/Hz).
FUSION_EFFICIENCY = {"64-QAM": 6.0, "16-QAM": 4.0, "QPSK": 2.0}
#: DeepRMSA's formats as ``(name, reach km, spectral efficiency b/s/Hz)``.
DEEPRMSA_FORMATS = (
    ("BPSK", 100_000.0, 1.0),
    ("QPSK", 2_500.0, 2.0),
    ("8QAM", 1_250.0, 3.0),
    ("16QAM", 625.0, 4.0),
)


def slots_for(bit_rate: int, length_km: float) -> tuple[str, int] | None:
    """FUSION's table: the most efficient format reaching ``length_km`` and its slots, or
    ``None`` if none does.

    :param bit_rate: Gbps, one of :data:`BIT_RATES`.
    :param length_km: The path length.
    """
    for name, reach, slots in MODULATION_TABLE[bit_rate]:
        if length_km <= reach:
            return name, slots
    return None


@dataclass(frozen=True)
class ModulationTable:
    """One of the three kinds of table, answering per (bit rate, path length).

    :param kind: ``fusion``, ``efficiency`` (DeepRMSA's or a CSV) or ``none``.
    :param formats: For ``efficiency``: ``(name, reach km, SE)``, most efficient first.
    :param slot_ghz: Slot width.
    """

    kind: str
    formats: tuple[tuple[str, float, float], ...] = ()
    slot_ghz: float = 12.5

    @classmethod
    def build(cls, spec: str, slot_ghz: float) -> ModulationTable:
        """The table ``[topology_settings] modulation`` names.

        :param spec: ``fusion``, ``deeprmsa``, ``none`` or a CSV path.
        :param slot_ghz: ``[topology_settings] slot_ghz``.
        :raises ConfigError: naming the CSV and line when it cannot be read.
        """
        if spec in ("fusion", "none"):
            return cls(spec, (), slot_ghz)
        formats = DEEPRMSA_FORMATS if spec == "deeprmsa" else _read_csv(Path(spec))
        ordered = tuple(sorted(formats, key=lambda f: -f[2]))
        return cls("efficiency", ordered, slot_ghz)

    def slots(self, bit_rate: int, length_km: float) -> int:
        """Slots (guard band not included) a request of ``bit_rate`` takes on a path of
        ``length_km``; 0 when no format reaches it.

        :param bit_rate: Gbps (with ``none``: the slot count itself).
        :param length_km: The path's length.
        """
        if self.kind == "none":
            return bit_rate
        if self.kind == "fusion":
            fit = slots_for(bit_rate, length_km)
            return fit[1] if fit else 0
        for _, reach, efficiency in self.formats:
            if length_km <= reach:
                return math.ceil(bit_rate / (efficiency * self.slot_ghz) - 1e-9)
        return 0

    def request_efficiency(self, bit_rate: int, length_km: float) -> float:
        """Spectral efficiency (b/s/Hz) of the format a request of ``bit_rate`` takes on a path
        of ``length_km`` (the path feature ``spectral_efficiency``): 0 when none reaches, 1
        with ``none`` (slot counts, no formats).

        :param bit_rate: Gbps (with ``none``: the slot count).
        :param length_km: The path's length.

            >>> ModulationTable("fusion").request_efficiency(100, 800.0)
            6.0
        """
        if self.kind == "none":
            return 1.0
        if self.kind == "fusion":
            fit = slots_for(bit_rate, length_km)
            return FUSION_EFFICIENCY[fit[0]] if fit else 0.0
        for _, reach, efficiency in self.formats:
            if length_km <= reach:
                return efficiency
        return 0.0

    def efficiency(self, length_km: float) -> float:
        """Spectral efficiency of the format a path of ``length_km`` uses (1 with ``none``,
        or when no format reaches: the ``spectral_resources`` path order's divisor).

        :raises ValueError: for FUSION's table, whose formats depend on the bit rate.
        """
        if self.kind == "fusion":
            raise ValueError("FUSION's table gives no per-path spectral efficiency")
        for _, reach, efficiency in self.formats:
            if length_km <= reach:
                return efficiency
        return 1.0


def _read_csv(path: Path) -> tuple[tuple[str, float, float], ...]:
    """``name,reach_km,spectral_efficiency`` rows (XLRON's ``maximum_length`` header too)."""
    where = f"[topology_settings] modulation = {str(path)!r}"
    try:
        rows = list(csv.reader(path.read_text("utf-8").splitlines()))
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read it ({exc.strerror})") from None
    header = [c.strip() for c in rows[0]] if rows else []
    columns = (0, 1, 2)
    if header and header[0] == "name":
        reach = "reach_km" if "reach_km" in header else "maximum_length"
        if reach not in header or "spectral_efficiency" not in header:
            raise ConfigError(f"{where}: the header needs name, reach_km, spectral_efficiency")
        columns = (0, header.index(reach), header.index("spectral_efficiency"))
        rows = rows[1:]
    formats = []
    for number, row in enumerate(rows, 2 if header and header[0] == "name" else 1):
        if not row or not "".join(row).strip():
            continue
        try:
            name, reach_km, efficiency = (row[i].strip() for i in columns)
            item = (name, float(reach_km), float(efficiency))
            if not item[1] > 0 or not item[2] > 0:
                raise ValueError
        except (ValueError, IndexError):
            raise ConfigError(
                f"{where}:{number}: expected name,reach_km,spectral_efficiency (numbers > 0), "
                f"got {','.join(row)!r}"
            ) from None
        formats.append(item)
    if not formats:
        raise ConfigError(f"{where}: no formats")
    return tuple(formats)
