"""The run's time: what is left before the deadline, and what each kind of call costs.

Every phase of a poll asks before it spends: a phase goes ahead only if its estimated cost
fits in what is left, less a safety margin for finishing up. Costs are learnt from the
calls this run has made (an average per kind), starting from a cautious prior.
"""

from __future__ import annotations

from contextlib import contextmanager
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator


class Cost(StrEnum):
    """The kinds of call a run spends its time on."""

    LIST = "list"  # one ListBatchSegmentJobs page
    DESCRIBE = "describe"
    WRITE = "write"  # one conditional UpdateItem: a claim, record or release
    WRITE_BATCH = "write-batch"  # one BatchWriteItem of baseline records
    PUBLISH = "publish"  # one channel's share of a chunk: PublishBatch or PutEvents


# Seconds per call before the run has measured one.
PRIOR_COST = {
    Cost.LIST: 0.5,
    Cost.DESCRIBE: 0.3,
    Cost.WRITE: 0.1,
    Cost.WRITE_BATCH: 0.2,
    Cost.PUBLISH: 0.3,
}


class Budget:
    def __init__(self, time_left: Callable[[], float], safety: float) -> None:
        self._time_left = time_left
        self._safety = safety
        self._spent: dict[Cost, float] = {}
        self._calls: dict[Cost, int] = {}

    def remaining(self) -> float:
        """Seconds that may still be spent, the safety margin already taken off."""
        return self._time_left() - self._safety

    def allows(self, seconds: float) -> bool:
        return self.remaining() > seconds

    def cost(self, kind: Cost, calls: int = 1) -> float:
        made = self._calls.get(kind, 0)
        each = self._spent[kind] / made if made else PRIOR_COST[kind]
        return each * calls

    @contextmanager
    def measure(self, kind: Cost, calls: int = 1) -> Iterator[None]:
        before = self._time_left()
        try:
            yield
        finally:
            self.note(kind, before - self._time_left(), calls)

    def note(self, kind: Cost, seconds: float, calls: int) -> None:
        """What `calls` calls of a kind took in all."""
        self._spent[kind] = self._spent.get(kind, 0.0) + max(seconds, 0.0)
        self._calls[kind] = self._calls.get(kind, 0) + calls
