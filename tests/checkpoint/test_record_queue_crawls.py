"""Crawls with the record queues: what cannot be encoded still crawls, a priority queue of the
user's own still restores, and the queues of Request objects remain (setting off, or requests
scheduled before the checkpoint was read)."""

from __future__ import annotations

import logging
import random
from typing import TYPE_CHECKING

import pytest
from scrapy import Request, Spider, signals
from scrapy.http.request import NO_CALLBACK
from scrapy.pqueues import ScrapyPriorityQueue
from scrapy.utils.defer import deferred_f_from_coro_f, maybe_deferred_to_future

from scrapy_actor_events import ActorEventsExtension
from scrapy_actor_events.checkpoint.frontier import Frontier
from scrapy_actor_events.checkpoint.queue_frontier import QueueFrontier
from scrapy_actor_events.checkpoint.queues import RecordQueue
from scrapy_actor_events.stats_keys import REQUESTS_UNSERIALIZABLE

from ..support.crawling import crawl, read_checkpoint
from ..support.probe import paused_crawl, pop_all

if TYPE_CHECKING:
    from pathlib import Path

    from scrapy.crawler import Crawler

    from scrapy_actor_events.tools.site import DemoSite


def extension(crawler: Crawler) -> ActorEventsExtension:
    found = crawler.get_extension(ActorEventsExtension)
    assert found is not None
    return found


class MixedSpider(Spider):
    """Follows links as requests of every kind: plain, with a lambda callback, with live meta."""

    name = "mixed"

    def __init__(self, url: str = "", **kwargs):
        super().__init__(**kwargs)
        self.start_urls = [url]
        self.lambdas = 0
        self.live = 0

    def parse(self, response):
        for n, href in enumerate(response.css("a::attr(href)").getall()):
            url = response.urljoin(href)
            if n % 3 == 0:
                yield Request(url, callback=lambda r: self.count("lambdas", r), dont_filter=False)
            elif n % 3 == 1:
                yield Request(url, callback=self.parse_live, meta={"live": object()})
            else:
                yield Request(url, callback=self.parse)

    def parse_live(self, response):
        assert isinstance(response.meta["live"], object)
        self.live += 1
        yield from self.parse(response)

    def count(self, what: str, response):
        setattr(self, what, getattr(self, what) + 1)
        yield from self.parse(response)


@deferred_f_from_coro_f
async def test_requests_that_cannot_be_encoded_still_crawl(storage: Path, site: DemoSite) -> None:
    seen: list[type] = []

    class Watch(MixedSpider):
        def parse(self, response):
            seen.append(type(extension(self.crawler).frontier))
            yield from super().parse(response)

    crawler = await crawl(Watch, crawl_kwargs={"url": f"{site.url}/p/0"})
    assert crawler.stats.get_value("finish_reason") == "finished"
    assert set(seen) == {QueueFrontier}
    spider = crawler.spider
    assert spider.lambdas > 10
    assert spider.live > 10
    assert set(site.log.counts()) == {f"/p/{n}" for n in range(120)}
    assert crawler.stats.get_value(REQUESTS_UNSERIALIZABLE) >= spider.lambdas + spider.live


def mixed_requests(spider: Spider) -> list[Request]:
    rng = random.Random(9)
    hosts = ["http://a.example", "http://b.example", "http://c.example"]
    return [
        Request(
            f"{rng.choice(hosts)}/{n}",
            callback=rng.choice([spider.parse, spider.parse_other, None]),  # type: ignore[attr-defined]
            priority=rng.choice([-1, 0, 0, 2]),
            meta={"n": n},
        )
        for n in range(150)
    ]


class OwnPriorityQueue(ScrapyPriorityQueue):
    """A priority queue class of the user's own: restored through the scheduler."""


@pytest.mark.parametrize(
    ("settings", "journal"),
    [
        ({}, QueueFrontier),
        ({"SCHEDULER_PRIORITY_QUEUE": f"{__name__}.OwnPriorityQueue"}, QueueFrontier),
        ({"SCHEDULER_MEMORY_QUEUE": "scrapy.squeues.FifoMemoryQueue"}, QueueFrontier),
        ({"ACTOR_EVENTS_COMPACT_QUEUE": False}, Frontier),
    ],
    ids=["default", "own priority queue", "fifo", "compact queue off"],
)
@deferred_f_from_coro_f
async def test_a_restore_gives_the_requests_back_in_the_same_order(
    storage: Path, settings: dict, journal: type
) -> None:
    async def checkpoint_then_pop(crawler):
        frontier = extension(crawler).frontier
        assert type(frontier) is journal
        # Start requests were scheduled before the swap: only later ones are in record queues.
        for request in mixed_requests(crawler.spider):
            crawler.engine.crawl(request.replace(url=request.url + "/later"))
        result = await maybe_deferred_to_future(extension(crawler).request_checkpoint("test"))
        assert result.pending == 300
        queues = crawler.engine.scheduler.mqs
        first = queues.pqueues if hasattr(queues, "pqueues") else {"": queues}
        kinds = {type(q) for pq in first.values() for q in pq.queues.values()}
        assert all(issubclass(k, RecordQueue) for k in kinds) is (journal is QueueFrontier)
        return pop_all(crawler)

    _, order = await paused_crawl(mixed_requests, checkpoint_then_pop, **settings)

    async def pop_then_checkpoint(crawler):
        popped = pop_all(crawler)
        result = await maybe_deferred_to_future(extension(crawler).request_checkpoint("test"))
        return popped, result

    crawler, (again, result) = await paused_crawl(
        mixed_requests, pop_then_checkpoint, ACTOR_EVENTS_RESUME="always", **settings
    )
    assert len(order) == 300
    assert again == order
    assert crawler.stats.get_value("actor_events/restore/requests") == 300
    # Taken from the scheduler, not finished: open (in flight, or pending for the object queues'
    # journal, which counts the engine's requests in progress as in flight).
    assert result.pending + result.in_flight == 300
    restored = await read_checkpoint(storage, "SCRAPY_STATE_list", "list")
    assert len(restored.items) == 300, "restored requests keep their number: not stored twice"


class EarlyEnqueuer:
    """Another extension that schedules a request in spider_opened, while the checkpoint is
    being read."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        crawler.signals.connect(self.opened, signal=signals.spider_opened)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> EarlyEnqueuer:
        return cls(crawler)

    def opened(self, spider: Spider) -> None:
        self.crawler.engine.crawl(Request("http://early.example/", callback=spider.parse))


@deferred_f_from_coro_f
async def test_requests_scheduled_before_the_checkpoint_is_read_keep_object_queues(
    storage: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="scrapy_actor_events")

    async def checkpoint(crawler):
        return (
            type(extension(crawler).frontier),
            await maybe_deferred_to_future(extension(crawler).request_checkpoint("test")),
        )

    extensions = {"scrapy_actor_events.ActorEventsExtension": 100, f"{__name__}.EarlyEnqueuer": 200}
    _, (journal, result) = await paused_crawl(lambda spider: [], checkpoint, EXTENSIONS=extensions)
    assert journal is Frontier
    assert result.pending == 1, "the early request is followed and checkpointed"
    assert any("keeps Request objects" in r.getMessage() for r in caplog.records)


def test_no_callback_requests_stay_objects() -> None:
    from ..support.schedulers import FIFO, SPQ, crawler_for, record_scheduler

    crawler = crawler_for(SPQ, FIFO)
    scheduler, frontier = record_scheduler(crawler)
    robots = Request("http://h.example/robots.txt", callback=NO_CALLBACK)
    scheduler.enqueue_request(robots)
    assert frontier.pending == 0
    assert scheduler.next_request() is robots
