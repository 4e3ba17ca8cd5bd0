"""One consistent cut of a running crawl: the frontier and the crawl state at the same instant.

A cut is taken between two callbacks, never in the middle of one: a callback that has started
has already counted its items and changed ``spider.state``, while its request still counts as
unfinished, so a restart would replay half of it on top of the other half. Before capturing, new
callbacks are held back (responses wait in the scraper's queue) until the running ones finish, or
until ``ACTOR_EVENTS_CUT_TIMEOUT`` passes.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from scrapy.http.request import NO_CALLBACK
from scrapy.utils.asyncio import sleep

from .. import _scrapy_internals as internals
from .format import SegmentKind
from .frontier import FrontierCapture

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.core.engine import ExecutionEngine

    from .crawl_state import CrawlState
    from .frontier import Frontier
    from .items import ItemJournal
    from .queue_frontier import QueueFrontier

logger = logging.getLogger(__name__)

_POLL_SECONDS = 0.002


class CrawlCut:
    """Captures the crawl for the checkpoint writer (a :class:`~.writer.CaptureSource`)."""

    def __init__(
        self,
        spider: Spider,
        engine: ExecutionEngine | None,
        frontier: Frontier | QueueFrontier | None,
        crawl_state: CrawlState,
        timeout: float,
        items: ItemJournal | None = None,
    ) -> None:
        self.spider = spider
        self.engine = engine
        self.frontier = frontier
        self.crawl_state = crawl_state
        self.timeout = timeout
        self.items = items

    async def capture(self, base: bool) -> tuple[FrontierCapture, bytes]:
        release = await self._between_callbacks()
        try:
            if self.frontier is None:
                # The scheduler keeps the requests; what is in flight still matters: their
                # callbacks change the items and spider.state this checkpoint holds.
                in_flight = requests_in_flight(self.engine) if self.engine is not None else 0
                capture = FrontierCapture(SegmentKind.BASE, [], [], None, 0, 0, in_flight, 0)
            else:
                capture = self.frontier.capture(full=base)
            if self.items is not None:
                # In the same reactor turn as the frontier: the items of exactly the callbacks
                # the frontier counts as finished.
                capture.items = self.items.capture(base=capture.kind == SegmentKind.BASE)
            return capture, self.crawl_state.capture(self.spider, capture.in_flight)
        finally:
            if release is not None:
                release()

    def failed(self, capture: FrontierCapture) -> None:
        if self.frontier is not None:
            self.frontier.failed(capture)

    async def _between_callbacks(self) -> internals.Release | None:
        engine = self.engine
        if engine is None or self.timeout <= 0 or not internals.callbacks_running(engine):
            return None
        release = internals.hold_callbacks(engine)
        deadline = time.monotonic() + self.timeout
        while internals.callbacks_running(engine) and time.monotonic() < deadline:
            await sleep(_POLL_SECONDS)
        running = internals.callbacks_running(engine)
        if running:
            logger.debug(
                "%d callbacks still running after %.1f s; checkpointing anyway (their requests"
                " stay open and their items out of the checkpoint; their spider.state changes"
                " may be repeated after a restart)",
                running,
                self.timeout,
            )
        return release


def requests_in_flight(engine: ExecutionEngine) -> int:
    """Requests the engine took from the scheduler, whatever the scheduler, whose callback has not
    finished; robots.txt and media downloads (``NO_CALLBACK``) left out."""
    return sum(1 for r in internals.in_progress(engine) if r.callback is not NO_CALLBACK)
