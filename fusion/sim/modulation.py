"""Distance-adaptive modulation: FUSION's default table of reach and slots per bit rate.

For each bit rate, the formats from most to least efficient as ``(name, reach km, slots)``;
a lightpath uses the most efficient format whose reach covers its path.

    >>> slots_for(100, 2000.0)
    ('16-QAM', 2)
    >>> slots_for(400, 2000.0) is None
    True
"""

from __future__ import annotations

from fusion.config.vocabulary import BANDWIDTH_MIX, BIT_RATES

__all__ = ["BANDWIDTH_MIX", "BIT_RATES", "MODULATION_TABLE", "slots_for"]

# bit rate (Gbps) -> [(format, reach km, slots of 12.5 GHz)], most efficient first
MODULATION_TABLE: dict[int, list[tuple[str, float, int]]] = {
    25: [("64-QAM", 3664, 1), ("16-QAM", 9500, 1), ("QPSK", 22160, 1)],
    50: [("64-QAM", 1832, 1), ("16-QAM", 4750, 1), ("QPSK", 11080, 2)],
    100: [("64-QAM", 916, 2), ("16-QAM", 2375, 2), ("QPSK", 5540, 4)],
    200: [("64-QAM", 458, 3), ("16-QAM", 1187, 4), ("QPSK", 2770, 8)],
    400: [("64-QAM", 229, 6), ("16-QAM", 594, 8), ("QPSK", 1385, 16)],
}


def slots_for(bit_rate: int, length_km: float) -> tuple[str, int] | None:
    """The most efficient format reaching ``length_km`` and its slots, or ``None`` if none does.

    :param bit_rate: Gbps, one of :data:`BIT_RATES`.
    :param length_km: The path length.
    """
    for name, reach, slots in MODULATION_TABLE[bit_rate]:
        if length_km <= reach:
            return name, slots
    return None
