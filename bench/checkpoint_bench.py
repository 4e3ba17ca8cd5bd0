"""What a checkpoint costs as the frontier grows: full and delta checkpoints, the migration flush,
and the restore, at 10k, 100k and 1M pending requests (twice as many seen fingerprints).

Each frontier size runs in a fresh process on Scrapy's AsyncioSelectorReactor (a reactor cannot
be restarted, and a 1M frontier is best freed with its process): ``python -m bench.checkpoint_bench
--child N ROUNDS`` prints JSON. Within the process every round runs every case once, in turn.
Restores run in a process of their own (:mod:`bench.checkpoint_restore`), as after a migration:
the garbage collector's cost grows with the heap, and the writer's heap holds a whole frontier.

"60 s of crawl" is fixed, whatever the frontier size: at 100 pages/s, each page adding ~10 new
links, 6,000 requests finish (the oldest) and 60,000 new ones are enqueued, with 60,000 new
fingerprints. The requests are in a real Scrapy scheduler (DownloaderAwarePriorityQueue, LIFO, with
the extension's record queues and compact fingerprint set, ``bench.frontier_setup``): new ones go
through the dupefilter and are encoded as the queues store them, spread over the 60 s; finished
ones are taken from the scheduler. The clock runs from the checkpoint request only.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

from .checkpoint_restore import KEY, on_reactor, restore_elsewhere
from .codec_bench import BenchSpider, request_mix
from .common import ROOT

SIZES = (10_000, 100_000, 1_000_000)
FINISHED_PER_MINUTE = 6_000
ADDED_PER_MINUTE = 60_000
MIGRATING = b'{"name": "migrating", "data": {"timeRemainingSecs": 5}}'
#: Printed under the table: what each figure is made of.
LIMITS = (
    "What these figures are made of. *Full*: the consistent cut on the reactor walks the"
    " scheduler's queues (the records are the queues' own bytes objects: a list of references,"
    " no encoding) and joins the compact fingerprint set's buckets into one blob; MessagePack"
    " (in 16,384-item slices) and zstd level 3 run in a worker thread. *Delta* and *flush*:"
    " flat whatever the frontier size: the 60,000 new requests (encoded when the scheduler"
    " stored them), the 6,000 finished numbers and the 60,000 new fingerprints; an urgent"
    " checkpoint never folds, so a flush never writes a base. *Restore*: reading, checking,"
    " decompressing, unpacking and merging the segments in worker threads, then on the"
    " reactor: loading the fingerprint blob into the compact set (slicing, no hashing) and"
    " pushing every record straight into the queue it was taken from (no request is rebuilt,"
    " so the first request and the last one are back at the same time); the first request is"
    " rebuilt when the scheduler hands it out."
)


def child(pending: int, rounds: int) -> dict[str, Any]:
    return on_reactor(_measure(pending, rounds))


class Crawl:
    """A real scheduler with the extension's record queues holding ``pending`` requests, and
    twice as many seen fingerprints (the other half: requests that finished long ago)."""

    def __init__(self, pending: int) -> None:
        from .frontier_setup import scheduler_with_frontier

        self.crawler, self.scheduler, self.frontier = scheduler_with_frontier(BenchSpider)
        self.spider = self.crawler.spider
        self.stats = self.crawler.stats
        self.seen = self.frontier.seen
        self.fingerprint = self.scheduler.df.fingerprinter.fingerprint
        for _ in range(pending):
            self.seen.add(os.urandom(20))  # finished long ago
        self.next_id = 0
        self.size = pending
        self.add(pending)

    def add(self, n: int) -> list[bytes]:
        """Schedule ``n`` new requests (through the dupefilter); their fingerprints."""
        fingerprints: list[bytes] = []
        for start in range(0, n, 10_000):  # a slice at a time: Request objects are big
            count = min(10_000, n - start)
            requests = request_mix(self.spider, count, seed=self.next_id, start=self.next_id)
            self.next_id += count
            for request in requests:
                assert self.scheduler.enqueue_request(request)
                fingerprints.append(self.fingerprint(request))
        return fingerprints

    def finish(self, n: int) -> None:
        """``n`` requests go out of the scheduler and their callbacks finish."""
        for _ in range(n):
            request = self.scheduler.next_request()
            if request is None:
                return
            self.frontier.on_finished(request)

    def one_minute(self) -> list[bytes]:
        self.finish(FINISHED_PER_MINUTE)
        return self.add(ADDED_PER_MINUTE)

    def reset(self, added: list[bytes]) -> None:
        """Back to ``size`` pending and ``2 * size`` seen: as many requests finish as were
        added (the newest, the scheduler's LIFO order), and the added fingerprints go."""
        self.finish(len(self.scheduler) - self.size)
        for fp in added:
            self.seen.discard(fp)


async def _measure(pending: int, rounds: int) -> dict[str, Any]:
    from scrapy.settings import Settings
    from scrapy.utils.asyncio import sleep

    from scrapy_actor_events.checkpoint.crawl_state import CrawlState
    from scrapy_actor_events.checkpoint.cut import CrawlCut
    from scrapy_actor_events.checkpoint.writer import Checkpointer
    from scrapy_actor_events.config import Config
    from scrapy_actor_events.environment import ActorEnvironment
    from scrapy_actor_events.store.local import LocalKeyValueStore

    from .store_bench import StallMonitor

    config = Config.from_settings(Settings({}), ActorEnvironment())
    started = time.perf_counter()
    crawl = Crawl(pending)
    built_s = time.perf_counter() - started
    monitor = StallMonitor()
    rows: list[dict[str, float]] = []
    for _ in range(rounds):
        gc.collect()
        tmp = tempfile.mkdtemp(prefix="checkpoint-bench-")
        try:
            store = LocalKeyValueStore(tmp)
            checkpointer = Checkpointer(store, KEY, "bench", config.checkpoint, crawl.stats)
            checkpointer.source = CrawlCut(
                crawl.spider, None, crawl.frontier, CrawlState(crawl.stats), 0
            )
            row: dict[str, float] = {}
            # A full checkpoint: the first one of the key.
            row["full_s"], row["full_stall_ms"], full = await monitor.around(
                _checkpoint(checkpointer, "timer")
            )
            assert full.saved, full
            assert full.kind == "base", full
            row["full_bytes"] = full.bytes
            row["pending"], row["seen"] = full.pending, full.seen
            # Restoring it into a fresh scheduler.
            first, every, stall = restore_elsewhere(tmp, restore_all=True)
            row["restore_first_s"], row["restore_all_s"], row["restore_stall_ms"] = (
                first,
                every,
                stall,
            )
            # 60 s of crawl, then the periodic checkpoint.
            added = crawl.one_minute()
            row["delta_s"], _, delta = await monitor.around(_checkpoint(checkpointer, "timer"))
            assert delta.saved, delta
            assert delta.kind == "delta", delta
            row["delta_bytes"] = delta.bytes
            # 60 s more, then the platform's migrating event.
            added += crawl.one_minute()
            row["flush_s"], row["flush_stall_ms"], flush = await monitor.around(
                _migration_flush(crawl, checkpointer)
            )
            assert flush.saved, flush
            assert flush.kind == "delta", flush
            row["flush_bytes"] = flush.bytes
            # What the migrated run restores: the base and both deltas.
            first, _, _ = restore_elsewhere(tmp, restore_all=False)
            row["restore_after_first_s"] = first
            crawl.reset(added)
            rows.append(row)
            await sleep(0)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    monitor.stop()
    return {"rows": rows, "built_s": built_s}


async def _checkpoint(checkpointer: Any, trigger: str) -> Any:
    """Ask for a checkpoint when awaited (not before: the clock starts then)."""
    from scrapy.utils.defer import maybe_deferred_to_future

    return await maybe_deferred_to_future(checkpointer.request(trigger))


async def _migration_flush(crawl: Crawl, checkpointer: Any) -> Any:
    """From the ``migrating`` message to a complete checkpoint (nothing in flight)."""
    from scrapy.utils.asyncio import sleep

    from scrapy_actor_events.events.messages import parse_message
    from scrapy_actor_events.events.migration import Migration
    from scrapy_actor_events.events.reactions import EventReactions

    class Hold:
        def hold(self, reason: str) -> None:
            pass

        def release(self, reason: str) -> None:
            pass

    class Crawler:
        stats = crawl.stats
        engine = None

    migration = Migration(
        Hold(),  # type: ignore[arg-type]
        checkpointer.request,
        in_flight=lambda: 0,
        stop_timer=lambda: None,
        start_timer=lambda: None,
        default_time_remaining=5.0,
        resume_after=0,
    )
    reactions = EventReactions(Crawler(), checkpointer.request, migration, None)  # type: ignore[arg-type]
    event = parse_message(MIGRATING, False)
    assert event is not None
    reactions(event)
    while migration.final is None:
        await sleep(0.001)
    migration.end()
    return migration.final


def run(sizes: tuple[int, ...] = SIZES, rounds: int = 5) -> dict[str, Any]:
    results: dict[str, Any] = {"load": os.getloadavg()[0], "sizes": {}}
    for pending in sizes:
        cmd = [sys.executable, "-m", "bench.checkpoint_bench", "--child", str(pending)]
        cmd.append(str(rounds))
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
        if done.returncode:
            raise RuntimeError(f"checkpoint bench at {pending:,} failed:\n{done.stderr[-3000:]}")
        results["sizes"][str(pending)] = json.loads(done.stdout.strip().splitlines()[-1])
    return results


def report(results: dict[str, Any], rounds: int) -> str:
    def med(rows: list[dict[str, float]], field: str) -> float:
        return statistics.median(r[field] for r in rows)

    def ms(rows: list[dict[str, float]], field: str) -> str:
        return f"{med(rows, field) * 1000:,.0f} ms"

    def mb(rows: list[dict[str, float]], field: str) -> str:
        return f"{med(rows, field) / 1e6:,.2f} MB"

    def worst(rows: list[dict[str, float]], field: str) -> str:
        return f"{max(r[field] for r in rows):,.0f} ms"

    lines = [
        "A frontier of N pending requests (the codec section's mix: 70% links, 20% with default"
        " headers, 10% forms and JSON) and 2N seen fingerprints (Scrapy's 20-byte SHA-1), in"
        " the local store (files, fsync), on Scrapy's AsyncioSelectorReactor. Medians of"
        f" {rounds} rounds; in each round the cases run in turn: a *full* checkpoint (the key's"
        " first, a base), *restore* of it, 60 s of crawl and the periodic *delta* checkpoint,"
        " 60 s more and a *migration flush*, and the restore a migrated run does (the base and"
        " both deltas), each restore in a new process, as after a migration. **60 s of crawl** ="
        " 100 pages/s, each adding ~10 links:"
        f" {FINISHED_PER_MINUTE:,} requests finish (the oldest) and {ADDED_PER_MINUTE:,} new ones"
        " are enqueued, with as many new fingerprints (the frontier encodes each new request"
        " when the scheduler accepts it, during those 60 s, not in the checkpoint). *Migration"
        " flush*: from the `migrating` message through the real event dispatcher and"
        " `Migration` to the complete checkpoint in the store (the manifest written), nothing"
        " in flight and no callback running (in a crawl, add the wait for running callbacks,"
        " at most `ACTOR_EVENTS_CUT_TIMEOUT`). *Restore*: from reading the manifest (chunks,"
        " SHA-256, zstd, MessagePack) through the fingerprints and the requests back in a real"
        " Scrapy scheduler (DownloaderAwarePriorityQueue with the extension's record queues) to"
        " the first request it hands out. *All*: until the last request is back (the same"
        " instant: they all go back at once). Stall: the longest reactor stall (a 5 ms"
        " LoopingCall), worst of the rounds; for the restore, after the first request (before"
        " it, `spider_opened` holds the crawl)."
        f" Load average (1 min) when the run began: {results['load']:.1f}.",
        "",
        "| pending | seen | full | full bytes | stall: full | restore: first request"
        " | restore: all | stall: restore slices | delta (60 s) | delta bytes | migration flush"
        " | flush bytes | stall: flush | restore after migration: first request |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for size, result in results["sizes"].items():
        rows = result["rows"]
        lines.append(
            f"| {int(size):,} | {med(rows, 'seen'):,.0f} | {ms(rows, 'full_s')}"
            f" | {mb(rows, 'full_bytes')} | {worst(rows, 'full_stall_ms')}"
            f" | {ms(rows, 'restore_first_s')} | {ms(rows, 'restore_all_s')}"
            f" | {worst(rows, 'restore_stall_ms')} | {ms(rows, 'delta_s')}"
            f" | {mb(rows, 'delta_bytes')} | {ms(rows, 'flush_s')} | {mb(rows, 'flush_bytes')}"
            f" | {worst(rows, 'flush_stall_ms')} | {ms(rows, 'restore_after_first_s')} |"
        )
    lines += ["", LIMITS]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(child(int(sys.argv[2]), int(sys.argv[3]))))
    else:
        print(report(run(), 5))
