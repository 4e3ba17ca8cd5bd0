"""A real Scrapy scheduler outside a crawl, with the frontier the extension gives it: record queues
and the compact fingerprint set.

Used by the checkpoint benchmark and its restore child: the same wiring as
``ActorEventsExtension._follow_frontier`` / ``_use_record_queues``, without a crawl.
"""

from __future__ import annotations

from typing import Any

from scrapy.core.scheduler import Scheduler
from scrapy.utils.test import get_crawler

from scrapy_actor_events import _scrapy_internals as internals
from scrapy_actor_events.checkpoint.codec import RequestCodec
from scrapy_actor_events.checkpoint.fingerprints import CompactFingerprintSet
from scrapy_actor_events.checkpoint.queue_frontier import QueueFrontier, record_placer


def scheduler_with_frontier(spidercls: type) -> tuple[Any, Any, QueueFrontier]:
    """(crawler, scheduler, frontier); needs a running reactor (the engine's downloader)."""
    crawler = get_crawler(spidercls, {"LOG_LEVEL": "WARNING"})
    crawler.spider = crawler._create_spider()
    crawler.engine = crawler._create_engine()
    scheduler = Scheduler.from_crawler(crawler)
    scheduler.open(crawler.spider)
    seen = internals.replace_seen_fingerprints(scheduler, CompactFingerprintSet)
    fingerprint = internals.fingerprint_function(scheduler)
    frontier = QueueFrontier(RequestCodec(crawler.spider), crawler.stats, seen, fingerprint)
    assert internals.install_memory_queues(scheduler, frontier.queue_class)
    downloader = crawler.engine.downloader
    access = internals.queue_access(scheduler, downloader)
    assert access is not None
    placer = record_placer(
        access.slots, internals.slot_key_is_scrapys(downloader), downloader.get_slot_key
    )
    frontier.attach(access.place, access.target, placer, lambda: None)
    return crawler, scheduler, frontier
