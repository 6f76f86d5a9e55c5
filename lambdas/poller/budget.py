"""The run's time: what is left before the deadline, and what each kind of call costs.

Every phase of a poll asks before it spends: a phase goes ahead only if its estimated cost
fits in what is left, less a safety margin for finishing up. Costs are learnt from the
calls this run has made (an average per kind), starting from a cautious prior.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

# Seconds per call before the run has measured one.
PRIOR_COST = {
    "list": 0.5,
    "describe": 0.3,
    "write": 0.1,  # one conditional UpdateItem: a claim, record or release
    "write-batch": 0.2,  # one BatchWriteItem of baseline records
    "publish": 0.3,  # one channel's share of a chunk: PublishBatch or PutEvents
}


class Budget:
    def __init__(self, time_left: Callable[[], float], safety: float) -> None:
        self._time_left = time_left
        self._safety = safety
        self._spent: dict[str, float] = {}
        self._calls: dict[str, int] = {}

    def remaining(self) -> float:
        """Seconds that may still be spent, the safety margin already taken off."""
        return self._time_left() - self._safety

    def allows(self, seconds: float) -> bool:
        return self.remaining() > seconds

    def cost(self, kind: str, calls: int = 1) -> float:
        made = self._calls.get(kind, 0)
        each = self._spent[kind] / made if made else PRIOR_COST[kind]
        return each * calls

    @contextmanager
    def measure(self, kind: str, calls: int = 1) -> Iterator[None]:
        before = self._time_left()
        try:
            yield
        finally:
            self.note(kind, before - self._time_left(), calls)

    def note(self, kind: str, seconds: float, calls: int) -> None:
        """What `calls` calls of a kind took in all."""
        self._spent[kind] = self._spent.get(kind, 0.0) + max(seconds, 0.0)
        self._calls[kind] = self._calls.get(kind, 0) + calls
