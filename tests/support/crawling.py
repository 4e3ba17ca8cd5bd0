"""Run crawls for tests: in this process (through Scrapy's crawler API) or as `scrapy crawl`."""

from __future__ import annotations

import functools
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scrapy.utils.test import get_crawler

from scrapy_actor_events.checkpoint.crawl_state import CrawlState
from scrapy_actor_events.checkpoint.reader import Restored
from scrapy_actor_events.checkpoint.writer import Checkpointer
from scrapy_actor_events.config import Config
from scrapy_actor_events.store.local import LocalKeyValueStore
from scrapy_actor_events.tools.harness import CrawlRun, crawl_environment, run_crawl, scrapy_command

if TYPE_CHECKING:
    from collections.abc import Callable

    from scrapy import Spider
    from scrapy.crawler import Crawler

    from scrapy_actor_events.tools.site import DemoSite

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_PROJECT = ROOT / "example_project"

EXTENSION = {"scrapy_actor_events.ActorEventsExtension": 100}
BASE_SETTINGS: dict[str, Any] = {
    "EXTENSIONS": EXTENSION,
    "ACTOR_EVENTS_SET_EXIT_CODE": False,
    "ROBOTSTXT_OBEY": False,
    "LOG_LEVEL": "INFO",
}


def make_crawler(spidercls: type[Spider], **settings: Any) -> Crawler:
    return get_crawler(spidercls, {**BASE_SETTINGS, **settings})


async def crawl(
    spidercls: type[Spider], *, crawl_kwargs: dict[str, Any] | None = None, **settings: Any
) -> Crawler:
    crawler = make_crawler(spidercls, **settings)
    await crawler.crawl_async(**(crawl_kwargs or {}))
    return crawler


@functools.cache
def _reading_crawler() -> Crawler:
    """A crawler for the stats of checkpoint reads: built once (a watcher thread may read the
    newest checkpoint every few milliseconds), each read gets stats of its own."""
    return get_crawler()


async def read_checkpoint(
    storage: Path, key: str, spider: str, store_id: str = "default"
) -> Restored | None:
    from scrapy.settings import Settings

    config = Config.from_settings(Settings({"ACTOR_EVENTS_STORAGE_DIR": str(storage)}))
    store = LocalKeyValueStore(storage, store_id)
    from scrapy.statscollectors import MemoryStatsCollector

    stats = MemoryStatsCollector(_reading_crawler())
    return await Checkpointer(store, key, spider, config.checkpoint, stats).read()


def crawl_doc(restored: Restored) -> dict[str, Any]:
    return CrawlState.decode(restored.crawl)


def subprocess_env(storage: Path, **extra: str) -> dict[str, str]:
    """The environment of a `scrapy crawl` under test: no platform variables, this checkout first
    on the path, checkpoints in ``storage``."""
    return crawl_environment(storage, pythonpath=[ROOT], **extra)


def scrapy_crawl(
    args: list[str],
    env: dict[str, str],
    *,
    kill_when: Callable[[], bool] | None = None,
    timeout: float = 120.0,
    cwd: Path = EXAMPLE_PROJECT,
    on_line: Callable[[str], None] | None = None,
) -> CrawlRun:
    """Run ``scrapy crawl`` with ``args``; SIGKILL it as soon as ``kill_when()`` is true.

    ``kill_when`` is called every few ms while the crawl runs, so it may drive the test too
    (send an event once enough pages are crawled); ``on_line`` gets each line of its log."""
    run = run_crawl(
        scrapy_command(*args),
        env=env,
        cwd=cwd,
        kill_when=kill_when,
        timeout=timeout,
        on_line=on_line,
    )
    if run.timed_out:
        raise AssertionError(f"crawl did not finish in {timeout} s:\n{run.stderr[-5000:]}")
    return run


#: CONCURRENT_REQUESTS of the example project's crawls that ``start_crawl`` starts.
CONCURRENCY = 8


def crawl_args(site: DemoSite) -> list[str]:
    """``scrapy crawl`` arguments: the example project's spider on ``site``."""
    return ["links", "-a", f"start_url={site.url}/", "-s", f"CONCURRENT_REQUESTS={CONCURRENCY}"]


def start_crawl(site: DemoSite, env: dict[str, str]) -> subprocess.Popen[str]:
    """``scrapy crawl`` of the example project on ``site``, in the background."""
    return subprocess.Popen(
        [sys.executable, "-m", "scrapy", "crawl", *crawl_args(site)],
        cwd=EXAMPLE_PROJECT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )


def page_hits(site: DemoSite) -> int:
    """Hits on the site's ``/p/`` pages so far (cheap enough for a ``kill_when``)."""
    return site.log.pages


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.005)


def run_sync(coro: Any) -> Any:
    """Run a coroutine to the end from a synchronous test (the reactor's loop is busy here)."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()
