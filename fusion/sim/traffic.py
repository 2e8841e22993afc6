"""Dynamic traffic: Poisson arrivals, exponential holding times, FUSION's bandwidth mix.

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
    mix: Sequence[float] = BANDWIDTH_MIX,
) -> Traffic:
    """Draw ``num_requests`` requests.

    Arrivals are Poisson at rate ``erlang / holding_time``; holding times exponential with
    mean ``holding_time``; source uniform, destination uniform among the other nodes.

    :param rng: The seed's traffic stream.
    :param num_requests: How many requests.
    :param num_nodes: Nodes of the topology.
    :param erlang: Offered load.
    :param holding_time: Mean holding time.
    :param bit_rates: The bit rates (Gbps) to draw from.
    :param mix: Their probabilities.
    """
    if num_nodes < 2:
        raise ValueError(f"traffic needs at least 2 nodes, got {num_nodes}")
    rate = erlang / holding_time
    arrival = np.cumsum(rng.exponential(1.0 / rate, num_requests))
    holding = rng.exponential(holding_time, num_requests)
    src = rng.integers(0, num_nodes, num_requests)
    dst = (src + rng.integers(1, num_nodes, num_requests)) % num_nodes
    probabilities = np.asarray(mix, dtype=float)
    bit_rate = rng.choice(
        np.asarray(bit_rates), num_requests, p=probabilities / probabilities.sum()
    )
    return Traffic(arrival, holding, src, dst, bit_rate)
