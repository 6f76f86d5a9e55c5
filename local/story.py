"""The demo's story: what happens to batch segment jobs between polls, and what should be heard.

The story knows only what it did to the jobs. After each tick's changes it says which
notifications the next poll must send: every job whose status moved since the last poll,
once. That is an oracle independent of the poller's own diff.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from local.personalize_emulator import PersonalizeEmulator

Expected = tuple[str, str | None, str]  # job ARN, previous status, new status

FAILURE_REASONS = (
    "Failed to read input data from s3://segments-in/users.json: Access Denied. "
    "Check that the role arn:aws:iam::123456789012:role/PersonalizeBatch can s3:GetObject.",
    "Input record 1042 is not valid JSON: expected ',' or '}' after object member.\n"
    "Each line of the input must be one JSON object with an itemId.",
)


@dataclass
class Story:
    """What happens to the jobs of one account and region (by default the emulator's own).
    Only the first of several stories throttles, as Personalize throttles its caller. An
    account that joins later starts its story at `first_tick`, the first poll that lists it;
    nothing happens to its jobs before."""

    personalize: PersonalizeEmulator
    seed: int
    history_jobs: int
    start: float
    tick_minutes: int
    account: str | None = None
    region: str | None = None
    throttles: bool = True
    first_tick: int = 0
    rng: random.Random = field(init=False)
    heard: dict[str, str] = field(default_factory=dict)  # status as of the last poll
    lifecycles: dict[str, list[str]] = field(default_factory=dict)  # statuses still to come
    narration: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)  # noqa: S311 - a story, not a secret

    @property
    def place(self) -> str:
        """'account/region', as the poller's ScopeErrors metric names a scope."""
        account = self.account or self.personalize.account_id
        return f"{account}/{self.region or self.personalize.region}"

    def mine(self, arn: str) -> bool:
        return arn.startswith(self.personalize.job_arn("", self.account, self.region))

    def clock(self, tick: int) -> float:
        return self.start + tick * self.tick_minutes * 60

    def _name(self, stem: str) -> str:
        return f"{stem}-{self.rng.randrange(16**4):04x}"

    def _new(
        self, stem: str, status: str, at: float, then: list[str], reason: str | None = None
    ) -> None:
        name = self._name(stem)
        arn = self.personalize.add_job(
            name,
            status,
            at=at,
            failure_reason=reason,
            account=self.account,
            region=self.region,
            jobInput={"s3DataSource": {"path": f"s3://segments-in/{stem}/users.json"}},
            jobOutput={"s3DataDestination": {"path": f"s3://segments-out/{name}/"}},
            numResults=25,
        )
        self.lifecycles[arn] = then
        self.narration.append(f"{arn.rsplit('/', 1)[1]} created ({status})")

    def before_tick(self, tick: int) -> None:
        """Change the jobs as time passes up to this tick's poll."""
        self.narration = []
        now = self.clock(tick)
        step = tick - self.first_tick
        if step < 0:
            return
        if step == 0:
            self._history(now)
            return
        self._advance(now)
        if step == 1:
            self._new("daily-audience", "PENDING", now, ["IN PROGRESS", "ACTIVE"])
            self._new("weekly-lookalike", "PENDING", now, ["IN PROGRESS", "CREATE FAILED"])
            # Finishes within one poll period: the poll sees PENDING, then ACTIVE.
            self._new("churn-risk", "PENDING", now, ["ACTIVE"])
        elif step == 2:
            self._throttle()
        elif step == 3:
            # Created and failed between two polls: heard once, as a failure.
            self._new("flash-sale", "CREATE FAILED", now, [], reason=FAILURE_REASONS[1])
        elif self.rng.random() < 0.5:
            self._new("adhoc-segment", "PENDING", now, ["IN PROGRESS", "ACTIVE"])

    def _throttle(self) -> None:
        if self.throttles:
            self.personalize.inject_fault("ListBatchSegmentJobs", "ThrottlingException", times=2)
            self.narration.append("Personalize will throttle the next 2 list calls")

    def _history(self, now: float) -> None:
        for i in range(self.history_jobs):
            at = now - (self.history_jobs - i) * 3600
            status = "CREATE FAILED" if self.rng.random() < 0.05 else "ACTIVE"
            reason = FAILURE_REASONS[0] if status == "CREATE FAILED" else None
            self.personalize.add_job(
                f"history-{i:05d}",
                status,
                at=at,
                failure_reason=reason,
                account=self.account,
                region=self.region,
            )
        self.narration.append(f"{self.history_jobs} jobs already finished before the first poll")

    def _advance(self, now: float) -> None:
        for arn, upcoming in self.lifecycles.items():
            if upcoming:
                status = upcoming.pop(0)
                reason = FAILURE_REASONS[0] if status.endswith("FAILED") else None
                self.personalize.set_status(arn, status, at=now, failure_reason=reason)
                self.narration.append(f"{arn.rsplit('/', 1)[1]} -> {status}")

    def expected(self, first_poll: bool) -> list[Expected]:
        """What the coming poll must publish; then remember the jobs as heard."""
        moved: list[Expected] = []
        for job in self.personalize.jobs():
            arn, status = job["batchSegmentJobArn"], job["status"]
            if not self.mine(arn):
                continue
            previous = self.heard.get(arn)
            if previous != status:
                if not first_poll:
                    moved.append((arn, previous, status))
                self.heard[arn] = status
        return moved


def compare(expected: list[Expected], received: list[Expected]) -> list[str]:
    """Problems between what should have been heard and what was, each exactly once."""
    want, got = Counter(expected), Counter(received)
    problems = [f"missing: {item}" for item in want - got]
    problems += [f"unexpected or doubled: {item} x{count}" for item, count in (got - want).items()]
    return problems
