"""Local HTTP servers run on a daemon thread of the process that starts them."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from socketserver import BaseServer


def serve_in_background(server: BaseServer) -> None:
    """Serve until server.shutdown(), which waits up to one poll interval (0.5 s by
    default: a short one keeps every stop quick)."""
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    ).start()
