"""Builds a poll's adapters and run from settings: one place for the function and the
command-line tool, so both poll exactly alike."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from poller.aws import DISCOVERY_CONFIG, RETRY_CONFIG
from poller.catch_up import LambdaCatchUp
from poller.channels.eventbridge import EventBridgePublisher
from poller.channels.sns import SnsPublisher
from poller.delivery import Channel
from poller.discovery import StackSetAccounts, watched_accounts
from poller.personalize_source import PersonalizeJobSource
from poller.poll import PollRun
from poller.scope_clients import ScopeClients
from poller.settings import check_scopes
from poller.snapshot_store import DynamoSnapshotStore

if TYPE_CHECKING:
    from collections.abc import Callable

    import boto3

    from poller.ports import Publisher, Topic
    from poller.settings import Settings


def adapters(
    config: Settings,
    own_account: str,
    partition: str,
    session: boto3.session.Session | None = None,
) -> tuple[PersonalizeJobSource, DynamoSnapshotStore, list[Channel]]:
    """The source, store and channels of a poll running in `own_account`."""
    clients = ScopeClients(own_account, partition, config.member_role_name, session)
    dynamodb = session.client("dynamodb", config=RETRY_CONFIG) if session else None
    return (
        PersonalizeJobSource(clients),
        DynamoSnapshotStore(config.table_name, dynamodb),
        channels(config, session),
    )


def poll_run(
    config: Settings,
    own_account: str,
    run_id: str,
    time_left: Callable[[], float],
    catch_up: frozenset[str] | None = None,
    *,
    members: StackSetAccounts | None = None,
) -> PollRun:
    """A run starting now: a scheduled run over every scope the settings watch, limited to
    the scheduled run's time; or, given the keys of a catch-up event, a catch-up run of
    those scopes with all of `time_left`. With DISCOVER_STACK_SET, the accounts are the
    StackSet's (`members`, cached by the caller; else asked now)."""
    accounts, unusable, stale = _discovered(config, own_account, members)
    # Refused at once, naming why, rather than polled wrong: none at all, one twice, or a
    # region without Amazon Personalize (the stack's own, which synth may not have known).
    scopes = check_scopes(config.scopes(own_account, accounts), config.allowed_regions)
    function_seconds = time_left()
    if catch_up is None and config.run_seconds is not None:
        time_left = _at_most(time_left, config.run_seconds)
    return PollRun(
        region=config.region,
        now=datetime.now(UTC),
        run_id=run_id,
        stuck_after=config.stuck_after,
        time_left=time_left,
        clock=time.time,
        scopes=scopes if catch_up is None else tuple(s for s in scopes if s.key in catch_up),
        storm_threshold=config.storm_threshold,
        # A catch-up run is worth asking for only if it has longer than a scheduled one.
        catch_up_seconds=(
            function_seconds
            if config.run_seconds is not None and config.run_seconds < function_seconds
            else None
        ),
        catch_up=catch_up is not None,
        # Watched, and named each run with why, until their instance is usable again.
        unusable={s.key: unusable[s.account_id] for s in scopes if s.account_id in unusable},
        discovery_stale=stale,
    )


def _discovered(
    config: Settings, own_account: str, members: StackSetAccounts | None
) -> tuple[tuple[str, ...] | None, dict[str, str], str | None]:
    """With DISCOVER_STACK_SET: the accounts to watch (the unusable ones too, to keep them
    watched), those unusable with why, and why the answer is an earlier one, if it is.
    Without: None, the settings' list decides."""
    if config.discover_stack_set is None:
        return None, {}, None
    members = members or StackSetAccounts(config.discover_stack_set, config.stack_set_call_as)
    found = members.members()  # DiscoveryError, with no earlier answer: the run fails
    usable, unusable = watched_accounts(
        own_account, config.watched_accounts, found, config.discover_stack_set
    )
    return (*usable, *unusable), unusable, found.stale


def discovery(
    config: Settings, session: boto3.session.Session | None = None
) -> StackSetAccounts | None:
    """What finds the member accounts, if the settings say to: keep it for the container's
    life, so its answer is cached between runs."""
    if config.discover_stack_set is None:
        return None
    client = session.client("cloudformation", config=DISCOVERY_CONFIG) if session else None
    return StackSetAccounts(config.discover_stack_set, config.stack_set_call_as, client)


def _at_most(time_left: Callable[[], float], seconds: float) -> Callable[[], float]:
    ends = time.monotonic() + seconds

    def left() -> float:
        return min(time_left(), ends - time.monotonic())

    return left


def catch_up(function_arn: str, session: boto3.session.Session | None = None) -> LambdaCatchUp:
    """What starts a catch-up run of the function."""
    client = session.client("lambda", config=RETRY_CONFIG) if session else None
    return LambdaCatchUp(function_arn, client)


def channels(config: Settings, session: boto3.session.Session | None = None) -> list[Channel]:
    """The deployed channels, on SNS and EventBridge."""
    sns = session.client("sns", config=RETRY_CONFIG) if session else None
    events = session.client("events", config=RETRY_CONFIG) if session else None
    return channel_set(
        config,
        topic=lambda arn: SnsPublisher(arn, client=sns),
        bus=lambda name: EventBridgePublisher(name, client=events),
    )


def channel_set(
    config: Settings,
    topic: Callable[[str], Topic[Any]],
    bus: Callable[[str], Publisher[Any]],
) -> list[Channel]:
    """The events topic and the bus get everything; the people topic what people want, or
    one digest in a storm. The tests build the same set on their own publishers."""
    every = [
        Channel("sns", topic(config.topic_arn)),
        Channel("events", bus(config.event_bus_name)),
    ]
    if config.people_topic_arn is None:
        return every
    people_topic = topic(config.people_topic_arn)
    people = Channel(
        "people",
        people_topic,
        event_types=config.people_event_types,
        digest=people_topic.render_digest,
    )
    return [*every, people]
