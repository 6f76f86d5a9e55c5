from __future__ import annotations

import os
from typing import TYPE_CHECKING

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
        patch.delenv("AWS_PROFILE", raising=False)
        assert os.environ["AWS_ENDPOINT_URL_PERSONALIZE"] == aws.personalize.endpoint
        yield aws
