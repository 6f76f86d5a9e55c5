"""Client settings shared by the adapters: every call is bounded, so a run can plan for its
slowest call instead of waiting out botocore's defaults (60 s to connect, 60 s to read)."""

from __future__ import annotations

from dataclasses import dataclass

from botocore.config import Config

# Standard mode's backoff before attempt n+1 is at most min(2**n, 20) s for throttling
# (botocore.retries.standard.ExponentialBackoff), and an x-amz-retry-after header may add
# up to 5 s more.
_MAX_BACKOFF = 20.0
_RETRY_AFTER_EXTRA = 5.0
# Scopes listed at once (poller.scanning), each in a thread that waits on the network, not
# the CPU; more scopes queue for a thread. Their clients share one pool of connections to
# each regional endpoint, as large as the threads that may use it at once.
MAX_SCOPE_THREADS = 100
_BOTOCORE_POOL = 10  # botocore's connections per endpoint, enough for calls in one thread


@dataclass(frozen=True, slots=True)
class CallLimits:
    """How long one call may take: each attempt's connect and read timeouts, and attempts."""

    connect_seconds: float
    read_seconds: float
    attempts: int
    connections: int = _BOTOCORE_POOL  # kept open per endpoint, for calls made at once

    @property
    def config(self) -> Config:
        # Standard mode retries throttling (ThrottlingException, LimitExceededException,
        # 429) and 5xx with exponential backoff and jitter; attempts include the first.
        return Config(
            connect_timeout=self.connect_seconds,
            read_timeout=self.read_seconds,
            retries={"mode": "standard", "total_max_attempts": self.attempts},
            max_pool_connections=self.connections,
        )

    @property
    def worst_case_seconds(self) -> float:
        """The longest one call can take, retries and backoff included."""
        tries = self.attempts * (self.connect_seconds + self.read_seconds)
        waits = sum(
            min(2.0**n, _MAX_BACKOFF) + _RETRY_AFTER_EXTRA for n in range(self.attempts - 1)
        )
        return tries + waits


# Listing: a page answers in well under a second; an endpoint that doesn't is given up on
# in seconds, and its scope is left for this run (the run never waits for it anyway).
LISTING_LIMITS = CallLimits(
    connect_seconds=2, read_seconds=5, attempts=3, connections=MAX_SCOPE_THREADS
)
# Details are optional: one try, and the event goes out without them.
DESCRIBE_LIMITS = CallLimits(connect_seconds=2, read_seconds=3, attempts=1)
# AssumeRole into a member account, once per hour or so per account.
STS_LIMITS = CallLimits(connect_seconds=2, read_seconds=3, attempts=3)
# The StackSet's instances, once every few minutes (poller.discovery): a page answers in
# well under a second; a run that cannot get them keeps the last answer, or fails.
DISCOVERY_LIMITS = CallLimits(connect_seconds=2, read_seconds=5, attempts=3)
# The table, the topics and the bus: calls made while delivering. A run keeps at least this
# call's worst case in hand (its safety margin), so one slow call cannot outlast the run.
# Every listing thread reads its scope's records from the table at once.
DELIVERY_LIMITS = CallLimits(
    connect_seconds=1, read_seconds=2, attempts=3, connections=MAX_SCOPE_THREADS
)

LISTING_CONFIG = LISTING_LIMITS.config
DESCRIBE_CONFIG = DESCRIBE_LIMITS.config
STS_CONFIG = STS_LIMITS.config
DISCOVERY_CONFIG = DISCOVERY_LIMITS.config
RETRY_CONFIG = DELIVERY_LIMITS.config
