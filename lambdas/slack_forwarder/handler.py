"""Lambda entry point: forwards notifications from the people topic to a Slack webhook."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities import parameters

from job_events.event import JobDigest, JobEvent, parse
from job_events.vocabulary import DIGEST_EVENT_TYPE
from slack_forwarder.blocks import message
from slack_forwarder.webhook import WebhookRevokedError, post

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
metrics = Metrics()
SECRET_ENV = "WEBHOOK_SECRET_NAME"  # noqa: S105 - the variable holding the secret's name
# Seconds a fetched URL is reused: a rotated secret applies within this, or at once when
# Slack revokes the cached URL (the handler then reads the secret again).
SECRET_MAX_AGE = 300
TIMEOUT_ENV = "WEBHOOK_TIMEOUT_SECONDS"


def webhook_url(*, force_fetch: bool = False) -> str:
    """The URL lives in Secrets Manager, never in the environment or the template.
    force_fetch reads the secret even while its cached value is fresh, and caches it."""
    secret = parameters.get_secret(
        os.environ[SECRET_ENV], max_age=SECRET_MAX_AGE, force_fetch=force_fetch
    )
    url = str(secret).strip()
    if url.startswith("{"):
        url = str(json.loads(url)["url"])  # also accept {"url": "..."}
    return url


def _log_fields(announcement: JobEvent | JobDigest) -> dict[str, str | None]:
    if isinstance(announcement, JobDigest):
        return {"event_type": DIGEST_EVENT_TYPE}
    return {
        "batch_segment_job_arn": announcement.batch_segment_job_arn,
        "event_type": announcement.event_type.value,
    }


def _post(url: str, payload: dict[str, Any], context: LambdaContext) -> int:
    return post(
        url,
        payload,
        timeout=float(os.environ.get(TIMEOUT_ENV, "10")),
        time_left=lambda: context.get_remaining_time_in_millis() / 1000,
    )


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, int]:
    """Each SNS record becomes one Slack message. A failure raises, so Lambda retries the
    invocation and then keeps it in the dead-letter queue: nothing is dropped."""
    url = webhook_url()
    sent = 0
    for record in event.get("Records", []):
        # A small typed parse rather than Powertools' parser: pydantic would about double
        # this function's cold start for two flat documents.
        announcement = parse(json.loads(record["Sns"]["Message"]))
        payload = message(announcement)
        try:
            attempts = _post(url, payload, context)
        except WebhookRevokedError as revoked:
            # The cached URL may predate a rotation of the secret: Lambda's retries would
            # reuse it, so read the secret now and try its URL once. Unchanged, it fails.
            rotated = webhook_url(force_fetch=True)
            if rotated == url:
                raise
            logger.warning(
                "Slack revoked the cached webhook URL: posting to the secret's current one",
                extra={**_log_fields(announcement), "rejection": str(revoked)},
            )
            url = rotated
            attempts = _post(url, payload, context)
        sent += 1
        logger.info(
            "posted to Slack",
            extra={**_log_fields(announcement), "attempts": attempts},
        )
    metrics.add_metric("SlackMessagesPosted", MetricUnit.Count, sent)
    return {"posted": sent}
