"""Where the simulator's transitions go: the :class:`TransitionWriter` protocol.

The engine knows nothing of files: it builds a transition and calls ``log_transition``, and at
the end ``record_summary``; whoever runs it closes the writer.
:class:`~fusion.storage.shard_writer.DatasetLogger` is the writer of shards;
:class:`InMemoryWriter` keeps the records in a list, for tests and for callers that want the
transitions without a dataset (as EnvLogger ships an in-memory backend).

    >>> writer = InMemoryWriter(seed=3)
    >>> writer.log_transition({"src": 0, "dst": 1, "paths": []}, -1, -1.0, None, [], {})
    >>> writer.records[0]["t"], writer.records[0]["seed"]
    (0, 3)
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class TransitionWriter(Protocol):
    """What the engine writes transitions to."""

    def log_transition(
        self,
        state: Mapping[str, Any],
        action: int,
        reward: float,
        next_state: Mapping[str, Any] | None,
        action_mask: Sequence[bool],
        meta: Mapping[str, Any],
    ) -> None:
        """Record one decision (see the schema in :mod:`fusion.storage.schema`)."""
        ...

    def record_summary(self, stats: Mapping[str, Any]) -> None:
        """Record the run's summary stats (plain JSON values)."""
        ...

    def close(self, error: BaseException | None = None) -> None:
        """Finish; ``error`` says the run ended by an exception."""
        ...


class InMemoryWriter:
    """A :class:`TransitionWriter` that keeps each transition as the record a shard would hold.

    :param seed: The ``seed`` written into every record.
    """

    def __init__(self, seed: int | None = None) -> None:
        self.seed = seed
        self.records: list[dict[str, Any]] = []
        self.summary: dict[str, Any] = {}
        self.closed = False
        self.error: BaseException | None = None

    def log_transition(
        self,
        state: Mapping[str, Any],
        action: int,
        reward: float,
        next_state: Mapping[str, Any] | None,
        action_mask: Sequence[bool],
        meta: Mapping[str, Any],
    ) -> None:
        """Keep one transition (copied: the caller may reuse its dicts)."""
        if self.closed:
            raise ValueError("log_transition on a closed InMemoryWriter")
        self.records.append(
            {
                "t": len(self.records),
                "seed": self.seed,
                "state": copy.deepcopy(dict(state)),
                "action": action,
                "reward": reward,
                "next_state": None if next_state is None else copy.deepcopy(dict(next_state)),
                "action_mask": list(action_mask),
                "meta": dict(meta),
            }
        )

    def record_summary(self, stats: Mapping[str, Any]) -> None:
        """Keep the summary stats."""
        self.summary.update(stats)

    def close(self, error: BaseException | None = None) -> None:
        """Mark closed (closing twice is harmless)."""
        self.closed = True
        self.error = error
