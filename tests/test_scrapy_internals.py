"""Every assumption _scrapy_internals makes about Scrapy, checked against the installed version."""

from __future__ import annotations

import time

from scrapy import Request, Spider
from scrapy.core.scraper import Scraper
from scrapy.http import Headers
from scrapy.utils.asyncio import sleep
from scrapy.utils.defer import deferred_f_from_coro_f

from scrapy_actor_events import _scrapy_internals as internals
from scrapy_actor_events.checkpoint.fingerprints import CompactFingerprintSet
from scrapy_actor_events.tools.site import DemoSite

from .support.crawling import crawl
from .support.probe import paused_crawl


def slots(request: Request) -> dict:
    return {
        name: getattr(request, name) for name in internals.REQUEST_SLOTS if name != "__weakref__"
    }


def test_request_slots_are_the_ones_we_fill() -> None:
    names = set()
    for cls in Request.__mro__:
        names.update(getattr(cls, "__slots__", ()))
    mangled = {n for n in names if n.startswith("_Request__")}
    assert names - mangled == internals.REQUEST_SLOTS


def test_build_request_equals_the_constructor() -> None:
    def parse(response):
        return None

    base = {
        "callback": None, "method": "GET", "headers": None, "body": None, "cookies": None,
        "meta": None, "encoding": "utf-8", "priority": 0, "dont_filter": False, "errback": None,
        "flags": None, "cb_kwargs": None,
    }  # fmt: skip
    cases = [
        {**base, "url": "https://example.com/a b?q=ü", "method": "get"},
        {**base, "url": "https://example.com/x", "callback": parse, "method": "POST",
         "headers": {b"X": [b"1", b"2"]}, "body": b"data", "cookies": {"a": "b"},
         "meta": {"depth": 1}, "encoding": "latin-1", "priority": -3, "dont_filter": True,
         "errback": parse, "flags": ["f"], "cb_kwargs": {"k": 1}},
        {**base, "url": "data:,hello", "body": "text", "cookies": [{"name": "a", "value": "b"}],
         "priority": 5},
    ]  # fmt: skip
    for kwargs in cases:
        expected = Request(**kwargs)
        if "://" in kwargs["url"] and " " in kwargs["url"]:
            kwargs = {**kwargs, "url": expected.url}  # stored URLs were escaped by the constructor
        built = internals.build_request(Request, kwargs)
        assert slots(built) == {**slots(expected), "_headers": built._headers}
        assert (built.headers or Headers()) == (expected.headers or Headers())


def test_request_fields_read_without_allocating() -> None:
    request = Request("https://example.com")
    fields = internals.request_fields(request)
    assert fields.meta is None
    assert fields.headers is None
    assert fields.cookies is None
    assert request._meta is None
    assert request._headers is None


@deferred_f_from_coro_f
async def test_engine_attributes_exist(storage, site: DemoSite) -> None:
    async def look(crawler):
        engine = crawler.engine
        scheduler = engine.scheduler
        assert isinstance(internals.in_progress(engine), set)
        assert internals.is_memory_scheduler(scheduler)
        # The extension swapped RFPDupeFilter's set for a compact one (a set without it).
        assert isinstance(internals.seen_fingerprints(scheduler), CompactFingerprintSet)
        assert internals.start_exhausted(engine)
        assert internals.callbacks_running(engine) == 0
        return True

    def make(spider):
        return [Request(f"{site.url}/p/1")]

    _, ok = await paused_crawl(make, look)
    assert ok


@deferred_f_from_coro_f
async def test_hold_callbacks_delays_callbacks_until_released(storage) -> None:
    started: list[float] = []
    held = {}

    class HoldingSpider(Spider):
        name = "holding"

        def __init__(self, url="", **kwargs):
            super().__init__(**kwargs)
            self.start_urls = [url]

        def parse(self, response):
            started.append(time.monotonic())
            if len(started) == 1:
                release = internals.hold_callbacks(self.crawler.engine)
                held["at"] = time.monotonic()

                async def later():
                    await sleep(0.5)
                    held["released"] = time.monotonic()
                    release()

                from scrapy.utils.defer import deferred_from_coro

                deferred_from_coro(later())
            yield from response.follow_all(css="a::attr(href)", callback=self.parse)

    assert "_scrape_next" in vars(Scraper)
    with DemoSite(pages=30) as demo:
        crawler = await crawl(HoldingSpider, crawl_kwargs={"url": f"{demo.url}/"})
    assert crawler.stats.get_value("finish_reason") == "finished"
    assert len(started) == 31
    assert all(t >= held["released"] for t in started[1:]), "no callback started while held"
