"""The delivery pipeline: each transition is enriched, rendered for each channel that still
needs it, claimed, sent and settled (recorded, or released for the next poll), chunk by
chunk, each chunk only if its cost still fits before the deadline.

Publishing comes before recording, so a failed publish leaves the job as it was and the
next poll sends it again. Claiming first means an overlapping poll cannot send the same
transition, and a claim is checked again before each send.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger

from job_events.vocabulary import FINISHED
from poller.announcement import event_of
from poller.budget import Cost
from poller.errors import ClaimLostError, SnapshotError
from poller.models import Record
from poller.plan import chunks, storming_places

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from job_events.event import JobEvent
    from job_events.vocabulary import EventType
    from poller.budget import Budget
    from poller.models import Transition
    from poller.poll import PollResult, PollRun
    from poller.ports import JobSource, Publisher, SnapshotStore

logger = Logger(child=True)

# A claim outlives the deadline of the run that took it by this much, then lapses so a
# later run can take over from a run that died.
CLAIM_MARGIN_SECONDS = 60.0
CHUNK = 10  # transitions delivered together: one PublishBatch per channel

Digesting = frozenset[tuple[str, str]]  # (channel, 'account/region') given one digest


@dataclass(frozen=True, slots=True)
class Channel:
    """Where announcements go: the events topic, the event bus, the people topic."""

    name: str
    publisher: Publisher[Any]
    event_types: frozenset[EventType] | None = None  # None: every event
    # People's channel renders a storm as one digest instead of a message each.
    digest: Callable[[Sequence[JobEvent]], Any] | None = None

    def wants(self, transition: Transition) -> bool:
        return self.event_types is None or transition.event_type in self.event_types


@dataclass(slots=True)
class Pending:
    """A transition on its way, with what each channel that still needs it gets."""

    transition: Transition
    record: Record  # as read: what each channel last heard of the job
    events: dict[str, JobEvent]  # by channel: as that channel must hear it
    messages: dict[str, Any] = field(default_factory=dict)  # by channel: rendered
    place: str = ""  # its scope's 'account/region', for a digest
    expires_at: float = 0.0  # when its claim lapses (epoch seconds, the run's clock)
    errors: dict[str, str] = field(default_factory=dict)  # by channel: why sending failed
    sent: set[str] = field(default_factory=set)  # channels that accepted it
    lapsed: bool = False  # the lease ran out before a send: another poll may hold it now

    def delivered(self) -> dict[str, str]:
        """What each channel has now: this announcement where it went, else what it had."""
        return {**self.record.delivered, **dict.fromkeys(self.sent, self.transition.key)}


@dataclass(frozen=True, slots=True)
class Pipeline:
    """What delivery works with: the run, its adapters, and what the listing found."""

    run: PollRun
    source: JobSource
    store: SnapshotStore
    channels: Sequence[Channel]
    budget: Budget
    result: PollResult
    records: dict[str, Record]  # by job ARN: as read while listing
    place_of: dict[str, str]  # job ARN -> its scope's 'account/region'


def deliver(p: Pipeline, transitions: Sequence[Transition]) -> None:
    """Deliver in chunks. A storm is counted per scope: in a storming scope, people's
    channel gets one digest at the end, so that scope's claims are held until then."""
    digesting = _storms(p, transitions)
    storming = {place for _, place in digesting}
    held: list[Pending] = []
    batches = chunks(transitions, CHUNK)
    for index, chunk in enumerate(batches):
        cost = _chunk_cost(p, chunk)
        finish = _finish_cost(p, held, digesting)
        if not p.budget.allows(cost + finish):
            _defer(p, batches[index:])
            break
        later = cost * (len(batches) - index - 1)
        claimed = claim(p, render(p, enrich(p, chunk, cost + finish + later), digesting))
        send(p, claimed)
        held += [item for item in claimed if item.place in storming]
        settle(p, [item for item in claimed if item.place not in storming])
    if held:
        send_digests(p, held, digesting)
        settle(p, held)


def _storms(p: Pipeline, transitions: Sequence[Transition]) -> Digesting:
    digesting = storming_places(
        transitions,
        lambda t: p.place_of.get(t.job.arn or "", ""),
        [(c.name, c.wants) for c in p.channels if c.digest is not None],
        p.run.storm_threshold,
    )
    if digesting:
        p.result.storm = True
        p.result.storm_places = sorted({place for _, place in digesting})
        logger.warning(
            "storm: people get one digest per storming scope",
            extra={"transitions": len(transitions), "scopes": p.result.storm_places},
        )
    return digesting


def _chunk_cost(p: Pipeline, chunk: Sequence[Transition]) -> float:
    """A claim and a record each, and one send per channel."""
    budget = p.budget
    return budget.cost(Cost.WRITE, 2 * len(chunk)) + budget.cost(Cost.PUBLISH, len(p.channels))


def _finish_cost(p: Pipeline, held: Sequence[Pending], digesting: Digesting) -> float:
    """Held claims still need their digests and a record each before the deadline."""
    budget = p.budget
    digests = budget.cost(Cost.PUBLISH, len(digesting)) if held else 0
    return budget.cost(Cost.WRITE, len(held)) + digests


def _defer(p: Pipeline, rest: Sequence[Sequence[Transition]]) -> None:
    p.result.deferred = sum(len(chunk) for chunk in rest)
    logger.warning(
        "deadline near: leaving transitions for the next run",
        extra={"deferred": p.result.deferred},
    )


def enrich(p: Pipeline, chunk: Sequence[Transition], reserve: float) -> list[Transition]:
    """Details for jobs that finished, while they fit: enrichment is dropped, never
    delivery."""
    budget = p.budget
    enriched = []
    for transition in chunk:
        if transition.event_type not in FINISHED:
            enriched.append(transition)
        elif budget.allows(reserve + budget.cost(Cost.DESCRIBE)):
            with budget.measure(Cost.DESCRIBE):
                enriched.append(replace(transition, job=p.source.describe(transition.job)))
        else:
            p.result.enrichment_dropped += 1
            enriched.append(transition)
    return enriched


def render(p: Pipeline, chunk: Sequence[Transition], digesting: Digesting) -> list[Pending]:
    """Render before claiming, for each channel that still needs it: a job that cannot be
    rendered is left unclaimed, alone. A channel digesting the job's scope gets it in the
    digest instead."""
    rendered = []
    for transition in chunk:
        item = _pending(p, transition)
        try:
            item.messages = {
                c.name: c.publisher.render(item.events[c.name])
                for c in p.channels
                if c.name in item.events and (c.name, item.place) not in digesting
            }
        except (ValueError, TypeError):
            p.result.publish_failures += 1
            logger.exception("could not render; left for the next poll", extra=job_log(transition))
            continue
        rendered.append(item)
    return rendered


def _pending(p: Pipeline, transition: Transition) -> Pending:
    """The transition with its event for each channel that wants it and has not heard it."""
    arn = transition.job.arn or ""
    record = p.records.get(arn) or Record(arn, None)
    events = {
        c.name: _event(p, transition, record.previous_for(c.name))
        for c in p.channels
        if c.wants(transition) and not record.has(c.name, transition)
    }
    return Pending(transition, record, events, place=p.place_of.get(arn, ""))


def _event(p: Pipeline, transition: Transition, previous: str | None) -> JobEvent:
    """The event as a channel that last heard `previous` must hear it."""
    return event_of(replace(transition, previous_status=previous), p.run.region, p.run.now)


def claim(p: Pipeline, rendered: Sequence[Pending]) -> list[Pending]:
    """Take each transition's claim; one that another poll holds, or that cannot be
    written, is left for the next poll."""
    run = p.run
    claimed = []
    for item in rendered:
        now = run.clock()
        # The lease is this run's deadline as it stands now, plus a margin.
        item.expires_at = now + run.time_left() + CLAIM_MARGIN_SECONDS
        try:
            with p.budget.measure(Cost.WRITE):
                p.store.claim(item.transition, run.run_id, now, item.expires_at)
        except ClaimLostError:
            p.result.claims_lost += 1
            logger.warning(
                "another poll is announcing this job; skipped", extra=job_log(item.transition)
            )
        except SnapshotError:
            p.result.record_failures += 1
            logger.exception(
                "could not claim; left for the next poll", extra=job_log(item.transition)
            )
        else:
            claimed.append(item)
    return claimed


def still_held(p: Pipeline, items: Sequence[Pending]) -> list[Pending]:
    """The items whose lease outlasts one more send, however slow; the others have lapsed
    (a run that overran, a laptop that slept) and are never sent again."""
    latest_end = p.run.clock() + p.run.safety_margin
    for item in items:
        if not item.lapsed and item.expires_at <= latest_end:
            item.lapsed = True
            logger.warning(
                "claim lapsing before the send; left to the poll that takes it over",
                extra=job_log(item.transition),
            )
    return [item for item in items if not item.lapsed]


def send(p: Pipeline, claimed: Sequence[Pending]) -> None:
    """Each channel's messages in one send, of the items still held."""
    for channel in p.channels:
        todo = still_held(p, [item for item in claimed if channel.name in item.messages])
        if todo:
            with p.budget.measure(Cost.PUBLISH):
                failed = channel.publisher.send([item.messages[channel.name] for item in todo])
            _note_sent(channel.name, todo, failed)


def send_digests(p: Pipeline, held: Sequence[Pending], digesting: Digesting) -> None:
    """One digest per people channel and storming scope, of everything it needs there;
    it goes or fails whole."""
    by_name = {channel.name: channel for channel in p.channels}
    for name, place in sorted(digesting):
        digest, publisher = by_name[name].digest, by_name[name].publisher
        assert digest is not None, "only channels with a digest are digesting"
        todo = still_held(p, [i for i in held if i.place == place and name in i.events])
        if todo:
            message = digest([item.events[name] for item in todo])
            with p.budget.measure(Cost.PUBLISH):
                failed = publisher.send([message])
            _note_sent(name, todo, dict.fromkeys(range(len(todo)), failed[0]) if failed else {})


def _note_sent(channel: str, items: Sequence[Pending], failed: dict[int, str]) -> None:
    for position, item in enumerate(items):
        if position in failed:
            item.errors[channel] = failed[position]
        else:
            item.sent.add(channel)


def settle(p: Pipeline, claimed: Sequence[Pending]) -> None:
    """Record what every channel got; release what some channel did not, for the next
    poll; leave a lapsed claim to whoever holds it now."""
    for item in claimed:
        if item.lapsed:
            p.result.claims_lost += 1
            release(p, item)  # only if no other poll has taken it over since
        elif item.errors:
            p.result.publish_failures += 1
            logger.error(
                "delivery failed; the next poll sends it again where it is missing",
                extra={**job_log(item.transition), "errors": item.errors},
            )
            release(p, item)
        else:
            p.result.published += 1
            logger.info("published", extra=job_log(item.transition))
            record(p, item.transition)


def record(p: Pipeline, transition: Transition) -> None:
    try:
        with p.budget.measure(Cost.WRITE):
            p.store.record(transition, p.run.run_id, p.run.now)
    except ClaimLostError:
        p.result.claims_lost += 1
        logger.warning(
            "claim lapsed before recording; another poll took over", extra=job_log(transition)
        )
    except SnapshotError:
        p.result.record_failures += 1
        logger.exception(
            "published but not recorded; sent again once the claim lapses",
            extra=job_log(transition),
        )


def release(p: Pipeline, item: Pending) -> None:
    try:
        with p.budget.measure(Cost.WRITE):
            p.store.release(item.transition, p.run.run_id, item.delivered())
    except ClaimLostError:
        logger.warning("claim already taken over by another poll", extra=job_log(item.transition))
    except SnapshotError:
        # The claim lapses on its own; the job is only delayed by the lease.
        logger.exception("could not release claim", extra=job_log(item.transition))


def job_log(transition: Transition) -> dict[str, str | None]:
    return {
        "batch_segment_job_arn": transition.job.arn,
        "event_type": transition.event_type.value,
        "previous_status": transition.previous_status,
        "status": transition.job.status,
    }
