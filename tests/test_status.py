"""The run's status message: set through apify-client against the local API emulator, after
checkpoints, at most once per interval, off the crawl's path; a terminal message at close; failures
logged once; off by the setting and when the crawl is not an Actor run on the platform store."""

from __future__ import annotations

import itertools
import logging
import time
from datetime import timedelta
from typing import TYPE_CHECKING

import pytest
from apify_client import ApifyClientAsync
from scrapy.statscollectors import MemoryStatsCollector
from scrapy.utils.asyncio import sleep
from scrapy.utils.defer import deferred_f_from_coro_f, deferred_from_coro, maybe_deferred_to_future
from scrapy.utils.test import get_crawler

from scrapy_actor_events import ActorEventsExtension, status
from scrapy_actor_events.checkpoint.writer import CheckpointResult
from scrapy_actor_events.events.messages import ActorEvent
from scrapy_actor_events.status import StatusOptions, StatusReporter
from scrapy_actor_events.tools.site import DemoSite

from .support.crawling import crawl, make_crawler
from .support.spiders import PagesSpider

if TYPE_CHECKING:
    from pathlib import Path

    from .servers.apify_api import ApifyApiServer

RUN = "runAbc123"


def saved(generation: int) -> CheckpointResult:
    return CheckpointResult(saved=True, generation=generation, pending=3)


def reporter(api: ApifyApiServer, interval: float = 0.4, **kwargs) -> StatusReporter:
    api.create_run(RUN)
    client = ApifyClientAsync(api.token, api_url=api.url, max_retries=0)
    stats = MemoryStatsCollector(get_crawler())
    return StatusReporter(RUN, client, StatusOptions(interval=interval), stats, **kwargs)


async def wait_for(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await sleep(0.01)


def run_requests(api: ApifyApiServer) -> list:
    return [r for r in api.requests() if r.store == RUN]


@deferred_f_from_coro_f
async def test_at_most_one_message_per_interval_and_the_newest_figures(
    apify_api: ApifyApiServer,
) -> None:
    report = reporter(apify_api, pending=lambda: 12)
    report.stats.set_value("response_received_count", 1234)
    report.stats.set_value("item_scraped_count", 1230)
    report.resumed_from(5, migrations=1)
    for generation in range(1, 6):  # five checkpoints in 0.1 s
        report.checkpoint_saved(saved(generation))
        await sleep(0.02)
    await wait_for(lambda: len(apify_api.status_messages(RUN)) >= 2)
    await sleep(0.6)  # nothing more comes: no checkpoint since
    messages = apify_api.status_messages(RUN)
    times = apify_api.runs[RUN].arrived
    await report.close("finished")
    assert [m for m, _ in messages] == [
        "Crawled 1,234 pages, 12 pending, 1,230 items; checkpoint 1 saved 0 s ago;"
        " resumed after migration 1",
        "Crawled 1,234 pages, 12 pending, 1,230 items; checkpoint 5 saved 0 s ago;"
        " resumed after migration 1",
    ]
    # (the first request also opened the client's connection)
    assert times[1] - times[0] >= 0.3
    assert report.stats.get_value("actor_events/status/updates") == 3


@deferred_f_from_coro_f
async def test_the_terminal_message_says_how_the_crawl_ended(apify_api: ApifyApiServer) -> None:
    report = reporter(apify_api)
    report.stats.set_value("response_received_count", 40)
    report.stats.set_value("item_scraped_count", 39)
    await report.close("shutdown")
    assert apify_api.status_messages(RUN) == [
        ("Stopped (shutdown): Crawled 40 pages, 39 items", True)
    ]
    report.checkpoint_saved(saved(9))  # after close: nothing more is sent
    await sleep(0.1)
    assert len(apify_api.status_messages(RUN)) == 1


@deferred_f_from_coro_f
async def test_an_update_under_way_at_close_is_let_finish(apify_api: ApifyApiServer) -> None:
    """Not cancelled: apify-client's transport would carry it on, unawaited, on its own threads."""
    report = reporter(apify_api)
    apify_api.run_faults.latency = 0.4
    report.checkpoint_saved(saved(1))
    await wait_for(lambda: report.sending)
    await report.close("finished")
    assert report.stats.get_value("actor_events/status/updates") == 2  # both counted as sent
    messages = apify_api.status_messages(RUN)
    assert [terminal for _, terminal in messages] == [False, True]


@pytest.mark.parametrize("fault", ["500", "timeout"])
@deferred_f_from_coro_f
async def test_a_failure_is_logged_once_and_never_raised(
    fault: str, apify_api: ApifyApiServer, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    caplog.set_level(logging.WARNING, logger="scrapy_actor_events")
    monkeypatch.setattr(status, "REQUEST_TIMEOUT", timedelta(seconds=0.2))
    if fault == "500":
        apify_api.run_faults.status = 500
    else:
        apify_api.run_faults.latency = 0.5
    report = reporter(apify_api, interval=0.05)
    for generation in range(1, 4):
        report.checkpoint_saved(saved(generation))
        await wait_for(
            lambda g=generation: report.stats.get_value("actor_events/status/failed") == g
        )
    started = time.monotonic()
    await report.close("finished")
    assert time.monotonic() - started < 5
    warnings = [r.getMessage() for r in caplog.records if "status message" in r.getMessage()]
    assert len(warnings) == 1, warnings
    assert "the crawl goes on" in warnings[0]
    assert apify_api.token not in warnings[0]
    assert report.stats.get_value("actor_events/status/failed") == 4
    if fault == "500":
        assert apify_api.status_messages(RUN) == []
    # (a timed-out update may land all the same: the server applies it after the client gave up)


def platform_env(api: ApifyApiServer, monkeypatch: pytest.MonkeyPatch, **extra: str) -> None:
    store = api.create_store()
    for name, value in api.env(store, **extra).items():
        monkeypatch.setenv(name, value)


@deferred_f_from_coro_f
async def test_a_crawl_on_the_platform_sets_the_run_s_status_message(
    storage: Path, apify_api: ApifyApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    platform_env(apify_api, monkeypatch, ACTOR_RUN_ID=apify_api.create_run(RUN))
    with DemoSite(pages=60, delay=0.02) as site:
        crawler = await crawl(
            PagesSpider,
            crawl_kwargs={"url": f"{site.url}/"},
            CONCURRENT_REQUESTS=2,
            ACTOR_EVENTS_PERSIST_INTERVAL=0.1,
            ACTOR_EVENTS_STATUS_INTERVAL=0.3,
        )
    messages = apify_api.status_messages(RUN)
    stats = crawler.stats.get_stats()
    assert len(messages) >= 3, messages
    assert all(not terminal for _, terminal in messages[:-1])
    assert all(m.startswith("Crawled ") and "; checkpoint " in m for m, _ in messages[:-1])
    items = stats["item_scraped_count"]
    pages = stats["response_received_count"]
    assert messages[-1] == (
        f"Finished (finished): Crawled {pages} pages, 0 pending, {items} items",
        True,
    )
    times = apify_api.runs[RUN].arrived
    gaps = [b - a for a, b in itertools.pairwise(times[:-1])]  # the terminal one comes at once
    assert all(gap >= 0.25 for gap in gaps), gaps


@pytest.mark.parametrize("why", ["setting", "no run id", "local store"])
@deferred_f_from_coro_f
async def test_no_status_message_when_off_or_not_an_actor_run(
    why: str, storage: Path, apify_api: ApifyApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = apify_api.create_run(RUN)
    platform_env(apify_api, monkeypatch, **({} if why == "no run id" else {"ACTOR_RUN_ID": run}))
    settings = {"ACTOR_EVENTS_PERSIST_INTERVAL": 0.05}
    if why == "setting":
        settings["ACTOR_EVENTS_STATUS_MESSAGE"] = False
    if why == "local store":
        settings["ACTOR_EVENTS_STORE"] = "local"
    with DemoSite(pages=10) as site:
        crawler = await crawl(PagesSpider, crawl_kwargs={"url": f"{site.url}/"}, **settings)
    assert crawler.stats.get_value("finish_reason") == "finished"
    assert crawler.stats.get_value("actor_events/checkpoint/count") >= 1
    assert run_requests(apify_api) == []


@deferred_f_from_coro_f
async def test_a_resumed_run_says_after_which_migration(
    storage: Path, apify_api: ApifyApiServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    platform_env(apify_api, monkeypatch, ACTOR_RUN_ID=apify_api.create_run(RUN))
    settings = {"ACTOR_EVENTS_MIGRATION_RESUME_AFTER": 0, "ACTOR_EVENTS_STATUS_INTERVAL": 0.1}
    with DemoSite(pages=80, delay=0.05) as site:
        crawler = make_crawler(PagesSpider, CONCURRENT_REQUESTS=4, **settings)
        done = deferred_from_coro(crawler.crawl_async(url=f"{site.url}/"))
        await wait_for(lambda: (crawler.stats.get_value("item_scraped_count") or 0) >= 10)
        extension = crawler.get_extension(ActorEventsExtension)
        extension.reactions(ActorEvent("migrating", {"timeRemainingSecs": 10}))
        await wait_for(lambda: extension.migration.final is not None)
        await crawler.engine.close_spider_async(reason="shutdown")  # as a SIGTERM would
        await maybe_deferred_to_future(done)
        first = len(apify_api.status_messages(RUN))
        resumed = await crawl(PagesSpider, crawl_kwargs={"url": f"{site.url}/"}, **settings)
    later = apify_api.status_messages(RUN)[first:]
    assert resumed.stats.get_value("finish_reason") == "finished"
    # At once when the crawl resumes, and in every message after, the terminal one included.
    assert later[0][0].startswith("Crawled ")
    assert all(m.endswith("; resumed after migration 1") for m, _ in later), later
    assert later[-1][1] is True
