"""Blocking figures: the engine's counters, and the one per-window summary every count goes
through (the engine's own, and the shard writer's tally of what it logged).

    >>> stats = RunStats(num_requests=4)
    >>> for i, routed in enumerate([True, False, True, True]):
    ...     stats.arrival(i, float(i), "pre", 100, routed, reachable=True)
    >>> summary = stats.summary()
    >>> summary["blocking_probability"], summary["per_window"]["pre"]
    (0.25, {'requests': 4, 'blocked': 1, 'blocking_probability': 0.25})
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

#: How many points ``bp_timeline`` holds (blocking per bucket of arrivals).
TIMELINE_BUCKETS = 100


def blocking_probability(requests: int, blocked: int) -> float:
    """``blocked / requests``, 0.0 when there were no requests.

    :param requests: Requests counted.
    :param blocked: Those blocked.
    """
    return blocked / requests if requests else 0.0


def per_window(counts: Mapping[str, Sequence[int]]) -> dict[str, dict[str, Any]]:
    """Per window tag: ``requests``, ``blocked`` and ``blocking_probability``, tags sorted.

    :param counts: Tag -> ``(requests, blocked)``.

        >>> per_window({"pre": (4, 1)})
        {'pre': {'requests': 4, 'blocked': 1, 'blocking_probability': 0.25}}
    """
    return {
        tag: {"requests": n, "blocked": b, "blocking_probability": blocking_probability(n, b)}
        for tag, (n, b) in sorted(counts.items())
    }


class RunStats:
    """The counters the engine keeps while it runs.

    :param num_requests: Requests the run will make (sets the timeline's bucket).
    """

    def __init__(self, num_requests: int) -> None:
        self.requests = 0
        self.blocked = 0
        self.blocked_by_reach = 0
        self.windows: dict[str, list[int]] = {}
        self.rates: dict[int, list[int]] = {}
        self.restored = 0
        self.dropped = 0
        self.bucket = max(1, num_requests // TIMELINE_BUCKETS)
        self.timeline: list[list[float]] = []
        self._bucket_blocked = 0

    def arrival(
        self, request: int, when: float, tag: str, rate: int, routed: bool, reachable: bool
    ) -> None:
        """Count one decided arrival.

        :param request: Its index.
        :param when: Its arrival time.
        :param tag: Its window (``pre``, ``fail``, ``post``).
        :param rate: Its bit rate.
        :param routed: Whether it was routed.
        :param reachable: Whether a modulation format reaches on some candidate path.
        """
        self.requests += 1
        window = self.windows.get(tag)  # (setdefault would build a list every call)
        if window is None:
            window = self.windows[tag] = [0, 0]
        by_rate = self.rates.get(rate)
        if by_rate is None:
            by_rate = self.rates[rate] = [0, 0]
        window[0] += 1
        by_rate[0] += 1
        if not routed:
            self.blocked += 1
            window[1] += 1
            by_rate[1] += 1
            self._bucket_blocked += 1
            if not reachable:
                self.blocked_by_reach += 1
        if (request + 1) % self.bucket == 0:
            self.timeline.append([when, self._bucket_blocked / self.bucket])
            self._bucket_blocked = 0

    def summary(self) -> dict[str, Any]:
        """Blocking overall, per window (:func:`per_window`) and per bit rate, failure counts."""
        return {
            "requests": self.requests,
            "blocked": self.blocked,
            "blocking_probability": blocking_probability(self.requests, self.blocked),
            "blocked_by_reach": self.blocked_by_reach,
            "per_window": per_window(self.windows),
            "bp_per_bit_rate": {
                str(rate): blocking_probability(*c) for rate, c in sorted(self.rates.items())
            },
            "restored_on_failure": self.restored,
            "dropped_on_failure": self.dropped,
            "bp_timeline": self.timeline,
        }
