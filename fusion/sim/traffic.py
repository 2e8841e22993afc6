"""Dynamic traffic: Poisson arrivals, exponential (or truncated) holding times, bit rates.

All of a seed's requests are drawn up front from one numpy ``Generator`` (the seed's traffic
stream), so the same seed always gives the same requests whatever the policy does.

    >>> import numpy as np
    >>> t = generate_traffic(np.random.default_rng(0), 1000, num_nodes=14, erlang=300, holding_time=1.0)
    >>> len(t.arrival), bool((t.src != t.dst).all()), bool((np.diff(t.arrival) > 0).all())
    (1000, True, True)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fusion.sim.modulation import BANDWIDTH_MIX, BIT_RATES


@dataclass(frozen=True)
class Traffic:
    """A seed's requests, one array entry per request in arrival order.

    :param arrival: Arrival times.
    :param holding: Holding times.
    :param src: Source nodes.
    :param dst: Destination nodes (never the source).
    :param bit_rate: Bit rates in Gbps.
    """

    arrival: np.ndarray
    holding: np.ndarray
    src: np.ndarray
    dst: np.ndarray
    bit_rate: np.ndarray


def generate_traffic(
    rng: np.random.Generator,
    num_requests: int,
    *,
    num_nodes: int,
    erlang: float,
    holding_time: float,
    bit_rates: Sequence[int] = BIT_RATES,
    mix: Sequence[float] | None = BANDWIDTH_MIX,
    uniform_rates: tuple[int, int] | None = None,
    truncation: float = 0.0,
    pairs: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> Traffic:
    """Draw ``num_requests`` requests, in this order from ``rng``: arrivals, holding times,
    node pairs, bit rates (so the default stream is the same whatever is added later).

    Arrivals are Poisson at rate ``erlang / holding_time``; holding times exponential with
    mean ``holding_time`` (with ``truncation`` F > 0, each drawn again until it is below
    F x ``holding_time``, as DeepRMSA's traffic); source uniform, destination uniform among the
    other nodes (or pairs by relative weight); bit rates from ``bit_rates`` by ``mix``
    (``None``: uniformly over the list's entries), or uniform integers in ``uniform_rates``.

    :param rng: The seed's traffic stream.
    :param num_requests: How many requests.
    :param num_nodes: Nodes of the topology.
    :param erlang: Offered load.
    :param holding_time: Mean holding time (before truncation).
    :param bit_rates: The bit rates (Gbps, or slot counts) to draw from.
    :param mix: Their probabilities (``None``: each entry equally likely).
    :param uniform_rates: ``(low, high)``: integers uniform in ``low .. high`` instead.
    :param truncation: 0, or F > 0 (see above).
    :param pairs: ``(src, dst, weight)`` arrays: node pairs drawn by weight instead.
    """
    if num_nodes < 2:
        raise ValueError(f"traffic needs at least 2 nodes, got {num_nodes}")
    rate = erlang / holding_time
    arrival = np.cumsum(rng.exponential(1.0 / rate, num_requests))
    holding = rng.exponential(holding_time, num_requests)
    if truncation > 0:
        limit = truncation * holding_time
        long = np.flatnonzero(holding >= limit)
        while len(long):
            holding[long] = rng.exponential(holding_time, len(long))
            long = long[holding[long] >= limit]
    if pairs is None:
        src = rng.integers(0, num_nodes, num_requests)
        dst = (src + rng.integers(1, num_nodes, num_requests)) % num_nodes
    else:
        weights = pairs[2] / pairs[2].sum()
        chosen = rng.choice(len(weights), num_requests, p=weights)
        src, dst = pairs[0][chosen], pairs[1][chosen]
    if uniform_rates is not None:
        bit_rate = rng.integers(uniform_rates[0], uniform_rates[1] + 1, num_requests)
    elif mix is None:
        bit_rate = rng.choice(np.asarray(bit_rates), num_requests)
    else:
        probabilities = np.asarray(mix, dtype=float)
        bit_rate = rng.choice(
            np.asarray(bit_rates), num_requests, p=probabilities / probabilities.sum()
        )
    return Traffic(arrival, holding, src, dst, bit_rate)
