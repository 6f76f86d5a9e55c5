"""Lambda entry point: Powertools wiring around one call to poll()."""

from __future__ import annotations

import os
import time
from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.shared.functions import strtobool

from job_events.arns import arn_part
from poller import wiring
from poller.catch_up import LambdaCatchUp, catch_up_keys
from poller.personalize_source import PersonalizeJobSource
from poller.poll import poll
from poller.report import add_metrics, raise_on_failure, summary
from poller.settings import Settings

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from aws_lambda_powertools.utilities.typing import LambdaContext

    from poller.delivery import Channel
    from poller.discovery import StackSetAccounts
    from poller.personalize_source import PersonalizeJobSource
    from poller.snapshot_store import DynamoSnapshotStore

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
) -> tuple[PersonalizeJobSource, DynamoSnapshotStore, Sequence[Channel]]:
    # Built once per container so clients, credentials and connections are reused.
    return wiring.adapters(settings(), own_account, partition)


@cache
def discovery() -> StackSetAccounts | None:
    # One per container: its answer is cached between runs (poller.discovery).
    return wiring.discovery(settings())


@cache
def catch_up_runs(function_arn: str) -> LambdaCatchUp:
    return wiring.catch_up(function_arn)


@logger.inject_lambda_context(clear_state=True)
@traced
@metrics.log_metrics
def handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    """Every invocation is one poll.

    The schedule sends an EventBridge "Scheduled Event"; a manual test invoke with any
    payload does the same scheduled poll. Only the poller's own catch-up event
    ({"catchUp": [scope key, ...]}) differs: it lists those scopes, with all the function's
    time.
    """
    started = time.monotonic()
    config = settings()
    # The function's own ARN says which account and partition it runs in.
    own_account = arn_part(context.invoked_function_arn, 4) or ""
    partition = arn_part(context.invoked_function_arn, 1) or "aws"
    run = wiring.poll_run(
        config,
        own_account,
        context.aws_request_id,
        time_left=lambda: context.get_remaining_time_in_millis() / 1000,
        catch_up=catch_up_keys(event),
        members=discovery(),
    )
    result = poll(*adapters(own_account, partition), run)
    add_metrics(metrics, result, (time.monotonic() - started) * 1000)
    told = summary(result)
    logger.info("poll finished", extra=told)
    if result.catch_up:
        catch_up_runs(context.invoked_function_arn).start(result.catch_up)
    raise_on_failure(result, {scope.place for scope in run.scopes})
    return told
