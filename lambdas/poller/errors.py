"""Domain errors: what went wrong, in the poller's words, raised from the AWS error."""

from __future__ import annotations


class PollerError(Exception):
    """Base of the poller's own errors."""


class ConfigurationError(PollerError):
    """An environment variable is missing or malformed."""


class JobListingError(PollerError):
    """ListBatchSegmentJobs failed after botocore's retries; nothing was diffed."""


class DiscoveryError(PollerError):
    """The member accounts could not be found (ListStackInstances failed) and no earlier
    answer is at hand: the run fails rather than watch fewer accounts than it should."""


class SnapshotError(PollerError):
    """The snapshot table could not be read or written."""


class ClaimLostError(SnapshotError):
    """Another poll holds or has recorded this job since this poll read the snapshot."""


class CatchUpError(PollerError):
    """A catch-up run could not be started; its scope's hold lapses and a later run asks
    again."""


class PublishFailedError(PollerError):
    """Some transitions could not be published; their snapshot was left for the next run."""

    def __init__(self, failed: int, total: int) -> None:
        super().__init__(
            f"{failed} of {total} transitions could not be published; they stay unrecorded "
            "and the next poll publishes them again"
        )


class ScopesUnreachableError(PollerError):
    """No watched scope could be listed: nothing was compared."""

    def __init__(self, reasons: dict[str, str]) -> None:
        listed = "; ".join(f"{place}: {why}" for place, why in sorted(reasons.items()))
        super().__init__(f"no scope could be listed ({listed})")
