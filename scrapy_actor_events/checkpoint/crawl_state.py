"""The rest of a crawl's state: stats, ``spider.state`` and how far ``start()`` was read.

Stats continue across runs: counters carry on from the checkpoint, the first run's ``start_time``
stays, ``elapsed_time_seconds`` adds up the runs, and per-process keys (``log_count/*``,
``memusage/*``) start from zero in every process.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from scrapy.utils.asyncio import sleep

from .. import stats_keys
from .data import UnencodableError, pack_data, unpack_data

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from scrapy import Spider
    from scrapy.statscollectors import StatsCollector

logger = logging.getLogger(__name__)

#: A resumed crawl reads past what ``start()`` yielded before (7 µs an item: seconds for hundreds
#: of thousands) in slices of this long, with a reactor turn between: the requests restored into
#: the scheduler go out meanwhile, instead of waiting for the whole skip.
SKIP_SLICE_SECONDS = 0.005


class CrawlState:
    """Captures and restores everything but the frontier."""

    def __init__(self, stats: StatsCollector, *, with_spider_state: bool = True) -> None:
        self.stats = stats
        self.with_spider_state = with_spider_state
        self.start_consumed = 0
        self.start_done = False
        self._start_skip = 0
        self._elapsed_before = 0.0
        self._process_started = time.monotonic()
        self._first_start_time: Any = None
        self._dropped_logged: set[str] = set()

    # -- capture ------------------------------------------------------------------------------

    def capture(self, spider: Spider, in_flight: int) -> bytes:
        """Stats, ``spider.state`` and start progress as bytes, taken now."""
        stats = self.stats.get_stats()
        # The checkpointer counts a checkpoint once it is written, after this capture; what is
        # captured here reaches the store only in that checkpoint, so count it already, or every
        # resumed run would continue one behind.
        count = stats_keys.CHECKPOINT_COUNT
        stats = {**stats, count: int(stats.get(count) or 0) + 1}
        doc: dict[str, Any] = {
            "stats": self._encodable("stats", stats),
            "start": {"consumed": self.start_consumed, "done": self.start_done},
            "elapsed": self.elapsed_seconds(),
            "in_flight": in_flight,
        }
        if self.with_spider_state:
            doc["state"] = self._encodable("spider.state", getattr(spider, "state", None) or {})
        return pack_data(doc)

    def elapsed_seconds(self) -> float:
        return self._elapsed_before + (time.monotonic() - self._process_started)

    def _encodable(self, where: str, values: dict[str, Any]) -> dict[str, Any]:
        snapshot = dict(values)
        try:
            pack_data(snapshot)
            return snapshot
        except UnencodableError:
            pass
        kept = {}
        for key, value in snapshot.items():
            try:
                pack_data(value)
            except UnencodableError as exc:
                label = f"{where}[{key!r}]"
                if label not in self._dropped_logged:
                    self._dropped_logged.add(label)
                    logger.error(
                        "%s is not plain data (%s) and is left out of checkpoints;"
                        " store dicts, lists, strings, numbers, bytes or datetimes there.",
                        label,
                        exc.cause,
                    )
                continue
            kept[key] = value
        return kept

    # -- restore ------------------------------------------------------------------------------

    @staticmethod
    def decode(data: bytes) -> dict[str, Any]:
        doc = unpack_data(data)
        if not isinstance(doc, dict) or not isinstance(doc.get("stats"), dict):
            raise ValueError("crawl state is not a map with stats")
        return doc

    def restore(self, spider: Spider, doc: dict[str, Any]) -> None:
        """Put stats, ``spider.state`` and start progress back (in ``spider_opened``)."""
        for key, value in doc["stats"].items():
            if key == stats_keys.START_TIME:
                self._first_start_time = value
            elif not stats_keys.is_per_process(key):
                self.stats.set_value(key, value)
        start = doc.get("start") or {}
        self._start_skip = int(start.get("consumed") or 0)
        self._elapsed_before = float(doc.get("elapsed") or 0.0)
        if self.with_spider_state:
            state = doc.get("state")
            spider.state = state if isinstance(state, dict) else {}  # type: ignore[attr-defined]

    def ensure_spider_state(self, spider: Spider) -> None:
        if self.with_spider_state and not isinstance(getattr(spider, "state", None), dict):
            spider.state = {}  # type: ignore[attr-defined]

    def after_core_stats_opened(self) -> None:
        """Keep the first run's ``start_time`` over the one CoreStats just set."""
        if self._first_start_time is not None:
            self.stats.set_value(stats_keys.START_TIME, self._first_start_time)

    def after_core_stats_closed(self) -> None:
        """Make ``elapsed_time_seconds`` the sum of all runs, not this process only."""
        this_run = self.stats.get_value(stats_keys.ELAPSED)
        if isinstance(this_run, (int, float)) and self._elapsed_before:
            self.stats.set_value(stats_keys.ELAPSED, self._elapsed_before + this_run)

    @property
    def start_skip(self) -> int:
        return self._start_skip

    async def _skip(self, start: AsyncIterator[Any], skip: int) -> None:
        deadline = time.perf_counter() + SKIP_SLICE_SECONDS
        while self.start_consumed < skip:
            try:
                await anext(start)
            except StopAsyncIteration:
                return
            self.start_consumed += 1
            if time.perf_counter() >= deadline:
                await sleep(0)  # the engine's scheduled call (restored requests) runs now
                deadline = time.perf_counter() + SKIP_SLICE_SECONDS

    async def track_start(self, start: AsyncIterator[Any]) -> AsyncIterator[Any]:
        """Count what the engine reads from ``start()``, skipping what earlier runs read."""
        skip = self._start_skip
        if skip:
            await self._skip(start, skip)
        async for item in start:
            self.start_consumed += 1
            yield item
        self.start_done = True
        if skip and self.start_consumed < skip:
            logger.warning(
                "start() yielded %d items, fewer than the %d read before the restart;"
                " start() should yield the same sequence in every run.",
                self.start_consumed,
                skip,
            )
