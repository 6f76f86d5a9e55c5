"""`make demo`: the notifier stack running on this machine, playing a story of jobs.

Synthesizes the stack, builds local AWS from its template (moto's server for DynamoDB,
SNS and SQS; the project's Personalize emulator), then invokes the poller's real handler
once per simulated schedule tick and shows what people and pipelines receive.

With --accounts or --regions above 1, the stack watches every (account, region) pair:
the first account is the poller's own, the others members it reads through their member
role (moto's STS issues the assumed role's keys; the emulator serves each caller its own
account's jobs in the region it signed for). One more account, whose member role was
never deployed, is watched too: each of its scopes raises its ScopeErrors alarm while
the others are announced.

With --organization, the stack is given organizational units instead of accounts: the
poller finds the members itself, in the instances of the member StackSet (built in moto's
CloudFormation from the template). The StackSet starts with three members, one of which
has no member role (named, with why, at every poll); a fourth joins before the third
poll, is recorded silently at its first poll, and is announced from then on. The poller's
discovery cache runs on the schedule's simulated clock, so no tick waits for it.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import math
import os
import signal
import sys
import textwrap
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3
from moto.sns.models import sns_backends  # moto's documented way to read what a topic sent

from local.lambda_context import LOCAL_RUNTIME_ENV, LocalLambdaContext
from local.local_aws import LocalAws, drain_queue
from local.provision import create_member_stack_set, provision, subscribe_queue
from local.requests_counter import count_requests
from local.story import Story, compare
from local.template import TemplateError, read_poller, schedule_minutes, synth

if TYPE_CHECKING:
    from collections.abc import Callable

    from boto3.session import Session

    from local.personalize_emulator import PersonalizeEmulator
    from local.provision import LocalResources
    from local.story import Expected

    Handler = Callable[[dict[str, Any], Any], dict[str, Any]]

DEMO_EMAIL = "ml-team@example.com"
WIDTH = 78
OWN_ACCOUNT = LocalLambdaContext().account_id
MEMBER_ACCOUNTS = ("222233334444", "444455556666")  # their member role is deployed
MISSING_ACCOUNT = "333344445555"  # watched, but its member role was never deployed
JOINING_ACCOUNT = "555566667777"  # with --organization: joins during the story
DEMO_OU = "ou-ab12-cdef3456"  # with --organization: the OU the StackSet deploys to
JOIN_TICK = 2  # the joining account's instance is created before the third poll
REGIONS = ("us-east-1", "eu-west-1", "ap-southeast-2")
LISTED_INSTANCES = "cloudformation:ListStackInstances"  # the poller's discovery call
# A scope's story makes up to 3 transitions for people in one tick: past 6 scopes a tick
# could pass the stack's storm threshold (20), and people would get one digest instead.
MAX_SCOPES = 6


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make demo ARGS=", description=__doc__)
    parser.add_argument("--jobs", type=int, default=240, help="jobs finished before the first poll")
    parser.add_argument("--ticks", type=int, default=6, help="schedule ticks (polls) to play")
    parser.add_argument("--seed", type=int, default=42, help="seed for job names and extras")
    parser.add_argument(
        "--accounts",
        type=int,
        default=1,
        help=f"accounts watched: the poller's own, then members (1-{1 + len(MEMBER_ACCOUNTS)})",
    )
    parser.add_argument(
        "--regions", type=int, default=1, help=f"regions watched in each (1-{len(REGIONS)})"
    )
    parser.add_argument(
        "--organization",
        action="store_true",
        help="the poller finds the accounts in the member StackSet; one joins on the way",
    )
    parser.add_argument("--serve", action="store_true", help="keep the endpoints up afterwards")
    parser.add_argument("--verbose", action="store_true", help="show the poller's own JSON logs")
    args = parser.parse_args(argv)
    problem = sizing_problem(args) or organization_problem(args)
    if problem:
        parser.error(problem)
    return args


def sizing_problem(args: argparse.Namespace) -> str | None:
    if args.jobs < 0 or args.ticks < 1:
        return "--jobs must be >= 0 and --ticks >= 1"
    if not 1 <= args.accounts <= 1 + len(MEMBER_ACCOUNTS) or not 1 <= args.regions <= len(REGIONS):
        return f"--accounts 1-{1 + len(MEMBER_ACCOUNTS)}, --regions 1-{len(REGIONS)}"
    if len(Layout.of(args).reachable()) > MAX_SCOPES:
        return f"at most {MAX_SCOPES} scopes (accounts x regions) for the story to tell"
    return None


def organization_problem(args: argparse.Namespace) -> str | None:
    if not args.organization:
        return None
    if args.accounts != 1:
        return "--organization: the poller finds the accounts, --accounts lists them"
    if args.ticks < JOIN_TICK + 2:
        # The joining account's first poll is silent: one more is needed to hear it.
        return f"--organization needs --ticks >= {JOIN_TICK + 2}"
    return None


@dataclass(frozen=True)
class Layout:
    """Which accounts and regions the demo's stack watches."""

    accounts: tuple[str, ...]  # reachable from the start: the poller's own first, then members
    regions: tuple[str, ...]
    missing: tuple[str, ...]  # watched, without their member role
    # Members that join the organization during the story. Only with discovery: a listed
    # account is watched from the first poll.
    joining: tuple[str, ...] = ()

    @classmethod
    def of(cls, args: argparse.Namespace) -> Layout:
        if args.organization:
            return cls.organization(args.regions)
        return cls.sized(args.accounts, args.regions)

    @classmethod
    def sized(cls, accounts: int, regions: int) -> Layout:
        """The poller's own account and `accounts - 1` members, in the first `regions`; with
        more than one scope, also an account whose member role is missing."""
        reachable = (OWN_ACCOUNT, *MEMBER_ACCOUNTS[: accounts - 1])
        watched_regions = REGIONS[:regions]
        several = len(reachable) * len(watched_regions) > 1
        return cls(reachable, watched_regions, (MISSING_ACCOUNT,) if several else ())

    @classmethod
    def organization(cls, regions: int) -> Layout:
        """The poller's own account and the StackSet's members, in the first `regions`: the
        members of `sized`, the one without its member role, and one that joins later."""
        reachable = (OWN_ACCOUNT, *MEMBER_ACCOUNTS)
        return cls(reachable, REGIONS[:regions], (MISSING_ACCOUNT,), (JOINING_ACCOUNT,))

    @property
    def several(self) -> bool:
        return bool(self.missing)

    @property
    def discovered(self) -> bool:
        """Whether the poller finds its accounts (the StackSet's instances), not a list."""
        return bool(self.joining)

    def context(self) -> dict[str, str]:
        """CDK context of the stack: one scope by default, else every account and region,
        listed or (with discovery) those of an organizational unit."""
        if not self.several:
            return {"notifyEmails": DEMO_EMAIL}
        watched = (
            {"memberOrganizationalUnits": DEMO_OU}
            if self.discovered
            else {"accounts": ",".join((*self.accounts, *self.missing))}
        )
        return {"notifyEmails": DEMO_EMAIL, **watched, "regions": ",".join(self.regions)}

    def members(self) -> tuple[str, ...]:
        """The accounts the StackSet has an instance in at the first poll."""
        return (*self.accounts[1:], *self.missing)

    def reachable(self) -> list[str]:
        """The scopes whose jobs are heard, those of joining accounts last."""
        return [f"{a}/{r}" for a in (*self.accounts, *self.joining) for r in self.regions]

    def unreachable(self) -> set[str]:
        return {f"{account}/{region}" for account in self.missing for region in self.regions}


def rule(title: str = "") -> str:
    return f"── {title} ".ljust(WIDTH, "─") if title else "─" * WIDTH


def load_handler(handler: str) -> Handler:
    """Import the handler as Lambda does: module imported once (code root: see local/)."""
    module, _, function = handler.rpartition(".")
    loaded: Handler = getattr(importlib.import_module(module), function)
    return loaded


def scheduled_event(region: str, rule_arn: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "00000000-0000-0000-0000-000000000000",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": OWN_ACCOUNT,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }


@dataclass(frozen=True)
class Sent:
    """One message the people topic sent: per-protocol bodies and message attributes.
    An email subscriber gets the 'email' body, AWS Chatbot the 'https' one."""

    subject: str
    bodies: dict[str, str]
    attributes: dict[str, str]
    types: dict[str, str]  # each attribute's DataType

    @property
    def event_types(self) -> list[str]:
        """The `eventType` values, as a filter policy matches them: a digest's is a
        String.Array of JOB_DIGEST and the types it holds."""
        value = self.attributes["eventType"]
        if self.types.get("eventType") == "String.Array":
            return [str(item) for item in json.loads(value)]
        return [value]

    @property
    def scope(self) -> str:
        return f"{self.attributes.get('accountId')}/{self.attributes.get('region')}"


def sent_messages(aws: LocalAws, topic_arn: str, seen: int) -> list[Sent]:
    """What the topic sent since `seen`."""
    topic = sns_backends[OWN_ACCOUNT][aws.region].topics[topic_arn]
    return [
        Sent(
            subject or "",
            json.loads(message),
            {name: value["Value"] for name, value in (attributes or {}).items()},
            {name: value["Type"] for name, value in (attributes or {}).items()},
        )
        for _id, message, subject, attributes, _group in topic.sent_notifications[seen:]
    ]


def for_people(event_types: list[str], filter_policy: dict[str, Any] | None) -> bool:
    """Whether the template's email subscription filter lets a message with these event
    types through (SNS matches any element of an array)."""
    wanted = (filter_policy or {}).get("eventType")
    return wanted is None or any(event_type in wanted for event_type in event_types)


def show_email(subject: str, body: str, scope: str) -> None:
    print(rule(f"email to {DEMO_EMAIL} · {scope}"))
    print(f"Subject: {subject}\n")
    print(textwrap.indent(body.rstrip(), "  "))


def show_slack(custom_notification: str, scope: str) -> None:
    """What AWS Chatbot posts in Slack for the 'https' body, as plain text."""
    content = json.loads(custom_notification)["content"]
    print(rule(f"Slack (AWS Chatbot) · {scope}"))
    print(f"  {content['title']}")
    print(textwrap.indent(content["description"], "  │ "))
    for step in content["nextSteps"]:
        print(f"  → {step}")


def progress_line(result: dict[str, Any], tick: int) -> str:
    if "error" in result:
        return f"  poll FAILED: {result['error']}"
    line = (
        f"  poll: {result['jobsSeen']} jobs on {result['pages']} pages, "
        f"{result['transitions']} transitions, {result['published']} published"
    )
    unreachable = len(result.get("unreachableScopes") or {})
    if unreachable:
        line += f", {unreachable} scopes unreachable"
    if result["firstRun"] and (tick == 0 or not unreachable):
        line += " (first run: recorded silently)"
    elif result["firstRun"]:  # only the scopes never reached have no baseline yet
        line += " (their first run waits until they can be reached)"
    return line


def poll_once(handler: Handler, event: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """One scheduled invocation and what it printed (its metrics, as EMF JSON lines);
    a failed run is reported, not fatal."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        try:
            result = handler(event, LocalLambdaContext())
        except Exception as err:  # noqa: BLE001 - reported in the run's progress line
            result = {"error": f"{type(err).__name__}: {err}"}
    return result, printed.getvalue()


def scope_errors(printed: str) -> list[str]:
    """The scopes of the ScopeErrors metrics a run printed (CloudWatch's embedded metric
    format, dimension `scope`): each one's alarm goes off, as its threshold is 1."""
    places = []
    for line in printed.splitlines():
        try:
            document = json.loads(line)
        except ValueError:
            continue
        if not isinstance(document, dict) or "_aws" not in document:
            continue
        value = document.get("ScopeErrors", 0)
        if max(value) if isinstance(value, list) else value:
            places.append(str(document["scope"]))
    return places


def summary_table(rows: list[tuple[str, str]]) -> str:
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"  {label.ljust(width)}  {value}" for label, value in rows)


class Organization:
    """The organization in local AWS, as the poller finds it: the member StackSet's instances
    (the accounts that have the member role), one more joining before poll JOIN_TICK + 1,
    and the clock the poller's discovery cache runs on: the schedule's, not the wall's."""

    def __init__(
        self, template: dict[str, Any], layout: Layout, observer: Session, period: int
    ) -> None:
        self.layout, self.observer, self.period = layout, observer, period
        self.stack_set = create_member_stack_set(template, observer, OWN_ACCOUNT)
        self.now = 0.0  # seconds of the schedule's time since the first poll
        self.baselined: set[str] = set()  # scopes whose baseline the poller completed
        self._join(layout.members())
        print(f"  the poller finds its accounts: the instances of StackSet {self.stack_set}")

    def clock(self) -> float:
        return self.now

    def attach(self, handler: str) -> None:
        """Run the poller's discovery (one per container, poller.handler's) on this clock."""
        members = importlib.import_module(handler.rpartition(".")[0]).discovery()
        if members is None:
            raise TemplateError("the organization's poller does not discover its accounts")
        members.clock = self.clock

    @property
    def watched_from(self) -> int:
        """The first poll that lists the joining accounts. The poller asks the StackSet at
        its first poll, then once the answer is CACHE_SECONDS old: every `every` polls."""
        # After the poller's environment is set: the module names its logger at import.
        from poller.discovery import CACHE_SECONDS  # noqa: PLC0415

        every = math.ceil(CACHE_SECONDS / (self.period * 60))
        return math.ceil(JOIN_TICK / every) * every

    def before_poll(self, tick: int) -> None:
        self.now = tick * self.period * 60.0
        if tick == JOIN_TICK:
            self._join(self.layout.joining)
            joined = ", ".join(self.layout.joining)
            print(f"  · {joined} joins the organization: the StackSet gives it the member role")

    def after_poll(self, listings: int, dynamodb: Any, table_name: str) -> None:
        """What the StackSet says (and whether this poll asked it), and each scope whose
        baseline the poll completed, with the jobs it recorded there silently."""
        summaries = self.observer.client("cloudformation").list_stack_instances(
            StackSetName=self.stack_set
        )["Summaries"]
        members = ", ".join(sorted({summary["Account"] for summary in summaries}))
        asked = "asked by this poll" if listings else "this poll used the poller's cached answer"
        print(f"  StackSet members ({asked}): {members}")
        # After the poller's environment is set: poller.poll names its logger at import.
        from local.snapshot import job_records, scope_markers  # noqa: PLC0415

        baselined = {
            "/".join(key.split("/")[:2])
            for key, marker in scope_markers(dynamodb, table_name).items()
            if marker.get("baselineComplete") is True
        }
        new = sorted(baselined - self.baselined)
        self.baselined |= baselined
        if new:
            records = Counter(scope_of(arn) for arn in job_records(dynamodb, table_name))
            for place in new:
                print(f"  baseline of {place}: its {records[place]} jobs recorded silently")

    def _join(self, accounts: tuple[str, ...]) -> None:
        # In the notifier's own region, as the template's StackSet deploys: the role is global.
        self.observer.client("cloudformation").create_stack_instances(
            StackSetName=self.stack_set,
            Accounts=list(accounts),
            Regions=[self.observer.region_name],
        )


def scope_of(job_arn: str) -> str:
    """'account/region' of a job."""
    _arn, _partition, _service, region, account, _resource = job_arn.split(":", 5)
    return f"{account}/{region}"


@dataclass
class Tally:
    """What should have been heard, and what was."""

    expected: list[Expected] = field(default_factory=list)
    received: list[Expected] = field(default_factory=list)
    published: int = 0  # messages for people
    emails: int = 0
    people_expected: int = 0
    errors: int = 0  # failed polls
    alarms: Counter[str] = field(default_factory=Counter)  # ScopeErrors raised per scope
    problems: list[str] = field(default_factory=list)


class Demo:
    """The stack in local AWS, its stories, and what each tick's poll made heard."""

    def __init__(self, args: argparse.Namespace, layout: Layout, aws: LocalAws) -> None:
        self.args, self.layout, self.aws = args, layout, aws
        print("Synthesizing the stack (python app.py) and reading its template ...")
        template = synth(layout.context())
        self.spec = read_poller(template)
        self.period = schedule_minutes(self.spec.schedule_expression)
        print(
            f"  poller {self.spec.handler}, schedule {self.spec.schedule_expression}, "
            f"table {self.spec.table_id}"
        )
        os.environ.update(aws.environment())
        self.observer = boto3.session.Session()
        self.resources = provision(self.spec, self.observer)
        self.queue_url = subscribe_queue(self.observer, self.resources.topic_arn, "pipeline")
        self.people_topic_arn = self.resources.topic_arns[self.spec.email_topic_id or ""]
        self._configure(self.resources)
        print(f"  local AWS: moto {aws.moto_endpoint}, Personalize {aws.personalize.endpoint}")
        boto3.setup_default_session()
        assert boto3.DEFAULT_SESSION is not None
        self.requests: Counter[str] = count_requests(boto3.DEFAULT_SESSION)
        self.handler = load_handler(self.spec.handler)
        self.organization: Organization | None = None
        if layout.discovered:
            self.organization = Organization(template, layout, self.observer, self.period)
            self.organization.attach(self.spec.handler)
        self.stories = self._stories()
        self.tally = Tally()
        env = self.resources.environment
        self.people_types = set(env.get("PEOPLE_EVENT_TYPES", "").split(","))
        self.rule_arn = f"arn:aws:events:{aws.region}:{OWN_ACCOUNT}:rule/{self.spec.table_id}"

    def _configure(self, resources: LocalResources) -> None:
        os.environ.update(resources.environment)
        os.environ.update(LOCAL_RUNTIME_ENV)
        if not self.args.verbose:
            # The run's metrics are read from what it prints; its logs only with --verbose.
            os.environ["POWERTOOLS_LOG_LEVEL"] = "CRITICAL" if self.layout.several else "ERROR"
        role = resources.environment.get("MEMBER_ROLE_NAME", "")
        for account in self.layout.missing:
            self.aws.moto.missing_roles.add(f"arn:aws:iam::{account}:role/{role}")
        if self.layout.several and not self.layout.discovered:
            watched = ", ".join(sorted(self.layout.unreachable() | set(self.layout.reachable())))
            print(f"  watching {watched}")
        if self.layout.missing:
            print(f"  {', '.join(self.layout.missing)} has no member role {role}: AssumeRole fails")

    def _stories(self) -> list[Story]:
        # Played in accelerated time, ending before now: the poller's clock is the wall
        # clock, so every change it lists has already happened.
        start = time.time() - (self.args.ticks + 1) * self.period * 60
        emulator: PersonalizeEmulator = self.aws.personalize
        if not self.layout.several:
            return [Story(emulator, self.args.seed, self.args.jobs, start, self.period)]
        places = [
            (account, region)
            for account in (*self.layout.accounts, *self.layout.missing, *self.layout.joining)
            for region in self.layout.regions
        ]
        return [
            Story(
                emulator,
                self.args.seed + i,
                self.args.jobs,
                start,
                self.period,
                account=account,
                region=region,
                throttles=i == 0,
                first_tick=self._first_poll_of(account),
            )
            for i, (account, region) in enumerate(places)
        ]

    def _first_poll_of(self, account: str) -> int:
        if self.organization is None or account not in self.layout.joining:
            return 0
        return self.organization.watched_from

    # --- one tick ----------------------------------------------------------------------
    def tick(self, tick: int) -> None:
        story = self.stories[0]
        clock = time.strftime("%H:%M", time.gmtime(story.clock(tick)))
        print(f"\n{rule(f'tick {tick + 1}/{self.args.ticks}  {clock}  (every {self.period} min)')}")
        if self.organization:
            self.organization.before_poll(tick)
        self._tell(tick)
        listed_before = self.requests[LISTED_INSTANCES]
        result, printed = poll_once(self.handler, scheduled_event(self.aws.region, self.rule_arn))
        if self.args.verbose:
            print(printed, end="")
        self.tally.errors += "error" in result
        if tick in {each.first_tick for each in self.stories}:
            self._date_baselines(datetime.fromtimestamp(story.clock(0), UTC))
        self._show_people()
        self._show_pipeline()
        self._show_alarms(tick, result, scope_errors(printed))
        if self.organization:
            listings = self.requests[LISTED_INSTANCES] - listed_before
            dynamodb = self.observer.client("dynamodb")
            self.organization.after_poll(listings, dynamodb, self.resources.table_name)
        print(progress_line(result, tick))

    def _date_baselines(self, deployed: datetime) -> None:
        """The notifier was deployed at the story's first tick: jobs created since then are
        new to it, those before are its silent baseline. The poller dates a scope's baseline
        by the wall clock, after all of the story's times, so each is dated back once its
        first poll has recorded what its scope had (an account that joins later, too)."""
        # Imported once the poller's environment is set: poller.poll (which it reads the
        # store's layout from) names its logger after the service at import.
        from local.snapshot import set_scope_times  # noqa: PLC0415

        dynamodb = self.observer.client("dynamodb")
        set_scope_times(dynamodb, self.resources.table_name, baselineStartedAt=deployed)

    def _tell(self, tick: int) -> None:
        """Play each story up to this tick's poll and say what happened."""
        unreachable = self.layout.unreachable()
        for story in self.stories:
            story.before_tick(tick)
            expected = story.expected(first_poll=tick == story.first_tick)
            if story.place not in unreachable:
                self.tally.expected += expected
            where = f"{story.place}  " if self.layout.several else ""
            for line in story.narration:
                print(f"  · {where}{line}")

    def _show_people(self) -> None:
        """What the people topic sent: each as Slack shows it, and as email when the
        subscription's filter lets it through."""
        sent = sent_messages(self.aws, self.people_topic_arn, self.tally.published)
        for message in sent:
            show_slack(message.bodies["https"], message.scope)
            if for_people(message.event_types, self.spec.email_filter_policy):
                show_email(message.subject, message.bodies["email"], message.scope)
                self.tally.emails += 1
        self.tally.published += len(sent)

    def _show_pipeline(self) -> None:
        """The events a pipeline's queue received, each as heard."""
        for notification in drain_queue(self.observer.client("sqs"), self.queue_url):
            event = json.loads(str(notification["Message"]))
            self.tally.people_expected += event["eventType"] in self.people_types
            self.tally.received.append(
                (event["batchSegmentJobArn"], event["previousStatus"], event["status"])
            )
            scope = f"{event['accountId']}/{event['region']}"
            print(f"  pipeline <- {scope} {json.dumps(event, separators=(',', ':'))}")

    def _show_alarms(self, tick: int, result: dict[str, Any], alarmed: list[str]) -> None:
        reasons = result.get("unreachableScopes") or {}
        for place in alarmed:
            print(f"  ALARM ScopeErrors {place}: {reasons.get(place, 'no reason logged')}")
        self.tally.alarms.update(alarmed)
        expected = sorted(self.layout.unreachable())
        # Each named twice: by its metric (the alarm) and, with why, in the run's result.
        if sorted(alarmed) != expected or sorted(reasons) != expected:
            self.tally.problems.append(
                f"tick {tick + 1}: ScopeErrors for {sorted(alarmed)}, unreachableScopes "
                f"{sorted(reasons)}, expected {expected}"
            )

    # --- the end -----------------------------------------------------------------------
    def summary(self) -> bool:
        tally = self.tally
        problems = compare(tally.expected, tally.received) + tally.problems
        print(f"\n{rule('summary')}")
        print(summary_table(self._rows()))
        ok = not problems and tally.errors == 0 and tally.published == tally.people_expected
        for problem in problems:
            print(f"  PROBLEM {problem}")
        print(f"\nResult: {'every expected notification arrived exactly once' if ok else 'FAILED'}")
        return ok

    def _rows(self) -> list[tuple[str, str]]:
        tally = self.tally
        rows = [
            ("jobs", str(len(self.aws.personalize.jobs()))),
            ("polls", str(self.args.ticks)),
            ("transitions expected", str(len(tally.expected))),
            ("events to pipeline (SQS)", str(len(tally.received))),
            ("messages for people (people topic)", str(tally.published)),
            ("emails (after the subscription's filter)", str(tally.emails)),
            ("failed polls", str(tally.errors)),
        ]
        if self.layout.several:
            rows += self._scope_rows()
        # Personalize's count is its endpoint's, whichever session the poller listed with.
        calls = [(k, v) for k, v in self.requests.items() if not k.startswith("personalize:")]
        calls += [(f"personalize:{op}", n) for op, n in self.aws.personalize.calls.items()]
        rows.append(("API requests by the poller", ""))
        rows += [(f"  {name}", str(count)) for name, count in sorted(calls)]
        return rows

    def _scope_rows(self) -> list[tuple[str, str]]:
        heard = Counter(scope_of(arn) for arn, _, _ in self.tally.received)
        listed = self.aws.personalize.calls_by_scope
        rows = [("scopes", "")]
        for place in self.layout.reachable():
            account, region = place.split("/")
            told = f"{heard[place]} events, {listed[(account, region)]} Personalize requests"
            if account in self.layout.joining:
                told += f", joined before tick {JOIN_TICK + 1}"
            rows.append((f"  {place}", told))
        for place in sorted(self.layout.unreachable()):
            alarms = self.tally.alarms[place]
            rows.append((f"  {place}", f"{heard[place]} events, ScopeErrors in {alarms} polls"))
        return rows


def run(args: argparse.Namespace) -> int:
    with LocalAws(account_id=OWN_ACCOUNT) as aws:
        demo = Demo(args, Layout.of(args), aws)
        for tick in range(args.ticks):
            demo.tick(tick)
        ok = demo.summary()
        if args.serve:
            serve(aws)
        return 0 if ok else 1


def serve(aws: LocalAws) -> None:
    # Before saying how to stop it: a SIGTERM right after that line must stop it cleanly.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"\n{rule('serving')}\nPoint the AWS CLI at local AWS:\n")
    for name, value in aws.environment().items():
        print(f"  export {name}={value}")
    print("\n  aws personalize list-batch-segment-jobs\n  aws dynamodb list-tables\n")
    print("Ctrl-C to stop.", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


def main(argv: list[str] | None = None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
