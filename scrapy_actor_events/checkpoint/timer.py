"""The local persist timer: a checkpoint every ``ACTOR_EVENTS_PERSIST_INTERVAL`` seconds.

The platform's ``persistState`` events come on top of it; a migration stops it and a migration
called off starts it again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scrapy.utils.asyncio import create_looping_call

from .options import Trigger

if TYPE_CHECKING:
    from collections.abc import Callable


class PersistTimer:
    def __init__(self, interval: float, request: Callable[[Trigger], Any]) -> None:
        self.interval = interval
        self.request = request
        self._loop: Any = None

    def start(self) -> None:
        if self.interval > 0 and (self._loop is None or not self._loop.running):
            self._loop = create_looping_call(self._fire)
            self._loop.start(self.interval, now=False)

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()

    def _fire(self) -> None:
        # The looping call must not get the Deferred: it would stop (Scrapy's asyncio variant).
        self.request(Trigger.TIMER)
