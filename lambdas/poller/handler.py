"""Lambda entry point: Powertools wiring around one call to poll()."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from poller.errors import PublishFailedError
from poller.personalize_source import JobSource
from poller.poll import poll
from poller.settings import Settings
from poller.snapshot_store import SnapshotStore
from poller.sns_publisher import SnsPublisher

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
tracer = Tracer()
metrics = Metrics()


@cache
def settings() -> Settings:
    return Settings.from_env(os.environ)


@cache
def adapters() -> tuple[JobSource, SnapshotStore, SnsPublisher]:
    # Built once per container so clients and connections are reused across invocations.
    config = settings()
    return (
        JobSource(config.solution_version_arns),
        SnapshotStore(config.table_name),
        SnsPublisher(config.topic_arn),
    )


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Any event starts a normal poll: the schedule's payload carries nothing we need."""
    config = settings()
    source, store, publisher = adapters()
    result = poll(source, store, publisher, config.region, datetime.now(UTC))

    metrics.add_metric("JobsSeen", MetricUnit.Count, result.jobs_seen)
    metrics.add_metric("Pages", MetricUnit.Count, source.pages)
    metrics.add_metric("Transitions", MetricUnit.Count, len(result.transitions))
    metrics.add_metric("Published", MetricUnit.Count, result.published)
    metrics.add_metric("PublishFailures", MetricUnit.Count, result.publish_failures)
    summary = {
        "firstRun": result.first_run,
        "jobsSeen": result.jobs_seen,
        "pages": source.pages,
        "transitions": len(result.transitions),
        "published": result.published,
        "publishFailures": result.publish_failures,
    }
    logger.info("poll finished", extra=summary)
    if result.publish_failures:
        # Fail the invocation so the Errors metric and its alarm see it.
        raise PublishFailedError(result.publish_failures, len(result.transitions))
    return summary
