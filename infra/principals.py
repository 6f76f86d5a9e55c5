"""The AWS service principals this stack trusts, each named once.

Every service-to-service delivery in the stack is authorized for one of these principals in
a resource policy (topic, queue, Lambda permission) or a key policy.
"""

from __future__ import annotations

from aws_cdk import Aws, Fn

CLOUDWATCH = "cloudwatch.amazonaws.com"  # alarm actions publish to SNS as this principal
EVENTS = "events.amazonaws.com"  # EventBridge rules invoke targets and write their DLQs
LAMBDA = "lambda.amazonaws.com"  # assumes the functions' execution roles
SNS = "sns.amazonaws.com"  # invokes Lambda subscribers and writes subscription DLQs


def cloudwatch_logs() -> str:
    """CloudWatch Logs uses a key as a regional principal: logs.<region>.<partition suffix>."""
    return Fn.join(".", ["logs", Aws.REGION, Aws.URL_SUFFIX])
