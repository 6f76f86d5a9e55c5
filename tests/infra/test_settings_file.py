"""The settings file: what the CDK CLI deploys is what settings.toml says, each name in it
is a setting, and a `-c` flag overrides one for one run only."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from typing import TYPE_CHECKING, Any

import aws_cdk as cdk
import pytest

from app import main, overridden
from infra.config import (
    STACK_NAME,
    ConfigError,
    NotifierConfig,
    check_watchable,
    known_settings,
    read_settings,
)
from infra.scopes import MEMBER_STACK_NAME
from local.template import QUIET_JSII, ROOT, cli_context, cloud_assembly
from tests.infra.conftest import CENTRAL

if TYPE_CHECKING:
    from pathlib import Path

SETTINGS = ROOT / "settings.toml"
# Every kind of value a file holds (lists, numbers, true/false, text), and the same values
# as `-c name=value` gives them: text.
AS_FILE = """\
# A deployment's settings, as a team keeps them.
notifyEmails = ["ops@example.com", "ml-team@example.com"]
alarmEmails = ["oncall@example.com"]
scheduleMinutes = 10
tracing = false
logRetentionDays = 90
emailEventTypes = ["JOB_FAILED", "JOB_STUCK"]
accounts = ["111122223333", "444455556666"]
regions = ["us-east-1", "eu-west-1"]
solutionVersionArns = ["arn:aws:personalize:eu-west-1:444455556666:solution/segments/1"]
memberOrganizationalUnits = ["ou-ab12-cdef3456"]
reservedConcurrency = 2
centralAccount = "111122223333"
"""
AS_FLAGS = {
    "notifyEmails": "ops@example.com,ml-team@example.com",
    "alarmEmails": "oncall@example.com",
    "scheduleMinutes": "10",
    "tracing": "false",
    "logRetentionDays": "90",
    "emailEventTypes": "JOB_FAILED,JOB_STUCK",
    "accounts": "111122223333,444455556666",
    "regions": "us-east-1,eu-west-1",
    "solutionVersionArns": "arn:aws:personalize:eu-west-1:444455556666:solution/segments/1",
    "memberOrganizationalUnits": "ou-ab12-cdef3456",
    "reservedConcurrency": "2",
    "centralAccount": CENTRAL,
}


def run_as_the_cli(settings: Path, outdir: Path) -> subprocess.CompletedProcess[str]:
    """`python app.py --settings FILE` as `cdk synth` runs it (cdk.json's command) when given
    no `-c` flag: cdk.json's context in CDK_CONTEXT_JSON, the output directory."""
    env = {
        **os.environ,
        **QUIET_JSII,
        "CDK_OUTDIR": str(outdir),
        "CDK_CONTEXT_JSON": json.dumps(cli_context()),
    }
    return subprocess.run(
        [sys.executable, str(ROOT / "app.py"), "--settings", str(settings)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


def templates(assembly: Path) -> dict[str, Any]:
    return {
        stack: json.loads((assembly / f"{stack}.template.json").read_text())
        for stack in (STACK_NAME, MEMBER_STACK_NAME)
    }


def test_the_cdk_cli_runs_the_app_with_the_settings_file() -> None:
    cdk_json = json.loads((ROOT / "cdk.json").read_text())
    assert cdk_json["app"] == "python3 app.py --settings settings.toml"
    assert "settings.toml" in cdk_json["watch"]["include"]
    # The file holds the settings; cdk.json's context holds the CDK's own keys only.
    assert not set(cdk_json["context"]) & known_settings()


def test_the_file_alone_and_the_same_flags_synthesize_the_same_templates(
    tmp_path: Path,
) -> None:
    assert set(tomllib.loads(AS_FILE)) == set(AS_FLAGS)
    settings = tmp_path / "settings.toml"
    settings.write_text(AS_FILE)
    outdir = tmp_path / "cdk.out"
    outdir.mkdir()
    result = run_as_the_cli(settings, outdir)
    assert result.returncode == 0, result.stderr
    assert "overridden" not in result.stderr
    from_file = templates(outdir)
    from_flags = templates(cloud_assembly(AS_FLAGS))
    assert from_file == from_flags
    # And the settings took effect (not two defaults that agree).
    resources = from_file[STACK_NAME]["Resources"].values()
    emails = {
        r["Properties"]["Endpoint"] for r in resources if r["Type"] == "AWS::SNS::Subscription"
    }
    assert emails == {"ops@example.com", "ml-team@example.com", "oncall@example.com"}
    assert any(r["Type"] == "AWS::CloudFormation::StackSet" for r in resources)


def test_a_flag_overrides_the_file_for_one_run() -> None:
    settings = {"scheduleMinutes": 10, "regions": ["us-east-1"]}
    app = cdk.App(context=settings, post_cli_context={"scheduleMinutes": "15"})
    assert app.node.try_get_context("scheduleMinutes") == "15"
    assert overridden(app, settings) == ["scheduleMinutes"]
    assert overridden(cdk.App(context=settings), settings) == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            'notifyEmail = ["ops@example.com"]\n',
            "settings.toml: notifyEmail: no such setting (did you mean notifyEmails?)",
        ),
        (
            'regions = ["us-east-1"]\nschedule = 5\n',
            "settings.toml: schedule: no such setting (did you mean scheduleMinutes?)",
        ),
        (
            '"@aws-cdk/aws-iam:minimizePolicies" = true\n',
            "settings.toml: @aws-cdk/aws-iam:minimizePolicies: a CDK setting, which belongs in "
            "cdk.json's context",
        ),
        (
            "[notifier]\nregions = ['us-east-1']\n",
            "settings.toml: [notifier]: a table, but settings are top-level `name = value` lines",
        ),
        (
            "accounts = [111122223333]\n",
            "settings.toml: accounts: expected a string, a number, true or false, or a list of "
            "strings, got [111122223333]",
        ),
        (
            "regions = us-east-1\n",
            "settings.toml: Invalid value (at line 1, column 11)",
        ),
    ],
)
def test_a_bad_settings_file_is_refused_naming_the_file(
    tmp_path: Path, text: str, message: str
) -> None:
    settings = tmp_path / "settings.toml"
    settings.write_text(text)
    with pytest.raises(ConfigError) as refused:
        read_settings(settings)
    assert str(refused.value) == message
    with pytest.raises(SystemExit) as exited:
        main(["--settings", str(settings)])
    assert exited.value.code == f"Invalid configuration: {message}"


def test_a_missing_settings_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^settings.toml: \[Errno 2\] No such file"):
        read_settings(tmp_path / "settings.toml")


def test_the_committed_settings_file_is_valid() -> None:
    settings = read_settings(SETTINGS)
    check_watchable(NotifierConfig.from_context(settings.get))


def test_the_committed_settings_files_examples_are_valid() -> None:
    """Its commented-out examples are settings, with values the app accepts."""
    examples = "\n".join(
        line.removeprefix("# ")
        for line in SETTINGS.read_text().splitlines()
        if re.match(r"^# \w+ = ", line)
    )
    settings = tomllib.loads(examples)
    assert set(settings) <= known_settings()
    assert {"notifyEmails", "regions", "accounts"} <= set(settings)
    check_watchable(NotifierConfig.from_context(settings.get))
