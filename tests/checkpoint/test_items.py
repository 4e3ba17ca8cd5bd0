"""The item journal and the items a checkpoint carries: staged under their request until its
callback is done, cut with the frontier, written as base and deltas, read back from the commit
point on; a checkpoint without items (an older format) still reads."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from scrapy import Request
from scrapy.settings import Settings
from scrapy.statscollectors import MemoryStatsCollector
from scrapy.utils.defer import deferred_f_from_coro_f, maybe_deferred_to_future
from scrapy.utils.test import get_crawler

from scrapy_actor_events.checkpoint.codec import RequestCodec
from scrapy_actor_events.checkpoint.crawl_state import CrawlState
from scrapy_actor_events.checkpoint.cut import CrawlCut
from scrapy_actor_events.checkpoint.format import SegmentKind, UnreadableCheckpoint
from scrapy_actor_events.checkpoint.frontier import Frontier
from scrapy_actor_events.checkpoint.items import ItemJournal, merge_items
from scrapy_actor_events.checkpoint.options import Trigger
from scrapy_actor_events.checkpoint.writer import Checkpointer
from scrapy_actor_events.config import Config
from scrapy_actor_events.dataset.commit import CommitPoint
from scrapy_actor_events.store.local import LocalKeyValueStore

from ..support.spiders import UnitSpider

if TYPE_CHECKING:
    from pathlib import Path

KEY = "SCRAPY_STATE_unit"


def rec(n: int) -> bytes:
    return b'{"n":%d}' % n


def test_items_wait_under_their_request_until_its_callback_is_done() -> None:
    open_requests: set[Request] = set()
    journal = ItemJournal("ds", tracked=lambda r: r in open_requests)
    a, b = Request("https://a"), Request("https://b")
    open_requests |= {a, b}
    journal.add(rec(0), a)
    journal.add(rec(1), b)
    journal.add(rec(2), None)  # not from a response: joins at once
    journal.add(rec(3), Request("https://untracked"))
    assert journal.capture(base=True).records == [rec(2), rec(3)]
    assert journal.staged == 2
    journal.request_finished(b)
    open_requests.discard(b)
    journal.request_finished(a)
    capture = journal.capture(base=True)
    assert capture.records == [rec(2), rec(3), rec(1), rec(0)]
    assert (capture.first, capture.end, journal.staged) == (0, 4, 0)


def test_a_base_holds_every_uncommitted_item_and_a_delta_those_since_the_last_checkpoint() -> None:
    journal = ItemJournal("ds")
    for n in range(5):
        journal.add(rec(n), None)
    first = journal.capture(base=True)
    journal.saved(first)
    assert journal.to_commit() == (CommitPoint(0, 0), [rec(n) for n in range(5)])
    for n in range(5, 8):
        journal.add(rec(n), None)
    failed = journal.capture(base=False)  # this checkpoint never reaches the store
    assert (failed.first, failed.records) == (5, [rec(5), rec(6), rec(7)])
    journal.add(rec(8), None)
    delta = journal.capture(base=False)
    assert (delta.first, len(delta.records), delta.end) == (5, 4, 9), "carries the failed one's"
    journal.committed(CommitPoint(3, 3))
    assert journal.capture(base=True).records == [rec(n) for n in range(3, 9)]
    journal.saved(delta)
    assert journal.to_commit() == (CommitPoint(3, 3), [rec(n) for n in range(3, 9)])
    journal.committed(CommitPoint(9, 9))
    assert journal.to_commit() == (CommitPoint(9, 9), [])
    assert journal.capture(base=True).records == []


def test_merging_keeps_the_last_journal_and_refuses_missing_items() -> None:
    def part(journal: str, first: int, n: int, end: int, committed: int) -> dict:
        records = [rec(first + i) for i in range(n)]
        offset = committed + 10
        return {"items": {"journal": journal, "first": first, "end": end, "committed": committed,
                          "offset": offset, "dataset": "ds"}, "item_records": records}  # fmt: skip

    merged = merge_items([part("a", 0, 4, 4, 1), part("a", 4, 2, 6, 3)])
    assert merged is not None
    assert merged.records == [rec(3), rec(4), rec(5)]
    assert (merged.point, merged.end) == (CommitPoint(3, 13), 6)
    # A journal restarted (the dataset turned off, then on): the old one's items do not count.
    restarted = merge_items([part("a", 0, 4, 4, 1), part("b", 0, 2, 2, 0)])
    assert restarted is not None
    assert restarted.records == [rec(0), rec(1)]
    with pytest.raises(ValueError, match="missing"):
        merge_items([part("a", 0, 2, 2, 0), part("a", 3, 1, 4, 0)])
    assert merge_items([{"seqs": []}]) is None


class Harness:
    def __init__(self, storage: Path) -> None:
        self.spider = UnitSpider()
        self.stats = MemoryStatsCollector(get_crawler())
        config = Config.from_settings(Settings({"ACTOR_EVENTS_STORAGE_DIR": str(storage)}))
        self.store = LocalKeyValueStore(storage)
        self.frontier = Frontier(RequestCodec(self.spider), self.stats, in_progress=set)
        self.journal = ItemJournal("ds", tracked=self.frontier.tracked)
        self.checkpointer = Checkpointer(self.store, KEY, "unit", config.checkpoint, self.stats)
        self.checkpointer.source = CrawlCut(
            self.spider, None, self.frontier, CrawlState(self.stats), 0, items=self.journal
        )
        self.saved: list[int] = []
        self.checkpointer.on_landed = self.on_landed

    def on_landed(self, capture) -> None:  # what the sink does first
        self.journal.saved(capture.items)
        self.saved.append(capture.items.end)

    async def checkpoint(self):
        return await maybe_deferred_to_future(self.checkpointer.request(Trigger.MANUAL))


@deferred_f_from_coro_f
async def test_a_checkpoint_carries_the_items_of_finished_callbacks_only(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    running = Request("https://example.com/running", callback=h.spider.parse)
    done = Request("https://example.com/done", callback=h.spider.parse)
    h.frontier.on_enqueued(running)
    h.frontier.on_enqueued(done)
    h.journal.add(rec(0), running)  # its callback has yielded one item so far
    h.journal.add(rec(1), done)
    h.frontier.on_finished(done)
    h.journal.request_finished(done)
    first = await h.checkpoint()
    assert first.kind == SegmentKind.BASE
    assert h.saved == [1]
    restored = await h.checkpointer.read()
    assert restored is not None
    assert restored.output is not None
    assert restored.output.records == [rec(1)], "the running callback's item waits with it"
    assert [s for s in restored.seqs] == [1], "...and its request stays open"
    # It finishes: its item goes into the next checkpoint, a delta.
    h.frontier.on_finished(running)
    h.journal.request_finished(running)
    h.journal.committed(CommitPoint(1, 1))  # the first checkpoint's item was pushed
    second = await h.checkpoint()
    assert second.kind == SegmentKind.DELTA
    restored = await h.checkpointer.read()
    assert restored is not None
    assert restored.output is not None
    assert restored.output.records == [rec(0)]
    assert restored.output.point == CommitPoint(1, 1)
    assert restored.manifest.summary["items"] == {"dataset": "ds", "committed": 1, "uncommitted": 1}


@deferred_f_from_coro_f
async def test_a_checkpoint_without_items_reads_as_before(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.checkpointer.source = CrawlCut(h.spider, None, h.frontier, CrawlState(h.stats), 0)
    await h.checkpoint()
    restored = await h.checkpointer.read()
    assert restored is not None
    assert restored.output is None


@deferred_f_from_coro_f
async def test_a_checkpoint_missing_items_it_should_hold_is_unreadable(tmp_path: Path) -> None:
    h = Harness(tmp_path)
    h.journal.add(rec(0), None)
    await h.checkpoint()
    h.journal.add(rec(1), None)
    h.journal._saved_end = 2  # a bug that would leave item 1 out of the next delta
    await h.checkpoint()
    with pytest.raises(UnreadableCheckpoint, match="uncommitted are missing"):
        await h.checkpointer.read()
