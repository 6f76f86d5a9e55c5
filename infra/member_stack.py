"""The member stack: one role in a member account that the central poller may assume.

Deploy it by itself into each member account (`npx cdk deploy PersonalizeJobReader -c
centralAccount=...`), or let the central stack deploy it to organizational units through a
StackSet (`memberOrganizationalUnits`), which embeds this same template.
"""

from __future__ import annotations

import tempfile
from typing import TYPE_CHECKING, Any

import aws_cdk as cdk
from aws_cdk import Annotations, Aws, CfnParameter, Stack
from aws_cdk import aws_iam as iam
from cdk_nag import NagPackSuppression, NagSuppressions, RegexAppliesTo

from infra.scopes import MEMBER_STACK_NAME, POLLER_ROLE_NAME, poller_role_arn

if TYPE_CHECKING:
    from constructs import Construct

CENTRAL_ACCOUNT_PARAMETER = "CentralAccountId"
LIST_JOBS = "personalize:ListBatchSegmentJobs"
DESCRIBE_JOB = "personalize:DescribeBatchSegmentJob"


class JobReaderStack(Stack):
    """The member role, trusted by the central poller's role and allowed to read jobs only.

    The central account is a parameter, so the StackSet can pass its own; deployed by itself,
    its default is `centralAccount`. Synthesized with the legacy synthesizer: no bootstrap
    version parameter or rule, and no `cdk bootstrap` needed in member accounts (there are no
    assets, and the template is deployed inline with the CLI's credentials).
    """

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        role_name: str,
        central_account: str | None,
        require_central_account: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            scope,
            id,
            description="Lets the Personalize batch segment job notifier of a central account "
            "read this account's batch segment jobs",
            synthesizer=cdk.LegacyStackSynthesizer(),
            **kwargs,
        )
        if central_account is None and require_central_account:
            Annotations.of(self).add_error(
                f"centralAccount: required to synthesize {id}: the 12-digit ID of the account "
                f"the notifier runs in, e.g. `npx cdk deploy {id} -c centralAccount=111122223333`"
            )
        central = CfnParameter(
            self,
            CENTRAL_ACCOUNT_PARAMETER,
            type="String",
            allowed_pattern=r"^\d{12}$",
            description="The account the notifier's poller runs in",
            default=central_account,
        ).value_as_string
        self.role = iam.Role(
            self,
            "Reader",
            role_name=role_name,
            description=f"Assumed by the role {POLLER_ROLE_NAME} of the Personalize batch "
            "segment job notifier to read batch segment jobs",
            # The central account's root with the exact role as the condition: unlike the
            # role's ARN as principal, this deploys before that role exists and survives its
            # replacement (IAM stores a role principal as the role's unique ID).
            assumed_by=iam.AccountPrincipal(central).with_conditions(
                {"ArnEquals": {"aws:PrincipalArn": poller_role_arn(central)}}
            ),
            inline_policies={
                "ReadBatchSegmentJobs": iam.PolicyDocument(
                    statements=[
                        iam.PolicyStatement(actions=[LIST_JOBS], resources=["*"]),
                        iam.PolicyStatement(
                            actions=[DESCRIBE_JOB],
                            resources=[
                                f"arn:{Aws.PARTITION}:personalize:*:{Aws.ACCOUNT_ID}:"
                                "batch-segment-job/*"
                            ],
                        ),
                    ]
                )
            },
        )
        NagSuppressions.add_resource_suppressions(
            self.role,
            [
                NagPackSuppression(
                    id="AwsSolutions-IAM5",
                    reason="personalize:ListBatchSegmentJobs has no resource-level permissions: "
                    "it takes Resource '*'.",
                    applies_to=["Resource::*"],
                ),
                NagPackSuppression(
                    id="AwsSolutions-IAM5",
                    reason="DescribeBatchSegmentJob on every batch segment job of this account, "
                    "in every region: the region is a wildcard because the central stack "
                    "chooses which regions it watches, and one role serves them all.",
                    applies_to=[
                        RegexAppliesTo(
                            regex=r"/^Resource::arn:<AWS::Partition>:personalize:\*:"
                            r"<AWS::AccountId>:batch-segment-job\/\*$/g"
                        )
                    ],
                ),
            ],
        )


def member_template(role_name: str) -> dict[str, Any]:
    """The member stack's template, as the StackSet deploys it (the central account is given
    as its parameter).

    Synthesized in an app of its own, apart from the one being built, with no version
    reporting or path metadata, so it is the same wherever it is synthesized.
    """
    with tempfile.TemporaryDirectory(prefix="member-template-") as outdir:
        app = cdk.App(
            outdir=outdir,
            post_cli_context={
                "aws:cdk:version-reporting": False,
                "aws:cdk:enable-path-metadata": False,
            },
        )
        stack = JobReaderStack(
            app,
            MEMBER_STACK_NAME,
            role_name=role_name,
            central_account=None,
            require_central_account=False,
        )
        template: dict[str, Any] = app.synth().get_stack_artifact(stack.artifact_id).template
        return template
