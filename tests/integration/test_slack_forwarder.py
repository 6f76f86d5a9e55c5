"""The Slack webhook forwarder against a local HTTP server standing in for Slack, with the
webhook URL in (moto's) Secrets Manager."""

from __future__ import annotations

import importlib
import json
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS

from local.lambda_context import LocalLambdaContext
from local.serving import serve_in_background
from slack_forwarder.webhook import (
    REVOKED_URL_STATUSES,
    WebhookRejectedError,
    WebhookRevokedError,
    WebhookUnavailableError,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from local.local_aws import LocalAws

SECRET = "personalize-notifier/slack-webhook"


class FakeSlack:
    """Answers each POST with the next scripted (status, headers, delay); records bodies.
    Once revoked, answers every POST with the revoking status, as Slack does a dead URL."""

    def __init__(self) -> None:
        self.script: list[tuple[int, dict[str, str], float]] = []
        self.bodies: list[dict[str, Any]] = []
        self.revoked_with: int | None = None
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                fake.bodies.append(json.loads(body))
                status, headers, delay = fake.script.pop(0) if fake.script else (200, {}, 0.0)
                status = fake.revoked_with or status
                if delay:  # (the retry test records the poster's sleeps, not these)
                    time.sleep(delay)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(b"ok" if status == 200 else b"invalid_payload")

            def log_message(self, *args: Any) -> None:
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        serve_in_background(self.server)
        self.url = f"http://127.0.0.1:{self.server.server_port}/services/T000/B000/XXXX"


@pytest.fixture
def secret_reads(local_aws: LocalAws, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The secret id of each GetSecretValue request the forwarder sends. Its secrets
    provider is a new container's (nothing cached), the one get_secret would create; the
    invocations of a test share it, as a warm container does."""
    reads: list[str] = []
    client = boto3.session.Session().client("secretsmanager")
    client.meta.events.register(
        "provide-client-params.secrets-manager.GetSecretValue",
        lambda params, **_: reads.append(params["SecretId"]),
    )
    monkeypatch.setitem(DEFAULT_PROVIDERS, "secrets", SecretsProvider(boto3_client=client))
    return reads


@pytest.fixture
def slack(
    local_aws: LocalAws, secret_reads: list[str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeSlack]:
    local_aws.reset()
    fake = FakeSlack()
    boto3.session.Session().client("secretsmanager").create_secret(
        Name=SECRET, SecretString=fake.url
    )
    monkeypatch.setenv("WEBHOOK_SECRET_NAME", SECRET)
    monkeypatch.setenv("WEBHOOK_TIMEOUT_SECONDS", "0.5")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Test")
    yield fake
    fake.server.shutdown()


@pytest.fixture
def rotated_slack() -> Iterator[FakeSlack]:
    """The webhook a rotation of the secret points to."""
    fake = FakeSlack()
    yield fake
    fake.server.shutdown()


def rotate_secret(url: str) -> None:
    boto3.session.Session().client("secretsmanager").put_secret_value(
        SecretId=SECRET, SecretString=url
    )


EVENT = {
    "schemaVersion": "1",
    "eventType": "JOB_FAILED",
    "batchSegmentJobArn": "arn:aws:personalize:us-east-1:123456789012:batch-segment-job/j",
    "jobName": "j",
    "solutionVersionArn": None,
    "previousStatus": "IN PROGRESS",
    "status": "CREATE FAILED",
    "failureReason": "bad <input> & more",
    "consoleUrl": "https://us-east-1.console.aws.amazon.com/personalize/home?region=us-east-1",
    "region": "us-east-1",
    "accountId": "123456789012",
    "detectedAt": "2026-11-28T21:50:02+00:00",
}


def invoke(*documents: dict[str, Any]) -> dict[str, int]:
    handler = importlib.import_module("slack_forwarder.handler")
    event = {"Records": [{"Sns": {"Message": json.dumps(d)}} for d in documents]}
    result: dict[str, int] = handler.handler(event, LocalLambdaContext())
    return result


def test_posts_block_kit(slack: FakeSlack) -> None:
    assert invoke(EVENT) == {"posted": 1}
    (body,) = slack.bodies
    assert body["text"] == "FAILED: j (CREATE FAILED)"
    assert body["blocks"][0]["text"]["text"] == ":x: FAILED: j"
    assert "bad &lt;input&gt; &amp; more" in json.dumps(body["blocks"])


def test_honours_retry_after(slack: FakeSlack, monkeypatch: pytest.MonkeyPatch) -> None:
    slack.script = [(429, {"Retry-After": "3"}, 0.0), (200, {}, 0.0)]
    waits: list[float] = []
    monkeypatch.setattr(time, "sleep", waits.append)

    invoke(EVENT)

    assert len(slack.bodies) == 2
    assert waits == [3.0]


def test_a_400_is_a_payload_error_so_the_secret_is_not_read_again(
    slack: FakeSlack, secret_reads: list[str]
) -> None:
    slack.script = [(400, {}, 0.0)]
    with pytest.raises(WebhookRejectedError, match="400") as rejected:
        invoke(EVENT)
    assert not isinstance(rejected.value, WebhookRevokedError)
    assert len(slack.bodies) == 1  # not retried: it would fail the same way
    assert secret_reads == [SECRET]


@pytest.mark.parametrize("status", sorted(REVOKED_URL_STATUSES))
def test_a_revoked_url_is_replaced_by_the_rotated_secret_in_the_same_invocation(
    slack: FakeSlack, rotated_slack: FakeSlack, secret_reads: list[str], status: int
) -> None:
    invoke(EVENT)  # caches the URL
    rotate_secret(rotated_slack.url)
    slack.revoked_with = status

    assert invoke(EVENT, EVENT) == {"posted": 2}

    assert len(slack.bodies) == 2  # the first message, then the rejected one
    assert len(rotated_slack.bodies) == 2  # the second record went straight to it
    assert secret_reads == [SECRET, SECRET]  # one read past the cache
    invoke(EVENT)
    assert len(rotated_slack.bodies) == 3
    assert secret_reads == [SECRET, SECRET]  # the fresh read was cached


def test_a_rotated_secret_with_a_revoked_url_fails_after_one_retry(
    slack: FakeSlack, rotated_slack: FakeSlack, secret_reads: list[str]
) -> None:
    invoke(EVENT)
    rotate_secret(rotated_slack.url)
    slack.revoked_with = 410
    rotated_slack.revoked_with = 404

    with pytest.raises(WebhookRevokedError, match="404"):
        invoke(EVENT)

    assert len(slack.bodies) == 2
    assert len(rotated_slack.bodies) == 1
    assert secret_reads == [SECRET, SECRET]


def test_a_revoked_url_still_in_the_secret_is_not_posted_to_again(
    slack: FakeSlack, secret_reads: list[str]
) -> None:
    slack.revoked_with = 404

    with pytest.raises(WebhookRevokedError, match="404"):
        invoke(EVENT)

    assert len(slack.bodies) == 1
    assert secret_reads == [SECRET, SECRET]


def test_a_timeout_fails_the_invocation_so_lambda_retries(slack: FakeSlack) -> None:
    slack.script = [(200, {}, 2.0)]
    with pytest.raises(WebhookUnavailableError, match="did not answer"):
        invoke(EVENT)


def test_a_5xx_fails_the_invocation_so_lambda_retries(
    slack: FakeSlack, secret_reads: list[str]
) -> None:
    slack.script = [(503, {}, 0.0)]
    with pytest.raises(WebhookUnavailableError, match="503"):
        invoke(EVENT)
    assert secret_reads == [SECRET]


def test_a_digest(slack: FakeSlack) -> None:
    digest = {
        "schemaVersion": "1",
        "eventType": "JOB_DIGEST",
        "count": 3,
        "counts": {"JOB_FAILED": 3},
        "region": "us-east-1",
        "detectedAt": "2026-11-28T21:50:02+00:00",
        "jobs": [
            {
                "batchSegmentJobArn": f"arn:x/{i}",
                "jobName": f"j{i}",
                "previousStatus": None,
                "status": "CREATE FAILED",
                "eventType": "JOB_FAILED",
            }
            for i in range(3)
        ],
        "truncated": 0,
    }
    invoke(digest)
    (body,) = slack.bodies
    assert body["text"] == "3 batch segment job changes: 3 FAILED"
