"""What an ARN tells about a job, and where its console is."""

from __future__ import annotations

_CONSOLE_DOMAIN = {
    "aws-cn": "console.amazonaws.cn",
    "aws-us-gov": "console.amazonaws-us-gov.com",
}
DEFAULT_CONSOLE_DOMAIN = "console.aws.amazon.com"


def arn_part(arn: str | None, index: int) -> str | None:
    """One of partition (1), service (2), region (3), account (4), resource (5)."""
    parts = (arn or "").split(":", 5)
    return parts[index] or None if len(parts) == 6 else None


def name_from_arn(arn: str | None) -> str | None:
    resource = arn_part(arn, 5)
    return resource.rsplit("/", 1)[-1] if resource else None


def console_url(region: str, partition: str | None) -> str:
    """The Personalize console of a region, in its partition's console domain."""
    domain = _CONSOLE_DOMAIN.get(partition or "aws", DEFAULT_CONSOLE_DOMAIN)
    return f"https://{region}.{domain}/personalize/home?region={region}"
