"""The Scrapy extension: wires the frontier, the checkpointer, the store and the events socket."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from scrapy import signals
from scrapy.exceptions import CloseSpider, DontCloseSpider, NotConfigured
from scrapy.http.request import NO_CALLBACK
from scrapy.utils.asyncio import create_looping_call
from scrapy.utils.defer import maybe_deferred_to_future

from . import _scrapy_internals as internals
from ._async import sleep
from .capture import CrawlCut
from .checkpointer import Checkpointer, CheckpointResult
from .codec import RequestCodec
from .config import Config
from .crawl_state import CrawlState
from .download_log import DownloadLog
from .engine_hold import EngineHold
from .events_client import EventsConnection, SocketOptions
from .frontier import Frontier
from .migration import EXIT_STOPPED_DURING_MIGRATION, Migration
from .reactions import EventReactions
from .resume import CannotStart, Restorer, read_checkpoint
from .store import build_store
from .throttle import OverloadThrottle

if TYPE_CHECKING:
    from collections.abc import Callable

    from scrapy import Request, Spider
    from scrapy.core.engine import ExecutionEngine
    from scrapy.crawler import Crawler
    from twisted.internet.defer import Deferred

    from .store.base import KeyValueStore

logger = logging.getLogger(__name__)

#: Exit code of ``scrapy crawl`` when the crawl could not start from its checkpoint.
EXIT_CHECKPOINT_ERROR = 3


class ActorEventsExtension:
    """Checkpoint the crawl into a key-value store, resume it after a kill, follow the platform's
    events.

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
        self.restorer: Restorer | None = None
        self.migration: Migration | None = None
        self.reactions: EventReactions | None = None
        self.events: EventsConnection | None = None
        self.throttle: OverloadThrottle | None = None
        self._timer: Any = None
        self.download_log: DownloadLog | None = None
        if config.download_log:
            self.download_log = DownloadLog(config.download_log)
            crawler.signals.connect(
                self.download_log.response_received, signal=signals.response_received
            )
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

    # -- opening ------------------------------------------------------------------------------

    async def spider_opened(self, spider: Spider) -> None:
        engine = self.crawler.engine
        stats = self.crawler.stats
        assert engine is not None
        assert stats is not None
        key = self.config.key_for(spider.name)
        if self.download_log is not None:
            self.download_log.open(spider)
        if self.store is None:
            self.store = build_store(self.config, self.crawler)
        logger.info(
            "Checkpoints of %r go to %s under key %s", spider.name, self.store.describe(), key
        )
        self.checkpointer = Checkpointer(
            self.store, key, spider.name, self.config, stats, store_ref=self.store.ref
        )
        jobdir = self.crawler.settings.get("JOBDIR")
        owns_frontier = internals.is_memory_scheduler(engine.scheduler) and not jobdir
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
                type(engine.scheduler).__name__,
            )
        enqueue = self._follow_frontier(spider, engine) if owns_frontier else None
        self.checkpointer.source = CrawlCut(
            spider, engine, self.frontier, self.crawl_state, self.config.cut_timeout
        )
        self.restorer = Restorer(
            stats, self.crawl_state, self.frontier, enqueue, self.config.restore_batch
        )
        try:
            restored = await read_checkpoint(self.checkpointer, self.config)
        except CannotStart as exc:
            self.checkpointer.writes_enabled = False
            logger.error(exc.message, *exc.args_for_log)
            if self.config.set_exit_code:
                internals.exit_with_code_after_shutdown(EXIT_CHECKPOINT_ERROR)
            raise CloseSpider(exc.reason) from None
        if restored is not None:
            self.restorer.restore(spider, restored)
        else:
            self.crawl_state.ensure_spider_state(spider)
        if owns_frontier:
            internals.replace_start(engine, self.crawl_state.track_start)
        await self._collect_garbage()
        self._start_timer()
        self._listen_to_events(engine)
        # CoreStats sets start_time in its own spider_opened; let it run, then keep the first run's.
        await sleep(0)
        self.crawl_state.after_core_stats_opened()

    def _follow_frontier(self, spider: Spider, engine: ExecutionEngine) -> Any:
        """Start following the frontier; returns the scheduler's enqueue for restored requests."""
        assert self.crawler.stats is not None
        scheduler = engine.scheduler
        seen = internals.seen_fingerprints(scheduler)
        if seen is None:
            logger.warning(
                "The dupefilter %s is not an RFPDupeFilter: seen requests are not checkpointed,"
                " so a resumed crawl may fetch pages again.",
                type(getattr(scheduler, "df", None)).__name__,
            )
        self.frontier = Frontier(
            RequestCodec(spider),
            self.crawler.stats,
            in_progress=lambda: internals.in_progress(engine),
            seen=seen,
            fingerprint=internals.fingerprint_function(scheduler) if seen is not None else None,
        )
        on_enqueued: Callable[[Request], None] = self.frontier.on_enqueued
        on_finished: Callable[[Request], None] = self.frontier.on_finished
        if self.download_log is not None:
            on_enqueued, on_finished = self.download_log.wrap(on_enqueued, on_finished)
        return internals.hook_frontier(engine, on_enqueued, on_finished)

    def _listen_to_events(self, engine: ExecutionEngine) -> None:
        hold = EngineHold(engine)
        self.migration = Migration(
            hold,
            self.request_checkpoint,
            in_flight=lambda: self._in_flight(engine),
            stop_timer=self._stop_timer,
            start_timer=self._start_timer,
            default_time_remaining=self.config.migration_default_seconds,
            resume_after=self.config.migration_resume_after,
        )
        if self.config.throttle_enabled:
            self.throttle = OverloadThrottle(self.crawler, hold, self.config.throttle)
        self.reactions = EventReactions(
            self.crawler, self.request_checkpoint, self.migration, self.throttle
        )
        url = self.config.websocket_url
        if not url:
            logger.debug(
                "No ACTOR_EVENTS_WEBSOCKET_URL: no platform events; checkpoints every %s s.",
                self.config.persist_interval,
            )
            return
        options = SocketOptions(
            url=url,
            ca_file=self.config.ca_file,
            ping_interval=self.config.ping_interval,
            ping_timeout=self.config.ping_timeout,
            initial_delay=self.config.reconnect_initial_delay,
            max_delay=self.config.reconnect_max_delay,
        )
        self.events = EventsConnection.listen(options, self.reactions)

    def _in_flight(self, engine: ExecutionEngine) -> int:
        frontier = self.frontier
        if frontier is not None:
            return sum(1 for r in internals.in_progress(engine) if frontier.tracked(r))
        return sum(1 for r in internals.in_progress(engine) if r.callback is not NO_CALLBACK)

    async def _collect_garbage(self) -> None:
        assert self.checkpointer is not None
        try:
            removed = await self.checkpointer.collect_garbage()
        except Exception as exc:
            logger.warning("Could not clean up old chunks of %s: %s", self.checkpointer.key, exc)
            return
        if removed:
            logger.debug("Removed %d chunk records no checkpoint points at", removed)

    # -- running ------------------------------------------------------------------------------

    def _start_timer(self) -> None:
        if self.config.persist_interval > 0 and (self._timer is None or not self._timer.running):
            self._timer = create_looping_call(self._on_timer)
            self._timer.start(self.config.persist_interval, now=False)

    def _on_timer(self) -> None:
        # The looping call must not get the Deferred: it would stop (Scrapy's asyncio variant).
        self.request_checkpoint("timer")

    def _stop_timer(self) -> None:
        if self._timer is not None and self._timer.running:
            self._timer.stop()

    def spider_idle(self, spider: Spider) -> None:
        if self.restorer is not None and self.restorer.pending:
            raise DontCloseSpider

    # -- closing ------------------------------------------------------------------------------

    async def spider_closed(self, spider: Spider, reason: str) -> None:
        self._stop_timer()
        if self.restorer is not None:
            self.restorer.cancel()
        if self.events is not None and self.reactions is not None:
            self.events.stop_listening(self.reactions)
        if self.throttle is not None:
            self.throttle.close()
        if self.migration is not None and self.migration.active:
            self.migration.end()
            logger.warning(
                "The spider closed (%s) during a migration: exiting with code %d so that the"
                " platform restarts the run; the next run resumes from the checkpoint.",
                reason,
                EXIT_STOPPED_DURING_MIGRATION,
            )
            if self.config.set_exit_code:
                internals.exit_with_code_after_shutdown(EXIT_STOPPED_DURING_MIGRATION)
        if self.checkpointer is None or self.crawl_state is None:
            return
        # CoreStats sets elapsed_time_seconds for this process in its own spider_closed.
        await sleep(0)
        self.crawl_state.after_core_stats_closed()
        if self.checkpointer.writes_enabled:
            await maybe_deferred_to_future(self.checkpointer.request("close", close_reason=reason))
        if self.store is not None:
            await self.store.close()
        if self.download_log is not None:
            self.download_log.close(reason)
