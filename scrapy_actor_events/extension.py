"""The Scrapy extension: wires the frontier, the crawl state, the checkpointer and the store."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, NoReturn

from scrapy import signals
from scrapy.exceptions import CloseSpider, DontCloseSpider, NotConfigured
from scrapy.utils.asyncio import create_looping_call
from scrapy.utils.defer import maybe_deferred_to_future

from . import _scrapy_internals as internals
from ._async import call_later, sleep
from .capture import CrawlCut
from .checkpointer import Checkpointer, CheckpointResult, Restored
from .codec import RequestCodec
from .config import Config
from .crawl_state import CrawlState
from .frontier import Frontier
from .snapshot import UnreadableCheckpoint
from .store import build_store

if TYPE_CHECKING:
    from scrapy import Spider
    from scrapy.crawler import Crawler
    from twisted.internet.defer import Deferred

    from .store.base import KeyValueStore

logger = logging.getLogger(__name__)

CLOSE_UNREADABLE = "actor_events_unreadable_checkpoint"
CLOSE_STORE_UNAVAILABLE = "actor_events_store_unavailable"
#: Exit code of ``scrapy crawl`` when the crawl could not start from its checkpoint.
EXIT_CHECKPOINT_ERROR = 3
#: Close reasons after which the next run starts fresh (with ACTOR_EVENTS_RESUME=auto).
FINISHED_REASONS = frozenset({"finished"})


class ActorEventsExtension:
    """Checkpoint the crawl into a key-value store and resume it after a kill.

    Enable with ``EXTENSIONS = {"scrapy_actor_events.ActorEventsExtension": 100}``.
    """

    def __init__(
        self, crawler: Crawler, config: Config, store: KeyValueStore | None = None
    ) -> None:
        self.crawler = crawler
        self.config = config
        self.store = store
        self.checkpointer: Checkpointer | None = None
        self.frontier: Frontier | None = None
        self.crawl_state: CrawlState | None = None
        self.spider: Spider | None = None
        self._timer: Any = None
        self._enqueue: Any = None
        self._restore_call: Any = None
        crawler.signals.connect(self.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)
        crawler.signals.connect(self.spider_idle, signal=signals.spider_idle)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ActorEventsExtension:
        config = Config.from_settings(crawler.settings)
        if not config.enabled:
            raise NotConfigured(
                "scrapy-actor-events is disabled. Set ACTOR_EVENTS_ENABLED to True to enable it."
            )
        if not crawler.settings.getbool("TWISTED_REACTOR_ENABLED", True):
            raise NotConfigured(
                "scrapy-actor-events needs Twisted's reactor (its timers and the events socket run"
                " on it), and TWISTED_REACTOR_ENABLED is False: nothing will be checkpointed."
            )
        # Built now, so that a store that cannot work (no token, the wrong reactor) stops the
        # crawl at start rather than leaving it to run without checkpoints.
        return cls(crawler, config, build_store(config, crawler))

    # -- public: what event handling calls ----------------------------------------------------

    def request_checkpoint(self, trigger: str = "manual") -> Deferred[CheckpointResult]:
        """Take a checkpoint as soon as possible; concurrent calls share one write.

        The returned Deferred fires with a :class:`CheckpointResult` once a checkpoint that
        started after this call has been written (or has failed, leaving the previous one valid).
        """
        from twisted.internet.defer import succeed

        if self.checkpointer is None:
            return succeed(CheckpointResult(saved=False, error="the spider is not open"))
        return self.checkpointer.request(trigger)

    # -- signals ------------------------------------------------------------------------------

    async def spider_opened(self, spider: Spider) -> None:
        self.spider = spider
        engine = self.crawler.engine
        assert engine is not None
        assert self.crawler.stats is not None
        stats = self.crawler.stats
        key = self.config.key_for(spider.name)
        if self.store is None:
            self.store = build_store(self.config, self.crawler)
        logger.info(
            "Checkpoints of %r go to %s under key %s", spider.name, self.store.describe(), key
        )
        self.checkpointer = Checkpointer(self.store, key, spider.name, self.config, stats)
        scheduler = engine.scheduler
        jobdir = self.crawler.settings.get("JOBDIR")
        owns_frontier = internals.is_memory_scheduler(scheduler) and not jobdir
        self.crawl_state = CrawlState(stats, with_spider_state=not jobdir)
        if jobdir:
            logger.warning(
                "JOBDIR is set: Scrapy's JOBDIR keeps the request queue, the seen requests and"
                " spider.state, and loses pending requests on a kill (it writes them on a clean"
                " close only). Checkpoints hold the stats only. Unset JOBDIR to checkpoint the"
                " whole frontier with scrapy-actor-events."
            )
        elif not owns_frontier:
            logger.info(
                "The scheduler %s is not Scrapy's: it keeps the request queue and the seen"
                " requests itself. Checkpoints hold the stats and spider.state only.",
                type(scheduler).__name__,
            )
        if owns_frontier:
            seen = internals.seen_fingerprints(scheduler)
            if seen is None:
                logger.warning(
                    "The dupefilter %s is not an RFPDupeFilter: seen requests are not"
                    " checkpointed, so a resumed crawl may fetch pages again.",
                    type(getattr(scheduler, "df", None)).__name__,
                )
            self.frontier = Frontier(
                RequestCodec(spider),
                stats,
                in_progress=lambda: internals.in_progress(engine),
                seen=seen,
                fingerprint=internals.fingerprint_function(scheduler) if seen is not None else None,
            )
            self._enqueue = internals.hook_frontier(
                engine, self.frontier.on_enqueued, self.frontier.on_finished
            )
        self.checkpointer.source = CrawlCut(
            spider, engine, self.frontier, self.crawl_state, self.config.cut_timeout
        )

        restored = await self._read_checkpoint(self.checkpointer)
        if restored is not None:
            self._restore(spider, restored)
        else:
            self.crawl_state.ensure_spider_state(spider)
        if owns_frontier:
            internals.replace_start(engine, self.crawl_state.track_start)
        await self._collect_garbage()
        if self.config.persist_interval > 0:
            self._timer = create_looping_call(self._on_timer)
            self._timer.start(self.config.persist_interval, now=False)
        # CoreStats sets start_time in its own spider_opened; let it run, then keep the first run's.
        await sleep(0)
        self.crawl_state.after_core_stats_opened()

    async def _read_checkpoint(self, checkpointer: Checkpointer) -> Restored | None:
        key, where = checkpointer.key, checkpointer.store.describe()
        try:
            restored = await checkpointer.read()
        except UnreadableCheckpoint as exc:
            if self.config.on_unreadable == "fresh":
                aside = await checkpointer.set_aside()
                logger.warning(
                    "Checkpoint %s in %s is unreadable (%s). ACTOR_EVENTS_ON_UNREADABLE=fresh:"
                    " its manifest was copied to %s, its chunks are left in place, and a new"
                    " crawl starts.",
                    key, where, exc.reason, aside,
                )  # fmt: skip
                return None
            self._stop(
                CLOSE_UNREADABLE,
                "Checkpoint %s in %s is unreadable: %s. The crawl stops and the checkpoint is left"
                " untouched. Look inside with `scrapy-actor-events inspect %s`; then delete it with"
                " `scrapy-actor-events clear %s`, or set ACTOR_EVENTS_ON_UNREADABLE=fresh to move"
                " it aside and start a new crawl.",
                key, where, exc.reason, key, key,
            )  # fmt: skip
        except Exception as exc:
            self._stop(
                CLOSE_STORE_UNAVAILABLE,
                "Could not read checkpoint %s from %s (%s: %s). The crawl stops rather than"
                " overwrite a checkpoint it could not read; fix the store and run again.",
                key, where, type(exc).__name__, exc,
            )  # fmt: skip
        if restored is None:
            logger.info("No checkpoint under %s: starting a new crawl.", key)
            return None
        manifest = restored.manifest
        checkpointer.adopt(manifest)
        if self.config.resume == "never":
            logger.info(
                "ACTOR_EVENTS_RESUME=never: starting a new crawl; checkpoint %d of %s will be"
                " replaced.", manifest.generation, key,
            )  # fmt: skip
            return None
        if self.config.resume == "auto" and manifest.close_reason in FINISHED_REASONS:
            logger.info(
                "The crawl saved under %s finished (%s, %s): starting a new crawl. Set"
                " ACTOR_EVENTS_RESUME=always to continue it instead.",
                key, manifest.close_reason, manifest.created_at,
            )  # fmt: skip
            return None
        return restored

    def _stop(self, reason: str, message: str, *args: Any) -> NoReturn:
        assert self.checkpointer is not None
        self.checkpointer.writes_enabled = False
        logger.error(message, *args)
        if self.config.set_exit_code:
            internals.exit_with_code_after_shutdown(EXIT_CHECKPOINT_ERROR)
        raise CloseSpider(reason)

    def _restore(self, spider: Spider, restored: Restored) -> None:
        assert self.crawl_state is not None
        assert self.crawler.stats is not None
        manifest = restored.manifest
        crawl = CrawlState.decode(restored.crawl)
        self.crawl_state.restore(spider, crawl)
        if self.frontier is not None:
            self.frontier.merge_fingerprints(restored.fingerprints)
            self.frontier.load(restored.seqs, restored.records, restored.next_seq)
            # Requests that were in flight are taken from the scheduler once more.
            in_flight = int(crawl.get("in_flight") or 0)
            for key in ("scheduler/dequeued", "scheduler/dequeued/memory"):
                self.crawler.stats.inc_value(key, -in_flight)
            self._restore_some()
        logger.info(
            "Resuming from checkpoint %d of %s (saved %s by %s, %s): %s requests to restore,"
            " %s seen, %s items so far, start() read %d items.",
            manifest.generation,
            manifest.key,
            manifest.created_at,
            manifest.trigger,
            f"closed: {manifest.close_reason}" if manifest.close_reason else "then killed",
            f"{len(restored.seqs):,}",
            f"{len(restored.fingerprints):,}",
            f"{self.crawler.stats.get_value('item_scraped_count', 0):,}",
            self.crawl_state.start_skip,
        )

    def _restore_some(self) -> None:
        """Re-enqueue one batch of restored requests; the rest follow on later reactor turns."""
        self._restore_call = None
        frontier = self.frontier
        if frontier is None or not frontier.backlog or self.crawler.engine is None:
            return
        restored = frontier.restore_batch(self._enqueue, self.config.restore_batch)
        # Re-enqueued requests were counted as enqueued when first scheduled.
        assert self.crawler.stats is not None
        for key in ("scheduler/enqueued", "scheduler/enqueued/memory"):
            self.crawler.stats.inc_value(key, -restored)
        if frontier.backlog:
            self._restore_call = call_later(0, self._restore_some)

    def spider_idle(self, spider: Spider) -> None:
        if self.frontier is not None and self.frontier.backlog:
            raise DontCloseSpider

    async def _collect_garbage(self) -> None:
        if self.checkpointer is None or not self.checkpointer.writes_enabled:
            return
        try:
            removed = await self.checkpointer.collect_garbage()
        except Exception as exc:
            logger.warning("Could not clean up old chunks of %s: %s", self.checkpointer.key, exc)
            return
        if removed:
            logger.debug("Removed %d chunk records no checkpoint points at", removed)

    def _on_timer(self) -> None:
        self.request_checkpoint("timer")

    async def spider_closed(self, spider: Spider, reason: str) -> None:
        if self._timer is not None and self._timer.running:
            self._timer.stop()
        if self._restore_call is not None and self._restore_call.active():
            self._restore_call.cancel()
        if self.checkpointer is None or self.crawl_state is None:
            return
        # CoreStats sets elapsed_time_seconds for this process in its own spider_closed.
        await sleep(0)
        self.crawl_state.after_core_stats_closed()
        if self.checkpointer.writes_enabled:
            await maybe_deferred_to_future(self.checkpointer.request("close", close_reason=reason))
        if self.store is not None:
            await self.store.close()
