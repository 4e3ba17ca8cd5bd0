"""Checkpoint writes and reads through a real frontier and the local store."""

from __future__ import annotations

import asyncio
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
from scrapy_actor_events.checkpoint.format import UnreadableCheckpoint
from scrapy_actor_events.checkpoint.frontier import Frontier
from scrapy_actor_events.checkpoint.writer import Checkpointer
from scrapy_actor_events.config import Config
from scrapy_actor_events.stats_keys import CHECKPOINT_FAILED as STATS_FAILED
from scrapy_actor_events.store.local import LocalKeyValueStore

from ..support.spiders import UnitSpider

if TYPE_CHECKING:
    from pathlib import Path

KEY = "SCRAPY_STATE_unit"


class FlakyStore(LocalKeyValueStore):
    """Fails the puts it is told to, after the chunks or instead of the manifest."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fail_manifest = False
        self.fail_chunks = False
        self.delay = 0.0
        self.puts: list[str] = []

    async def put(self, key: str, value: bytes, content_type: str) -> None:
        if self.delay:
            await asyncio.sleep(self.delay)
        is_chunk = ".part-" in key
        if (is_chunk and self.fail_chunks) or (not is_chunk and self.fail_manifest):
            raise OSError(28, "No space left on device")
        self.puts.append(key)
        await super().put(key, value, content_type)


class Harness:
    def __init__(self, storage: Path, **settings) -> None:
        self.spider = UnitSpider()
        self.stats = MemoryStatsCollector(get_crawler())
        self.config = Config.from_settings(
            Settings({"ACTOR_EVENTS_STORAGE_DIR": str(storage), **settings})
        )
        self.store = FlakyStore(storage)
        self.frontier = Frontier(
            RequestCodec(self.spider),
            self.stats,
            in_progress=set,
            seen=set(),
            fingerprint=lambda r: r.url.encode(),
        )
        self.state = CrawlState(self.stats)
        self.spider.state = {"n": 0}
        self.checkpointer = Checkpointer(
            self.store, KEY, "unit", self.config.checkpoint, self.stats, store_ref=self.store.ref
        )
        self.checkpointer.source = CrawlCut(self.spider, None, self.frontier, self.state, 0)
        self.open: dict[str, Request] = {}
        self.counter = 0

    def add(self, n: int) -> None:
        for _ in range(n):
            self.counter += 1
            request = Request(
                f"https://example.com/{self.counter}",
                callback=self.spider.parse,
                priority=self.counter % 3,
            )
            self.open[request.url] = request
            self.frontier._seen.add(request.url.encode())
            self.frontier.on_enqueued(request)

    def finish(self, n: int) -> None:
        for url in list(self.open)[:n]:
            self.frontier.on_finished(self.open.pop(url))

    async def checkpoint(self, *triggers: str):
        """One checkpoint served for all ``triggers`` (requested at once, they share a write)."""
        requests = [self.checkpointer.request(t) for t in triggers or ("manual",)]
        results = [await maybe_deferred_to_future(d) for d in requests]
        assert all(r is results[0] for r in results)
        return results[0]

    async def restored_urls(self) -> list[str]:
        reader = Checkpointer(
            LocalKeyValueStore(self.store.storage_dir),
            KEY,
            "unit",
            self.config.checkpoint,
            self.stats,
        )
        restored = await reader.read()
        codec = RequestCodec(self.spider)
        return [codec.decode(r).url for r in restored.records]

    def chunk_files(self) -> set[str]:
        return {
            p.name
            for p in self.store.path.iterdir()
            if ".part-" in p.name and "__metadata__" not in p.name
        }


@deferred_f_from_coro_f
async def test_base_then_deltas_then_fold(storage: Path) -> None:
    h = Harness(storage, ACTOR_EVENTS_MAX_DELTAS=2)
    h.add(100)
    first = await h.checkpoint()
    assert first.saved
    assert first.kind == "base"
    assert first.pending == 100
    kinds = [first.kind]
    for _ in range(3):
        h.finish(30)
        h.add(20)
        result = await h.checkpoint()
        kinds.append(result.kind)
        assert await h.restored_urls() == list(h.open)
        assert h.chunk_files() == h.checkpointer.manifest.chunk_keys
    assert kinds == ["base", "delta", "delta", "base"]
    assert h.stats.get_value("actor_events/checkpoint/count") == 4


@deferred_f_from_coro_f
async def test_a_failed_write_keeps_the_previous_checkpoint_and_the_next_carries_the_changes(
    storage: Path,
) -> None:
    h = Harness(storage)
    h.add(50)
    await h.checkpoint()
    before = await h.restored_urls()
    manifest_bytes = (h.store.path / KEY).read_bytes()
    h.finish(10)
    h.add(5)
    h.store.fail_manifest = True  # chunks land, the manifest does not: like a kill in between
    failed = await h.checkpoint()
    assert not failed.saved
    assert "No space left" in failed.error
    assert (h.store.path / KEY).read_bytes() == manifest_bytes
    assert await h.restored_urls() == before
    assert h.stats.get_value(STATS_FAILED) == 1
    h.store.fail_manifest = False
    h.finish(3)
    h.add(2)
    saved = await h.checkpoint()
    assert saved.saved
    assert saved.kind == "delta"
    assert await h.restored_urls() == list(h.open)


@deferred_f_from_coro_f
async def test_failed_chunk_write_keeps_previous(storage: Path) -> None:
    h = Harness(storage)
    h.add(10)
    await h.checkpoint()
    h.store.fail_chunks = True
    h.add(10)
    assert not (await h.checkpoint()).saved
    assert len(await h.restored_urls()) == 10
    h.store.fail_chunks = False
    assert (await h.checkpoint()).saved
    assert len(await h.restored_urls()) == 20


@deferred_f_from_coro_f
async def test_concurrent_requests_coalesce_and_none_is_lost(storage: Path) -> None:
    h = Harness(storage)
    h.store.delay = 0.05
    h.add(5)
    first = h.checkpointer.request("a")
    await asyncio.sleep(0.02)  # "a" is being written now
    assert not first.called
    h.add(5)
    second = h.checkpointer.request("b")
    third = h.checkpointer.request("c")
    results = [await maybe_deferred_to_future(d) for d in (first, second, third)]
    assert [r.saved for r in results] == [True, True, True]
    assert results[0].generation == 1
    assert results[1] == results[2]
    assert results[1].generation == 2
    assert results[1].pending == 10  # ...which saw what was added after they were asked for
    manifests = [k for k in h.store.puts if ".part-" not in k]
    assert len(manifests) == 2
    assert h.checkpointer.manifest.trigger == "b+c"


@deferred_f_from_coro_f
async def test_spider_state_and_stats_are_in_the_checkpoint(storage: Path) -> None:
    h = Harness(storage)
    h.spider.state.update({"pages": 7, "seen": {"a", "b"}, "bad": object()})
    h.stats.set_value("item_scraped_count", 12)
    h.stats.set_value("log_count/INFO", 99)
    await h.checkpoint()
    restored = await Checkpointer(h.store, KEY, "unit", h.config.checkpoint, h.stats).read()
    doc = CrawlState.decode(restored.crawl)
    assert doc["state"] == {"n": 0, "pages": 7, "seen": {"a", "b"}}
    assert doc["stats"]["item_scraped_count"] == 12


@deferred_f_from_coro_f
async def test_another_spiders_checkpoint_is_refused(storage: Path) -> None:
    h = Harness(storage)
    h.add(1)
    await h.checkpoint()
    other = Checkpointer(h.store, KEY, "someone-else", h.config.checkpoint, h.stats)
    with pytest.raises(UnreadableCheckpoint, match="belongs to spider 'unit', not 'someone-else'"):
        await other.read()


@deferred_f_from_coro_f
async def test_urgent_checkpoints_write_deltas_and_the_next_periodic_one_folds(
    storage: Path,
) -> None:
    h = Harness(storage, ACTOR_EVENTS_MAX_DELTAS=1)
    h.add(10)
    assert (await h.checkpoint("timer")).kind == "base"
    kinds = []
    for triggers in (("migrating",), ("aborting",), ("close",), ("migrating", "timer")):
        h.add(50)  # deltas that outweigh the base, and more of them than ACTOR_EVENTS_MAX_DELTAS
        result = await h.checkpoint(*triggers)
        kinds.append(result.kind)
        assert await h.restored_urls() == list(h.open)
    assert kinds == ["delta"] * 4
    assert len(h.checkpointer.manifest.segments) == 5
    h.add(1)
    assert (await h.checkpoint("timer")).kind == "base"
    assert len(h.checkpointer.manifest.segments) == 1
    assert await h.restored_urls() == list(h.open)
    assert h.chunk_files() == h.checkpointer.manifest.chunk_keys


@deferred_f_from_coro_f
async def test_a_failed_fold_is_followed_by_a_delta_against_the_checkpoint_in_the_store(
    storage: Path,
) -> None:
    h = Harness(storage, ACTOR_EVENTS_MAX_DELTAS=1)
    h.add(20)
    await h.checkpoint("timer")
    h.add(5)
    assert (await h.checkpoint("timer")).kind == "delta"
    h.finish(3)
    h.add(4)
    h.store.fail_chunks = True
    failed = await h.checkpoint("timer")  # a fold: two segments >= ACTOR_EVENTS_MAX_DELTAS
    assert not failed.saved
    assert failed.kind is None
    h.store.fail_chunks = False
    h.finish(2)
    h.add(1)
    urgent = await h.checkpoint("migrating")
    assert urgent.saved
    assert urgent.kind == "delta"  # carries the failed fold's changes, not a whole new base
    assert await h.restored_urls() == list(h.open)
    restored = await h.checkpointer.read()
    assert sorted(restored.fingerprints) == sorted(
        f"https://example.com/{n}".encode() for n in range(1, h.counter + 1)
    )


@deferred_f_from_coro_f
async def test_a_delta_names_only_requests_the_store_holds_and_encodes_nothing(
    storage: Path,
) -> None:
    h = Harness(storage)
    h.add(10)
    await h.checkpoint()
    h.add(5)
    encoded = dict(h.frontier._encoded)
    assert len(encoded) == 15  # encoded when enqueued, not by the checkpoint
    for url in list(h.open)[10:13]:  # three come and go between two checkpoints...
        h.frontier.on_finished(h.open.pop(url))
    h.finish(1)  # ...and one the store holds finishes
    capture, _ = await h.checkpointer.source.capture(False)
    assert capture.kind == "delta"
    assert capture.removed == [1]
    assert capture.seqs == [14, 15]
    assert capture.records == [encoded[14], encoded[15]]


@deferred_f_from_coro_f
async def test_restore_enqueues_the_first_batch_at_once_and_the_rest_in_later_turns(
    storage: Path,
) -> None:
    from scrapy.utils.asyncio import sleep

    from scrapy_actor_events.checkpoint.resume import Restorer

    h = Harness(storage)
    h.add(250)
    await h.checkpoint()
    restored = await h.checkpointer.read()
    spider = UnitSpider()
    stats = MemoryStatsCollector(get_crawler())
    frontier = Frontier(RequestCodec(spider), stats, in_progress=set, seen=set())
    queued: list[str] = []

    def enqueue(request: Request) -> bool:
        queued.append(request.url)
        return True

    restorer = Restorer(stats, CrawlState(stats), frontier, enqueue, batch=100)
    restorer.restore(spider, restored)
    assert len(queued) == 100  # the crawl starts with work before the reactor turns
    assert restorer.pending
    # A slice whose time is up still makes progress (one request), so restoring always ends.
    assert frontier.restore_batch(enqueue, 100, deadline=0.0) == 1
    for _ in range(100):
        if not restorer.pending:
            break
        await sleep(0)
    assert not restorer.pending
    assert queued == list(h.open)
    assert stats.get_value("actor_events/restore/requests") == 250
