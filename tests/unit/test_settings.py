from __future__ import annotations

import pytest

from poller.errors import ConfigurationError
from poller.settings import Settings

TOPIC = "arn:aws:sns:us-east-1:123456789012:events"
BASE = {"SNAPSHOT_TABLE_NAME": "t", "TOPIC_ARN": TOPIC, "AWS_REGION": "us-east-1"}


def test_parses_environment() -> None:
    sv = "arn:aws:personalize:us-east-1:123456789012:solution/s/1"
    settings = Settings.from_env({**BASE, "SOLUTION_VERSION_ARNS": f" {sv} ,"})
    assert settings == Settings("t", TOPIC, "us-east-1", (sv,))


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TOPIC_ARN": TOPIC, "AWS_REGION": "r"}, "SNAPSHOT_TABLE_NAME is not set"),
        ({**BASE, "TOPIC_ARN": "events"}, "TOPIC_ARN is not an SNS topic ARN"),
        ({**BASE, "SOLUTION_VERSION_ARNS": "nope"}, "SOLUTION_VERSION_ARNS holds 'nope'"),
    ],
)
def test_rejects_bad_environment(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        Settings.from_env(env)
