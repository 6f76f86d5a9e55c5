"""What a deploy would take away that people or other accounts rely on; `make deploy` asks
before it does.

A deploy replaces the stack with what the settings say now, so a setting left out of a
deploy is a setting removed: its subscriptions, its StackSet (and every member role the
StackSet created), the poller role's fixed name (which the member roles trust). This module
compares the template CloudFormation has with the one about to be deployed, offline
(`losses`), and names each such removal; `main` fetches the deployed template and asks.

    python -m infra.deploy_check STACK NEW_TEMPLATE [--deployed FILE] [--yes] [-- CDK ARGS]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence

Resources = dict[str, dict[str, Any]]
# What makes CloudFormation replace a subscription (delete it, create another): its
# subscriber must confirm again, and misses what is published meanwhile.
_SUBSCRIPTION_IDENTITY = ("Protocol", "Endpoint", "TopicArn")
_STACK_SET_IDENTITY = ("StackSetName", "PermissionModel")


class UnreadableError(RuntimeError):
    """The deployed template could not be read (credentials, permissions, the network)."""


@dataclass(frozen=True)
class Loss:
    """One thing the deploy removes: the resource's logical ID, and what is lost."""

    resource: str
    what: str


def losses(deployed: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[Loss]:
    """What deploying `new` over `deployed` (None: nothing deployed yet) removes: email and
    other subscriptions, Slack channel configurations, a StackSet or some of its targets,
    and roles whose name others rely on (deleted, or renamed, which replaces them)."""
    if not deployed:
        return []
    old, now = _resources(deployed), _resources(new)
    return [
        *_subscriptions(old, now),
        *_slack_channels(old, now),
        *_stack_sets(old, now),
        *_named_roles(old, now, where=""),
    ]


def _resources(template: Mapping[str, Any]) -> Resources:
    resources: Resources = template.get("Resources") or {}
    return resources


def _of_type(resources: Resources, kind: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for logical_id, resource in resources.items():
        if resource.get("Type") == kind:
            yield logical_id, resource.get("Properties") or {}


def _changed(old: dict[str, Any], new: dict[str, Any], keys: Sequence[str]) -> bool:
    """Replaced: one of the properties that identify it changed."""
    return any(old.get(key) != new.get(key) for key in keys)


def _properties(resources: Resources, logical_id: str, kind: str) -> dict[str, Any] | None:
    resource = resources.get(logical_id)
    if resource is None or resource.get("Type") != kind:
        return None
    properties: dict[str, Any] = resource.get("Properties") or {}
    return properties


def _subscriptions(old: Resources, now: Resources) -> Iterator[Loss]:
    kind = "AWS::SNS::Subscription"
    for logical_id, props in _of_type(old, kind):
        new = _properties(now, logical_id, kind)
        if new is None or _changed(props, new, _SUBSCRIPTION_IDENTITY):
            yield Loss(
                logical_id,
                f"the {props.get('Protocol')} subscription {_shown(props.get('Endpoint'))} "
                f"of the topic {_shown(props.get('TopicArn'))} is removed",
            )


def _slack_channels(old: Resources, now: Resources) -> Iterator[Loss]:
    kind = "AWS::Chatbot::SlackChannelConfiguration"
    for logical_id, props in _of_type(old, kind):
        if _properties(now, logical_id, kind) is None:
            yield Loss(
                logical_id,
                f"the Slack channel {_shown(props.get('SlackChannelId'))} no longer gets the "
                f"topic's messages (its AWS Chatbot configuration is deleted)",
            )


def _stack_sets(old: Resources, now: Resources) -> Iterator[Loss]:
    kind = "AWS::CloudFormation::StackSet"
    for logical_id, props in _of_type(old, kind):
        name = _shown(props.get("StackSetName"))
        new = _properties(now, logical_id, kind)
        if new is None or _changed(props, new, _STACK_SET_IDENTITY):
            yield Loss(
                logical_id,
                f"the StackSet {name} is {'deleted' if new is None else 'replaced'}, and with "
                f"it the member role in every account of {', '.join(_targets(props)) or 'it'}",
            )
            continue
        dropped = [ou for ou in _targets(props) if ou not in _targets(new)]
        if dropped:
            yield Loss(
                logical_id,
                f"the StackSet {name} no longer targets {', '.join(dropped)}: their accounts "
                f"lose the member role",
            )
        yield from _named_roles(
            _resources(_template(props.get("TemplateBody"))),
            _resources(_template(new.get("TemplateBody"))),
            where=f" in every account of the StackSet {name}",
        )


def _targets(props: Mapping[str, Any]) -> list[str]:
    """The organizational units (or root) a StackSet deploys to."""
    return [
        str(unit)
        for group in props.get("StackInstancesGroup") or []
        for unit in (group.get("DeploymentTargets") or {}).get("OrganizationalUnitIds") or []
    ]


def _template(body: Any) -> dict[str, Any]:
    """A StackSet's TemplateBody: JSON text, as the CDK writes it."""
    if isinstance(body, str):
        try:
            parsed = json.loads(body)
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}
    return {}


def _named_roles(old: Resources, now: Resources, *, where: str) -> Iterator[Loss]:
    """Roles with a fixed name that the deploy deletes or renames: whatever trusts or
    assumes them by that name stops matching (the member roles trust the poller's role
    by name; the poller assumes each member role by name)."""
    kind = "AWS::IAM::Role"
    for logical_id, props in _of_type(old, kind):
        name = props.get("RoleName")
        if name is None:
            continue  # a generated name: nothing names it
        new = _properties(now, logical_id, kind)
        if new is None:
            change = "deleted"
        elif new.get("RoleName") is None:
            change = "renamed to a generated name"
        elif new.get("RoleName") != name:
            change = f"renamed to {_shown(new.get('RoleName'))}"
        else:
            continue
        yield Loss(
            logical_id,
            f"the role {_shown(name)}{where} is {change}: whatever trusts or assumes it by "
            f"that name no longer matches it",
        )


def _shown(value: Any) -> str:
    """A property as people read it: a literal as it is, a reference by what it names."""
    if isinstance(value, dict) and len(value) == 1:
        ((function, argument),) = value.items()
        if function == "Ref":
            return _construct(str(argument))
        if function == "Fn::GetAtt":
            target = argument[0] if isinstance(argument, list) else argument
            return _construct(str(target).split(".")[0])
        return json.dumps(value, sort_keys=True)
    return str(value)


def _construct(logical_id: str) -> str:
    """A logical ID without the CDK's hash: ChannelsPeople0AC9A8BF -> ChannelsPeople."""
    return re.sub(r"[0-9A-F]{8}$", "", logical_id) or logical_id


def proceed(found: Sequence[Loss], *, confirmed: bool, ask: Callable[[str], str] | None) -> bool:
    """Whether to deploy: yes when nothing is lost or the person deploying said so already
    (`--yes`); otherwise only if asked (`ask` is None where no one can answer) and they
    answer yes."""
    if not found or confirmed:
        return True
    if ask is None:
        return False
    return ask("Deploy anyway? Type yes to go on: ").strip().lower() in {"y", "yes"}


def report(stack: str, found: Sequence[Loss]) -> str:
    lines = [f"Deploying {stack} would remove what people or other accounts rely on:"]
    lines += [f"  - {loss.what} ({loss.resource})" for loss in found]
    lines.append(
        "If a setting was left out by mistake, put it back in settings.toml (a -c flag lasts "
        "one run only)."
    )
    return "\n".join(lines)


def deployed_template(stack: str, profile: str | None) -> dict[str, Any] | None:
    """The template CloudFormation has for the stack, where the CDK CLI would deploy it (its
    profile, region and credentials); None if there is no such stack yet."""
    import boto3  # noqa: PLC0415 - only for a real deploy
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    try:
        session = boto3.session.Session(profile_name=profile)
        # Without a configured region, the CDK CLI deploys to us-east-1.
        region = session.region_name or "us-east-1"
        client: Any = session.client("cloudformation", region_name=region)
        body = client.get_template(StackName=stack, TemplateStage="Original")["TemplateBody"]
    except ClientError as err:
        if "does not exist" in str(err):
            return None
        raise UnreadableError(f"cannot read the deployed template of {stack}: {err}") from err
    except BotoCoreError as err:
        raise UnreadableError(f"cannot read the deployed template of {stack}: {err}") from err
    parsed: dict[str, Any] = json.loads(body) if isinstance(body, str) else dict(body)
    return parsed


def _profile(cdk_args: Sequence[str]) -> str | None:
    """The `--profile` among the CDK CLI's arguments, which the deploy will use."""
    for index, arg in enumerate(cdk_args):
        if arg == "--profile" and index + 1 < len(cdk_args):
            return cdk_args[index + 1]
        if arg.startswith("--profile="):
            return arg.split("=", 1)[1]
    return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("stack", help="the stack to deploy")
    parser.add_argument("template", type=Path, help="its new template: cdk.out/STACK.template.json")
    parser.add_argument("--deployed", type=Path, help="compare with this template, not AWS's")
    parser.add_argument("--yes", action="store_true", help="deploy even if something is lost")
    arguments = list(sys.argv[1:] if argv is None else argv)
    # After `--`: the CDK CLI's arguments, for its --profile (argparse would take them as
    # its own, or miss them after the positionals).
    split = arguments.index("--") if "--" in arguments else len(arguments)
    args = parser.parse_args(arguments[:split])
    cdk_args = arguments[split + 1 :]
    new = json.loads(args.template.read_text())
    if args.deployed:
        deployed = json.loads(args.deployed.read_text())
    else:
        try:
            deployed = deployed_template(args.stack, _profile(cdk_args))
        except UnreadableError as err:
            print(f"{err}\nNot deployed.", file=sys.stderr)
            return 1
    found = losses(deployed, new)
    if found:
        print(report(args.stack, found), file=sys.stderr)
    ask = input if sys.stdin.isatty() else None
    if proceed(found, confirmed=args.yes, ask=ask):
        return 0
    print("Not deployed. To deploy anyway: make deploy CONFIRM=yes", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
