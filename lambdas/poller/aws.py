"""Client settings shared by the adapters."""

from __future__ import annotations

from botocore.config import Config

# Standard mode retries throttling (ThrottlingException, LimitExceededException, 429) and
# 5xx with exponential backoff and jitter; at least 5 attempts per the design.
RETRY_CONFIG = Config(retries={"mode": "standard", "max_attempts": 8})
