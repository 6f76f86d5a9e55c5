"""Lambda entry point: Powertools wiring around one call to poll()."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.shared.functions import strtobool

from poller.errors import PublishFailedError, SnapshotError
from poller.personalize_source import PersonalizeJobSource
from poller.poll import Channels, PollRun, poll
from poller.settings import Settings
from poller.snapshot_store import DynamoSnapshotStore
from poller.wiring import channels

if TYPE_CHECKING:
    from collections.abc import Callable

    from aws_lambda_powertools.utilities.typing import LambdaContext

    Handler = Callable[[Any, LambdaContext], dict[str, Any]]

logger = Logger()
metrics = Metrics()


def traced(function: Handler) -> Handler:
    """X-Ray tracing when enabled. Creating a Tracer imports the X-Ray SDK (about 150 ms of
    cold start), so with tracing off it is never created."""
    if strtobool(os.environ.get("POWERTOOLS_TRACE_DISABLED", "false")):
        return function
    traced_function: Handler = Tracer().capture_lambda_handler(function)
    return traced_function


@cache
def settings() -> Settings:
    return Settings.from_env(os.environ)


@cache
def adapters() -> tuple[PersonalizeJobSource, DynamoSnapshotStore, Channels]:
    # Built once per container so clients and connections are reused across invocations.
    config = settings()
    return PersonalizeJobSource(), DynamoSnapshotStore(config.table_name), channels(config)


@logger.inject_lambda_context(clear_state=True)
@traced
@metrics.log_metrics
def handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    """Every invocation is one full poll; the event's content is not used.

    The schedule sends an EventBridge "Scheduled Event"; a manual test invoke with any
    payload does the same normal poll.
    """
    started = time.monotonic()
    config = settings()
    run = PollRun(
        region=config.region,
        now=datetime.now(UTC),
        run_id=context.aws_request_id,
        stuck_after=config.stuck_after,
        time_left=lambda: context.get_remaining_time_in_millis() / 1000,
        clock=time.time,
        scopes=config.scopes,
        storm_threshold=config.storm_threshold,
    )
    result = poll(*adapters(), run)

    for name, value in (
        ("JobsSeen", result.jobs_seen),
        ("JobsChecked", result.jobs_checked),
        ("Pages", result.pages),
        ("Transitions", len(result.transitions)),
        ("StuckJobs", result.stuck),
        ("Published", result.published),
        ("PublishFailures", result.publish_failures),
        ("RecordFailures", result.record_failures),
        ("TransitionsDeferred", result.deferred),
        ("EnrichmentDropped", result.enrichment_dropped),
        ("SummariesSkipped", sum(result.skipped.values())),
        ("ListingIncomplete", int(not result.listing_complete)),
        ("BaselinePolls", result.baseline_polls),
    ):
        metrics.add_metric(name, MetricUnit.Count, value)
    metrics.add_metric("PollDuration", MetricUnit.Milliseconds, (time.monotonic() - started) * 1000)
    summary = {
        "firstRun": result.first_run,
        "jobsSeen": result.jobs_seen,
        "pages": result.pages,
        "fullReconcile": result.full_read,
        "jobsChecked": result.jobs_checked,
        "listingComplete": result.listing_complete,
        "transitions": len(result.transitions),
        "published": result.published,
        "publishFailures": result.publish_failures,
        "recordFailures": result.record_failures,
        "claimsLost": result.claims_lost,
        "deferred": result.deferred,
        "enrichmentDropped": result.enrichment_dropped,
        "skipped": {outcome.value: count for outcome, count in result.skipped.items()},
        "baselinePolls": result.baseline_polls,
        "storm": result.storm,
    }
    logger.info("poll finished", extra=summary)
    # Fail the invocation so the Errors metric and its alarm see it.
    if result.publish_failures:
        raise PublishFailedError(result.publish_failures, len(result.transitions))
    if result.record_failures:
        raise SnapshotError(
            f"{result.record_failures} transitions could not be claimed or recorded; "
            "they are sent by a later poll"
        )
    # The heartbeat counts only polls that finished their work: everything listed,
    # nothing deferred, nothing lost to another poll.
    if result.clean:
        metrics.add_metric("PollSucceeded", MetricUnit.Count, 1)
    return summary
