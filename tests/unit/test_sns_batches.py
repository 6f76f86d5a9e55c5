from __future__ import annotations

from poller.rendering import PublishEntry
from poller.sns_publisher import BATCH_MAX_BYTES, batches


def entry(size: int) -> PublishEntry:
    return PublishEntry(subject="s", message="x" * (size - 1), attributes={}, event_json="{}")


def test_at_most_ten_per_batch() -> None:
    groups = list(batches([entry(100)] * 25))
    assert [len(g) for g in groups] == [10, 10, 5]
    assert [i for g in groups for i in g] == list(range(25))


def test_aggregate_size_stays_under_the_limit() -> None:
    sizes = [200_000, 100_000, 50_000, 50_000, 255_000]
    entries = [entry(s) for s in sizes]
    groups = list(batches(entries))
    assert groups == [[0], [1, 2, 3], [4]]
    assert all(sum(entries[i].size for i in g) <= BATCH_MAX_BYTES for g in groups)
