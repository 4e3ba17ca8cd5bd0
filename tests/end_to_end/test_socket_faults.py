"""Socket faults in one crawl: many drops, a server that stops answering pings, an event flood."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from scrapy.utils.asyncio import sleep
from scrapy.utils.defer import deferred_f_from_coro_f

from scrapy_actor_events.events import connection

from ..support.events import (
    events_settings,
    eventually,
    finish,
    start,
    start_events_server,
    wait_for_lines,
)

if TYPE_CHECKING:
    from pathlib import Path

    from scrapy_actor_events.tools.site import DemoSite

#: How long a connection must live for the next one to come after the initial delay. The real
#: 1 s is checked in tests/events/test_connection.py; here it only sets the pace of the drops.
STABLE_AFTER_SECONDS = 0.2


@deferred_f_from_coro_f
async def test_ten_drops_in_one_crawl(
    storage: Path, endless_site: DemoSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connection, "STABLE_AFTER_SECONDS", STABLE_AFTER_SECONDS)
    with start_events_server() as server:
        settings = events_settings(server.url, ACTOR_EVENTS_RECONNECT_INITIAL_DELAY=0.1)
        crawler, done = start(endless_site, **settings)
        for drop in range(10):
            await wait_for_lines(server, r"^open ", drop + 1)
            # Connections that lived STABLE_AFTER_SECONDS reconnect after the initial delay;
            # shorter ones back off further each time.
            await sleep(STABLE_AFTER_SECONDS + 0.1)
            server.send("reset" if drop % 2 else "close 1011")
        await wait_for_lines(server, r"^open ", 11)
        server.send("persistState")
        await wait_for_lines(server, r"^sent persistState to 1", 1)
        stats = crawler.stats
        await eventually(
            lambda: stats.get_value("actor_events/events/persistState") == 1,
            "the event sent after the drops arrives",
        )
        await finish(crawler, done)
        server.send("status")
        total = int(server.wait_for(r"status \d+ open, (\d+) in total").group(1))
    assert crawler.stats.get_value("finish_reason") == "finished"
    assert total == 11, "one new connection per drop, no more"
    assert crawler.stats.get_value("actor_events/events/persistState") == 1, (
        "events after the drops"
    )


@deferred_f_from_coro_f
async def test_a_server_that_stops_answering_pings_is_left_and_rejoined(
    storage: Path, endless_site: DemoSite
) -> None:
    with start_events_server() as server:
        # The shortest pings there are: Autobahn counts them in whole seconds, the timeout >= 2.
        settings = events_settings(
            server.url, ACTOR_EVENTS_PING_INTERVAL=1, ACTOR_EVENTS_PING_TIMEOUT=2
        )
        crawler, done = start(endless_site, **settings)
        await wait_for_lines(server, r"^open 1 ", 1)
        server.send("freeze")
        await wait_for_lines(server, r"^open 2 ", 1, timeout=15)
        server.send("persistState")
        stats = crawler.stats
        await eventually(
            lambda: stats.get_value("actor_events/events/persistState") == 1,
            "the event arrives on the new connection",
        )
        await finish(crawler, done)
    assert crawler.stats.get_value("finish_reason") == "finished"
    assert crawler.stats.get_value("actor_events/events/persistState") == 1


@pytest.mark.parametrize("server_kind", ["autobahn", "websockets"])
@deferred_f_from_coro_f
async def test_a_flood_of_events_is_absorbed(
    server_kind: str, storage: Path, endless_site: DemoSite
) -> None:
    with start_events_server(server_kind) as server:
        crawler, done = start(endless_site, **events_settings(server.url))
        await wait_for_lines(server, r"^open 1 ", 1)
        server.send("flood 1000 cpuInfo")
        server.send("flood 1000 persistState")
        await wait_for_lines(server, r"^sent 1000 persistState", 1)
        stats = crawler.stats
        await eventually(
            lambda: stats.get_value("actor_events/events/persistState") == 1000,
            "every event of the flood is read",
        )
        await finish(crawler, done)
    stats = crawler.stats
    assert stats.get_value("finish_reason") == "finished"
    assert stats.get_value("actor_events/events/cpuInfo") == 1000
    assert stats.get_value("actor_events/events/persistState") == 1000
    # A thousand requests for a checkpoint coalesce into a few writes, not a thousand.
    assert stats.get_value("actor_events/checkpoint/count") < 30
