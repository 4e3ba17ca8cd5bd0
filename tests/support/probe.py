"""A paused crawl: every start request is scheduled, none is sent, and a test acts on the engine."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scrapy import Request, Spider, signals
from scrapy.utils.asyncio import sleep
from scrapy.utils.defer import deferred_from_coro

from .crawling import make_crawler

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    from scrapy.crawler import Crawler


class ListSpider(Spider):
    """Yields the requests its ``make_requests(spider)`` argument returns, then nothing."""

    name = "list"

    def __init__(
        self, make_requests: Callable[[Spider], list[Request]] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.make_requests = make_requests or (lambda spider: [])

    async def start(self) -> AsyncIterator[Any]:
        for request in self.make_requests(self):
            yield request

    def parse(self, response):
        return None

    def parse_other(self, response):
        return None


async def paused_crawl(
    make_requests: Callable[[Spider], list[Request]],
    action: Callable[[Crawler], Awaitable[Any]],
    spidercls: type[Spider] = ListSpider,
    **settings: Any,
) -> tuple[Crawler, Any]:
    """Crawl with the engine paused from the start; run ``action`` once start() is exhausted."""
    crawler = make_crawler(spidercls, **settings)
    outcome: dict[str, Any] = {}

    def opened(spider: Spider) -> None:
        assert crawler.engine is not None
        crawler.engine.pause()

    async def probe() -> None:
        engine = crawler.engine
        assert engine is not None
        while engine._start is not None:  # reading start() goes on while paused
            await sleep(0.01)
        try:
            outcome["result"] = await action(crawler)
        except BaseException as exc:
            outcome["error"] = exc
        await engine.close_spider_async(reason="probe_done")

    def started() -> None:
        # engine_started handlers run before start() is read: probe from a task of its own.
        deferred_from_coro(probe())

    crawler.signals.connect(opened, signal=signals.spider_opened)
    crawler.signals.connect(started, signal=signals.engine_started)
    await crawler.crawl_async(make_requests=make_requests)
    if "error" in outcome:
        raise outcome["error"]
    return crawler, outcome.get("result")


def queued_requests(crawler: Crawler) -> list[Request]:
    """Every request in the scheduler's memory queues, read without draining them (requests
    held as records are decoded: copies)."""
    from scrapy_actor_events import ActorEventsExtension
    from scrapy_actor_events.checkpoint.records import record_of

    scheduler = crawler.engine.scheduler  # type: ignore[union-attr]
    extension = crawler.get_extension(ActorEventsExtension)
    found: list[Request] = []
    for pq in scheduler.mqs.pqueues.values():
        for queues in (pq.queues, pq._start_queues):
            for queue in queues.values():
                items = queue.inner.q if hasattr(queue, "inner") else queue.q
                found.extend(
                    extension.frontier.codec.decode(record_of(x)) if type(x) is bytes else x
                    for x in items
                )
    return found


def pop_all(crawler: Crawler) -> list[str]:
    scheduler = crawler.engine.scheduler  # type: ignore[union-attr]
    urls = []
    while (request := scheduler.next_request()) is not None:
        urls.append(request.url)
    return urls
