"""Events servers for tests, in a process of their own: the package's (Autobahn), or one written
with `websockets` that speaks the same commands (a second, independent implementation); and
in-process crawls that listen to them and end as soon as the test has seen what it checks."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scrapy.utils.asyncio import sleep
from scrapy.utils.defer import deferred_from_coro, maybe_deferred_to_future

from scrapy_actor_events.tools.harness import SERVER_COMMAND, EventsServerProcess

from .crawling import make_crawler
from .spiders import SlowSpider

if TYPE_CHECKING:
    from collections.abc import Callable

    from scrapy.crawler import Crawler
    from twisted.internet.defer import Deferred

    from scrapy_actor_events.tools.site import DemoSite

ROOT = Path(__file__).resolve().parents[2]

SERVERS = {
    "autobahn": SERVER_COMMAND,
    "websockets": (sys.executable, "-m", "tests.servers.ws_events_server", "0"),
}


def start_events_server(
    kind: str = "autobahn", extra_args: list[str] | None = None
) -> EventsServerProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return EventsServerProcess([*SERVERS[kind], *(extra_args or [])], cwd=ROOT, env=env)


#: The first reconnection comes this long after a drop (plus jitter), each next one e times later.
RECONNECT_INITIAL_DELAY = 0.2


def events_settings(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "ACTOR_EVENTS_WEBSOCKET_URL": url,
        "ACTOR_EVENTS_RECONNECT_INITIAL_DELAY": RECONNECT_INITIAL_DELAY,
        "ACTOR_EVENTS_RECONNECT_MAX_DELAY": 10,
        "CONCURRENT_REQUESTS": 2,
        **extra,
    }


def start(site: DemoSite, **settings: Any) -> tuple[Crawler, Deferred[None]]:
    """Crawl ``site`` with :class:`SlowSpider` in this process; ``done`` fires when it closes."""
    crawler = make_crawler(SlowSpider, **settings)
    done = deferred_from_coro(crawler.crawl_async(url=f"{site.url}/"))
    return crawler, done


async def finish(crawler: Crawler, done: Deferred[None]) -> None:
    """End a crawl of ``start`` the way a crawl ends by itself: its spider stops following
    links, and once the requests it has complete the spider closes with reason ``finished``.
    On the ``endless_site`` that is within a page."""
    assert isinstance(crawler.spider, SlowSpider)
    crawler.spider.following = False
    await maybe_deferred_to_future(done)


async def eventually(condition: Callable[[], bool], what: str, timeout: float = 20) -> None:
    """Wait, letting the reactor run, until ``condition()`` holds; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        await sleep(0.01)


async def wait_for_lines(
    server: EventsServerProcess, pattern: str, count: int, timeout: float = 20
) -> None:
    for _ in range(int(timeout / 0.02)):
        if len(server.matching(pattern)) >= count:
            return
        await sleep(0.02)
    raise AssertionError(f"fewer than {count} lines matching {pattern!r}:\n{server.text()}")
