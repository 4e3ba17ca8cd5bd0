"""The events socket stays closed once the crawl closed it: no warning, no second connection."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pytest
from scrapy import Spider
from scrapy.utils.asyncio import sleep
from scrapy.utils.defer import deferred_f_from_coro_f, deferred_from_coro, maybe_deferred_to_future

from scrapy_actor_events.tools.site import DemoSite

from ..support.crawling import make_crawler
from ..support.events import start_events_server

if TYPE_CHECKING:
    from pathlib import Path


class FollowSpider(Spider):
    name = "follow"

    def __init__(self, url: str = "", **kwargs):
        super().__init__(**kwargs)
        self.start_urls = [url]

    def parse(self, response):
        yield from response.follow_all(css="a::attr(href)", callback=self.parse)


@deferred_f_from_coro_f
async def test_the_socket_is_not_reopened_after_the_crawl_closed_it(
    storage: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # The crawl lasts over a second: a connection that lived that long resets the reconnect
    # delay, the path that revived the socket the crawl had just closed (Twisted's resetDelay
    # sets continueTrying again).
    caplog.set_level(logging.DEBUG, logger="scrapy_actor_events")
    with DemoSite(pages=30, delay=0.1) as site, start_events_server() as server:
        crawler = make_crawler(
            FollowSpider,
            ACTOR_EVENTS_WEBSOCKET_URL=server.url,
            ACTOR_EVENTS_RECONNECT_INITIAL_DELAY=0.05,
            CONCURRENT_REQUESTS=2,
        )
        await maybe_deferred_to_future(deferred_from_coro(crawler.crawl_async(url=site.url)))
        server.wait_for(r"^closed 1 1000", timeout=10)
        # The process lives on (as under pytest, or an AsyncCrawlerRunner that runs more crawls):
        # a reconnection would come within the initial delay (50 ms, with jitter).
        await sleep(1.0)
        connections = server.connections()
    assert crawler.stats.get_value("finish_reason") == "finished"
    assert connections == 1, server.text()
    assert "reconnecting" not in caplog.text
    assert "Reconnecting" not in caplog.text
