"""The scheduler internals the record queues rely on, against the installed Scrapy."""

from __future__ import annotations

from scrapy import Request
from scrapy.pqueues import ScrapyPriorityQueue

from scrapy_actor_events import _scrapy_internals as internals
from scrapy_actor_events.checkpoint.fingerprints import CompactFingerprintSet

from .support.schedulers import DAPQ, FIFO, SPQ, crawler_for, plain_scheduler


class OwnQueue(ScrapyPriorityQueue):
    pass


def test_the_queue_internals_are_required_at_start() -> None:
    names = set(internals.REQUIREMENTS)
    assert {
        "Scheduler.mqclass/_smqclass/_mq",
        "ScrapyPriorityQueue.queues",
        "DownloaderAwarePriorityQueue.pqueues",
    } <= names
    assert internals.missing_internals() == []


def test_queues_are_swapped_only_while_empty() -> None:
    crawler = crawler_for(SPQ, FIFO)
    scheduler = plain_scheduler(crawler)
    scheduler.enqueue_request(Request("http://h.example/1", dont_filter=True))
    before = scheduler.mqs
    assert not internals.install_memory_queues(scheduler, lambda cls, start: cls)
    assert scheduler.mqs is before
    assert len(scheduler) == 1


def test_queue_access_knows_scrapys_priority_queues_only() -> None:
    crawler = crawler_for(DAPQ, FIFO)
    downloader = crawler.engine.downloader
    scheduler = plain_scheduler(crawler)
    access = internals.queue_access(scheduler, downloader)
    assert access is not None
    assert access.slots
    request = Request("http://h.example:81/x", priority=3, meta={"is_start_request": True})
    assert access.place(request, True) == ("h.example", -3, True)
    queue, where = access.target(("h.example", -3, True))
    assert where == ("h.example", -3, True)
    assert scheduler.mqs.pqueues["h.example"]._start_queues[-3] is queue
    assert internals.slot_key_is_scrapys(downloader)
    scheduler.mqs = OwnQueue(crawler, scheduler.mqclass, "")
    assert internals.queue_access(scheduler, downloader) is None


def test_the_seen_set_is_swapped_for_rfpdupefilters_own_set_only() -> None:
    crawler = crawler_for(SPQ, FIFO)
    scheduler = plain_scheduler(crawler)
    scheduler.df.request_seen(Request("http://h.example/seen"))
    compact = internals.replace_seen_fingerprints(scheduler, CompactFingerprintSet)
    assert isinstance(compact, CompactFingerprintSet)
    assert len(compact) == 1
    assert scheduler.df.request_seen(Request("http://h.example/seen"))
    assert internals.seen_fingerprints(scheduler) is compact
    # Already swapped (not an exact set): left alone.
    assert internals.replace_seen_fingerprints(scheduler, CompactFingerprintSet) is None
