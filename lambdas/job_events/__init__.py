"""The published event contract, shared by both functions: its vocabulary, the typed event
and digest that serialize to docs/events.md, and the text rules of Slack's mrkdwn."""
