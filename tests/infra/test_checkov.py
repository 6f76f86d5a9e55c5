"""checkov finds nothing on the template, and every check it skips says why.

checkov lives in its own virtualenv (.venv/checkov, made by `make install` from
requirements-checkov.txt): its pins clash with the project's.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infra.checkov import METADATA_KEY
from infra.config import STACK_NAME
from infra.scopes import MEMBER_STACK_NAME
from tests.infra.conftest import CONFIGURATIONS, app_output

if TYPE_CHECKING:
    from aws_cdk.assertions import Template

CHECKOV = Path(sys.prefix) / "checkov" / "bin" / "checkov"


@dataclass(frozen=True)
class Scanned:
    """What checkov said of one template."""

    failed: list[str]
    passed: int
    skipped: int


def scan(templates: dict[str, Path], tmp_path: Path) -> dict[str, Scanned]:
    """checkov over every template at once (its start-up is most of its time)."""
    assert CHECKOV.exists(), f"{CHECKOV} is missing: run `make install`"
    files = []
    for name, template in templates.items():
        files += ["--file", str(shutil.copy(template, tmp_path / f"{name}.json"))]
    result = subprocess.run(
        [
            str(CHECKOV),
            *files,
            *("--framework", "cloudformation", "--output", "json"),
            "--skip-download",  # offline, with the checks it ships with
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode in (0, 1), result.stderr  # 1: some check failed
    report: dict[str, Any] = json.loads(result.stdout)
    assert report["summary"]["parsing_errors"] == 0

    def of(name: str, kind: str) -> list[dict[str, Any]]:
        checks: list[dict[str, Any]] = report["results"][kind]
        return [c for c in checks if Path(c["file_path"]).stem == name]

    return {
        name: Scanned(
            failed=[
                f"{c['check_id']} {c['resource']}: {c['check_name']}"
                for c in of(name, "failed_checks")
            ],
            passed=len(of(name, "passed_checks")),
            skipped=len(of(name, "skipped_checks")),
        )
        for name in templates
    }


def test_checkov_finds_nothing_in_either_stack(tmp_path: Path) -> None:
    templates = {name: app_output(name) / f"{STACK_NAME}.template.json" for name in CONFIGURATIONS}
    templates["member"] = app_output("every option") / f"{MEMBER_STACK_NAME}.template.json"
    scanned = scan(templates, tmp_path)
    for name in templates:
        assert scanned[name].failed == [], name
        assert scanned[name].passed > 0, name
    assert scanned["member"].skipped == 0  # the role needs no exception


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
