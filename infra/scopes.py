"""The watched scopes, and the names the stacks and the poller share about them.

A scope is one (account, region) pair; the poller watches every pair of the configured
accounts and regions. In an organization (`memberOrganizationalUnits`) the accounts are the
member StackSet's instances, which the poller lists at run time (`accounts`, if given,
limits them). In its own account it uses its own role; in every other account it
assumes the member role, which the member stack (`PersonalizeJobReader`) creates there.

The poller reads its environment variables and emits its metric under names the poller
defines (poller.settings, poller.report); the stack imports them from there.
"""

from __future__ import annotations

from aws_cdk import Aws

from infra.config import STACK_NAME

# The member stack, deployable by itself into each member account (or through a StackSet).
MEMBER_STACK_NAME = "PersonalizeJobReader"
# The poller's role has this fixed name when it watches other accounts, so that each member
# role can trust exactly it (by `aws:PrincipalArn`) before or after it exists.
POLLER_ROLE_NAME = f"{STACK_NAME}-Poller"


def member_role_arn(account: str, role_name: str) -> str:
    """The role the poller assumes in a member account."""
    return f"arn:{Aws.PARTITION}:iam::{account}:role/{role_name}"


def any_member_role_arn(role_name: str) -> str:
    """The member role by name in every account: the poller's grant in an organization, where
    a condition on the role's organization (not a list of accounts) limits it."""
    return member_role_arn("*", role_name)


def member_stack_set_name(stack_name: str) -> str:
    """The StackSet that gives the OUs' accounts the member role: a fixed name, so the poller
    can list its instances (the member accounts) by it."""
    return f"{stack_name}-{MEMBER_STACK_NAME}"


def member_stack_set_arn(stack_name: str, account: str) -> str:
    """The StackSet's ARN (`stackset/<name>:<id>`, the ID a suffix CloudFormation assigns).
    A service-managed StackSet lives in the organization's management account, a delegated
    administrator's included: `account` is `*` when that is not this stack's."""
    name = member_stack_set_name(stack_name)
    return f"arn:{Aws.PARTITION}:cloudformation:{Aws.REGION}:{account}:stackset/{name}:*"


def poller_role_arn(central_account: str) -> str:
    """The central poller's role, as the member role's trust policy names it."""
    return f"arn:{Aws.PARTITION}:iam::{central_account}:role/{POLLER_ROLE_NAME}"
