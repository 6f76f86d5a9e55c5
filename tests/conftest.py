from __future__ import annotations

import os
from typing import TYPE_CHECKING

import boto3
import pytest

from local.local_aws import LocalAws
from local.requests_counter import count_requests

if TYPE_CHECKING:
    from collections import Counter
    from collections.abc import Iterator


@pytest.fixture(scope="session")
def local_aws() -> Iterator[LocalAws]:
    """One moto server and one Personalize emulator for the session, on loopback."""
    with LocalAws() as aws, pytest.MonkeyPatch.context() as patch:
        for name, value in aws.environment().items():
            patch.setenv(name, value)
        patch.delenv("AWS_PROFILE", raising=False)
        assert os.environ["AWS_ENDPOINT_URL_PERSONALIZE"] == aws.personalize.endpoint
        yield aws


@pytest.fixture
def api_calls() -> Iterator[Counter[str]]:
    """HTTP requests per "service:Operation" made through boto3's default session."""
    boto3.setup_default_session()
    assert boto3.DEFAULT_SESSION is not None
    yield count_requests(boto3.DEFAULT_SESSION)
    boto3.DEFAULT_SESSION = None
