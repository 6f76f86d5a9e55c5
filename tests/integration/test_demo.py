"""`make demo` runs in the suite at a small size and must hear every notification once."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from local.demo import (
    JOINING_ACCOUNT,
    MEMBER_ACCOUNTS,
    MISSING_ACCOUNT,
    OWN_ACCOUNT,
    Layout,
    for_people,
    parse_args,
    scope_errors,
)
from local.story import compare
from local.template import synth

ROOT = Path(__file__).resolve().parents[2]


def demo_command(*args: str) -> list[str]:
    """The command `make demo ARGS="..."` runs. Its stack is synthesized here first, where the
    CDK is already loaded: the demo reads that kept run instead of loading the CDK itself."""
    synth(Layout.of(parse_args(list(args))).context())
    return [sys.executable, "-m", "local.demo", *args]


def run_demo(*args: str) -> str:
    """What the demo printed; it must have succeeded."""
    result = subprocess.run(
        demo_command(*args), cwd=ROOT, capture_output=True, text=True, check=False, timeout=300
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout


def test_demo_plays_the_story_and_every_notification_arrives_once() -> None:
    out = run_demo("--jobs", "120", "--ticks", "5", "--seed", "3")
    assert "Result: every expected notification arrived exactly once" in out
    assert "(first run: recorded silently)" in out
    assert "Subject: FAILED: weekly-lookalike-" in out
    assert "Subject: SUCCEEDED: churn-risk-" in out
    assert "PENDING -> ACTIVE" in out  # the job that skipped IN PROGRESS between polls
    assert "Subject: FAILED: flash-sale-" in out
    assert "Failure reason:" in out
    assert "on 2 pages" in out
    assert '"previousStatus":null' in out
    assert "personalize:ListBatchSegmentJobs" in out
    assert "── Slack (AWS Chatbot)" in out
    assert ":x: FAILED: weekly-lookalike-" in out
    # People get failures, successes and stuck jobs; the pipeline gets every event.
    assert "Subject: PENDING:" not in out
    assert "emails (after the subscription's filter)  4" in out


def test_demo_across_accounts_and_regions_names_each_scope_and_alarms_the_missing_role() -> None:
    ticks = 4
    scopes = ["--accounts", "2", "--regions", "2"]
    out = run_demo(*scopes, "--jobs", "30", "--ticks", str(ticks))
    assert "Result: every expected notification arrived exactly once" in out
    # The poller's own account and the member, each in both regions: each heard, by
    # people and by the pipeline, and named in what it sent.
    for scope in (
        "123456789012/us-east-1",
        "123456789012/eu-west-1",
        "222233334444/us-east-1",
        "222233334444/eu-west-1",
    ):
        assert f"── email to ml-team@example.com · {scope} " in out
        assert f"── Slack (AWS Chatbot) · {scope} " in out
        assert f"pipeline <- {scope} " in out
        assert f"ALARM ScopeErrors {scope}" not in out
    # The account without its member role: each of its scopes alarms at every poll,
    # naming why, and nothing of it is heard.
    for region in ("us-east-1", "eu-west-1"):
        alarm = f"ALARM ScopeErrors {MISSING_ACCOUNT}/{region}: "
        assert out.count(alarm) == ticks
        assert f"{alarm}ListBatchSegmentJobs failed: An error occurred (AccessDenied)" in out
        assert f"{MISSING_ACCOUNT}/{region}" + " " * 3 in out  # its summary row
    assert f"pipeline <- {MISSING_ACCOUNT}/" not in out
    assert f"(AWS Chatbot) · {MISSING_ACCOUNT}/" not in out  # nor messages for people
    assert f"ml-team@example.com · {MISSING_ACCOUNT}/" not in out
    assert "2 scopes unreachable" in out


def ticks_of(out: str) -> list[str]:
    """What the demo printed at each tick, in order (the last one ends with the summary)."""
    return out.split("\n── tick ")[1:]


def test_demo_of_an_organization_finds_its_members_hears_one_that_joins_and_names_one() -> None:
    out = run_demo("--organization", "--jobs", "20", "--ticks", "5")
    assert "Result: every expected notification arrived exactly once" in out
    first, second, joined, *later = ticks_of(out)
    here = "us-east-1"
    # The StackSet's three members, found by the poller, and each reachable one (the
    # poller's own account too) recorded silently at its first poll.
    members = ", ".join(sorted((*MEMBER_ACCOUNTS, MISSING_ACCOUNT)))
    assert f"StackSet members (asked by this poll): {members}\n" in first
    for account in (OWN_ACCOUNT, *MEMBER_ACCOUNTS):
        assert f"baseline of {account}/{here}: its 20 jobs recorded silently" in first
    assert "pipeline <- " not in first
    assert "── Slack" not in first
    # An account joins between polls: the next poll finds it, records what it has
    # silently, and from then on its jobs are announced.
    assert JOINING_ACCOUNT not in first + second
    assert f"{JOINING_ACCOUNT} joins the organization" in joined
    assert f"{members}, {JOINING_ACCOUNT}\n" in joined
    assert f"baseline of {JOINING_ACCOUNT}/{here}: its 20 jobs recorded silently" in joined
    assert f"<- {JOINING_ACCOUNT}/" not in joined
    assert f"(AWS Chatbot) · {JOINING_ACCOUNT}/" not in joined  # nor messages for people
    assert f"pipeline <- {JOINING_ACCOUNT}/{here} " in later[0]
    assert f"── email to ml-team@example.com · {JOINING_ACCOUNT}/{here} " in later[1]
    # The member whose role is missing is named, with why, at every poll; the others are
    # announced meanwhile, and nothing of it is.
    alarm = f"ALARM ScopeErrors {MISSING_ACCOUNT}/{here}: ListBatchSegmentJobs failed: "
    assert out.count(alarm + "An error occurred (AccessDenied)") == 5
    assert "when calling the AssumeRole operation" in out
    for account in (OWN_ACCOUNT, *MEMBER_ACCOUNTS):
        assert f"pipeline <- {account}/{here} " in second
        assert f"── email to ml-team@example.com · {account}/{here} " in joined
    assert f"<- {MISSING_ACCOUNT}/" not in out
    assert f"ml-team@example.com · {MISSING_ACCOUNT}/" not in out


def test_the_organization_demo_gives_the_stack_an_ou_and_no_accounts() -> None:
    context = Layout.of(parse_args(["--organization"])).context()
    assert "memberOrganizationalUnits" in context
    assert "accounts" not in context
    for wrong in (["--accounts", "2"], ["--ticks", "3"], ["--regions", "2"]):
        with pytest.raises(SystemExit):
            parse_args(["--organization", *wrong])


def test_the_demo_reads_scope_errors_from_the_embedded_metrics() -> None:
    printed = "\n".join(
        [
            "not json",
            '{"_aws": {}, "ScopeErrors": [1.0], "scope": "333344445555/eu-west-1"}',
            '{"_aws": {}, "JobsSeen": [3.0]}',
            '{"ScopeErrors": 1, "scope": "not/a-metric"}',
        ]
    )
    assert scope_errors(printed) == ["333344445555/eu-west-1"]


def test_the_demo_watches_at_most_a_story_sized_number_of_scopes() -> None:
    with pytest.raises(SystemExit):
        parse_args(["--accounts", "3", "--regions", "3"])
    assert (parse_args([]).accounts, parse_args([]).regions) == (1, 1)


def test_compare_reports_missing_and_doubled() -> None:
    a = ("arn:a", None, "PENDING")
    b = ("arn:b", "PENDING", "ACTIVE")
    assert compare([a, b], [a, b]) == []
    assert compare([a, b], [a]) == [f"missing: {b}"]
    assert compare([a], [a, a]) == [f"unexpected or doubled: {a} x1"]


def test_demo_serve_keeps_the_endpoints_up_and_says_how_to_reach_them() -> None:
    process = subprocess.Popen(
        demo_command("--jobs", "10", "--ticks", "1", "--serve"),
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line)
            if "Ctrl-C to stop." in line:
                break
        out = "".join(lines)
        endpoint = next(
            line.split("=", 1)[1].strip()
            for line in lines
            if "export AWS_ENDPOINT_URL_PERSONALIZE=" in line
        )
        assert "export AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:" in out
        # The emulator still answers while serving.
        request = urllib.request.Request(
            endpoint,
            data=b"{}",
            headers={"X-Amz-Target": "AmazonPersonalize.ListBatchSegmentJobs"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert len(json.loads(response.read())["batchSegmentJobs"]) == 10
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0


def test_the_demo_shows_people_what_their_filter_lets_through_as_sns_does() -> None:
    failures_only = {"eventType": ["JOB_FAILED", "JOB_STUCK"]}
    assert for_people(["JOB_DIGEST", "JOB_FAILED", "JOB_SUCCEEDED"], failures_only)
    assert not for_people(["JOB_DIGEST", "JOB_SUCCEEDED"], failures_only)
    assert not for_people(["JOB_SUCCEEDED"], failures_only)
    assert for_people(["JOB_STATUS_CHANGED"], None)
