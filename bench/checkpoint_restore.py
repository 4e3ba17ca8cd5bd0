"""Restoring a checkpoint the benchmark wrote, in a process of its own, as after a migration.

``python -m bench.checkpoint_restore DIR all|first`` restores the checkpoint in the local store at
DIR into a fresh Scrapy scheduler (with the extension's record queues) and prints JSON: seconds to
the first request out of the scheduler, to all of them back (``all``), and the longest reactor
stall after the first request.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

from .codec_bench import BenchSpider
from .common import ROOT

KEY = "SCRAPY_STATE_bench"


def restore_child(storage: str, restore_all: bool) -> dict[str, Any]:
    async def restore() -> dict[str, Any]:
        from scrapy.settings import Settings

        from scrapy_actor_events.config import Config
        from scrapy_actor_events.environment import ActorEnvironment
        from scrapy_actor_events.store.local import LocalKeyValueStore

        config = Config.from_settings(Settings({}), ActorEnvironment())
        first, every, stall = await _restore(LocalKeyValueStore(storage), config, restore_all)
        return {"first": first, "all": every, "stall": stall}

    return on_reactor(restore())


def on_reactor(coro: Any) -> dict[str, Any]:
    from scrapy.utils.reactor import install_reactor

    install_reactor("twisted.internet.asyncioreactor.AsyncioSelectorReactor")
    from scrapy.utils.defer import deferred_from_coro
    from twisted.internet import reactor

    out: dict[str, Any] = {}

    def done(result: Any) -> None:
        out["result"] = result
        reactor.stop()  # type: ignore[attr-defined]

    deferred_from_coro(coro).addBoth(done)
    reactor.run()  # type: ignore[attr-defined]
    result = out["result"]
    if not isinstance(result, dict):
        result.raiseException()
    return result


def restore_elsewhere(storage: str, restore_all: bool) -> tuple[float, float, float]:
    """:func:`_restore` in a new process (blocking: nothing is measured here meanwhile)."""
    cmd = [sys.executable, "-m", "bench.checkpoint_restore", storage]
    cmd.append("all" if restore_all else "first")
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"restore from {storage} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return result["first"], result["all"], result["stall"]


async def _restore(store: Any, config: Any, restore_all: bool) -> tuple[float, float, float]:
    """Seconds to the first request out of the scheduler, to all of them back, and the longest
    reactor stall after the first request (when some go back in slices)."""
    from scrapy.utils.asyncio import sleep

    from scrapy_actor_events.checkpoint.crawl_state import CrawlState
    from scrapy_actor_events.checkpoint.resume import Restorer, read_checkpoint
    from scrapy_actor_events.checkpoint.writer import Checkpointer

    from .frontier_setup import scheduler_with_frontier
    from .store_bench import StallMonitor

    crawler, scheduler, frontier = scheduler_with_frontier(BenchSpider)
    restorer = Restorer(
        crawler.stats,
        CrawlState(crawler.stats),
        frontier,
        scheduler.enqueue_request,
        config.checkpoint.restore_batch,
    )
    checkpointer = Checkpointer(store, KEY, "bench", config.checkpoint, crawler.stats)
    monitor = StallMonitor()
    await sleep(0.1)
    monitor.worst, monitor.last = 0.0, time.perf_counter()
    started = time.perf_counter()
    restored = await read_checkpoint(checkpointer, config.checkpoint)
    assert restored is not None
    restorer.restore(crawler.spider, restored)
    first_request = scheduler.next_request()
    first = time.perf_counter() - started
    assert first_request is not None
    # Until here spider_opened holds the crawl anyway; the stalls that matter come after.
    monitor.worst, monitor.last = 0.0, time.perf_counter()
    every = first
    if restore_all:
        while restorer.pending:
            await sleep(0.001)
        every = time.perf_counter() - started
        assert len(scheduler) + 1 == restored.count, (len(scheduler), restored.count)
    stall = monitor.worst * 1000
    monitor.stop()
    restorer.cancel()
    return first, every, stall


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    print(json.dumps(restore_child(sys.argv[1], sys.argv[2] == "all")))
