"""Grouping messages into batch calls within a service's count and size limits."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence


def batches(sizes: Sequence[int], max_entries: int, max_bytes: int) -> Iterator[list[int]]:
    """Indexes of the messages for each call, in order, each call within both limits."""
    current: list[int] = []
    size = 0
    for index, message_size in enumerate(sizes):
        if current and (len(current) == max_entries or size + message_size > max_bytes):
            yield current
            current, size = [], 0
        current.append(index)
        size += message_size
    if current:
        yield current
