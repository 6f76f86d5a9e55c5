"""Every AWS call's limits: the clients carry them, and a run keeps the worst case of one
delivery call in hand."""

from __future__ import annotations

from types import SimpleNamespace

import boto3
import pytest
from botocore.retries.standard import ExponentialBackoff

from poller.aws import DELIVERY_LIMITS, DESCRIBE_LIMITS, LISTING_LIMITS, CallLimits
from poller.poll import SAFETY_MARGIN_SECONDS
from poller.scope_clients import ScopeClients


@pytest.mark.parametrize("limits", [LISTING_LIMITS, DESCRIBE_LIMITS, DELIVERY_LIMITS])
def test_the_worst_case_counts_botocores_longest_backoff(limits: CallLimits) -> None:
    throttled = SimpleNamespace(is_throttling_error_from_context=lambda _context: True)
    backoff = ExponentialBackoff(random=lambda: 1.0, throttling_detector=throttled)
    waits = sum(
        backoff.delay_amount(SimpleNamespace(attempt_number=n, http_response=None))
        for n in range(1, limits.attempts)
    )
    tries = limits.attempts * (limits.connect_seconds + limits.read_seconds)
    retry_after = 5.0 * (limits.attempts - 1)  # x-amz-retry-after may add this much
    assert limits.worst_case_seconds == pytest.approx(tries + waits + retry_after)


def test_a_run_keeps_the_worst_delivery_or_describe_call_in_hand() -> None:
    assert DELIVERY_LIMITS.worst_case_seconds < SAFETY_MARGIN_SECONDS
    assert DESCRIBE_LIMITS.worst_case_seconds < SAFETY_MARGIN_SECONDS


def test_personalize_clients_carry_the_listing_and_describe_limits() -> None:
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name="us-east-1"
    )
    clients = ScopeClients("123456789012", "aws", "Reader", session)

    for client, limits in (
        (clients.personalize(None, None), LISTING_LIMITS),
        (clients.personalize(None, None, details=True), DESCRIBE_LIMITS),
    ):
        config = client.meta.config
        assert (config.connect_timeout, config.read_timeout) == (
            limits.connect_seconds,
            limits.read_seconds,
        )
        assert config.retries == {"mode": "standard", "total_max_attempts": limits.attempts}
