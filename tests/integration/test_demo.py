"""`make demo` runs in the suite at a small size and must hear every notification once."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from local.story import compare

ROOT = Path(__file__).resolve().parents[2]


def test_demo_plays_the_story_and_every_notification_arrives_once() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "local.demo", "--jobs", "120", "--ticks", "5", "--seed", "3"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
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


def test_compare_reports_missing_and_doubled() -> None:
    a = ("arn:a", None, "PENDING")
    b = ("arn:b", "PENDING", "ACTIVE")
    assert compare([a, b], [a, b]) == []
    assert compare([a, b], [a]) == [f"missing: {b}"]
    assert compare([a], [a, a]) == [f"unexpected or doubled: {a} x1"]


def test_demo_serve_keeps_the_endpoints_up_and_says_how_to_reach_them() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "local.demo", "--jobs", "10", "--ticks", "1", "--serve"],
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
