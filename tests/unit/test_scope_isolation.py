"""No scope silences another, and the promise's last gaps: regressions, each through the
real poll() with in-memory adapters on a scripted clock.

Each test here failed on the code before the change that added it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest

from poller import scanning
from poller.errors import SnapshotError
from poller.models import Scope
from poller.poll import poll
from tests.fakes import START
from tests.world import World, all_moved, watching

PROD, DEV = "111111111111", "222222222222"
EAST, WEST = "us-east-1", "eu-west-1"


def jobs_in(world: World, account: str, region: str, count: int, status: str) -> list[str]:
    return [
        world.source.put(f"{account[:3]}-{region}-{i}", status, account=account, region=region)
        for i in range(count)
    ]


# --- one hung region -----------------------------------------------------------------------


def test_a_hung_scope_is_left_named_and_the_others_are_announced_before_the_deadline() -> None:
    scopes = (Scope(None, PROD, EAST), Scope(None, PROD, WEST), Scope(None, DEV, EAST))
    world = World(scopes=scopes)
    arns = {s: jobs_in(world, s.account_id or "", s.region or "", 2, "IN PROGRESS") for s in scopes}
    world.later(1)
    world.run()
    for scope_arns in arns.values():
        for arn in scope_arns:
            world.source.move(arn, "ACTIVE")
    faults = world.source.faults
    faults.hung, faults.hang_after = {f"{PROD}/{WEST}"}, 2  # the other two list first
    faults.hang_seconds = 70  # past the listing's share of a 120 s run, not past the run

    hung = world.run(seconds=120)  # World.run asserts the run ended by its deadline

    assert list(hung.unreachable) == [f"{PROD}/{WEST}"]
    assert "did not finish" in hung.unreachable[f"{PROD}/{WEST}"]
    told = sorted(h.arn for h in world.events("sns"))
    assert told == sorted(arns[scopes[0]] + arns[scopes[2]]), "the others, in the same run"
    marker = world.store.scopes[scopes[1]]
    assert marker.checkpoint is None, "its marker is kept"
    assert marker.baseline_complete

    world.source.release()
    world.run()
    world.run()

    west = [h.arn for h in world.events("sns") if h.arn in arns[scopes[1]]]
    assert sorted(west) == sorted(arns[scopes[1]]), "once it answers: its changes, once"


def test_several_scopes_list_at_once_and_their_costs_add_up_in_the_run() -> None:
    scopes = tuple(Scope(None, a, r) for a in (PROD, DEV) for r in (EAST, WEST))
    world = World(page_size=5, scopes=scopes)
    every = [
        arn
        for s in scopes
        for arn in jobs_in(world, s.account_id or "", s.region or "", 12, "PENDING")
    ]
    world.later(1)
    world.run()
    for arn in every:
        world.source.move(arn, "CREATE FAILED")

    result = world.run()

    assert result.pages == 4 * 3, "each scope's three pages, merged in the run's thread"
    assert result.jobs_seen == 48
    assert sorted(h.arn for h in world.events("sns")) == sorted(every)


# --- a storm in one account ------------------------------------------------------------


def test_a_storm_in_one_account_changes_nothing_for_another_accounts_people() -> None:
    world = World(storm_threshold=5, scopes=(Scope(None, PROD, EAST), Scope(None, DEV, EAST)))
    dev = jobs_in(world, DEV, EAST, 40, "IN PROGRESS")
    (prod,) = jobs_in(world, PROD, EAST, 1, "IN PROGRESS")
    world.later(1)
    world.run()
    for arn in dev:
        world.source.move(arn, "ACTIVE")
    world.source.move(prod, "CREATE FAILED", failureReason="bad input")

    result = world.run()

    assert result.storm
    assert result.storm_places == [f"{DEV}/{EAST}"]
    people = world.events("people")
    (prod_heard,) = [h for h in people if h.arn == prod]
    assert not prod_heard.digest, "prod's failure reaches its people as itself"
    assert all(h.digest for h in people if h.arn in dev)
    assert world.publishers["people"].calls == 2, "prod's event, and dev's one digest"


# --- a scope removed and added back ------------------------------------------------------


def test_a_scope_removed_and_added_back_starts_a_fresh_silent_baseline() -> None:
    prod, dev = Scope(None, PROD, EAST), Scope(None, DEV, EAST)
    world = World(scopes=(prod, dev))
    (old,) = jobs_in(world, DEV, EAST, 1, "PENDING")
    world.later(1)
    world.run()
    world.scopes = (prod,)  # dev is no longer watched
    world.run()
    world.later(60)
    world.source.move(old, "ACTIVE")  # while nobody watched
    world.source.put("dev-made-meanwhile", "ACTIVE", account=DEV, region=EAST)
    world.later(60)

    world.scopes = (prod, dev)
    rewatched = world.run()

    assert rewatched.scopes_rewatched == [dev.key]
    assert rewatched.first_run
    assert world.heard() == [], "nothing done while unwatched is news"
    assert world.store.items[old].status == "ACTIVE", "its record is corrected silently"
    world.later(1)
    world.source.move(old, "CREATE FAILED")  # an odd move, but what it does now is news
    world.source.put("dev-new", "PENDING", account=DEV, region=EAST)
    world.later(1)
    world.run()
    assert sorted(world.heard()) == [("dev-new", None, "PENDING")]


def test_an_unreachable_scope_stays_watched_and_announces_what_changed_meanwhile() -> None:
    world = World(scopes=(Scope(None, PROD, EAST), Scope(None, DEV, EAST)))
    (job,) = jobs_in(world, DEV, EAST, 1, "PENDING")
    world.later(1)
    world.run()
    world.source.faults.unreachable = {f"{DEV}/{EAST}"}
    world.run()
    world.later(60)
    world.source.move(job, "ACTIVE")
    world.source.faults.unreachable = set()

    result = world.run()

    assert result.scopes_rewatched == []
    assert world.heard() == [(job.rsplit("/", 1)[-1], "PENDING", "ACTIVE")]


# --- the promise's last gaps ---------------------------------------------------------------


def test_a_new_job_after_a_partly_failed_first_delivery_never_goes_backwards_or_twice() -> None:
    world = World()
    watching(world)
    arn = world.source.put("new", "PENDING")
    lagging = dict(world.source.summaries[arn])
    world.later(1)
    world.source.move(arn, "ACTIVE")
    world.publishers["events"].fails = lambda _event: True
    world.run()  # first seen ACTIVE: the topic and people hear it, the bus does not
    world.publishers["events"].fails = lambda _event: False
    current = world.source.summaries[arn]
    world.source.summaries[arn] = lagging  # the next listing lags one move behind

    world.run()
    world.source.summaries[arn] = current
    world.run()
    world.run()

    for channel in ("sns", "people", "events"):
        assert world.heard(channel) == [("new", None, "ACTIVE")], channel


def test_a_change_during_a_baseline_of_several_runs_is_announced() -> None:
    world = World(page_size=10)
    arns = [world.source.put(f"old-{i:03}", "IN PROGRESS") for i in range(60)]
    world.later(1)
    world.source.faults.page_cost = 6.0  # a couple of pages per 30 s run
    first = world.run(seconds=30)
    assert first.first_run
    assert not first.listing_complete
    unreached = [arn for arn in arns if arn not in world.store.items]
    world.later(60)
    world.source.move(unreached[0], "CREATE FAILED", failureReason="bad input")

    while world.run(seconds=30).first_run:
        pass

    name = unreached[0].rsplit("/", 1)[-1]
    assert world.heard() == [(name, None, "CREATE FAILED")]


def test_a_poll_with_nothing_to_announce_writes_nothing_whatever_the_timestamps_say() -> None:
    world = World()
    (arn,) = watching(world, ("ahead", "ACTIVE"))
    world.source.summaries[arn]["lastUpdatedDateTime"] = START + timedelta(days=3 * 365)
    for _ in range(3):
        world.later(5)
        world.run()
    writes = world.store.table_writes

    for _ in range(3):
        world.later(5)
        world.run()

    assert world.store.table_writes == writes
    assert world.heard() == []


def test_a_claim_whose_lease_lapses_before_its_send_is_never_sent() -> None:
    # A laptop's poll that slept between claiming and sending: the scheduled poll may hold
    # the claim now, so this run sends nothing more of it and says so.
    world = World()
    (arn,) = all_moved(world, 1, "PENDING", "ACTIVE")
    sns = world.publishers["sns"]
    slept = [0.0]

    def laptop_sleeps() -> None:
        world.clock.advance(10 * 60)  # the wall clock moves; the process's own time does not
        slept[0] += 10 * 60

    sns.on_publish = laptop_sleeps
    world.clock.advance(1)
    deadline = world.clock.time() + 60
    run = replace(world.spec(deadline), time_left=lambda: deadline - world.clock.time() + slept[0])
    result = poll(world.source, world.store, world.channels, run)

    assert sns.calls == 1
    assert world.heard("sns") == [("job-0", "PENDING", "ACTIVE")]
    assert world.heard("events") == []
    assert world.heard("people") == []
    assert result.claims_lost == 1
    assert not result.clean
    assert world.store.items[arn].claimed_by is None, "released: nobody had taken it over"
    assert world.store.items[arn].delivered == {"sns": "JOB_SUCCEEDED:ACTIVE"}
    world.run()
    assert world.heard("events") == world.heard("people") == [("job-0", "PENDING", "ACTIVE")]
    assert world.heard("sns") == []


# --- a listing that never fits in one run ----------------------------------------------------


def test_a_listing_that_cannot_finish_across_scheduled_runs_is_finished_by_a_catch_up_run() -> None:
    world = World(page_size=10)
    world.catch_up_seconds = 900.0
    names = [f"old-{i:03}" for i in range(200)]
    arns = [world.source.put(name, "IN PROGRESS") for name in names]
    world.later(1)
    faults = world.source.faults
    faults.page_cost = 3.0  # about five of its twenty pages fit in a 30 s scheduled run
    faults.token_lifetime = 60.0  # and a checkpoint is stale by the next run

    assert world.run(seconds=30).catch_up == [], "the first try leaves a checkpoint"
    world.later(5)
    restarted = world.run(seconds=30)
    world.later(5)
    listed = world.source.calls["ListBatchSegmentJobs"]
    held = world.run(seconds=30)

    (scope,) = restarted.catch_up
    assert not restarted.listing_complete
    assert held.scopes_held == [scope.key], "scheduled runs leave it to the catch-up run"
    assert world.source.calls["ListBatchSegmentJobs"] == listed
    assert held.listing_complete, "a held scope is not an unfinished listing"
    caught_up = world.run(seconds=900, catch_up=True)
    assert caught_up.listing_complete
    assert set(world.store.items) == set(arns), "the whole baseline, in one catch-up run"
    assert world.store.scopes[scope].catch_up_until is None, "the hold ends with it"
    assert world.heard() == []

    # Steady state: the oldest job, on the last page, fails; runs go on as deployed.
    world.later(1)
    world.source.move(arns[0], "CREATE FAILED", failureReason="bad input")
    for _ in range(4):
        world.later(5)
        if world.run(seconds=30).catch_up:
            world.run(seconds=900, catch_up=True)

    assert world.heard() == [(names[0], "IN PROGRESS", "CREATE FAILED")]


# --- found by an adversarial read --------------------------------------------------------


def test_a_catch_up_run_leaves_the_watched_scopes_to_the_scheduled_runs() -> None:
    prod, dev = Scope(None, PROD, EAST), Scope(None, DEV, EAST)
    world = World(scopes=(prod, dev))
    (dev_job,) = jobs_in(world, DEV, EAST, 1, "IN PROGRESS")
    world.later(1)
    world.run()
    world.scopes = (prod,)  # a catch-up run of prod alone, as the handler builds it

    world.run(seconds=900, catch_up=True)

    assert world.store.watched == frozenset({prod.key, dev.key})
    world.source.move(dev_job, "CREATE FAILED", failureReason="bad input")
    world.later(1)
    world.scopes = (prod, dev)
    assert world.run().scopes_rewatched == []
    assert world.heard() == [(dev_job.rsplit("/", 1)[-1], "IN PROGRESS", "CREATE FAILED")]


def test_a_run_watching_no_scope_changes_nothing() -> None:
    world = World(scopes=(Scope(None, PROD, EAST),))
    world.run()
    watched, writes = world.store.watched, world.store.table_writes
    world.scopes = ()  # a catch-up event naming only scopes removed since

    result = world.run(catch_up=True)

    assert result.clean
    assert world.store.watched == watched
    assert world.store.table_writes == writes


def test_a_scope_no_thread_could_start_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scanning, "MAX_SCOPE_THREADS", 2)
    scopes = (Scope(None, DEV, WEST), Scope(None, PROD, WEST), Scope(None, PROD, EAST))
    world = World(scopes=scopes)
    world.later(1)
    world.run()
    faults = world.source.faults
    faults.hung, faults.hang_seconds = {f"{DEV}/{WEST}", f"{PROD}/{WEST}"}, 35  # each

    result = world.run(seconds=120)

    assert set(result.unreachable) == {s.place for s in scopes}
    assert "did not start" in result.unreachable[f"{PROD}/{EAST}"]
    world.source.release()


def test_a_failed_record_read_names_its_scope_and_its_cause() -> None:
    world = World(scopes=(Scope(None, PROD, EAST), Scope(None, DEV, EAST)))
    jobs_in(world, DEV, EAST, 1, "PENDING")
    world.later(1)
    world.run()

    def throttled(_arns: Any) -> dict[str, Any]:
        raise SnapshotError("reading records: ProvisionedThroughputExceededException")

    world.store.load = throttled  # type: ignore[method-assign,assignment]
    result = world.run()

    assert "SnapshotError" in result.unreachable[f"{DEV}/{EAST}"]


def test_a_rewatching_run_that_dies_before_saving_the_watched_scopes_stays_silent() -> None:
    prod, dev = Scope(None, PROD, EAST), Scope(None, DEV, EAST)
    world = World(scopes=(prod, dev))
    (old,) = jobs_in(world, DEV, EAST, 1, "PENDING")
    world.later(1)
    world.run()
    world.scopes = (prod,)
    world.run()
    world.later(60)
    world.source.move(old, "ACTIVE")  # while nobody watched
    world.later(60)
    world.scopes = (prod, dev)
    save_watched = world.store.save_watched

    def throttled_once(keys: frozenset[str]) -> None:
        world.store.save_watched = save_watched  # type: ignore[method-assign]
        raise SnapshotError("saving the watched scopes: ProvisionedThroughputExceededException")

    world.store.save_watched = throttled_once  # type: ignore[method-assign]
    with pytest.raises(SnapshotError):
        world.run()
    world.run()
    world.run()

    assert world.heard() == [], "what it did while unwatched is still not news"


def test_a_catch_up_run_holds_its_scope_until_its_own_end() -> None:
    world = World()
    world.run()
    holds: list[Any] = []
    list_jobs = world.source.list_jobs

    def noting_the_hold(scope: Scope, *args: Any) -> Any:
        holds.append(world.store.scopes[scope].catch_up_until)
        return list_jobs(scope, *args)

    world.source.list_jobs = noting_the_hold  # type: ignore[method-assign,assignment]
    started = world.clock.now()
    world.run(seconds=900, catch_up=True)

    (hold,) = holds
    assert hold is not None
    assert hold >= started + timedelta(seconds=899), "past any scheduled tick meanwhile"
    assert world.store.scopes[Scope()].catch_up_until is None, "and no longer"


def test_a_partly_announced_job_of_a_scope_removed_and_added_back_stays_silent() -> None:
    # Found by the property test: the record of a job whose first announcement partly
    # failed holds no status, and skipped the re-added scope's fresh baseline.
    prod, dev = Scope(None, PROD, EAST), Scope(None, DEV, EAST)
    world = World(scopes=(prod, dev))
    world.run()
    (job,) = jobs_in(world, DEV, EAST, 1, "IN PROGRESS")
    world.later(1)
    world.publishers["sns"].fails = lambda _event: True
    world.run()  # first seen: events and people hear it, the topic does not
    world.publishers["sns"].fails = lambda _event: False
    world.heard("events")
    world.scopes = (prod,)
    world.run()
    world.later(60)
    world.source.move(job, "ACTIVE")  # while nobody watched
    world.later(60)
    world.scopes = (prod, dev)

    world.run()
    world.run()

    assert world.heard("sns") == world.heard("events") == world.heard("people") == []
    assert world.status(job) == "ACTIVE", "recorded silently"
