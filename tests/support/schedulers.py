"""Scrapy's real scheduler outside a crawl: plain (Request objects in its memory queues) or with
the extension's record queues, for comparing the order requests come out in."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scrapy import Spider
from scrapy.core.downloader import Slot
from scrapy.core.scheduler import Scheduler
from scrapy.utils.test import get_crawler

from scrapy_actor_events import _scrapy_internals as internals
from scrapy_actor_events.checkpoint.codec import RequestCodec
from scrapy_actor_events.checkpoint.queue_frontier import QueueFrontier, record_placer

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

DAPQ = "scrapy.pqueues.DownloaderAwarePriorityQueue"
SPQ = "scrapy.pqueues.ScrapyPriorityQueue"
LIFO = "scrapy.squeues.LifoMemoryQueue"
FIFO = "scrapy.squeues.FifoMemoryQueue"


LIST = f"{__name__}.ListQueue"


class ListQueue:
    """A memory queue class of the user's own, not queuelib's: LIFO over a list."""

    def __init__(self) -> None:
        self.items: list[Any] = []

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> ListQueue:
        return cls()

    def push(self, obj: Any) -> None:
        self.items.append(obj)

    def pop(self) -> Any:
        return self.items.pop() if self.items else None

    def peek(self) -> Any:
        return self.items[-1] if self.items else None

    def close(self) -> None:
        pass

    def __len__(self) -> int:
        return len(self.items)


class QueueSpider(Spider):
    name = "queues"

    def parse(self, response):
        return None

    def parse_other(self, response):
        return None


_crawlers: dict[tuple[str, str], Crawler] = {}


def crawler_for(pq: str = DAPQ, mq: str = LIFO) -> Crawler:
    """One crawler (with an engine and its downloader, which DAPQ asks) per queue setting."""
    key = (pq, mq)
    if key not in _crawlers:
        crawler = get_crawler(
            QueueSpider,
            {"LOG_LEVEL": "WARNING", "SCHEDULER_PRIORITY_QUEUE": pq, "SCHEDULER_MEMORY_QUEUE": mq},
        )
        crawler.spider = crawler._create_spider()
        crawler.engine = crawler._create_engine()
        _crawlers[key] = crawler
    return _crawlers[key]


def plain_scheduler(crawler: Crawler) -> Scheduler:
    scheduler = Scheduler.from_crawler(crawler)
    scheduler.open(crawler.spider)
    return scheduler


def record_scheduler(
    crawler: Crawler, codec: Any = None, seen: Any = None
) -> tuple[Scheduler, QueueFrontier]:
    """A scheduler whose memory queues hold records, as the extension sets it up."""
    scheduler = plain_scheduler(crawler)
    assert crawler.stats is not None
    fingerprint = internals.fingerprint_function(scheduler) if seen is not None else None
    frontier = QueueFrontier(
        codec or RequestCodec(crawler.spider), crawler.stats, seen=seen, fingerprint=fingerprint
    )
    assert internals.install_memory_queues(scheduler, frontier.queue_class)
    downloader = crawler.engine.downloader
    access = internals.queue_access(scheduler, downloader)
    placer = record_placer(
        access.slots if access else False,
        internals.slot_key_is_scrapys(downloader),
        downloader.get_slot_key,
    )
    frontier.attach(
        access.place if access else None, access.target if access else None, placer, lambda: None
    )
    return scheduler, frontier


def set_busy(crawler: Crawler, slot: str, busy: int) -> None:
    """Make the downloader's slot ``slot`` look like it has ``busy`` active downloads."""
    slots = crawler.engine.downloader.slots
    if slot not in slots:
        slots[slot] = Slot(8, 0.0, 0.0)
    slots[slot].active = {object() for _ in range(busy)}  # type: ignore[assignment]


def idle(crawler: Crawler) -> None:
    crawler.engine.downloader.slots.clear()
