from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

    from local.local_aws import LocalAws


SUITES = ("unit", "integration", "infra")  # tests/<suite>/: each a marker and a make target


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with its suite, from the folder it is in."""
    for item in items:
        suite = item.path.relative_to(item.config.rootpath).parts[1]
        if suite in SUITES:
            item.add_marker(suite)


@pytest.fixture(scope="session")
def local_aws() -> Iterator[LocalAws]:
    """One moto server and one Personalize emulator for the session, on loopback."""
    from local.local_aws import LocalAws  # noqa: PLC0415 -- moto's server: only where used

    with LocalAws() as aws, pytest.MonkeyPatch.context() as patch:
        for name, value in aws.environment().items():
            patch.setenv(name, value)
        patch.delenv("AWS_PROFILE", raising=False)
        assert os.environ["AWS_ENDPOINT_URL_PERSONALIZE"] == aws.personalize.endpoint
        yield aws
