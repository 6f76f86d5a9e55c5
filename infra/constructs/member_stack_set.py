"""The member role in every account of some organizational units, through a StackSet.

A service-managed StackSet deploys the member stack's template to each account of the OUs,
and to accounts that join them later (auto-deployment); an account that leaves loses the
role. Prerequisites (CloudFormation User Guide, "Activate trusted access for StackSets with
AWS Organizations" and "Register a delegated administrator member account"): all features
enabled in Organizations, trusted access activated for StackSets, and this stack deployed in
the management account (`stackSetCallAs=SELF`) or in a registered delegated administrator
(`DELEGATED_ADMIN`, the default). StackSets never deploys to the management account itself.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from aws_cdk import Aws, Stack
from aws_cdk import aws_cloudformation as cloudformation
from constructs import Construct

from infra.member_stack import CENTRAL_ACCOUNT_PARAMETER, member_template
from infra.scopes import member_stack_set_name

if TYPE_CHECKING:
    from collections.abc import Sequence


class MemberStackSet(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        role_name: str,
        organizational_units: Sequence[str],
        call_as: str,
    ) -> None:
        super().__init__(scope, id)
        self.stack_set = cloudformation.CfnStackSet(
            self,
            "StackSet",
            # Fixed: the poller lists its instances (the member accounts) by this name.
            stack_set_name=member_stack_set_name(Stack.of(self).stack_name),
            description=f"The {role_name} role, which lets the Personalize batch segment job "
            "notifier's poller read batch segment jobs",
            permission_model="SERVICE_MANAGED",
            call_as=call_as,
            auto_deployment=cloudformation.CfnStackSet.AutoDeploymentProperty(
                enabled=True, retain_stacks_on_account_removal=False
            ),
            capabilities=["CAPABILITY_NAMED_IAM"],  # the role has a fixed name
            template_body=json.dumps(member_template(role_name), sort_keys=True),
            parameters=[
                cloudformation.CfnStackSet.ParameterProperty(
                    parameter_key=CENTRAL_ACCOUNT_PARAMETER, parameter_value=Aws.ACCOUNT_ID
                )
            ],
            stack_instances_group=[
                cloudformation.CfnStackSet.StackInstancesProperty(
                    deployment_targets=cloudformation.CfnStackSet.DeploymentTargetsProperty(
                        organizational_unit_ids=list(organizational_units)
                    ),
                    # IAM is global: one region creates the role for all of them.
                    regions=[Aws.REGION],
                )
            ],
            # One account that cannot take the role (a role of that name exists, an SCP denies
            # IAM) does not hold up the others; the poller names it (ScopeErrors).
            operation_preferences=cloudformation.CfnStackSet.OperationPreferencesProperty(
                concurrency_mode="SOFT_FAILURE_TOLERANCE",
                failure_tolerance_percentage=100,
                max_concurrent_percentage=100,
            ),
        )
