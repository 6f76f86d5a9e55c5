from __future__ import annotations

import os
from collections import Counter
from typing import TYPE_CHECKING

import boto3
import pytest

from local.local_aws import LocalAws

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(scope="session")
def local_aws() -> Iterator[LocalAws]:
    """One moto server and one Personalize emulator for the session, on loopback."""
    with LocalAws() as aws, pytest.MonkeyPatch.context() as patch:
        for name, value in aws.environment().items():
            patch.setenv(name, value)
        patch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
        patch.setenv("POWERTOOLS_METRICS_NAMESPACE", "PersonalizeSegmentJobNotifierTest")
        patch.setenv("POWERTOOLS_SERVICE_NAME", "segment-job-notifier")
        patch.delenv("AWS_PROFILE", raising=False)
        assert os.environ["AWS_ENDPOINT_URL_PERSONALIZE"] == aws.personalize.endpoint
        yield aws


@pytest.fixture
def api_calls() -> Iterator[Counter[str]]:
    """HTTP requests per "service:Operation" made through boto3's default session.

    Counted at send time, so each retry of a throttled call counts too.
    """
    boto3.setup_default_session()
    calls: Counter[str] = Counter()

    def record(event_name: str, **_: object) -> None:
        _event, service, operation = event_name.split(".", 2)
        calls[f"{service}:{operation}"] += 1

    boto3.DEFAULT_SESSION.events.register("before-send", record)  # type: ignore[union-attr]
    yield calls
    boto3.DEFAULT_SESSION = None
