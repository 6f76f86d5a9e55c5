"""Count the HTTP requests a boto3 session sends, per "service:Operation"."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from boto3.session import Session


def count_requests(session: Session) -> Counter[str]:
    """A live counter, fed at send time: each retry of a throttled call counts too."""
    counts: Counter[str] = Counter()

    def record(event_name: str, **_: object) -> None:
        _event, service, operation = event_name.split(".", 2)
        counts[f"{service}:{operation}"] += 1

    session.events.register("before-send", record)
    return counts
