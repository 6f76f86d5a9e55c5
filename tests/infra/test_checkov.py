"""checkov finds nothing on the template, and every check it skips says why.

checkov lives in its own virtualenv (.venv/checkov, made by `make install` from
requirements-checkov.txt): its pins clash with the project's.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infra.checkov import METADATA_KEY
from tests.infra.test_member_stack import member

if TYPE_CHECKING:
    from aws_cdk.assertions import Template

CHECKOV = Path(sys.prefix) / "checkov" / "bin" / "checkov"


def scan(template: Template, tmp_path: Path) -> dict[str, Any]:
    assert CHECKOV.exists(), f"{CHECKOV} is missing: run `make install`"
    path = tmp_path / "template.json"
    path.write_text(json.dumps(template.to_json()))
    result = subprocess.run(
        [
            str(CHECKOV),
            *("--file", str(path), "--framework", "cloudformation"),
            *("--output", "json", "--quiet"),
            "--skip-download",  # offline, with the checks it ships with
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode in (0, 1), result.stderr  # 1: some check failed
    report: dict[str, Any] = json.loads(result.stdout)
    return report


def test_checkov_finds_nothing(each_configuration: Template, tmp_path: Path) -> None:
    report = scan(each_configuration, tmp_path)
    failed = [
        f"{check['check_id']} {check['resource']}: {check['check_name']}"
        for check in report["results"]["failed_checks"]
    ]
    assert failed == []
    assert report["summary"]["parsing_errors"] == 0
    assert report["summary"]["passed"] > 0


def test_checkov_finds_nothing_in_the_member_stack(tmp_path: Path) -> None:
    report = scan(member(), tmp_path)
    assert report["results"]["failed_checks"] == []
    assert report["summary"]["skipped"] == 0  # the role needs no exception
    assert report["summary"]["passed"] > 0


def test_every_skip_says_why(all_options_template: Template) -> None:
    skips = [
        skip
        for resource in all_options_template.to_json()["Resources"].values()
        for skip in resource.get("Metadata", {}).get(METADATA_KEY, {}).get("skip", [])
    ]
    for skip in skips:
        assert len(skip["comment"]) >= 40, skip
    assert {skip["id"] for skip in skips} == {
        "CKV_AWS_27",  # queues: SQS-managed encryption
        "CKV_AWS_116",  # functions: on-failure destinations instead of a DLQ
        "CKV_AWS_117",  # functions: no VPC
        "CKV_AWS_119",  # table: AWS managed key
        "CKV_AWS_173",  # functions: environment without secrets
        "CKV_AWS_115",  # the Slack forwarder: no reserved concurrency
    }


def test_reserved_concurrency_is_skipped_only_where_there_is_none(
    default_template: Template, all_options_template: Template
) -> None:
    for template in (default_template, all_options_template):
        for function in template.find_resources("AWS::Lambda::Function").values():
            skipped = {
                skip["id"] for skip in function.get("Metadata", {}).get(METADATA_KEY)["skip"]
            }
            reserved = "ReservedConcurrentExecutions" in function["Properties"]
            assert ("CKV_AWS_115" in skipped) is not reserved
