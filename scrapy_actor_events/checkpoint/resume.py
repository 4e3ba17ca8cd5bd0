"""Starting a crawl from its checkpoint: read it, decide whether to resume, put it all back."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from scrapy.utils.asyncio import call_later

from .. import stats_keys
from ..exit_codes import CLOSE_STORE_UNAVAILABLE, CLOSE_UNREADABLE, FINISHED_REASONS
from ..store.base import StoreMissing
from .crawl_state import CrawlState
from .format import UnreadableCheckpoint
from .options import ResumeMode, UnreadableMode

if TYPE_CHECKING:
    from collections.abc import Callable

    from scrapy import Request, Spider
    from scrapy.statscollectors import StatsCollector
    from scrapy.utils.asyncio import CallLaterResult

    from .frontier import Frontier
    from .options import CheckpointOptions
    from .queue_frontier import QueueFrontier
    from .reader import Restored
    from .writer import Checkpointer

logger = logging.getLogger(__name__)
#: Restored requests that go back through the scheduler (queues of Request objects, or a
#: priority queue of the user's own class) are decoded: after the first batch, in slices of at
#: most this long (seconds); decoding one takes ~15 us, a batch of 5,000 ~100 ms.
RESTORE_SLICE_SECONDS = 0.01


class CannotStart(Exception):
    """The crawl must not start: its checkpoint could not be read. Carries the log message."""

    def __init__(self, reason: str, message: str, *args: Any) -> None:
        super().__init__(message % args)
        self.reason = reason
        self.message = message
        self.args_for_log = args


async def read_checkpoint(
    checkpointer: Checkpointer,
    options: CheckpointOptions,
    on_read: Callable[[Restored], None] | None = None,
) -> Restored | None:
    """The checkpoint to resume from, or None to start a new crawl; raises :class:`CannotStart`.

    ``on_read`` gets every readable checkpoint, resumed or not: items it holds that the dataset
    may lack are committed even when a new crawl starts (the sink's recovery).
    """
    key, where = checkpointer.key, checkpointer.store.describe()
    try:
        restored = await checkpointer.read()
    except UnreadableCheckpoint as exc:
        if options.on_unreadable != UnreadableMode.FRESH:
            raise CannotStart(
                CLOSE_UNREADABLE,
                "Checkpoint %s in %s is unreadable: %s. The crawl stops and the checkpoint is left"
                " untouched. Look inside with `scrapy-actor-events inspect %s`; then delete it with"
                " `scrapy-actor-events clear %s`, or set ACTOR_EVENTS_ON_UNREADABLE=fresh to move"
                " it aside and start a new crawl.",
                key, where, exc.reason, key, key,
            ) from None  # fmt: skip
        aside = await checkpointer.set_aside()
        logger.warning(
            "Checkpoint %s in %s is unreadable (%s). ACTOR_EVENTS_ON_UNREADABLE=fresh: its"
            " manifest was copied to %s, its chunks are left in place, and a new crawl starts.",
            key, where, exc.reason, aside,
        )  # fmt: skip
        return None
    except StoreMissing as exc:
        raise CannotStart(
            CLOSE_STORE_UNAVAILABLE, "%s The crawl stops at start, before it writes anything.", exc
        ) from None
    except Exception as exc:
        raise CannotStart(
            CLOSE_STORE_UNAVAILABLE,
            "Could not read checkpoint %s from %s (%s: %s). The crawl stops rather than overwrite"
            " a checkpoint it could not read; fix the store and run again.",
            key, where, type(exc).__name__, exc,
        ) from None  # fmt: skip
    if restored is None:
        logger.info("No checkpoint under %s: starting a new crawl.", key)
        return None
    manifest = restored.manifest
    checkpointer.adopt(manifest)
    if on_read is not None:
        on_read(restored)
    if options.resume == ResumeMode.NEVER:
        logger.info(
            "ACTOR_EVENTS_RESUME=never: starting a new crawl; checkpoint %d of %s will be"
            " replaced.",
            manifest.generation,
            key,
        )
        return None
    if options.resume == ResumeMode.AUTO and manifest.close_reason in FINISHED_REASONS:
        logger.info(
            "The crawl saved under %s finished (%s, %s): starting a new crawl. Set"
            " ACTOR_EVENTS_RESUME=always to continue it instead.",
            key, manifest.close_reason, manifest.created_at,
        )  # fmt: skip
        return None
    return restored


class Restorer:
    """Puts a checkpoint back into a crawl that has just opened."""

    def __init__(
        self,
        stats: StatsCollector,
        crawl_state: CrawlState,
        frontier: Frontier | QueueFrontier | None,
        enqueue: Callable[[Request], bool] | None,
        batch: int,
    ) -> None:
        self.stats = stats
        self.crawl_state = crawl_state
        self.frontier = frontier
        self.enqueue = enqueue
        self.batch = batch
        self._call: CallLaterResult | None = None

    def restore(self, spider: Spider, restored: Restored) -> None:
        """Stats, ``spider.state``, fingerprints and requests: into the scheduler's queues as
        they are stored, or through the scheduler (the first batch now, the rest in slices)."""
        crawl = CrawlState.decode(restored.crawl)
        self.crawl_state.restore(spider, crawl)
        started = time.perf_counter()
        if self.frontier is not None:
            self.frontier.restore(restored)
            # Requests that were in flight are taken from the scheduler once more.
            in_flight = int(crawl.get("in_flight") or 0)
            for key in stats_keys.DEQUEUED:
                self.stats.inc_value(key, -in_flight)
            self._restore_some()
        manifest = restored.manifest
        logger.info(
            "Resuming from checkpoint %d of %s (saved %s by %s, %s): %s requests to restore,"
            " %s seen, %s items so far, start() read %d items (%.2f s).",
            manifest.generation,
            manifest.key,
            manifest.created_at,
            manifest.trigger,
            f"closed: {manifest.close_reason}" if manifest.close_reason else "then killed",
            f"{restored.count:,}",
            f"{restored.seen_count:,}",
            f"{self.stats.get_value(stats_keys.ITEMS, 0):,}",
            self.crawl_state.start_skip,
            time.perf_counter() - started,
        )

    @property
    def pending(self) -> bool:
        return self.frontier is not None and self.frontier.backlog > 0

    def _restore_some(self, first: bool = True) -> None:
        """Re-enqueue restored requests: the first batch at once, so that the crawl starts with
        work, then slices of at most :data:`RESTORE_SLICE_SECONDS` on later reactor turns."""
        self._call = None
        if self.frontier is None or self.enqueue is None or not self.frontier.backlog:
            return
        deadline = None if first else time.perf_counter() + RESTORE_SLICE_SECONDS
        restored = self.frontier.restore_batch(self.enqueue, self.batch, deadline)
        # Re-enqueued requests were counted as enqueued when first scheduled.
        for key in stats_keys.ENQUEUED:
            self.stats.inc_value(key, -restored)
        if self.frontier.backlog:
            self._call = call_later(0, self._restore_some, False)

    def cancel(self) -> None:
        if self._call is not None:
            self._call.cancel()
        self._call = None
