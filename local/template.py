"""Read the synthesized stack so the local run is built from what deploys.

The poller's handler, environment, the snapshot table's keys and the topic all come from
the CloudFormation template that `python app.py` writes. If infra/ renames a variable or
changes the table's key, the local run follows; anything it cannot resolve fails loudly.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
# What a synthesized template depends on: the app, its configuration, the pinned CDK, the
# Lambda code (its asset hash) and how this module synthesizes it.
SYNTH_INPUTS = ("app.py", "cdk.json", "requirements.txt", "infra", "lambdas", "local/template.py")
SYNTH_CACHE = Path(tempfile.gettempdir()) / "notifier-synth-cache"
# As the Makefile sets them: jsii's banner about this Node.js version is not a synth's news.
QUIET_JSII = {
    "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1",
    "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20,22",
}


class TemplateError(RuntimeError):
    """The template does not have the shape the local run needs."""


@dataclass(frozen=True)
class PollerSpec:
    """What the local run needs to know about the deployed poller."""

    handler: str
    memory_mb: int
    environment: dict[str, Any]
    schedule_expression: str
    table_id: str
    table: dict[str, Any]
    topic_ids: dict[str, str]  # environment variable -> topic logical ID
    email_filter_policy: dict[str, Any] | None  # of the email subscriptions
    email_topic_id: str | None  # the topic emails subscribe to


def synth(context: dict[str, Any] | None = None, stack_name: str | None = None) -> dict[str, Any]:
    """The stack's template, as `python app.py` writes it for this context: the named
    stack's, or by default the poller's."""
    templates: dict[str, dict[str, Any]] = {
        path.name.removesuffix(".template.json"): json.loads(path.read_text())
        for path in sorted(cloud_assembly(context).glob("*.template.json"))
    }
    if stack_name:
        chosen = [t for name, t in templates.items() if name == stack_name]
    else:  # the stack with the poller: the one with a schedule (others are for members)
        chosen = [t for t in templates.values() if _scheduled(t)]
    if len(chosen) != 1:
        raise TemplateError(f"expected one poller stack, found {sorted(templates)}")
    return chosen[0]


def cloud_assembly(context: dict[str, Any] | None = None) -> Path:
    """The manifest, templates and metadata that `python app.py` writes for this context,
    run as the CDK CLI runs it (assets left out).

    Running the app takes several seconds of CPU, so each result is kept, keyed by the
    context and the content of everything it depends on: test workers, the demo and the
    benchmark run a given app once, and a changed app is run anew.
    """
    SYNTH_CACHE.mkdir(exist_ok=True)
    sources, newest = _sources()
    key = hashlib.sha256(json.dumps([context or {}, sources], sort_keys=True).encode())
    kept = SYNTH_CACHE / key.hexdigest()[:32]
    with kept.with_suffix(".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one process runs the app, the others wait for it
        if not kept.exists():
            with tempfile.TemporaryDirectory(prefix="cdk-local-") as outdir:
                _run_app(context, Path(outdir), changed_at=newest)
                partial = Path(tempfile.mkdtemp(prefix=f"{kept.name}.", dir=SYNTH_CACHE))
                for path in Path(outdir).glob("*.json"):
                    shutil.copy(path, partial / path.name)
                partial.replace(kept)
    return kept


def cli_context(context: dict[str, Any] | None = None) -> dict[str, Any]:
    """The context the CDK CLI gives the app: cdk.json's (feature flags), then `-c` values."""
    cdk_json: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text())
    return {**cdk_json.get("context", {}), **(context or {})}


def _sources() -> tuple[str, float]:
    """The digest of everything a template depends on, and when the newest of it changed."""
    digest, newest = hashlib.sha256(), 0.0
    for name in SYNTH_INPUTS:
        top = ROOT / name
        for path in sorted([top] if top.is_file() else top.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
                newest = max(newest, path.stat().st_mtime)
    return digest.hexdigest(), newest


def _process_started() -> float | None:
    """When this process started (from Linux's /proc; None elsewhere). Rounded down, so a
    file changed after it never looks older."""
    try:
        after_name = Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()
        stat = Path("/proc/stat").read_text().split()
        boot = float(stat[stat.index("btime") + 1])
        return boot + int(after_name[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def _run_app(context: dict[str, Any] | None, outdir: Path, *, changed_at: float) -> None:
    """What `python app.py` writes when the CDK CLI runs it, given cdk.json's context and
    this one.

    Built in this process when nothing it depends on has changed since the process started,
    so the app's modules it may have loaded are the code on disk (and loading the CDK costs
    seconds, which a test worker has spent already); otherwise by `python app.py` in a
    process of its own. Either way a kept run matches its key.
    """
    started = _process_started()
    if started is not None and changed_at < started:
        _build_here(cli_context(context), outdir)
        return
    result = run_app_py(context, outdir)
    if result.returncode != 0:
        raise TemplateError(f"synth failed:\n{result.stderr.strip()}")


def run_app_py(
    context: dict[str, Any] | None, outdir: Path, *, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """`python app.py` in a process of its own, as the CDK CLI runs it: cdk.json's context
    and this one, and the output directory, in its environment."""
    env = {
        **os.environ,
        **QUIET_JSII,
        "CDK_OUTDIR": str(outdir),
        "CDK_CONTEXT_JSON": json.dumps(cli_context(context)),
    }
    return subprocess.run(  # noqa: S603 - runs this repository's own app.py
        [sys.executable, str(ROOT / "app.py")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


def _build_here(context: dict[str, Any], outdir: Path) -> None:
    for name, value in QUIET_JSII.items():
        os.environ.setdefault(name, value)
    import aws_cdk as cdk  # noqa: PLC0415 - seconds to load, and a kept run needs none of it

    from app import build  # noqa: PLC0415
    from infra.config import ConfigError  # noqa: PLC0415

    app = cdk.App(context=context, outdir=str(outdir))
    try:
        build(app)
    except ConfigError as err:
        raise TemplateError(f"synth failed:\nInvalid configuration: {err}") from err
    app.synth()


def _scheduled(template: dict[str, Any]) -> bool:
    rules = _of_type(template.get("Resources", {}), "AWS::Events::Rule").values()
    return any("ScheduleExpression" in rule.get("Properties", {}) for rule in rules)


def _of_type(resources: dict[str, Any], kind: str) -> dict[str, Any]:
    return {rid: r for rid, r in resources.items() if r.get("Type") == kind}


def read_poller(template: dict[str, Any]) -> PollerSpec:
    """Find the function the schedule targets, and the table and topic it is wired to."""
    resources: dict[str, Any] = template.get("Resources", {})
    scheduled = [
        (rule["Properties"]["ScheduleExpression"], target["Arn"]["Fn::GetAtt"][0])
        for rule in _of_type(resources, "AWS::Events::Rule").values()
        if "ScheduleExpression" in rule.get("Properties", {})
        for target in rule["Properties"].get("Targets", [])
        if isinstance(target.get("Arn"), dict) and "Fn::GetAtt" in target["Arn"]
    ]
    if len(scheduled) != 1:
        raise TemplateError(f"expected one scheduled Lambda target, found {len(scheduled)}")
    schedule, function_id = scheduled[0]
    function = resources[function_id]["Properties"]
    environment = function.get("Environment", {}).get("Variables", {})

    referenced = {
        value["Ref"] for value in environment.values() if isinstance(value, dict) and "Ref" in value
    }
    tables = [r for r in referenced if resources.get(r, {}).get("Type") == "AWS::DynamoDB::Table"]
    topic_ids = {
        name: value["Ref"]
        for name, value in environment.items()
        if isinstance(value, dict)
        and resources.get(value.get("Ref", ""), {}).get("Type") == "AWS::SNS::Topic"
    }
    if len(tables) != 1 or not topic_ids:
        raise TemplateError(
            f"the poller's environment should reference one table and its topics, found "
            f"tables={tables} topics={topic_ids}"
        )
    table_props = resources[tables[0]]["Properties"]
    email_subscriptions = [
        sub["Properties"]
        for sub in _of_type(resources, "AWS::SNS::Subscription").values()
        if sub["Properties"].get("Protocol") == "email"
        and sub["Properties"].get("TopicArn", {}).get("Ref") in topic_ids.values()
    ]
    return PollerSpec(
        handler=function["Handler"],
        memory_mb=int(function["MemorySize"]),
        environment=environment,
        schedule_expression=schedule,
        table_id=tables[0],
        table={
            key: table_props[key]
            for key in ("KeySchema", "AttributeDefinitions", "BillingMode")
            if key in table_props
        },
        topic_ids=topic_ids,
        email_filter_policy=email_subscriptions[0].get("FilterPolicy")
        if email_subscriptions
        else None,
        email_topic_id=email_subscriptions[0]["TopicArn"]["Ref"] if email_subscriptions else None,
    )


def schedule_minutes(expression: str) -> int:
    """'rate(5 minutes)' -> 5; the demo's simulated clock advances by this per tick."""
    inner = expression.removeprefix("rate(").removesuffix(")").split()
    if len(inner) != 2:
        raise TemplateError(f"unsupported schedule expression {expression!r}")
    amount, unit = int(inner[0]), inner[1].rstrip("s")
    factor = {"minute": 1, "hour": 60, "day": 1440}.get(unit)
    if factor is None:
        raise TemplateError(f"unsupported schedule unit in {expression!r}")
    return amount * factor
