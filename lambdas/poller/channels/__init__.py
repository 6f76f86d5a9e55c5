"""One module per channel: each renders its own wire format within its own limits."""
