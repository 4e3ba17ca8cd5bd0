"""The migration flush waits for the callbacks in flight whatever the scheduler.

With a scheduler that is not Scrapy's (the Apify SDK's ``ApifyScheduler``, scrapy-redis), the
package does not own the frontier, but the requests in flight still run callbacks that add items
and change ``spider.state``: the last migration checkpoint must come after them.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from typing import TYPE_CHECKING

from scrapy.core.scheduler import BaseScheduler
from scrapy.utils.asyncio import sleep
from scrapy.utils.defer import deferred_f_from_coro_f, deferred_from_coro, maybe_deferred_to_future

from scrapy_actor_events import ActorEventsExtension
from scrapy_actor_events.events.messages import ActorEvent
from scrapy_actor_events.tools.site import DemoSite

from ..support.crawling import crawl_doc, make_crawler, read_checkpoint
from ..support.spiders import PagesSpider

if TYPE_CHECKING:
    from pathlib import Path

    from scrapy import Request


class PlainFifoScheduler(BaseScheduler):
    """A scheduler of its own, as a third-party one is: a queue and a set of seen URLs."""

    def __init__(self) -> None:
        self.queue: deque[Request] = deque()
        self.seen: set[str] = set()

    def has_pending_requests(self) -> bool:
        return bool(self.queue)

    def enqueue_request(self, request: Request) -> bool:
        if not request.dont_filter and request.url in self.seen:
            return False
        self.seen.add(request.url)
        self.queue.append(request)
        return True

    def next_request(self) -> Request | None:
        return self.queue.popleft() if self.queue else None

    def __len__(self) -> int:
        return len(self.queue)


async def wait_until(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await sleep(0.01)


@deferred_f_from_coro_f
async def test_the_flush_waits_for_the_callbacks_in_flight_under_another_scheduler(
    storage: Path, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="scrapy_actor_events")
    with DemoSite(pages=200, delay=0.3) as site:
        crawler = make_crawler(
            PagesSpider,
            SCHEDULER=f"{__name__}.PlainFifoScheduler",
            CONCURRENT_REQUESTS=12,
            ACTOR_EVENTS_MIGRATION_RESUME_AFTER=0,
        )
        done = deferred_from_coro(crawler.crawl_async(url=f"{site.url}/p/0"))
        stats = crawler.stats
        assert stats is not None
        await wait_until(lambda: (stats.get_value("item_scraped_count") or 0) >= 12)
        extension = crawler.get_extension(ActorEventsExtension)
        assert extension.reactions is not None
        assert extension.migration is not None
        assert crawler.engine is not None
        in_flight_at_start = extension._in_flight(crawler.engine)
        extension.reactions(ActorEvent("migrating", {"timeRemainingSecs": 20}))
        await wait_until(lambda: extension.migration.final is not None)
        final = extension.migration.final
        items_now = stats.get_value("item_scraped_count")
        pages_now = crawler.spider.state["pages"]
        restored = await read_checkpoint(storage, "SCRAPY_STATE_pages", "pages")
        await crawler.engine.close_spider_async(reason="shutdown")
        await maybe_deferred_to_future(done)
    assert in_flight_at_start > 0, "the test needs requests in flight when the migration starts"
    assert final.saved
    assert final.in_flight == 0
    assert restored is not None
    doc = crawl_doc(restored)
    # Every callback that ran before the kill is in the last migration checkpoint.
    assert doc["stats"]["item_scraped_count"] == items_now
    assert doc["state"]["pages"] == pages_now == items_now
    assert "PlainFifoScheduler keeps the requests" in caplog.text
    assert "(nothing was in flight)" not in caplog.text
