"""Lambda entry point: Powertools wiring around one call to poll()."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.shared.functions import strtobool

from job_events.arns import arn_part
from poller.personalize_source import PersonalizeJobSource
from poller.poll import Channels, PollRun, poll
from poller.report import add_metrics, raise_on_failure, summary
from poller.scope_clients import ScopeClients
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
def adapters(
    own_account: str, partition: str
) -> tuple[PersonalizeJobSource, DynamoSnapshotStore, Channels]:
    # Built once per container so clients, credentials and connections are reused.
    config = settings()
    clients = ScopeClients(own_account, partition, config.member_role_name)
    return (
        PersonalizeJobSource(clients),
        DynamoSnapshotStore(config.table_name),
        channels(config),
    )


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
    # The function's own ARN says which account and partition it runs in.
    own_account = arn_part(context.invoked_function_arn, 4) or ""
    partition = arn_part(context.invoked_function_arn, 1) or "aws"
    scopes = config.scopes(own_account)
    run = PollRun(
        region=config.region,
        now=datetime.now(UTC),
        run_id=context.aws_request_id,
        stuck_after=config.stuck_after,
        time_left=lambda: context.get_remaining_time_in_millis() / 1000,
        clock=time.time,
        scopes=scopes,
        storm_threshold=config.storm_threshold,
    )
    result = poll(*adapters(own_account, partition), run)
    add_metrics(metrics, result, (time.monotonic() - started) * 1000)
    told = summary(result)
    logger.info("poll finished", extra=told)
    raise_on_failure(result, len(scopes))
    return told
