"""The extension in real in-process crawls of a local site."""

from __future__ import annotations

import json
import logging
import os
import sys
from typing import TYPE_CHECKING

import pytest
from scrapy.core.scheduler import BaseScheduler
from scrapy.exceptions import NotConfigured
from scrapy.utils.defer import deferred_f_from_coro_f
from scrapy.utils.test import get_crawler

from scrapy_actor_events import ActorEventsExtension
from scrapy_actor_events import _scrapy_internals as internals
from scrapy_actor_events.exit_codes import CLOSE_STORE_UNAVAILABLE, CLOSE_UNREADABLE, ExitCode
from scrapy_actor_events.store.local import LocalKeyValueStore
from scrapy_actor_events.tools.harness import run_crawl
from scrapy_actor_events.tools.site import DemoSite

from .support.crawling import (
    ROOT,
    crawl,
    crawl_doc,
    read_checkpoint,
    scrapy_crawl,
    subprocess_env,
)
from .support.spiders import PagesSpider

if TYPE_CHECKING:
    from pathlib import Path

KEY = "SCRAPY_STATE_pages"


async def crawl_site(site: DemoSite, **settings):
    """Crawl the site; ``limit=N`` stops it after N items (CLOSESPIDER_ITEMCOUNT)."""
    limit = settings.pop("limit", 0)
    if limit:
        settings["CLOSESPIDER_ITEMCOUNT"] = limit
    return await crawl(PagesSpider, crawl_kwargs={"url": f"{site.url}/"}, **settings)


def test_disabled_by_setting() -> None:
    crawler = get_crawler(settings_dict={"ACTOR_EVENTS_ENABLED": False})
    with pytest.raises(NotConfigured, match="Set ACTOR_EVENTS_ENABLED to True"):
        ActorEventsExtension.from_crawler(crawler)


def test_not_configured_without_a_twisted_reactor(storage: Path, site: DemoSite) -> None:
    run = scrapy_crawl(
        ["links", "-a", f"start_url={site.url}/", "-s", "TWISTED_REACTOR_ENABLED=False"],
        subprocess_env(storage),
    )
    assert run.returncode == 0
    assert "Disabled scrapy_actor_events.ActorEventsExtension" in run.stderr
    assert "TWISTED_REACTOR_ENABLED is False: nothing will be checkpointed" in run.stderr
    assert "Spider closed (finished)" in run.stderr
    assert not storage.exists()


def test_a_scrapy_without_an_internal_it_relies_on_is_not_configured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from scrapy.core.scraper import Scraper

    assert internals.missing_internals() == []
    monkeypatch.delattr(Scraper, "_scrape_next")
    assert internals.missing_internals() == ["Scraper._scrape_next"]
    with pytest.raises(NotConfigured, match=r"lacks Scraper\._scrape_next, which it relies on"):
        ActorEventsExtension.from_crawler(get_crawler())


def test_invalid_key_is_an_error_at_start() -> None:
    with pytest.raises(ValueError, match="SPIDER_STATE_KEY='my/key'"):
        ActorEventsExtension.from_crawler(get_crawler(settings_dict={"SPIDER_STATE_KEY": "my/key"}))


@deferred_f_from_coro_f
async def test_interrupted_crawl_resumes_and_stats_continue(storage: Path, site: DemoSite) -> None:
    first = await crawl_site(site, limit=40)
    assert first.stats.get_value("finish_reason") == "closespider_itemcount"
    saved = await read_checkpoint(storage, KEY, "pages")
    assert saved.manifest.close_reason == "closespider_itemcount"
    assert saved.seqs
    first_start = first.stats.get_value("start_time")

    second = await crawl_site(site)
    stats = second.stats
    assert stats.get_value("finish_reason") == "finished"
    assert stats.get_value("start_time") == first_start, "the first run's start_time is kept"
    assert stats.get_value("item_scraped_count") == 121  # 120 pages and the start page, once each
    assert second.spider.state["pages"] == 121
    assert stats.get_value("elapsed_time_seconds") > first.stats.get_value("elapsed_time_seconds")
    assert stats.get_value("actor_events/restore/requests") == len(saved.seqs)
    enqueued, dequeued = (
        stats.get_value("scheduler/enqueued"),
        stats.get_value("scheduler/dequeued"),
    )
    assert enqueued == dequeued, "re-enqueued requests are not counted twice"
    assert site.log.counts("/")["/"] == 1


@deferred_f_from_coro_f
async def test_finished_crawl_starts_fresh_unless_told(
    storage: Path, site: DemoSite, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="scrapy_actor_events")
    await crawl_site(site)
    second = await crawl_site(site)
    assert "finished (finished," in caplog.text
    assert "starting a new crawl" in caplog.text
    assert second.stats.get_value("item_scraped_count") == 121
    caplog.clear()
    third = await crawl_site(site, ACTOR_EVENTS_RESUME="always")
    assert "Resuming from checkpoint" in caplog.text
    assert third.stats.get_value("item_scraped_count") == 121, (
        "nothing left to crawl: counts carry on"
    )
    assert third.stats.get_value("response_received_count") == 121
    assert site.log.counts("/")["/"] == 2  # the two fresh runs; the resumed one skipped start()


def corrupt_manifest(storage: Path) -> Path:
    manifest = storage / "key_value_stores" / "default" / KEY
    data = bytearray(manifest.read_bytes())
    data[len(data) // 2] ^= 0x20
    manifest.write_bytes(bytes(data))
    return manifest


@deferred_f_from_coro_f
async def test_unreadable_checkpoint_stops_and_is_left_untouched(
    storage: Path, site: DemoSite, caplog
) -> None:
    await crawl_site(site, limit=20)
    manifest = corrupt_manifest(storage)
    before = (manifest.read_bytes(), os.stat(manifest).st_mtime_ns)
    files_before = sorted(p.name for p in manifest.parent.iterdir())
    hits_before = len(site.log)
    crawler = await crawl_site(site)
    assert crawler.stats.get_value("finish_reason") == CLOSE_UNREADABLE
    assert (manifest.read_bytes(), os.stat(manifest).st_mtime_ns) == before
    assert sorted(p.name for p in manifest.parent.iterdir()) == files_before
    assert len(site.log) == hits_before, "nothing was crawled"
    message = next(
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.ERROR and KEY in r.getMessage()
    )
    for part in (
        KEY,
        "is unreadable",
        "scrapy-actor-events inspect",
        "clear",
        "ACTOR_EVENTS_ON_UNREADABLE=fresh",
    ):
        assert part in message


@deferred_f_from_coro_f
async def test_unreadable_checkpoint_set_aside_when_asked(storage: Path, site: DemoSite) -> None:
    await crawl_site(site, limit=20)
    manifest = corrupt_manifest(storage)
    bad = manifest.read_bytes()
    old_chunks = {p.name for p in manifest.parent.iterdir() if ".part-" in p.name}
    crawler = await crawl_site(site, ACTOR_EVENTS_ON_UNREADABLE="fresh")
    assert crawler.stats.get_value("finish_reason") == "finished"
    aside = [
        p
        for p in manifest.parent.iterdir()
        if ".unreadable-" in p.name and "__metadata__" not in p.name
    ]
    assert len(aside) == 1
    assert aside[0].read_bytes() == bad
    assert old_chunks <= {p.name for p in manifest.parent.iterdir()}, (
        "the bad checkpoint's chunks are kept"
    )
    restored = await read_checkpoint(storage, KEY, "pages")
    assert restored.manifest.close_reason == "finished"


class FailingStore(LocalKeyValueStore):
    async def get(self, key: str) -> bytes | None:
        raise OSError("store is down")


@deferred_f_from_coro_f
async def test_store_that_cannot_be_read_stops_the_crawl(storage: Path, site: DemoSite) -> None:
    crawler = await crawl_site(site, ACTOR_EVENTS_STORE=f"{__name__}.FailingStore")
    assert crawler.stats.get_value("finish_reason") == CLOSE_STORE_UNAVAILABLE
    assert not (storage / "key_value_stores" / "default" / KEY).exists()


@deferred_f_from_coro_f
async def test_jobdir_keeps_the_frontier_and_we_keep_stats(
    storage: Path, site: DemoSite, tmp_path: Path, caplog
) -> None:
    crawler = await crawl_site(site, JOBDIR=str(tmp_path / "job"), limit=10)
    assert "JOBDIR is set" in caplog.text
    restored = await read_checkpoint(storage, KEY, "pages")
    assert restored.seqs == []
    assert restored.fingerprints == []
    assert crawl_doc(restored)["stats"]["item_scraped_count"] == crawler.stats.get_value(
        "item_scraped_count"
    )
    assert "state" not in crawl_doc(restored)


class ForeignScheduler(BaseScheduler):
    """A scheduler that is not Scrapy's: like ApifyScheduler or scrapy-redis."""

    def __init__(self):
        self.queue = []

    def has_pending_requests(self) -> bool:
        return bool(self.queue)

    def enqueue_request(self, request) -> bool:
        self.queue.append(request)
        return True

    def next_request(self):
        return self.queue.pop() if self.queue else None


@deferred_f_from_coro_f
async def test_foreign_scheduler_keeps_stats_and_state_only(
    storage: Path, site: DemoSite, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="scrapy_actor_events")
    crawler = await crawl_site(site, SCHEDULER=f"{__name__}.ForeignScheduler", limit=5)
    assert "is not Scrapy's" in caplog.text
    restored = await read_checkpoint(storage, KEY, "pages")
    assert restored.seqs == []
    assert crawl_doc(restored)["state"]["pages"] == crawler.spider.state["pages"]


def test_scrapy_crawl_exits_3_on_an_unreadable_checkpoint(storage: Path, site: DemoSite) -> None:
    args = ["links", "-a", f"start_url={site.url}/", "-s", "CLOSESPIDER_ITEMCOUNT=10"]
    first = scrapy_crawl(args, subprocess_env(storage))
    assert first.returncode == 0
    manifest = storage / "key_value_stores" / "default" / "SCRAPY_STATE_links"
    manifest.write_bytes(manifest.read_bytes()[:-20])
    second = scrapy_crawl(args, subprocess_env(storage))
    assert second.returncode == ExitCode.UNREADABLE
    assert "Spider closed (actor_events_unreadable_checkpoint)" in second.stderr


@deferred_f_from_coro_f
async def test_the_persist_timer_keeps_firing(storage: Path, endless_site: DemoSite) -> None:
    # A crawl of a little over the 2 s the test needs (the site would never finish).
    crawler = await crawl_site(
        endless_site, ACTOR_EVENTS_PERSIST_INTERVAL=0.2, CLOSESPIDER_TIMEOUT=2.5
    )
    seconds = crawler.stats.get_value("elapsed_time_seconds")
    count = crawler.stats.get_value("actor_events/checkpoint/count")
    assert seconds > 2
    assert count >= seconds / 0.2 * 0.6, (count, seconds)


_IMPORTS_OF_A_LOCAL_CRAWL = """
import json, sys
from scrapy.crawler import CrawlerProcess
from tests.support.spiders import PagesSpider

process = CrawlerProcess({
    "EXTENSIONS": {"scrapy_actor_events.ActorEventsExtension": 100},
    "ACTOR_EVENTS_STORE": "local",
    "ACTOR_EVENTS_STORAGE_DIR": sys.argv[1],
    "ACTOR_EVENTS_DATASET": False,
    "CLOSESPIDER_ITEMCOUNT": 5,
    "LOG_LEVEL": "WARNING",
})
crawler = process.create_crawler(PagesSpider)
process.crawl(crawler, url=sys.argv[2])
process.start()
heavy = ("autobahn", "apify_client", "pydantic", "itemadapter")
print(json.dumps({
    "checkpoints": crawler.stats.get_value("actor_events/checkpoint/count", 0),
    "loaded": [name for name in heavy if name in sys.modules],
}))
"""


def test_a_local_crawl_without_socket_or_dataset_loads_no_client_library(
    storage: Path, site: DemoSite
) -> None:
    """Every module a crawl loads stays in the heap that each full garbage collection walks:
    Autobahn, apify-client and pydantic (through itemadapter) made a crawl's full collections
    about a third longer than plain Scrapy's, 5% of a short crawl's time. A crawl loads them only
    when it uses them."""
    done = run_crawl(
        [sys.executable, "-c", _IMPORTS_OF_A_LOCAL_CRAWL, str(storage), f"{site.url}/"],
        env=subprocess_env(storage),
        cwd=ROOT,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["checkpoints"] >= 1, done.stderr[-3000:]
    assert report["loaded"] == []
