"""The template resolves to the right ARNs in each AWS partition, or refuses to deploy.

A small evaluator resolves the template's intrinsic functions as CloudFormation would in a
given partition and region.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from aws_cdk.assertions import Template

URL_SUFFIXES = {"aws": "amazonaws.com", "aws-cn": "amazonaws.com.cn"}
# Publishers of the public Powertools for AWS Lambda (Python) layer, from its documentation
# ("Installation > Lambda Layer": all regions, AWS China regions, AWS GovCloud regions).
PUBLISHED = [
    ("aws", "eu-west-1", "017000801446"),
    ("aws", "us-east-1", "017000801446"),
    ("aws-cn", "cn-north-1", "498634801083"),
    ("aws-us-gov", "us-gov-east-1", "165087284144"),
    ("aws-us-gov", "us-gov-west-1", "165093116878"),
]
NOT_PUBLISHED = [("aws-cn", "cn-northwest-1"), ("aws-iso", "us-iso-east-1")]
NO_VALUE = object()


class Deployment:
    """Resolves intrinsic functions as CloudFormation would in one partition and region."""

    def __init__(
        self,
        template: Template,
        partition: str,
        region: str,
        account: str = "111122223333",
        parameters: dict[str, str] | None = None,
    ) -> None:
        self.template = template.to_json()
        self.pseudo = {
            "AWS::Partition": partition,
            "AWS::Region": region,
            "AWS::AccountId": account,
            "AWS::URLSuffix": URL_SUFFIXES.get(partition, "amazonaws.com"),
            **(parameters or {}),
        }

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            # AWS::NoValue removes the list item it is.
            return [item for item in map(self.resolve, value) if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) != 1 or not next(iter(value)).startswith(("Fn::", "Ref")):
            return {key: self.resolve(item) for key, item in value.items()}
        ((function, argument),) = value.items()
        if function == "Ref":
            if argument == "AWS::NoValue":
                return NO_VALUE
            return self.pseudo.get(argument, value)  # a resource's Ref: left as it is
        if function == "Fn::GetAtt":
            return value  # known once deployed
        if function == "Fn::Not":
            (operand,) = self.resolve(argument)
            return not operand
        if function == "Fn::Join":
            separator, parts = argument
            return separator.join(self.resolve(parts))
        if function == "Fn::If":
            condition, when_true, when_false = argument
            return self.resolve(when_true if self.holds(condition) else when_false)
        if function == "Fn::Equals":
            first, second = self.resolve(argument)
            return first == second
        if function == "Fn::Or":
            return any(self.resolve(argument))
        if function == "Fn::Contains":
            options, candidate = self.resolve(argument)
            return candidate in options
        raise NotImplementedError(function)

    def holds(self, condition: str) -> bool:
        return bool(self.resolve(self.template["Conditions"][condition]))

    def resources(self, resource_type: str) -> dict[str, Any]:
        """The resources of a type that exist here (their condition, if any, holds)."""
        return {
            logical_id: resource
            for logical_id, resource in self.template["Resources"].items()
            if resource["Type"] == resource_type
            and ("Condition" not in resource or self.holds(resource["Condition"]))
        }

    def refusals(self) -> list[str]:
        """The descriptions of the rule assertions that fail here.

        Rules on parameters (CDK's bootstrap version check) are left out: they validate
        inputs this evaluator has no value for.
        """
        parameters = [{"Ref": name} for name in self.template.get("Parameters", {})]
        return [
            assertion["AssertDescription"]
            for rule in self.template.get("Rules", {}).values()
            for assertion in rule["Assertions"]
            if not any(str(parameter) in str(assertion) for parameter in parameters)
            if not self.resolve(assertion["Assert"])
        ]

    def layer_arns(self) -> list[str]:
        return [
            self.resolve(layer)
            for resource in self.template["Resources"].values()
            if resource["Type"] == "AWS::Lambda::Function"
            for layer in resource["Properties"]["Layers"]
        ]


@pytest.mark.parametrize(("partition", "region", "publisher"), PUBLISHED)
def test_the_powertools_layer_comes_from_its_publisher_in_that_region(
    all_options_template: Template, partition: str, region: str, publisher: str
) -> None:
    deployment = Deployment(all_options_template, partition, region)
    assert deployment.refusals() == []
    layers = deployment.layer_arns()
    assert len(layers) == 2  # the poller and the Slack forwarder
    for arn in layers:
        assert arn == (
            f"arn:{partition}:lambda:{region}:{publisher}:layer:"
            "AWSLambdaPowertoolsPythonV3-python313-arm64:27"
        )


@pytest.mark.parametrize(("partition", "region"), NOT_PUBLISHED)
def test_deploying_where_no_layer_is_published_fails_with_a_reason(
    default_template: Template, partition: str, region: str
) -> None:
    (reason,) = Deployment(default_template, partition, region).refusals()
    assert "Powertools" in reason
    assert "cn-north-1, us-gov-east-1, us-gov-west-1" in reason


def test_cloudwatch_logs_principal_follows_the_partition(default_template: Template) -> None:
    deployment = Deployment(default_template, "aws-cn", "cn-north-1")
    (key,) = [r for r in deployment.template["Resources"].values() if r["Type"] == "AWS::KMS::Key"]
    services = [
        deployment.resolve(statement["Principal"]["Service"])
        for statement in key["Properties"]["KeyPolicy"]["Statement"]
        if "Service" in statement.get("Principal", {})
    ]
    assert "logs.cn-north-1.amazonaws.com.cn" in services
