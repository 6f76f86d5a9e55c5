"""Posts a payload to a Slack incoming webhook, honouring Slack's rate limits."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

MAX_ATTEMPTS = 4
# What Slack answers a webhook URL that no longer exists (invalid_token, no_service,
# channel_is_archived...): after a rotation of the secret, the URL cached before it.
REVOKED_URL_STATUSES = frozenset({403, 404, 410})


class WebhookRejectedError(Exception):
    """Slack refused the request (4xx): the webhook URL or payload is wrong. Alarms."""


class WebhookRevokedError(WebhookRejectedError):
    """Slack refused the webhook URL itself: the secret may hold a newer one."""


class WebhookUnavailableError(Exception):
    """Slack did not accept it now (5xx, timeout, rate limit outlasting the run): retry."""


def post(
    url: str,
    payload: dict[str, Any],
    *,
    timeout: float = 10.0,
    time_left: Callable[[], float] = lambda: 60.0,
    sleep: Callable[[float], None] | None = None,
) -> int:
    """POST the payload; returns the number of attempts it took."""
    body = json.dumps(payload).encode()
    for attempt in range(1, MAX_ATTEMPTS + 1):
        request = urllib.request.Request(  # noqa: S310 - an https webhook URL from the secret
            url, data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                response.read()
                return attempt
        except urllib.error.HTTPError as err:
            if err.code == 429:
                wait = float(err.headers.get("Retry-After") or 1)
                if wait + timeout > time_left() or attempt == MAX_ATTEMPTS:
                    raise WebhookUnavailableError(f"rate limited by Slack for {wait}s") from err
                (sleep or time.sleep)(wait)
                continue
            raise _refused(err) from err
        except (urllib.error.URLError, TimeoutError) as err:
            raise WebhookUnavailableError(f"Slack did not answer: {err}") from err
    raise WebhookUnavailableError("rate limited by Slack on every attempt")


def _refused(err: urllib.error.HTTPError) -> Exception:
    """The error for an answer other than a rate limit: a revoked URL, a message Slack
    rejects, or Slack unavailable."""
    detail = err.read().decode(errors="replace")[:200]
    if err.code in REVOKED_URL_STATUSES:
        return WebhookRevokedError(f"Slack rejected the webhook URL: {err.code} {detail}")
    if 400 <= err.code < 500:
        return WebhookRejectedError(f"Slack rejected the message: {err.code} {detail}")
    return WebhookUnavailableError(f"Slack answered {err.code} {detail}")
