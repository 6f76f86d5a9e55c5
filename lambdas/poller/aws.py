"""Client settings shared by the adapters."""

from __future__ import annotations

from botocore.config import Config

# Standard mode retries throttling (ThrottlingException, LimitExceededException, 429) and
# 5xx with exponential backoff and jitter: 8 attempts in all, the first included.
RETRY_CONFIG = Config(retries={"mode": "standard", "total_max_attempts": 8})
