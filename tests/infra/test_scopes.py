"""One deployment watches every (account, region) pair it is given: the poller's environment
and permissions, one alarm per scope, and the StackSet that gives member accounts their role.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from infra.config import LARGE_POLLER_MB, POLLER_MB, SCOPES_IN_512_MB
from infra.member_stack import member_template
from infra.scopes import POLLER_ROLE_NAME
from job_events.vocabulary import DEFAULT_MEMBER_ROLE_NAME, PERSONALIZE_REGIONS
from tests.infra.conftest import ALL_OPTIONS, allowed, synth
from tests.infra.test_partitions import Deployment

if TYPE_CHECKING:
    from aws_cdk.assertions import Template

PROD, STAGING, DEV = "111111111111", "222222222222", "333333333333"
TWO_ACCOUNTS = {"accounts": f"{PROD},{STAGING}", "regions": "eu-west-1,us-east-1"}
OU = "ou-ab12-cdef3456"
ORGANIZATION = {"memberOrganizationalUnits": OU}


def poller(template: Template) -> dict[str, Any]:
    functions = template.find_resources(
        "AWS::Lambda::Function", {"Properties": {"Handler": "poller.handler.handler"}}
    )
    ((_, function),) = functions.items()
    properties: dict[str, Any] = function["Properties"]
    return properties


def poller_role(template: Template) -> dict[str, Any]:
    role_id = poller(template)["Role"]["Fn::GetAtt"][0]
    role: dict[str, Any] = template.to_json()["Resources"][role_id]
    return role


def statements_of(deployment: Deployment, role_id: str) -> list[dict[str, Any]]:
    """The poller role's statements as deployed: policies whose condition holds, resolved."""
    return [
        deployment.resolve(statement)
        for policy in deployment.resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def assumable(template: Template, account: str) -> list[str]:
    """The role ARNs the poller may assume, deployed in `account`: allowed and not denied."""
    deployment = Deployment(template, "aws", "eu-west-1", account=account)
    role_id = poller(template)["Role"]["Fn::GetAtt"][0]
    by_effect: dict[str, list[str]] = {"Allow": [], "Deny": []}
    for statement in statements_of(deployment, role_id):
        if "sts:" in json.dumps(statement["Action"]):
            assert statement["Action"] == "sts:AssumeRole"
            resources = statement["Resource"]
            listed = resources if isinstance(resources, list) else [resources]
            by_effect[statement["Effect"]] += listed
    return [arn for arn in by_effect["Allow"] if arn not in by_effect["Deny"]]


def scope_alarms(template: Template) -> dict[str, dict[str, Any]]:
    """Alarms on the per-scope metric: none any more (they multiplied with accounts)."""
    return alarms_on(template, "ScopeErrors")


def unreachable_alarms(template: Template) -> dict[str, dict[str, Any]]:
    return alarms_on(template, "UnreachableScopes")


def alarms_on(template: Template, metric: str) -> dict[str, dict[str, Any]]:
    return {
        alarm_id: alarm["Properties"]
        for alarm_id, alarm in template.find_resources("AWS::CloudWatch::Alarm").items()
        if alarm["Properties"]["MetricName"] == metric
    }


def test_the_poller_is_told_what_to_watch() -> None:
    env = poller(synth({**TWO_ACCOUNTS, "memberRoleName": "JobReader"}))["Environment"]["Variables"]
    assert env["WATCHED_ACCOUNTS"] == f"{PROD},{STAGING}"
    assert env["WATCHED_REGIONS"] == "eu-west-1,us-east-1"
    assert env["MEMBER_ROLE_NAME"] == "JobReader"


def test_by_default_it_watches_its_own_account_and_region(default_template: Template) -> None:
    env = poller(default_template)["Environment"]["Variables"]
    assert env["WATCHED_ACCOUNTS"] == ""
    assert env["WATCHED_REGIONS"] == ""
    assert env["MEMBER_ROLE_NAME"] == DEFAULT_MEMBER_ROLE_NAME
    # No role to assume, and the role keeps a generated name (stacks in several regions of
    # one account do not collide).
    assert "sts:AssumeRole" not in json.dumps(default_template.find_resources("AWS::IAM::Policy"))
    assert "RoleName" not in poller_role(default_template)["Properties"]


def test_the_poller_may_assume_only_the_member_roles_of_other_accounts() -> None:
    template = synth({"accounts": f"{PROD},{STAGING},{DEV}", "memberRoleName": "JobReader"})
    arn = "arn:aws:iam::{}:role/JobReader".format
    # Deployed in an account it does not watch: every listed account's role.
    assert assumable(template, "999999999999") == [arn(PROD), arn(STAGING), arn(DEV)]
    # Deployed in one it watches: not its own (it reads its own account with its own role).
    assert assumable(template, STAGING) == [arn(PROD), arn(DEV)]
    # Members trust the role by this name.
    assert poller_role(template)["Properties"]["RoleName"] == POLLER_ROLE_NAME


def test_one_listed_account_that_is_its_own_needs_no_assume_role() -> None:
    template = synth({"accounts": PROD})
    assert assumable(template, "999999999999") == [
        f"arn:aws:iam::{PROD}:role/{DEFAULT_MEMBER_ROLE_NAME}"
    ]
    assert assumable(template, PROD) == []


def test_the_poller_describes_its_own_jobs_in_each_watched_region() -> None:
    template = synth({"regions": "eu-west-1,ap-southeast-2"})
    deployment = Deployment(template, "aws", "us-east-1", account=DEV)
    role_id = poller(template)["Role"]["Fn::GetAtt"][0]
    granted = allowed(statements_of(deployment, role_id))
    assert granted["personalize:DescribeBatchSegmentJob"] == [
        f"arn:aws:personalize:ap-southeast-2:{DEV}:batch-segment-job/*",
        f"arn:aws:personalize:eu-west-1:{DEV}:batch-segment-job/*",
    ]
    assert granted["personalize:ListBatchSegmentJobs"] == ["*"]


def test_one_alarm_for_every_scope() -> None:
    """Not one alarm per scope: one on UnreachableScopes, which the per-scope ScopeErrors
    metric (dimension `scope`) and the dashboard explain."""
    for template in (synth({**TWO_ACCOUNTS, "scheduleMinutes": "10"}), synth(ORGANIZATION)):
        assert scope_alarms(template) == {}
        ((alarm_id, props),) = unreachable_alarms(template).items()
        assert alarm_id.startswith("AlertingScopeErrors")
        assert props["Namespace"] == "PersonalizeSegmentJobNotifier"
        assert props["Dimensions"] == [{"Name": "service", "Value": "segment-job-notifier"}]
        assert props["Threshold"] == 1
        assert props["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert props["TreatMissingData"] == "notBreaching"
        assert "AlarmName" not in props
        description = props["AlarmDescription"]
        assert "ScopeErrors metric by its scope dimension (<account>/<region>)" in description
        assert "Unreachable scopes" in description
        assert f"{DEFAULT_MEMBER_ROLE_NAME} role is missing" in description
        assert "PersonalizeJobReader" in description
    assert unreachable_alarms(synth({"scheduleMinutes": "10"})).popitem()[1]["Period"] == 600
    # The same topic as every other alarm.
    alarm_topic = {
        alarm["Properties"]["AlarmActions"][0]["Ref"]
        for alarm in synth(TWO_ACCOUNTS).find_resources("AWS::CloudWatch::Alarm").values()
    }
    assert len(alarm_topic) == 1


def test_the_dashboard_names_the_failing_scopes(default_template: Template) -> None:
    ((_, dashboard),) = default_template.find_resources("AWS::CloudWatch::Dashboard").items()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    # SEARCH('{namespace,dimension names} MetricName="ScopeErrors"', 'Sum', period)
    search = "SEARCH('{PersonalizeSegmentJobNotifier,scope,service} MetricName="
    assert search in body
    assert "ScopeErrors" in body.split(search, 1)[1][:40]
    assert "'Sum', 300)" in body
    assert "Unreachable scopes (account/region)" in body


def poller_statements(template: Template, account: str = DEV) -> list[dict[str, Any]]:
    deployment = Deployment(template, "aws", "eu-west-1", account=account)
    return statements_of(deployment, poller(template)["Role"]["Fn::GetAtt"][0])


def test_in_an_organization_the_poller_finds_the_accounts_from_the_stack_set() -> None:
    template = synth(ORGANIZATION)
    env = poller(template)["Environment"]["Variables"]
    assert env["DISCOVER_STACK_SET"] == stack_set(template)["StackSetName"]
    assert env["DISCOVER_STACK_SET"] == "PersonalizeSegmentJobNotifier-PersonalizeJobReader"
    assert env["STACK_SET_CALL_AS"] == "DELEGATED_ADMIN"
    assert env["WATCHED_ACCOUNTS"] == ""
    assert poller_role(template)["Properties"]["RoleName"] == POLLER_ROLE_NAME
    # With a list too, the list limits what is watched; discovery stays on.
    both = poller(synth({**TWO_ACCOUNTS, **ORGANIZATION, "stackSetCallAs": "SELF"}))
    assert both["Environment"]["Variables"]["WATCHED_ACCOUNTS"] == f"{PROD},{STAGING}"
    assert both["Environment"]["Variables"]["DISCOVER_STACK_SET"] == env["DISCOVER_STACK_SET"]
    assert both["Environment"]["Variables"]["STACK_SET_CALL_AS"] == "SELF"
    # Without OUs, no discovery.
    assert poller(synth(TWO_ACCOUNTS))["Environment"]["Variables"]["DISCOVER_STACK_SET"] == ""


@pytest.mark.parametrize("context", [ORGANIZATION, {**ORGANIZATION, **TWO_ACCOUNTS}])
def test_in_an_organization_the_poller_assumes_the_member_role_by_name_in_it(
    context: dict[str, str],
) -> None:
    sts = [s for s in poller_statements(synth(context)) if "sts:" in json.dumps(s["Action"])]
    (allow,) = [s for s in sts if s["Effect"] == "Allow"]
    (deny,) = [s for s in sts if s["Effect"] == "Deny"]
    assert allow["Action"] == "sts:AssumeRole"
    # The member role's name in any account, never a bare "*", and only in this organization.
    assert allow["Resource"] == f"arn:aws:iam::*:role/{DEFAULT_MEMBER_ROLE_NAME}"
    assert allow["Condition"] == {"StringEquals": {"aws:ResourceOrgID": "${aws:PrincipalOrgID}"}}
    # Its own account's member role stays denied: there it reads with its own role.
    assert deny["Resource"] == f"arn:aws:iam::{DEV}:role/{DEFAULT_MEMBER_ROLE_NAME}"
    # Resource "*" only where an action has no resource-level permissions; never AssumeRole.
    anywhere = {a for a, r in allowed(poller_statements(synth(context))).items() if "*" in r}
    assert anywhere == {
        "personalize:ListBatchSegmentJobs",
        "organizations:ListDelegatedAdministrators",
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
    }


def test_in_an_organization_the_poller_lists_the_stack_sets_instances() -> None:
    name = "PersonalizeSegmentJobNotifier-PersonalizeJobReader"
    delegated = allowed(poller_statements(synth(ORGANIZATION)))
    # A delegated administrator's StackSet lives in the management account (not known here).
    assert delegated["cloudformation:ListStackInstances"] == [
        f"arn:aws:cloudformation:eu-west-1:*:stackset/{name}:*"
    ]
    assert delegated["organizations:ListDelegatedAdministrators"] == ["*"]
    management = allowed(poller_statements(synth({**ORGANIZATION, "stackSetCallAs": "SELF"})))
    assert management["cloudformation:ListStackInstances"] == [
        f"arn:aws:cloudformation:eu-west-1:{DEV}:stackset/{name}:*"
    ]
    assert "organizations:ListDelegatedAdministrators" not in management


def test_without_organizational_units_no_organization_grants(default_template: Template) -> None:
    for template in (default_template, synth(TWO_ACCOUNTS)):
        policies = json.dumps(template.find_resources("AWS::IAM::Policy"))
        assert "cloudformation:" not in policies
        assert "organizations:" not in policies
        assert "aws:ResourceOrgID" not in policies


def test_no_stack_set_without_organizational_units(all_options_template: Template) -> None:
    assert not synth(TWO_ACCOUNTS).find_resources("AWS::CloudFormation::StackSet")
    assert all_options_template.find_resources("AWS::CloudFormation::StackSet")


def stack_set(template: Template) -> dict[str, Any]:
    ((_, resource),) = template.find_resources("AWS::CloudFormation::StackSet").items()
    properties: dict[str, Any] = resource["Properties"]
    return properties


def test_organizational_units_get_the_member_role_through_a_stack_set() -> None:
    props = stack_set(
        synth({**TWO_ACCOUNTS, "memberOrganizationalUnits": f"{OU},r-ab12", "memberRoleName": "R"})
    )
    assert props["PermissionModel"] == "SERVICE_MANAGED"
    assert props["CallAs"] == "DELEGATED_ADMIN"
    assert props["AutoDeployment"] == {"Enabled": True, "RetainStacksOnAccountRemoval": False}
    assert props["Capabilities"] == ["CAPABILITY_NAMED_IAM"]
    (group,) = props["StackInstancesGroup"]
    assert group["DeploymentTargets"] == {"OrganizationalUnitIds": [OU, "r-ab12"]}
    assert group["Regions"] == [{"Ref": "AWS::Region"}]  # IAM is global: one region
    # The member stack's own template, told the central account is this stack's.
    assert json.loads(props["TemplateBody"]) == member_template("R")
    assert props["Parameters"] == [
        {"ParameterKey": "CentralAccountId", "ParameterValue": {"Ref": "AWS::AccountId"}}
    ]
    ((_, role),) = [
        (k, r)
        for k, r in json.loads(props["TemplateBody"])["Resources"].items()
        if r["Type"] == "AWS::IAM::Role"
    ]
    assert role["Properties"]["RoleName"] == "R"


def test_the_management_account_creates_the_stack_set_as_itself() -> None:
    props = stack_set(synth({"memberOrganizationalUnits": OU, "stackSetCallAs": "SELF"}))
    assert props["CallAs"] == "SELF"


@pytest.mark.parametrize("context", [{}, TWO_ACCOUNTS])
def test_the_poller_reads_the_scopes_the_stack_gives_it(context: dict[str, str]) -> None:
    """The contract, end to end: the synthesized environment, parsed by the poller."""
    settings = pytest.importorskip("poller.settings")
    if not hasattr(settings, "WATCHED_ACCOUNTS_ENV"):
        pytest.skip("this poller does not read scopes")
    env = {
        name: value if isinstance(value, str) else "placeholder"
        for name, value in poller(synth(context))["Environment"]["Variables"].items()
    }
    env["TOPIC_ARN"] = env["PEOPLE_TOPIC_ARN"] = "arn:aws:sns:eu-west-1:444444444444:topic"
    parsed = settings.Settings.from_env({**env, "AWS_REGION": "eu-west-1"})
    accounts = tuple(context.get("accounts", "").split(",")) if context else ()
    regions = tuple(context.get("regions", "").split(",")) if context else ()
    assert (parsed.watched_accounts, parsed.watched_regions) == (accounts, regions)
    assert parsed.member_role_name == DEFAULT_MEMBER_ROLE_NAME


# Quotas the largest configuration must stay within (IAM, SNS and CloudFormation quotas).
ROLE_INLINE_POLICIES_CHARACTERS = 10_240  # non-whitespace, all of a role's inline policies
TOPIC_POLICY_BYTES = 30 * 1024
TEMPLATE_RESOURCES = 500
# A resource's ARN or name, once deployed, is no longer than this (the longest here: a log
# group's ARN, with the stack name and a generated suffix, in aws-us-gov).
DEPLOYED_ARN = "x" * 140


def deployed(template: Template) -> tuple[Deployment, dict[str, Any]]:
    """The template resolved in aws-us-gov (the longest partition name), with every Ref or
    GetAtt of a resource standing for an ARN of the longest length, except named alarms."""
    deployment = Deployment(template, "aws-us-gov", "us-gov-west-1", account="123456789012")
    resources = template.to_json()["Resources"]

    def arn(value: Any) -> Any:
        if isinstance(value, list):
            return [arn(item) for item in value]
        if not isinstance(value, dict):
            return value
        if "Fn::GetAtt" in value or ("Ref" in value and value["Ref"] in resources):
            target = resources[value.get("Fn::GetAtt", [value.get("Ref")])[0]]["Properties"]
            if "AlarmName" in target:
                name = deployment.resolve(target["AlarmName"])
                return f"arn:aws-us-gov:cloudwatch:us-gov-west-1:123456789012:alarm:{name}"
            return DEPLOYED_ARN
        return {key: arn(item) for key, item in value.items()}

    return deployment, arn(resources)


EXPLICIT_LIST = {k: v for k, v in ALL_OPTIONS.items() if k != "memberOrganizationalUnits"}
# Every region Amazon Personalize is in, with a solution version there too.
MANY_REGIONS = "us-east-1,us-east-2,us-west-2,eu-west-1,eu-central-1,ap-south-1,ap-northeast-1"
# An organization: accounts are found at run time, so the template is the same for 5 or 500
# accounts; 20 OUs (the root, or whatever groups 500 accounts) and the longest role name.
ORGANIZATION_OF_500 = {
    **EXPLICIT_LIST,
    "accounts": None,
    "regions": MANY_REGIONS,
    "memberOrganizationalUnits": ",".join(f"ou-ab12-{n:08d}" for n in range(20)),
    "memberRoleName": "R" * 64,
}
TEMPLATE_BYTES = 1_000_000  # CloudFormation's template size, uploaded through S3
STACK_SET_TEMPLATE_BODY_BYTES = 51_200  # an inline TemplateBody


@pytest.mark.parametrize(
    "context",
    [
        # Many scopes: 25 accounts x 5 regions, one alarm for them all.
        {
            **EXPLICIT_LIST,
            "accounts": ",".join(f"{n:012d}" for n in range(1, 26)),
            "regions": "eu-west-1,us-east-1,us-west-2,sa-east-1,ap-south-1",
        },
        # The most listed accounts with the longest member role name: 71 ARNs in the policy.
        {
            **EXPLICIT_LIST,
            "accounts": ",".join(f"{n:012d}" for n in range(1, 72)),
            "regions": "us-east-1",
            "memberRoleName": "R" * 64,
        },
        # 500 accounts' worth of organization, no list.
        ORGANIZATION_OF_500,
        # An organization with the longest list that limits it.
        {
            **ORGANIZATION_OF_500,
            "accounts": ",".join(f"{n:012d}" for n in range(1, 101)),
        },
    ],
    ids=["many scopes", "most accounts", "organization", "organization and a list"],
)
def test_the_largest_configuration_fits_aws_quotas(context: dict[str, str | None]) -> None:
    template = synth({key: value for key, value in context.items() if value is not None})
    deployment, resources = deployed(template)
    assert len(resources) < TEMPLATE_RESOURCES
    assert len(json.dumps(template.to_json(), separators=(",", ":"))) < TEMPLATE_BYTES
    assert len(unreachable_alarms(template)) == 1
    for stack_set_resource in template.find_resources("AWS::CloudFormation::StackSet").values():
        body = stack_set_resource["Properties"]["TemplateBody"]
        assert len(body.encode()) <= STACK_SET_TEMPLATE_BODY_BYTES
    # Lambda allows a function 4 KB of environment variables (names and values).
    env = deployment.resolve(poller(template)["Environment"]["Variables"])
    assert sum(len(name) + len(str(value)) for name, value in env.items()) <= 4 * 1024
    role_id = poller(template)["Role"]["Fn::GetAtt"][0]
    poller_policies = [
        deployment.resolve(resources[policy_id]["Properties"]["PolicyDocument"])
        for policy_id, policy in template.find_resources("AWS::IAM::Policy").items()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
    ]
    inline = "".join(json.dumps(doc, separators=(",", ":")) for doc in poller_policies)
    assert len("".join(inline.split())) <= ROLE_INLINE_POLICIES_CHARACTERS
    for topic_policy in template.find_resources("AWS::SNS::TopicPolicy"):
        document = deployment.resolve(resources[topic_policy]["Properties"]["PolicyDocument"])
        assert len(json.dumps(document, separators=(",", ":")).encode()) <= TOPIC_POLICY_BYTES


def test_the_poller_has_memory_for_the_scopes_it_watches() -> None:
    # Each watched account and region holds clients (0.3 MiB, `make bench`): an organization,
    # whose accounts are found at run time, or a long list gets 1,024 MB; `pollerMemoryMB`
    # sets it.
    regions = [r for r in PERSONALIZE_REGIONS if not r.startswith("cn-")]  # the aws partition
    many = [f"{100000000000 + i:012d}" for i in range(SCOPES_IN_512_MB // len(regions) + 1)]
    assert poller(synth(TWO_ACCOUNTS))["MemorySize"] == POLLER_MB
    assert poller(synth(ORGANIZATION))["MemorySize"] == LARGE_POLLER_MB
    listed = {"accounts": ",".join(many), "regions": ",".join(regions)}
    assert poller(synth(listed))["MemorySize"] == LARGE_POLLER_MB
    assert poller(synth({**ORGANIZATION, "pollerMemoryMB": "2048"}))["MemorySize"] == 2048
