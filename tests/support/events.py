"""Events servers for tests, in a process of their own: the package's (Autobahn), or one written
with `websockets` that speaks the same commands (a second, independent implementation)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from scrapy_actor_events.tools.harness import SERVER_COMMAND, EventsServerProcess

ROOT = Path(__file__).resolve().parents[2]

SERVERS = {
    "autobahn": SERVER_COMMAND,
    "websockets": (sys.executable, "-m", "tests.servers.ws_events_server", "0"),
}


def start_events_server(
    kind: str = "autobahn", extra_args: list[str] | None = None
) -> EventsServerProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return EventsServerProcess([*SERVERS[kind], *(extra_args or [])], cwd=ROOT, env=env)
