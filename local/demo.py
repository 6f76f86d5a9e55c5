"""`make demo`: the notifier stack running on this machine, playing a story of jobs.

Synthesizes the stack, builds local AWS from its template (moto's server for DynamoDB,
SNS and SQS; the project's Personalize emulator), then invokes the poller's real handler
once per simulated schedule tick and shows what people and pipelines receive.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import signal
import sys
import textwrap
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3
from moto.sns.models import sns_backends  # moto's documented way to read what a topic sent

from local.lambda_context import LOCAL_RUNTIME_ENV, LocalLambdaContext
from local.local_aws import LocalAws, drain_queue
from local.provision import provision, subscribe_queue
from local.requests_counter import count_requests
from local.snapshot import set_scope_times
from local.story import Story, compare
from local.template import read_poller, schedule_minutes, synth

if TYPE_CHECKING:
    from collections import Counter
    from collections.abc import Callable

    from local.story import Expected
    from local.template import PollerSpec

DEMO_EMAIL = "ml-team@example.com"
WIDTH = 78


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="make demo ARGS=", description=__doc__)
    parser.add_argument("--jobs", type=int, default=240, help="jobs finished before the first poll")
    parser.add_argument("--ticks", type=int, default=6, help="schedule ticks (polls) to play")
    parser.add_argument("--seed", type=int, default=42, help="seed for job names and extras")
    parser.add_argument("--serve", action="store_true", help="keep the endpoints up afterwards")
    parser.add_argument("--verbose", action="store_true", help="show the poller's own JSON logs")
    args = parser.parse_args(argv)
    if args.jobs < 0 or args.ticks < 1:
        parser.error("--jobs must be >= 0 and --ticks >= 1")
    return args


def rule(title: str = "") -> str:
    return f"── {title} ".ljust(WIDTH, "─") if title else "─" * WIDTH


def load_handler(handler: str) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """Import the handler as Lambda does: module imported once (code root: see local/)."""
    module, _, function = handler.rpartition(".")
    loaded: Callable[[dict[str, Any], Any], dict[str, Any]] = getattr(
        importlib.import_module(module), function
    )
    return loaded


def scheduled_event(region: str, rule_arn: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": "00000000-0000-0000-0000-000000000000",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }


def sent_messages(
    aws: LocalAws, topic_arn: str, seen: int
) -> list[tuple[str, dict[str, str], str]]:
    """(subject, per-protocol bodies, eventType) of each message the topic sent since
    `seen`. An email subscriber gets the 'email' body, AWS Chatbot the 'https' one."""
    topic = sns_backends["123456789012"][aws.region].topics[topic_arn]
    return [
        (subject or "", json.loads(message), (attributes or {})["eventType"]["Value"])
        for _id, message, subject, attributes, _group in topic.sent_notifications[seen:]
    ]


def for_people(event_type: str, filter_policy: dict[str, Any] | None) -> bool:
    """Whether the template's email subscription filter lets this event type through."""
    return filter_policy is None or event_type in filter_policy.get("eventType", [event_type])


def show_email(subject: str, body: str) -> None:
    print(rule(f"email to {DEMO_EMAIL}"))
    print(f"Subject: {subject}\n")
    print(textwrap.indent(body.rstrip(), "  "))


def show_slack(custom_notification: str) -> None:
    """What AWS Chatbot posts in Slack for the 'https' body, as plain text."""
    content = json.loads(custom_notification)["content"]
    print(rule("Slack (AWS Chatbot)"))
    print(f"  {content['title']}")
    print(textwrap.indent(content["description"], "  │ "))
    for step in content["nextSteps"]:
        print(f"  → {step}")


def progress_line(result: dict[str, Any]) -> str:
    if "error" in result:
        return f"  poll FAILED: {result['error']}"
    line = (
        f"  poll: {result['jobsSeen']} jobs on {result['pages']} pages, "
        f"{result['transitions']} transitions, {result['published']} published"
    )
    return line + (" (first run: recorded silently)" if result["firstRun"] else "")


def poll_once(
    handler: Callable[[dict[str, Any], Any], dict[str, Any]], event: dict[str, Any]
) -> dict[str, Any]:
    """One scheduled invocation; a failed run is reported, not fatal."""
    try:
        return handler(event, LocalLambdaContext())
    except Exception as err:  # noqa: BLE001 - reported in the run's progress line
        return {"error": f"{type(err).__name__}: {err}"}


def show_people(aws: LocalAws, topic_arn: str, seen: int, spec: PollerSpec) -> tuple[int, int]:
    """Show what the people topic sent since `seen`: how many messages, how many emails."""
    sent = sent_messages(aws, topic_arn, seen)
    emails = 0
    for subject, bodies, event_type in sent:
        show_slack(bodies["https"])
        if for_people(event_type, spec.email_filter_policy):
            show_email(subject, bodies["email"])
            emails += 1
    return len(sent), emails


def show_pipeline(sqs: Any, queue_url: str, people_types: set[str]) -> tuple[list[Expected], int]:
    """Show the events a pipeline's queue received: each as heard, and how many of them
    people want."""
    heard: list[Expected] = []
    for_people_count = 0
    for notification in drain_queue(sqs, queue_url):
        event = json.loads(str(notification["Message"]))
        for_people_count += event["eventType"] in people_types
        heard.append((event["batchSegmentJobArn"], event["previousStatus"], event["status"]))
        print(f"  pipeline <- {json.dumps(event, separators=(',', ':'))}")
    return heard, for_people_count


def summary_table(rows: list[tuple[str, str]]) -> str:
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"  {label.ljust(width)}  {value}" for label, value in rows)


def run(args: argparse.Namespace) -> int:
    print("Synthesizing the stack (python app.py) and reading its template ...")
    spec = read_poller(synth({"notifyEmails": DEMO_EMAIL}))
    period = schedule_minutes(spec.schedule_expression)
    print(f"  poller {spec.handler}, schedule {spec.schedule_expression}, table {spec.table_id}")

    with LocalAws() as aws:
        os.environ.update(aws.environment())
        observer = boto3.session.Session()
        resources = provision(spec, observer)
        queue_url = subscribe_queue(observer, resources.topic_arn, "pipeline-events")
        people_topic_arn = resources.topic_arns[spec.email_topic_id or ""]
        os.environ.update(resources.environment)
        os.environ.update(LOCAL_RUNTIME_ENV)
        if not args.verbose:
            os.environ.update(
                {"POWERTOOLS_LOG_LEVEL": "ERROR", "POWERTOOLS_METRICS_DISABLED": "true"}
            )
        print(f"  local AWS: moto {aws.moto_endpoint}, Personalize {aws.personalize.endpoint}")

        boto3.setup_default_session()
        assert boto3.DEFAULT_SESSION is not None
        requests: Counter[str] = count_requests(boto3.DEFAULT_SESSION)
        handler = load_handler(spec.handler)
        # The story is played in accelerated time, ending before now: the poller's clock is
        # the wall clock, so every change it lists has already happened.
        start = time.time() - (args.ticks + 1) * period * 60
        story = Story(aws.personalize, args.seed, args.jobs, start=start, tick_minutes=period)
        expected: list[Expected] = []
        received: list[Expected] = []
        published = emails = people_expected = errors = 0
        people_types = set(resources.environment.get("PEOPLE_EVENT_TYPES", "").split(","))
        rule_arn = f"arn:aws:events:{aws.region}:123456789012:rule/{spec.table_id}-schedule"
        for tick in range(args.ticks):
            story.before_tick(tick)
            expected += story.expected(first_poll=tick == 0)
            clock = time.strftime("%H:%M", time.gmtime(story.clock(tick)))
            print(f"\n{rule(f'tick {tick + 1}/{args.ticks}  {clock}  (every {period} min)')}")
            for line in story.narration:
                print(f"  · {line}")
            result = poll_once(handler, scheduled_event(aws.region, rule_arn))
            errors += "error" in result
            if tick == 0:
                # The notifier was deployed at the story's first tick: jobs created since
                # then are new to it, those before are its silent baseline.
                deployed = datetime.fromtimestamp(story.clock(0), UTC)
                set_scope_times(
                    observer.client("dynamodb"), resources.table_name, baselineStartedAt=deployed
                )
            messages, mailed = show_people(aws, people_topic_arn, published, spec)
            published, emails = published + messages, emails + mailed
            heard, for_people_count = show_pipeline(observer.client("sqs"), queue_url, people_types)
            received += heard
            people_expected += for_people_count
            print(progress_line(result))

        problems = compare(expected, received)
        # Personalize's count is its endpoint's, whichever session the poller listed with.
        by_operation = [
            (f"  {name}", str(count))
            for name, count in sorted(
                [(k, v) for k, v in requests.items() if not k.startswith("personalize:")]
                + [(f"personalize:{op}", n) for op, n in aws.personalize.calls.items()]
            )
        ]
        print(f"\n{rule('summary')}")
        print(
            summary_table(
                [
                    ("jobs", str(len(aws.personalize.jobs()))),
                    ("polls", str(args.ticks)),
                    ("transitions expected", str(len(expected))),
                    ("events to pipeline (SQS)", str(len(received))),
                    ("messages for people (people topic)", str(published)),
                    ("emails (after the subscription's filter)", str(emails)),
                    ("failed polls", str(errors)),
                    ("API requests by the poller", ""),
                    *by_operation,
                ]
            )
        )
        ok = not problems and errors == 0 and published == people_expected
        for problem in problems:
            print(f"  PROBLEM {problem}")
        print(f"\nResult: {'every expected notification arrived exactly once' if ok else 'FAILED'}")

        if args.serve:
            serve(aws)
        return 0 if ok else 1


def serve(aws: LocalAws) -> None:
    print(f"\n{rule('serving')}\nPoint the AWS CLI at local AWS:\n")
    for name, value in aws.environment().items():
        print(f"  export {name}={value}")
    print("\n  aws personalize list-batch-segment-jobs\n  aws dynamodb list-tables\n")
    print("Ctrl-C to stop.")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass


def main(argv: list[str] | None = None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
