"""Slack's mrkdwn text rules, for AWS Chatbot's custom notifications and the webhook."""

from __future__ import annotations


def escape(text: str) -> str:
    """Slack's control characters, escaped as Slack asks; nothing else is touched."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    """At most `limit` characters, saying how many were cut; never half an escape."""
    if len(text) <= limit:
        return text
    marker = f" … [{len(text) - limit} more characters]"
    kept = text[: limit - len(marker)]
    entity = kept.rfind("&")
    if entity != -1 and ";" not in kept[entity:]:
        kept = kept[:entity]
    return kept + marker


def code_block(text: str, limit: int) -> str:
    """Text in a code block, escaped and clipped inside it, so the block always closes."""
    fence = "`" * 3
    return fence + clip(escape(text).replace(fence, "'" * 3), limit) + fence
