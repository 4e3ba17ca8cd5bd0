"""Socket faults in one crawl: many drops, a server that stops answering pings, an event flood."""

from __future__ import annotations

from pathlib import Path

import pytest
from scrapy.utils.asyncio import sleep
from scrapy.utils.defer import deferred_f_from_coro_f, maybe_deferred_to_future

from scrapy_actor_events.tools.site import DemoSite

from ..support.events import events_settings, start, start_events_server, wait_for_lines


@deferred_f_from_coro_f
async def test_ten_drops_in_one_crawl(storage: Path) -> None:
    with DemoSite(pages=300, delay=0.1) as site, start_events_server() as server:
        settings = events_settings(server.url, ACTOR_EVENTS_RECONNECT_INITIAL_DELAY=0.1)
        crawler, done = start(site, **settings)
        for drop in range(10):
            await wait_for_lines(server, r"^open ", drop + 1)
            # Connections that lived a second reconnect at once; shorter ones back off (tested
            # in tests/events/test_connection.py).
            await sleep(1.1)
            server.send("reset" if drop % 2 else "close 1011")
        await wait_for_lines(server, r"^open ", 11)
        server.send("persistState")
        await wait_for_lines(server, r"^sent persistState to 1", 1)
        await maybe_deferred_to_future(done)
        server.send("status")
        total = int(server.wait_for(r"status \d+ open, (\d+) in total").group(1))
    assert crawler.stats.get_value("finish_reason") == "finished"
    assert total == 11, "one new connection per drop, no more"
    assert crawler.stats.get_value("actor_events/events/persistState") == 1, (
        "events after the drops"
    )


@deferred_f_from_coro_f
async def test_a_server_that_stops_answering_pings_is_left_and_rejoined(storage: Path) -> None:
    with DemoSite(pages=120, delay=0.1) as site, start_events_server() as server:
        settings = events_settings(
            server.url, ACTOR_EVENTS_PING_INTERVAL=1, ACTOR_EVENTS_PING_TIMEOUT=2
        )
        crawler, done = start(site, **settings)
        await wait_for_lines(server, r"^open 1 ", 1)
        server.send("freeze")
        await wait_for_lines(server, r"^open 2 ", 1, timeout=15)
        server.send("persistState")
        await maybe_deferred_to_future(done)
    assert crawler.stats.get_value("finish_reason") == "finished"
    assert crawler.stats.get_value("actor_events/events/persistState") == 1


@pytest.mark.parametrize("server_kind", ["autobahn", "websockets"])
@deferred_f_from_coro_f
async def test_a_flood_of_events_is_absorbed(server_kind: str, storage: Path) -> None:
    with DemoSite(pages=120, delay=0.05) as site, start_events_server(server_kind) as server:
        crawler, done = start(site, **events_settings(server.url))
        await wait_for_lines(server, r"^open 1 ", 1)
        server.send("flood 1000 cpuInfo")
        server.send("flood 1000 persistState")
        await wait_for_lines(server, r"^sent 1000 persistState", 1)
        await maybe_deferred_to_future(done)
    stats = crawler.stats
    assert stats.get_value("finish_reason") == "finished"
    assert stats.get_value("actor_events/events/cpuInfo") == 1000
    assert stats.get_value("actor_events/events/persistState") == 1000
    # A thousand requests for a checkpoint coalesce into a few writes, not a thousand.
    assert stats.get_value("actor_events/checkpoint/count") < 30
