from __future__ import annotations

from poller.channels.batching import batches
from poller.channels.sns import BATCH_MAX_BYTES, BATCH_MAX_ENTRIES


def test_at_most_ten_per_batch() -> None:
    groups = list(batches([100] * 25, BATCH_MAX_ENTRIES, BATCH_MAX_BYTES))
    assert [len(g) for g in groups] == [10, 10, 5]
    assert [i for g in groups for i in g] == list(range(25))


def test_aggregate_size_stays_under_the_limit() -> None:
    sizes = [200_000, 100_000, 50_000, 50_000, 255_000]
    groups = list(batches(sizes, BATCH_MAX_ENTRIES, BATCH_MAX_BYTES))
    assert groups == [[0], [1, 2, 3], [4]]
    assert all(sum(sizes[i] for i in g) <= BATCH_MAX_BYTES for g in groups)
