"""The events socket's options, apart from the socket: reading them needs no Autobahn, which a
crawl without ``ACTOR_EVENTS_WEBSOCKET_URL`` never imports (its modules would sit in the heap
that every full garbage collection walks)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass(frozen=True)
class SocketOptions:
    #: ``ACTOR_EVENTS_WEBSOCKET_URL``; None: no platform events (a local run).
    url: str | None = None
    ca_file: str | None = None
    ping_interval: int = 10
    ping_timeout: int = 5
    initial_delay: float = 1.0
    max_delay: float = 90.0

    def describe(self) -> str:
        """The URL without credentials or query (tokens may ride in either)."""
        parts = urlsplit(self.url or "")
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}{parts.path}"
