from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from infra.config import ConfigError, NotifierConfig

ROOT = Path(__file__).resolve().parents[2]


def config(**context: Any) -> NotifierConfig:
    return NotifierConfig.from_context(context.get)


def test_defaults() -> None:
    default = config()
    assert default.schedule_minutes == 5
    assert default.notify_emails == ()
    assert default.timeout_seconds == 240


def test_lists_accept_commas_and_lists() -> None:
    assert config(notifyEmails="a@x.com, b@y.org").notify_emails == ("a@x.com", "b@y.org")
    assert config(notifyEmails=["a@x.com"]).notify_emails == ("a@x.com",)


@pytest.mark.parametrize(
    ("context", "named"),
    [
        ({"scheduleMinutes": "0"}, "scheduleMinutes"),
        ({"scheduleMinutes": "five"}, "scheduleMinutes"),
        ({"notifyEmails": "not-an-email"}, "notifyEmails"),
        ({"solutionVersionArns": "arn:aws:s3:::bucket"}, "solutionVersionArns"),
        ({"logLevel": "LOUD"}, "logLevel"),
        ({"tracing": "maybe"}, "tracing"),
        ({"logRetentionDays": "8"}, "logRetentionDays"),
        ({"notifyEmails": 42}, "notifyEmails"),
    ],
)
def test_bad_values_name_the_setting(context: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        config(**context)


def test_reserved_concurrency_is_opt_in() -> None:
    assert config().reserved_concurrency is None
    assert config(reservedConcurrency="1").reserved_concurrency == 1
    assert config(reservedConcurrency=5).reserved_concurrency == 5


@pytest.mark.parametrize("raw", ["0", "-1", "one", "1.5"])
def test_reserved_concurrency_must_be_a_positive_whole_number(raw: str) -> None:
    with pytest.raises(ConfigError, match="reservedConcurrency"):
        config(reservedConcurrency=raw)


def test_schedule_accepts_the_documented_range() -> None:
    assert config(scheduleMinutes="1440").schedule_minutes == 1440
    with pytest.raises(ConfigError, match="scheduleMinutes"):
        config(scheduleMinutes="1441")


def test_timeout_is_shorter_than_the_period() -> None:
    for minutes in (1, 5, 60, 1440):
        assert config(scheduleMinutes=minutes).timeout_seconds < minutes * 60


def test_synth_fails_with_a_message_naming_the_value(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "app.py"],
        cwd=ROOT,
        env={
            **os.environ,
            "CDK_OUTDIR": str(tmp_path),
            "CDK_CONTEXT_JSON": '{"notifyEmails": "bob"}',
            "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20,22",
        },
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode != 0
    assert "notifyEmails: 'bob' is not an email address" in result.stderr


@pytest.mark.parametrize(
    ("context", "named"),
    [
        ({"slackWorkspaceId": "T0123"}, "slackWorkspaceId and slackChannelId"),
        ({"slackWorkspaceId": "t-lower", "slackChannelId": "C1"}, "slackWorkspaceId"),
        ({"slackWorkspaceId": "T1", "slackChannelId": "#general"}, "slackChannelId"),
        ({"emailEventTypes": "JOB_FAILED,JOB_EXPLODED"}, "emailEventTypes"),
        ({"emailEventTypes": ""}, "emailEventTypes"),
    ],
)
def test_channel_settings_are_validated(context: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        config(**context)
