"""One poll: list jobs, diff against the snapshot, publish transitions, then record them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger

from poller.core import diff, latest_per_job
from poller.rendering import EventContext, publish_entry
from poller.snapshot_store import RecordConflictError

if TYPE_CHECKING:
    from datetime import datetime

    from poller.models import Transition
    from poller.personalize_source import JobSource
    from poller.snapshot_store import SnapshotStore
    from poller.sns_publisher import SnsPublisher

logger = Logger(child=True)


@dataclass(slots=True)
class PollResult:
    first_run: bool = False
    jobs_seen: int = 0
    jobs_without_arn: int = 0
    transitions: list[Transition] = field(default_factory=list)
    published: int = 0
    publish_failures: int = 0
    record_conflicts: int = 0


def poll(
    source: JobSource,
    store: SnapshotStore,
    publisher: SnsPublisher,
    region: str,
    now: datetime,
) -> PollResult:
    """Run one poll and report what happened; the caller fails the run if a publish failed.

    Publishing comes before recording, so a failed publish leaves the job's snapshot as it
    was and the next poll sends it again: nothing is lost, and a duplicate is only
    possible after a failure.
    """
    jobs = source.list_jobs()
    # Listing completes before anything is read or written: a partial list never diffs.
    latest = latest_per_job(jobs)
    result = PollResult(
        jobs_seen=len(latest), jobs_without_arn=len(jobs) - sum(1 for j in jobs if j.arn)
    )
    if result.jobs_without_arn:
        logger.warning(
            "job summaries without an ARN cannot be tracked",
            extra={"count": result.jobs_without_arn},
        )

    snapshot = store.load()
    if snapshot is None:
        store.record_baseline(latest.values(), now)
        result.first_run = True
        logger.info(
            "first run: recorded existing jobs without notifying", extra={"jobs": len(latest)}
        )
        return result

    result.transitions = diff(snapshot, latest.values())
    context = EventContext(region=region, detected_at=now)
    entries = [publish_entry(t, context) for t in result.transitions]
    failed = publisher.publish(entries)

    for index, transition in enumerate(result.transitions):
        job_log = {"batch_segment_job_arn": transition.job.arn, "event_type": transition.event_type}
        if index in failed:
            result.publish_failures += 1
            logger.error(
                "publish failed; snapshot left unchanged", extra={**job_log, "error": failed[index]}
            )
            continue
        result.published += 1
        try:
            store.record(transition.job, transition.previous_status, now)
        except RecordConflictError:
            result.record_conflicts += 1
            logger.warning(
                "snapshot changed under this poll; another poll recorded the job", extra=job_log
            )
        logger.info(
            "published transition",
            extra={
                **job_log,
                "previous_status": transition.previous_status,
                "status": transition.job.status,
            },
        )
    return result
