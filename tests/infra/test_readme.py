"""The README documents every setting the app reads and every alarm the stack raises."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from infra.config import MemberConfig, NotifierConfig

if TYPE_CHECKING:
    from aws_cdk.assertions import Template

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def section(title: str) -> str:
    """The text of a `## ` or `### ` section, up to the next heading of any level."""
    match = re.search(rf"^#+ {re.escape(title)}\n(.*?)(?=^#+ )", README, re.MULTILINE | re.DOTALL)
    assert match, f"README has no section {title!r}"
    return match.group(1)


def table_keys(text: str) -> set[str]:
    """The backquoted names in the first column of a Markdown table."""
    return {
        name
        for row in re.findall(r"^\| (.+?) \|", text, re.MULTILINE)
        for name in re.findall(r"`([^`]+)`", row)
    }


def settings_read() -> set[str]:
    names: set[str] = set()

    def record(name: str) -> None:
        names.add(name)

    NotifierConfig.from_context(record)
    MemberConfig.from_context(record)
    return names


def test_every_setting_is_in_the_configuration_table() -> None:
    read = settings_read()
    assert {"accounts", "regions", "memberRoleName", "centralAccount"} <= read
    assert read - table_keys(section("Configuration")) == set()


def test_every_alarm_is_in_the_operations_table(all_options_template: Template) -> None:
    documented = table_keys(section("Operations"))
    for alarm_id in all_options_template.find_resources("AWS::CloudWatch::Alarm"):
        name = re.sub(r"^Alerting|[0-9A-F]{8}$", "", alarm_id)
        assert name in documented, alarm_id
