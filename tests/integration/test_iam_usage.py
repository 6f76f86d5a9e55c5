"""The poller's role grants exactly what its code calls: a new call without a grant, or a
grant nobody uses, fails here. For the default stack, and for an organization's, whose poller
finds the member accounts from the member StackSet's instances and assumes the member role
in each."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any

import pytest

from local.provision import create_member_stack_set
from poller.errors import PublishFailedError
from poller.poll import SAFETY_MARGIN_SECONDS
from tests.integration.conftest import (
    handler_session,
    observer_client,
    observer_session,
    reset_handler_caches,
)
from tests.integration.test_faults import DeadlineAfter
from tests.integration.test_organization import FIRST, MISSING, OWN, SECOND

if TYPE_CHECKING:
    from collections.abc import Iterator

    from tests.integration.conftest import Stack

    Requests = dict[str, list[dict[str, Any]]]

# Operations authorised by another action's name, or under another service prefix.
ACTION_OF_OPERATION = {
    "sns:PublishBatch": "sns:Publish",
    "eventbridge:PutEvents": "events:PutEvents",  # botocore names the service EventBridge
    "lambda:Invoke": "lambda:InvokeFunction",
}
# Granted for the platform rather than called by the code: Lambda writes the logs and the
# traces, Lambda's on-failure destination sends to SQS, SNS uses the topic key on publish.
PLATFORM_PREFIXES = ("logs:", "xray:", "sqs:", "kms:")
# Granted for CloudFormation rather than called by the code, to a poller that lists the
# StackSet as DELEGATED_ADMIN: CloudFormation checks that caller's registration, and its
# User Guide asks it of every delegated administrator ("Make sure your delegated
# administrators have organizations:ListDelegatedAdministrators permissions to avoid any
# potential errors": "Register a delegated administrator member account").
CHECKED_FOR_A_DELEGATED_ADMIN = frozenset({"organizations:ListDelegatedAdministrators"})
PARTITION = "aws"  # moto's, and the local Lambda context's
SAME_ORGANIZATION = {"StringEquals": {"aws:ResourceOrgID": "${aws:PrincipalOrgID}"}}


def poller_statements(template: dict[str, Any], spec_handler: str) -> list[dict[str, Any]]:
    """The statements of every policy on the role of the function with this handler."""
    resources = template["Resources"]
    (function_id,) = [
        rid
        for rid, r in resources.items()
        if r["Type"] == "AWS::Lambda::Function" and r["Properties"]["Handler"] == spec_handler
    ]
    role_id = resources[function_id]["Properties"]["Role"]["Fn::GetAtt"][0]
    return [
        statement
        for resource in resources.values()
        if resource["Type"] == "AWS::IAM::Policy"
        and {"Ref": role_id} in resource["Properties"]["Roles"]
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
    ]


def as_list(value: str | list[Any]) -> list[Any]:
    return [value] if isinstance(value, str) else value


def granted_actions(template: dict[str, Any], spec_handler: str) -> set[str]:
    return {
        action
        for statement in poller_statements(template, spec_handler)
        if statement["Effect"] == "Allow"
        for action in as_list(statement["Action"])
    }


def grants_of(
    stack: Stack, template: dict[str, Any], action: str, effect: str = "Allow"
) -> list[dict[str, Any]]:
    """The poller role's statements of one effect that name `action`, resolved as deployed
    where the stack runs: in local AWS's region, in the poller's own account."""
    pseudo = {"AWS::Partition": PARTITION, "AWS::Region": stack.aws.region, "AWS::AccountId": OWN}
    return [
        resolved(statement, pseudo)
        for statement in poller_statements(template, stack.spec.handler)
        if statement["Effect"] == effect and action in as_list(statement["Action"])
    ]


def resolved(value: Any, pseudo: dict[str, str]) -> Any:
    """A template value with its pseudo parameters and Fn::Join resolved (anything else, such
    as a resource's Ref, is left as it is: joining it fails)."""
    if isinstance(value, list):
        return [resolved(item, pseudo) for item in value]
    if not isinstance(value, dict):
        return value
    if value.keys() == {"Ref"} and value["Ref"] in pseudo:
        return pseudo[value["Ref"]]
    if value.keys() == {"Fn::Join"}:
        separator, parts = value["Fn::Join"]
        return separator.join(resolved(parts, pseudo))
    return {key: resolved(item, pseudo) for key, item in value.items()}


def matches(arn: str, statements: list[dict[str, Any]]) -> bool:
    """Whether a statement's resources name `arn` (IAM's wildcards: * and ?)."""
    return any(fnmatchcase(arn, pattern) for s in statements for pattern in as_list(s["Resource"]))


@pytest.fixture
def requests() -> Iterator[Requests]:
    """The parameters of each request the handler sends, by "service:Operation", from the
    clients made while it is set: a client copies the session's handlers when it is made,
    and a changed environment (a new container) makes new ones."""
    seen: Requests = defaultdict(list)

    def keep(params: dict[str, Any], event_name: str, **_: Any) -> None:
        seen[":".join(event_name.split(".", 2)[1:])].append(dict(params))

    handler_session().events.register("provide-client-params", keep)
    yield seen
    handler_session().events.unregister("provide-client-params", keep)


def exercise_every_path(stack: Stack) -> None:
    """Every path that calls AWS: the first run, new and changed jobs, a stuck job, the
    hourly full read, a failed publish that releases its claim, a catch-up run asked for."""
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


def test_role_grants_exactly_the_calls_the_poller_makes(
    stack: Stack, template: dict[str, Any]
) -> None:
    exercise_every_path(stack)

    used = {ACTION_OF_OPERATION.get(call, call) for call in stack.calls}
    granted = granted_actions(template, stack.spec.handler)
    code_grants = {a for a in granted if not a.startswith(PLATFORM_PREFIXES)}

    assert used - granted == set(), "called without a grant"
    assert code_grants - used == set(), "granted but never called"


def test_in_an_organization_the_role_grants_exactly_the_calls_the_poller_makes(
    organization_stack: Stack, organization_template: dict[str, Any], requests: Requests
) -> None:
    stack, template = organization_stack, organization_template
    settings = stack.spec.environment
    assert settings["WATCHED_ACCOUNTS"] == "", "no list: the StackSet's instances are all"
    region = stack.aws.region
    # The member StackSet the template names, before any account has joined its OUs: every
    # path of the default stack, in the poller's own account, with discovery on.
    stack_set = create_member_stack_set(template, observer_session(), OWN)
    assert stack_set == settings["DISCOVER_STACK_SET"]
    exercise_every_path(stack)
    assert set(stack.personalize.calls_by_scope) == {(OWN, region)}
    stack.heard()

    # Three accounts join, one of them without its role (AssumeRole denied). A new container
    # asks the StackSet again, assumes the member role in each, and lists them: their first
    # run, silent, and the missing role named.
    observer_client("cloudformation").create_stack_instances(
        StackSetName=stack_set, Accounts=[FIRST, SECOND, MISSING], Regions=[region]
    )
    stack.aws.moto.missing_roles.add(member_role(stack, MISSING))
    members = [
        stack.personalize.add_job(f"job-{account}", "IN PROGRESS", account=account)
        for account in (FIRST, SECOND, MISSING)
    ]
    reset_handler_caches(stack.spec)
    joined = stack.invoke()
    assert joined["firstRun"] is True
    assert stack.heard() == []
    assert set(joined["unreachableScopes"]) == {f"{MISSING}/{region}"}
    assert "AccessDenied" in joined["unreachableScopes"][f"{MISSING}/{region}"]
    assert set(stack.personalize.calls_by_scope) == {(a, region) for a in (OWN, FIRST, SECOND)}
    # A member's changed job is news.
    for arn in members:
        stack.personalize.set_status(arn, "ACTIVE")
    assert stack.invoke()["transitions"] == 2
    assert sorted(stack.heard()) == [
        (f"job-{FIRST}", "IN PROGRESS", "ACTIVE"),
        (f"job-{SECOND}", "IN PROGRESS", "ACTIVE"),
    ]

    listings = lists_the_granted_stack_set(stack, template, requests)
    assumes_the_granted_member_roles(stack, template, requests, (FIRST, SECOND, MISSING))
    used = {ACTION_OF_OPERATION.get(call, call) for call in stack.calls}
    if any(listing["CallAs"] == "DELEGATED_ADMIN" for listing in listings):
        used |= CHECKED_FOR_A_DELEGATED_ADMIN
    granted = granted_actions(template, stack.spec.handler)
    code_grants = {a for a in granted if not a.startswith(PLATFORM_PREFIXES)}

    assert used - granted == set(), "called without a grant"
    assert code_grants - used == set(), "granted but never called"


def member_role(stack: Stack, account: str) -> str:
    return f"arn:{PARTITION}:iam::{account}:role/{stack.spec.environment['MEMBER_ROLE_NAME']}"


def lists_the_granted_stack_set(
    stack: Stack, template: dict[str, Any], requests: Requests
) -> list[dict[str, Any]]:
    """The code's ListStackInstances requests, after checking that each names the StackSet
    the template makes and grants, as its CallAs: the name and CallAs the template gives the
    function."""
    settings = stack.spec.environment
    name, call_as = settings["DISCOVER_STACK_SET"], settings["STACK_SET_CALL_AS"]
    listings = requests["cloudformation:ListStackInstances"]
    assert listings, "discovery's requests were seen"
    assert {(r["StackSetName"], r["CallAs"]) for r in listings} == {(name, call_as)}
    (made,) = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::CloudFormation::StackSet"
    ]
    assert (made["StackSetName"], made["CallAs"]) == (name, call_as)
    grants = grants_of(stack, template, "cloudformation:ListStackInstances")
    for pattern in (p for grant in grants for p in as_list(grant["Resource"])):
        assert pattern.split(":", 5)[5].startswith(f"stackset/{name}:"), pattern
    cloudformation = observer_client("cloudformation")
    arn = cloudformation.describe_stack_set(StackSetName=name)["StackSet"]["StackSetARN"]
    assert matches(arn, grants), f"{arn} is not granted"
    return listings


def assumes_the_granted_member_roles(
    stack: Stack, template: dict[str, Any], requests: Requests, members: tuple[str, ...]
) -> None:
    """The code assumes the member role in each member account and never in its own; the
    grant names the member role (never a bare "*"), only in this organization."""
    assumed = {r["RoleArn"] for r in requests["sts:AssumeRole"]}
    assert assumed == {member_role(stack, account) for account in members}
    allowed = grants_of(stack, template, "sts:AssumeRole")
    assert allowed
    for statement in allowed:
        assert as_list(statement["Resource"]) == [member_role(stack, "*")]
        assert statement["Condition"] == SAME_ORGANIZATION
    denied = grants_of(stack, template, "sts:AssumeRole", effect="Deny")
    assert all(matches(role, allowed) and not matches(role, denied) for role in assumed)
    assert matches(member_role(stack, OWN), denied)
