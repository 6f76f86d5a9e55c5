"""The poller's role grants exactly what its code calls: a new call without a grant, or a
grant nobody uses, fails here."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest

from poller.errors import PublishFailedError
from poller.poll import SAFETY_MARGIN_SECONDS
from tests.integration.test_faults import DeadlineAfter

if TYPE_CHECKING:
    from tests.integration.conftest import Stack

# Operations authorised by another action's name, or under another service prefix.
ACTION_OF_OPERATION = {
    "sns:PublishBatch": "sns:Publish",
    "eventbridge:PutEvents": "events:PutEvents",  # botocore names the service EventBridge
    "lambda:Invoke": "lambda:InvokeFunction",
}
# Granted for the platform rather than called by the code: Lambda writes the logs and the
# traces, Lambda's on-failure destination sends to SQS, SNS uses the topic key on publish.
PLATFORM_PREFIXES = ("logs:", "xray:", "sqs:", "kms:")


def granted_actions(template: dict[str, Any], spec_handler: str) -> set[str]:
    resources = template["Resources"]
    (function_id,) = [
        rid
        for rid, r in resources.items()
        if r["Type"] == "AWS::Lambda::Function" and r["Properties"]["Handler"] == spec_handler
    ]
    role_id = resources[function_id]["Properties"]["Role"]["Fn::GetAtt"][0]
    actions: set[str] = set()
    for resource in resources.values():
        if resource["Type"] != "AWS::IAM::Policy":
            continue
        if {"Ref": role_id} not in resource["Properties"]["Roles"]:
            continue
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
            listed = statement["Action"]
            actions.update([listed] if isinstance(listed, str) else listed)
    return actions


def test_role_grants_exactly_the_calls_the_poller_makes(
    stack: Stack, template: dict[str, Any]
) -> None:
    # Every path that calls AWS: the first run, new and changed jobs, a stuck job, the
    # hourly full read, a failed publish that releases its claim, a catch-up run asked for.
    hours_ago = datetime.now(UTC) - timedelta(hours=8)
    changing = stack.personalize.add_job("changing", "IN PROGRESS")
    stack.add_jobs("many", 150)  # two pages
    stack.invoke()
    stack.rewind_baseline(timedelta(hours=9))  # watching for 9 hours
    slow = stack.personalize.add_job("slow", "PENDING", at=hours_ago.timestamp())
    stack.personalize.set_status(changing, "ACTIVE")
    stack.invoke()
    assert stack.invoke()["transitions"] == 1  # "slow" is stuck
    stack.full_read_due()
    assert stack.invoke()["fullReconcile"] is True
    stack.aws.inject_fault("sns:PublishBatch", "KMSAccessDenied")
    stack.personalize.set_status(slow, "CREATE FAILED")
    with pytest.raises(PublishFailedError):
        stack.invoke()
    listed = stack.personalize.calls["ListBatchSegmentJobs"]
    short = SAFETY_MARGIN_SECONDS + 2
    stack.invoke(
        context=DeadlineAfter(stack.personalize, "ListBatchSegmentJobs", listed + 1, short)
    )
    stack.personalize.inject_fault("ListBatchSegmentJobs", "InvalidNextTokenException")
    restarted = DeadlineAfter(stack.personalize, "ListBatchSegmentJobs", listed + 3, short)
    assert stack.invoke(context=restarted)["catchUp"]

    used = {ACTION_OF_OPERATION.get(call, call) for call in stack.calls}
    granted = granted_actions(template, stack.spec.handler)
    code_grants = {a for a in granted if not a.startswith(PLATFORM_PREFIXES)}

    assert used - granted == set(), "called without a grant"
    assert code_grants - used == set(), "granted but never called"
