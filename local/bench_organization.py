"""`make bench`'s largest organization: how long one poller takes over 200 accounts x 3
regions, and so how large an organization it handles.

The stack is synthesized with `memberOrganizationalUnits` and no account list, so the
poller finds its accounts itself, in the member StackSet's instances (moto's
CloudFormation), assumes the member role in each (moto's STS) and lists every account and
region (the Personalize emulator, each ListBatchSegmentJobs call answered after a modelled
network latency). Two polls are timed in a fresh process: the first, which assumes every
role and takes every scope's silent baseline, and a warm container's steady poll.

Lambda gives a function CPU in proportion to its memory, so a poll's CPU seconds on this
machine, over the poller's share of a vCPU, estimate its time in AWS when the CPU is the
limit; the latency is already in the wall time.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any

import boto3

from local.lambda_context import LOCAL_RUNTIME_ENV, LocalLambdaContext
from local.provision import create_member_stack_set, provision
from local.template import read_poller, synth

if TYPE_CHECKING:
    from collections.abc import Callable

    from local.local_aws import LocalAws

    Worker = Callable[..., dict[str, Any]]

OWN = LocalLambdaContext().account_id  # the StackSet's administrator: watched, no instance
ACCOUNTS = 200  # the organization measured
SMALLER = 50  # a smaller one, for how memory grows with accounts
REGIONS = ("us-east-1", "us-west-2", "eu-west-1")
JOBS_PER_SCOPE = 10  # most accounts of an organization run a few batch segment jobs
LATENCY = 0.05  # seconds before each ListBatchSegmentJobs call is answered
STEADY_REPEATS = 3
OU = "ou-ab12-cdef3456"
# Lambda gives a function one whole vCPU at 1,769 MB, and CPU in proportion below that
# ("Configure Lambda function memory" in the Lambda docs).
ONE_VCPU_MB = 1769
MEMORY_KEPT_SPARE = 0.1  # of the function's memory, when saying how many scopes fit


def organization_world(
    aws: LocalAws, accounts: int, quiet: dict[str, str]
) -> tuple[dict[str, str], int]:
    """Local AWS holding an organization: the stack's resources, the member StackSet with
    an instance in every member account, and JOBS_PER_SCOPE finished jobs in each account
    and region. Returns the environment of the poller that watches it, and its memory."""
    aws.reset()
    template = synth({"memberOrganizationalUnits": OU, "regions": ",".join(REGIONS)})
    session = boto3.session.Session()
    spec = read_poller(template)
    resources = provision(spec, session)
    stack_set = create_member_stack_set(template, session, OWN)
    members = [f"{300000000000 + i:012d}" for i in range(accounts - 1)]
    # The member role is global: the StackSet deploys it in one region of each account.
    session.client("cloudformation").create_stack_instances(
        StackSetName=stack_set, Accounts=members, Regions=[session.region_name]
    )
    start = time.time() - 86_400  # finished a day ago
    for account in (OWN, *members):
        for region in REGIONS:
            for i in range(JOBS_PER_SCOPE):
                aws.personalize.add_job(
                    f"org-{i:03d}", "ACTIVE", at=start + i * 60, account=account, region=region
                )
    env = {**os.environ, **resources.environment, **LOCAL_RUNTIME_ENV, **quiet}
    return env, spec.memory_mb


def checked_poll(
    aws: LocalAws, worker: Worker, env: dict[str, str], scopes: int, mode: str, *args: str
) -> dict[str, Any]:
    """One worker's poll(s), with the requests of its timed polls: every scope listed,
    none named, every job seen, nothing announced, or the numbers mean nothing."""
    aws.clear_calls()
    polled = worker(mode, env, *args, on_warm=aws.clear_calls)
    summary = polled["summary"]
    assert not summary["unreachableScopes"], summary["unreachableScopes"]
    assert len(aws.personalize.calls_by_scope) == scopes, len(aws.personalize.calls_by_scope)
    assert summary["jobsSeen"] == scopes * JOBS_PER_SCOPE, summary
    assert summary["transitions"] == 0, summary
    return {**polled, "calls": dict(sorted(aws.calls().items()))}


def measure(aws: LocalAws, worker: Worker, accounts: int, quiet: dict[str, str]) -> dict[str, Any]:
    """The first poll of an organization and a warm container's steady polls."""
    print(f"measuring an organization of {accounts} accounts x {len(REGIONS)} regions ...")
    env, memory = organization_world(aws, accounts, quiet)
    scopes = accounts * len(REGIONS)
    aws.personalize.delay["ListBatchSegmentJobs"] = LATENCY
    try:
        first = checked_poll(aws, worker, env, scopes, "poll")
        steady = checked_poll(aws, worker, env, scopes, "steady", str(STEADY_REPEATS))
    finally:
        aws.personalize.delay.clear()
    return {
        "accounts": accounts,
        "scopes": scopes,
        "run_seconds": float(env["RUN_SECONDS"]),
        "mb": memory,
        "first": first,
        "steady": steady,
    }


def run_organization(aws: LocalAws, worker: Worker, quiet: dict[str, str]) -> dict[str, Any]:
    """The organization of ACCOUNTS, and the memory of one of SMALLER."""
    smaller = measure(aws, worker, SMALLER, quiet)
    return {**measure(aws, worker, ACCOUNTS, quiet), "smaller": smaller}


def lambda_seconds(poll: dict[str, Any], mb: int) -> float:
    """A poll's time in a function of `mb` MB: its wall time here, or its CPU time at the
    function's share of a vCPU if that is longer."""
    return float(max(poll["seconds"], poll["cpu_s"] * ONE_VCPU_MB / mb))


def mib_per_scope(org: dict[str, Any]) -> float:
    """How much a first poll's peak memory grows with each scope."""
    smaller = org["smaller"]
    grown = org["first"]["peak_mib"] - smaller["first"]["peak_mib"]
    return float(grown / (org["scopes"] - smaller["scopes"]))


def largest_organization(org: dict[str, Any]) -> tuple[int, int]:
    """Accounts (in as many regions) one poller handles, by its CPU and by its memory: its
    first poll, the costlier, filling the run; its peak leaving MEMORY_KEPT_SPARE spare."""
    per_scope_seconds = lambda_seconds(org["first"], org["mb"]) / org["scopes"]
    by_cpu = org["run_seconds"] / per_scope_seconds
    usable = org["mb"] * (1 - MEMORY_KEPT_SPARE) - org["first"]["peak_mib"]
    by_memory = org["scopes"] + usable / mib_per_scope(org)
    return int(by_cpu / len(REGIONS)), int(by_memory / len(REGIONS))


def per_poll(calls: dict[str, int], polls: int) -> str:
    return ", ".join(f"{op.split(':')[1]} {round(n / polls, 1):g}" for op, n in calls.items())


def organization_report(org: dict[str, Any]) -> list[str]:
    run, mb = org["run_seconds"], org["mb"]
    by_cpu, by_memory = largest_organization(org)
    lines = [
        "",
        "## The largest organization",
        "",
        f"{ACCOUNTS} accounts (the poller's own and {ACCOUNTS - 1} members found in the "
        f"member StackSet's instances) x {len(REGIONS)} regions: {org['scopes']} scopes of "
        f"{JOBS_PER_SCOPE} jobs, every ListBatchSegmentJobs call answered after "
        f"{LATENCY * 1000:.0f} ms. An organization's poller has {mb} MB, so "
        f"{mb / ONE_VCPU_MB:.2f} of a vCPU: its time is estimated as the CPU time here over "
        "that share, or the wall time here if longer. Requests are per poll.",
        "",
        f"| poll | wall here (s) | CPU here (s) | in {mb} MB (s) | share of the run "
        "| peak memory (MiB) | requests |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for kind, label, polls in (
        ("first", "first (every role assumed, every baseline)", 1),
        ("steady", f"steady, warm (median of {STEADY_REPEATS})", STEADY_REPEATS),
    ):
        poll = org[kind]
        peak = f"{poll['peak_mib']:.0f}" if "peak_mib" in poll else ""
        lines.append(
            f"| {label} | {poll['seconds']:.1f} | {poll['cpu_s']:.1f} | "
            f"{lambda_seconds(poll, mb):.0f} | {lambda_seconds(poll, mb) / run:.0%} | {peak} | "
            f"{per_poll(poll['calls'], polls)} |"
        )
    within = lambda_seconds(org["first"], mb) < run and lambda_seconds(org["steady"], mb) < run
    lines += [
        "",
        f"- {ACCOUNTS} accounts x {len(REGIONS)} regions within one run ({run:.0f} s with "
        f"the default 5-minute schedule), first and steady polls: "
        f"{'met' if within else 'NOT met'}.",
        f"- Memory: {mib_per_scope(org):.2f} MiB more per scope (the first poll's peak at "
        f"{org['smaller']['accounts']} and at {ACCOUNTS} accounts), mostly each scope's "
        "clients. Here every endpoint is plain HTTP; in AWS each is TLS, and the scopes of "
        "a region share one pool of connections (one TLS context), so that adds no more "
        "per scope.",
        f"- The largest organization one {mb} MB poller handles: about "
        f"{min(by_cpu, by_memory):,} accounts in {len(REGIONS)} regions, bound by its "
        f"{'memory' if by_memory < by_cpu else 'CPU'} (by CPU alone, the first poll filling "
        f"the run: {by_cpu:,}; by memory, a tenth kept spare: {by_memory:,}). "
        "`pollerMemoryMB` gives it more of both.",
    ]
    return lines
