"""The frontier journal against Scrapy's real scheduler and engine."""

from __future__ import annotations

import logging
import random
from typing import TYPE_CHECKING

from scrapy import Request, Spider
from scrapy.http.request import NO_CALLBACK
from scrapy.utils.defer import deferred_f_from_coro_f, maybe_deferred_to_future

from scrapy_actor_events import ActorEventsExtension
from scrapy_actor_events.checkpoint.records import record_of
from scrapy_actor_events.stats_keys import REQUESTS_UNSERIALIZABLE as STATS_UNSERIALIZABLE
from scrapy_actor_events.tools.site import DemoSite

from ..support.crawling import crawl, read_checkpoint
from ..support.probe import paused_crawl, pop_all, queued_requests

if TYPE_CHECKING:
    from pathlib import Path

    import pytest


def extension(crawler) -> ActorEventsExtension:
    ext = crawler.get_extension(ActorEventsExtension)
    assert ext is not None
    return ext


def mixed_requests(site_url: str):
    rng = random.Random(5)
    hosts = [site_url, site_url.replace("127.0.0.1", "localhost")]

    def make(spider: Spider) -> list[Request]:
        return [
            Request(
                f"{rng.choice(hosts)}/p/{n}",
                callback=rng.choice([spider.parse, spider.parse_other, None]),
                priority=rng.choice([-5, 0, 0, 3, 10]),
                meta={"n": n},
            )
            for n in range(200)
        ]

    return make


@deferred_f_from_coro_f
async def test_restore_rebuilds_the_queues_in_the_same_order(storage: Path, site: DemoSite) -> None:
    async def checkpoint_then_pop(crawler):
        result = await maybe_deferred_to_future(extension(crawler).request_checkpoint("test"))
        assert result.saved
        assert result.pending == 200
        assert result.in_flight == 0
        return pop_all(crawler)

    _, original_order = await paused_crawl(mixed_requests(site.url), checkpoint_then_pop)

    async def pop(crawler):
        return pop_all(crawler)

    def nothing(spider: Spider) -> list[Request]:
        return []

    crawler, restored_order = await paused_crawl(nothing, pop, ACTOR_EVENTS_RESUME="always")
    assert len(original_order) == 200
    assert restored_order == original_order
    assert crawler.stats.get_value("actor_events/restore/requests") == 200


@deferred_f_from_coro_f
async def test_journal_matches_the_scheduler_during_a_crawl(storage: Path) -> None:
    mismatches: list[str] = []
    checks = []

    class CheckingSpider(Spider):
        name = "checking"

        def __init__(self, url: str = "", **kwargs):
            super().__init__(**kwargs)
            self.start_urls = [url]

        def parse(self, response):
            crawler = self.crawler
            frontier = extension(crawler).frontier
            # The queues hold records: compare URLs (each URL is scheduled once here).
            truth = [r.url for r in queued_requests(crawler)]
            truth += [
                r.url for r in crawler.engine._slot.inprogress if r.callback is not NO_CALLBACK
            ]
            items = [i for group in frontier.open_items().values() for i in group]
            tracked = [frontier.codec.decode(record_of(i)).url for i in items]
            checks.append(len(truth))
            if sorted(truth) != sorted(tracked):
                mismatches.append(f"{len(set(truth) ^ set(tracked))} differ at {response.url}")
            yield from response.follow_all(css="a::attr(href)", callback=self.parse)

    with DemoSite(pages=150, delay=0.002) as demo:
        crawler = await crawl(
            CheckingSpider,
            crawl_kwargs={"url": f"{demo.url}/"},
            ACTOR_EVENTS_PERSIST_INTERVAL=0.05,
            ROBOTSTXT_OBEY=True,
        )
    assert crawler.stats.get_value("finish_reason") == "finished"
    assert len(checks) == 151
    assert max(checks) > 20
    assert mismatches == []
    assert crawler.stats.get_value("actor_events/checkpoint/count") >= 2


@deferred_f_from_coro_f
async def test_unserializable_requests_are_counted_and_logged_once_per_cause(
    storage: Path, site: DemoSite, caplog: pytest.LogCaptureFixture
) -> None:
    def make(spider: Spider) -> list[Request]:
        good = [Request(f"{site.url}/p/{n}", callback=spider.parse_other) for n in range(10)]
        lambdas = [Request(f"{site.url}/p/{n}", callback=lambda r: None) for n in range(10, 15)]
        objects = [Request(f"{site.url}/p/{n}", meta={"obj": object()}) for n in range(15, 18)]
        internal = [Request(f"{site.url}/p/{n}", callback=NO_CALLBACK) for n in range(18, 20)]
        return good + lambdas + objects + internal

    async def checkpoint(crawler):
        return await maybe_deferred_to_future(extension(crawler).request_checkpoint("test"))

    caplog.set_level(logging.WARNING, logger="scrapy_actor_events")
    crawler, result = await paused_crawl(make, checkpoint)
    assert crawler.stats.get_value(STATS_UNSERIALIZABLE) == 8
    warnings = [
        r.getMessage() for r in caplog.records if "cannot be checkpointed" in r.getMessage()
    ]
    assert len(warnings) == 2
    assert any("/p/10 " in w and "is not a method of the spider" in w for w in warnings)
    assert any("/p/15 " in w and "meta['obj']" in w for w in warnings)

    restored = await read_checkpoint(storage, "SCRAPY_STATE_list", "list")
    codec_urls = sorted(
        crawler.spider.crawler.get_extension(ActorEventsExtension).frontier.codec.decode(r).url
        for r in restored.records
    )
    assert codec_urls == sorted(f"{site.url}/p/{n}" for n in range(10))
    assert result.saved
    # What the checkpoint says it holds counts only the requests it holds.
    assert result.pending + result.in_flight == len(restored.records) == 10
    assert restored.manifest.summary["pending"] + restored.manifest.summary["in_flight"] == 10


@deferred_f_from_coro_f
async def test_fingerprints_survive_and_filter_duplicates(storage: Path, site: DemoSite) -> None:
    seen_urls = [f"{site.url}/p/{n}" for n in range(30)]

    def make_first(spider):
        return [Request(u, callback=spider.parse) for u in seen_urls]

    async def checkpoint(crawler):
        return await maybe_deferred_to_future(extension(crawler).request_checkpoint("test"))

    await paused_crawl(make_first, checkpoint)
    restored = await read_checkpoint(storage, "SCRAPY_STATE_list", "list")
    assert len(restored.fingerprints) == 30

    def make_again(spider):
        return [Request(u, callback=spider.parse) for u in [*seen_urls, f"{site.url}/p/99"]]

    async def inspect(crawler):
        df = crawler.engine.scheduler.df
        seen = [df.request_seen(Request(u)) for u in seen_urls]
        return sorted(r.url for r in queued_requests(crawler)), seen

    _crawler, (queued, seen) = await paused_crawl(make_again, inspect, ACTOR_EVENTS_RESUME="always")
    assert all(seen), "restored fingerprints filter the URLs seen before the restart"
    # start() was read 30 items far: only its 31st item is new; the 30 come from the checkpoint.
    assert queued == sorted([*seen_urls, f"{site.url}/p/99"])
