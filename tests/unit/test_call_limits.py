"""Every AWS call's limits: the clients carry them, and a run keeps the worst case of one
delivery call in hand."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.retries.standard import (
    ExponentialBackoff,
    RetryContext,
    RetryEventAdapter,
    ThrottlingErrorDetector,
)

from poller.aws import (
    DELIVERY_LIMITS,
    DESCRIBE_LIMITS,
    LISTING_LIMITS,
    MAX_SCOPE_THREADS,
    CallLimits,
)
from poller.poll import SAFETY_MARGIN_SECONDS
from poller.scope_clients import ScopeClients


@pytest.mark.parametrize("limits", [LISTING_LIMITS, DESCRIBE_LIMITS, DELIVERY_LIMITS])
def test_the_worst_case_counts_botocores_longest_backoff(limits: CallLimits) -> None:
    # The longest waits: throttling (1 s base, not 50 ms), and jitter at its top.
    throttled = ThrottlingErrorDetector(RetryEventAdapter())
    backoff = ExponentialBackoff(random=lambda: 1.0, throttling_detector=throttled)
    throttling = {"Error": {"Code": "ThrottlingException"}}
    waits = sum(
        backoff.delay_amount(RetryContext(attempt_number=n, parsed_response=throttling))
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
        config: Any = client.meta.config  # botocore's stubs leave its settings out
        assert (config.connect_timeout, config.read_timeout) == (
            limits.connect_seconds,
            limits.read_seconds,
        )
        assert config.retries == {"mode": "standard", "total_max_attempts": limits.attempts}
        assert config.max_pool_connections == limits.connections


def test_every_listing_thread_has_a_connection_to_its_endpoint() -> None:
    # Every scope's listing client shares one pool, and the table is read from every
    # listing thread: a smaller pool would open and drop a connection per extra thread.
    assert LISTING_LIMITS.connections == MAX_SCOPE_THREADS
    assert DELIVERY_LIMITS.connections == MAX_SCOPE_THREADS
