"""The command-line tool against local AWS, including its error paths."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from local import cli
from tests.integration.conftest import observer_client

if TYPE_CHECKING:
    import pytest

    from tests.integration.conftest import Stack


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def deploy_outputs_stack(stack: Stack, name: str = cli.DEFAULT_STACK) -> None:
    """A CloudFormation stack in moto whose outputs name the local table and topic."""
    template = {
        "Resources": {"Placeholder": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {
            cli.TABLE_OUTPUT: {"Value": stack.table_name},
            cli.TOPIC_OUTPUT: {"Value": stack.topic_arn},
        },
    }
    observer_client("cloudformation").create_stack(
        StackName=name, TemplateBody=json.dumps(template)
    )


def test_dry_run_on_first_run_says_so_and_writes_nothing(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    stack.personalize.add_job("old", "ACTIVE")
    deploy_outputs_stack(stack)

    code, out, _ = run(capsys, "poll", "--dry-run")

    assert code == cli.EXIT_OK
    assert "first run: the next poll records 1 jobs and publishes nothing" in out
    assert stack.snapshot() == {}


def test_dry_run_lists_the_next_transitions_without_publishing_or_writing(
    stack: Stack, capsys: pytest.CaptureFixture[str]
) -> None:
    arn = stack.personalize.add_job("nightly", "IN PROGRESS")
    stack.invoke()
    stack.personalize.set_status(arn, "CREATE FAILED", failure_reason="x")
    stack.personalize.add_job("fresh", "PENDING")
    deploy_outputs_stack(stack)
    stack.calls.clear()

    code, out, _ = run(capsys, "poll")

    assert code == cli.EXIT_OK
    assert "the next poll would publish 2" in out
    assert "JOB_FAILED" in out
    assert "nightly" in out
    assert "IN PROGRESS" in out
    assert "fresh" in out
    assert "(new)" in out
    assert stack.snapshot()[arn]["status"] == "IN PROGRESS"
    assert stack.notifications() == []


def test_apply_publishes_and_records(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    arn = stack.personalize.add_job("nightly", "IN PROGRESS")
    stack.invoke()
    stack.personalize.set_status(arn, "ACTIVE")

    code, out, _ = run(
        capsys, "poll", "--apply", "--table", stack.table_name, "--topic", stack.topic_arn
    )

    assert code == cli.EXIT_OK
    assert "1 published" in out
    assert len(stack.notifications()) == 1
    assert stack.snapshot()[arn]["status"] == "ACTIVE"


def test_status_shows_live_and_recorded(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    arn = stack.personalize.add_job("nightly", "IN PROGRESS")
    stack.invoke()
    stack.personalize.set_status(arn, "ACTIVE")

    code, out, _ = run(capsys, "status", "--table", stack.table_name)

    assert code == cli.EXIT_OK
    (row,) = [line for line in out.splitlines() if line.startswith("nightly")]
    assert row.split()[1:3] == ["ACTIVE", "IN"]  # live ACTIVE, recorded IN PROGRESS


def test_missing_stack(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "poll", "--stack", "NoSuchStack")
    assert code == cli.EXIT_NOT_FOUND
    assert err.startswith("error: stack NoSuchStack not found in us-east-1")
    assert len(err.strip().splitlines()) == 1


def test_missing_table(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "status", "--table", "no-such-table")
    assert code == cli.EXIT_NOT_FOUND
    assert "no-such-table" in err


def test_no_credentials(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)

    code, _, err = run(capsys, "poll")

    assert code == cli.EXIT_CREDENTIALS
    assert "no AWS credentials" in err


def test_no_region(
    stack: Stack, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")

    code, _, err = run(capsys, "status")

    assert code == cli.EXIT_CREDENTIALS
    assert "no AWS region" in err


def test_apply_and_dry_run_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "poll", "--apply", "--dry-run")
    assert code == cli.EXIT_USAGE
    assert "exclude each other" in err
