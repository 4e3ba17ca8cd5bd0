"""A resumed crawl reads past what start() yielded before in short slices: restored requests go
out meanwhile, not after the whole skip."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from scrapy import Request, Spider, signals
from scrapy.statscollectors import MemoryStatsCollector
from scrapy.utils.asyncio import call_later
from scrapy.utils.defer import deferred_f_from_coro_f, maybe_deferred_to_future
from scrapy.utils.test import get_crawler

from scrapy_actor_events import ActorEventsExtension
from scrapy_actor_events.checkpoint.crawl_state import SKIP_SLICE_SECONDS, CrawlState

from ..support.crawling import make_crawler
from ..support.probe import paused_crawl

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from scrapy_actor_events.tools.site import DemoSite

SKIPPED = 400
ITEM_SECONDS = 0.003  # what a start() spends making each item: 1.2 s to skip


@deferred_f_from_coro_f
async def test_the_skip_gives_the_reactor_a_turn_every_slice() -> None:
    state = CrawlState(MemoryStatsCollector(get_crawler()))
    state.restore(Spider("s"), {"stats": {}, "start": {"consumed": 100}})
    turns = 0

    def turn() -> None:
        nonlocal turns
        turns += 1
        if not done:
            call_later(0, turn)

    async def start() -> AsyncIterator[int]:
        for n in range(105):
            time.sleep(SKIP_SLICE_SECONDS / 5)
            yield n

    done = False
    call_later(0, turn)
    read = [n async for n in state.track_start(start())]
    done = True
    assert read == [100, 101, 102, 103, 104]
    assert state.start_consumed == 105
    assert turns >= 100 * (SKIP_SLICE_SECONDS / 5) / SKIP_SLICE_SECONDS / 2  # ~20 slices


class SlowStartSpider(Spider):
    """start() yields SKIPPED items, each slow to make, then nothing; notes when it got there."""

    name = "slowstart"

    def __init__(self, marks: dict[str, float] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.marks = marks if marks is not None else {}

    async def start(self) -> AsyncIterator[Any]:
        for n in range(SKIPPED):
            time.sleep(ITEM_SECONDS)
            yield {"n": n}
        self.marks.setdefault("skipped", time.monotonic())

    def parse(self, response):
        self.marks.setdefault("first_response", time.monotonic())


@deferred_f_from_coro_f
async def test_restored_requests_go_out_while_start_is_read_past(
    storage: Path, site: DemoSite
) -> None:
    async def checkpoint(crawler):
        for n in range(5):
            crawler.engine.crawl(Request(f"{site.url}/p/{n}", callback=crawler.spider.parse))
        extension = crawler.get_extension(ActorEventsExtension)
        return await maybe_deferred_to_future(extension.request_checkpoint("test"))

    _, result = await paused_crawl(lambda spider: [], checkpoint, spidercls=SlowStartSpider)
    assert result.pending == 5

    marks: dict[str, float] = {}
    crawler = make_crawler(SlowStartSpider, ACTOR_EVENTS_RESUME="always")

    def opened(spider: Spider) -> None:
        marks["opened"] = time.monotonic()

    crawler.signals.connect(opened, signal=signals.spider_opened)
    await crawler.crawl_async(marks=marks)
    assert crawler.stats.get_value("actor_events/restore/requests") == 5
    assert crawler.stats.get_value("response_received_count") == 5
    skip = marks["skipped"] - marks["opened"]
    assert skip >= SKIPPED * ITEM_SECONDS * 0.9
    # The first restored response came long before start() was read past (not after it).
    assert marks["first_response"] - marks["opened"] < skip / 2
