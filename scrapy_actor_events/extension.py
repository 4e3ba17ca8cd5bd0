"""The Scrapy extension: wires the frontier, the checkpoint writer, the store and the events socket.

It holds no protocol, codec or storage logic of its own; each part lives in its folder
(``checkpoint/``, ``events/``, ``store/``) and this module connects them to Scrapy's signals.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from scrapy import signals
from scrapy.exceptions import CloseSpider, DontCloseSpider, NotConfigured
from scrapy.http.request import NO_CALLBACK
from scrapy.utils.asyncio import sleep
from scrapy.utils.defer import maybe_deferred_to_future

from . import _scrapy_internals as internals
from .checkpoint.codec import RequestCodec
from .checkpoint.crawl_state import CrawlState
from .checkpoint.cut import CrawlCut
from .checkpoint.fingerprints import CompactFingerprintSet
from .checkpoint.frontier import Frontier
from .checkpoint.options import Trigger
from .checkpoint.queue_frontier import QueueFrontier, record_placer
from .checkpoint.resume import CannotStart, Restorer, read_checkpoint
from .checkpoint.timer import PersistTimer
from .checkpoint.writer import Checkpointer, CheckpointResult
from .config import Config
from .download_log import DownloadLog
from .events.connection import EventsConnection
from .events.engine_hold import EngineHold
from .events.migration import Migration
from .events.reactions import EventReactions
from .events.throttle import OverloadThrottle
from .exit_codes import CLOSE_REASONS, ExitCode
from .store import build_store

if TYPE_CHECKING:
    from collections.abc import Callable

    from scrapy import Request, Spider
    from scrapy.core.engine import ExecutionEngine
    from scrapy.crawler import Crawler
    from twisted.internet.defer import Deferred

    from .store.base import KeyValueStore

logger = logging.getLogger(__name__)


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
        self.frontier: Frontier | QueueFrontier | None = None
        self._unhook: Callable[[], None] = lambda: None
        self.crawl_state: CrawlState | None = None
        self.restorer: Restorer | None = None
        self.migration: Migration | None = None
        self.reactions: EventReactions | None = None
        self.events: EventsConnection | None = None
        self.throttle: OverloadThrottle | None = None
        self.timer = PersistTimer(config.checkpoint.persist_interval, self.request_checkpoint)
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
        missing = internals.missing_internals()
        if missing:
            import scrapy

            raise NotConfigured(
                f"scrapy-actor-events cannot follow this crawl: Scrapy {scrapy.__version__} lacks"
                f" {', '.join(missing)}, which it relies on (see _scrapy_internals.py). Nothing"
                " will be checkpointed; install a Scrapy version it supports."
            )
        # Built now, so that a store that cannot work (no token, the wrong reactor) stops the
        # crawl at start rather than leaving it to run without checkpoints.
        return cls(crawler, config, build_store(config.store, crawler))

    # -- public: what event handling calls ----------------------------------------------------

    def request_checkpoint(self, trigger: Trigger = Trigger.MANUAL) -> Deferred[CheckpointResult]:
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
            self.store = build_store(self.config.store, self.crawler)
        logger.info(
            "Checkpoints of %r go to %s under key %s", spider.name, self.store.describe(), key
        )
        options = self.config.checkpoint
        self.checkpointer = Checkpointer(
            self.store, key, spider.name, options, stats, store_ref=self.store.ref
        )
        jobdir = self.crawler.settings.get("JOBDIR")
        owns_frontier = internals.is_memory_scheduler(engine.scheduler) and not jobdir
        self.crawl_state = CrawlState(stats, with_spider_state=not jobdir)
        _explain_what_is_kept(engine, jobdir, owns_frontier)
        # Scrapy's own enqueue, for restored requests that go back through the scheduler.
        enqueue = engine.scheduler.enqueue_request if owns_frontier else None  # type: ignore[union-attr]
        if owns_frontier:
            self._follow_frontier(spider, engine)
        try:
            restored = await read_checkpoint(self.checkpointer, options)
        except CannotStart as exc:
            self.checkpointer.writes_enabled = False
            logger.error(exc.message, *exc.args_for_log)
            if self.config.set_exit_code:
                internals.exit_with_code_after_shutdown(CLOSE_REASONS[exc.reason])
            raise CloseSpider(exc.reason) from None
        if owns_frontier and options.compact_queue:
            self._use_record_queues(engine)
        self.checkpointer.source = CrawlCut(
            spider, engine, self.frontier, self.crawl_state, options.cut_timeout
        )
        self.restorer = Restorer(
            stats, self.crawl_state, self.frontier, enqueue, options.restore_batch
        )
        if restored is not None:
            self.restorer.restore(spider, restored)
        else:
            self.crawl_state.ensure_spider_state(spider)
        if owns_frontier:
            internals.replace_start(engine, self.crawl_state.track_start)
        await self.checkpointer.collect_garbage()
        self.timer.start()
        self._listen_to_events(engine)
        # CoreStats sets start_time in its own spider_opened; let it run, then keep the first run's.
        await sleep(0)
        self.crawl_state.after_core_stats_opened()

    def _follow_frontier(self, spider: Spider, engine: ExecutionEngine) -> None:
        """Start following the frontier (queues of Request objects, until the checkpoint is
        read: see :meth:`_use_record_queues`)."""
        assert self.crawler.stats is not None
        scheduler = engine.scheduler
        seen = None
        if self.config.checkpoint.compact_fingerprints:
            seen = internals.replace_seen_fingerprints(scheduler, CompactFingerprintSet)
        seen = seen if seen is not None else internals.seen_fingerprints(scheduler)
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
        self._hook(engine, self.frontier.on_enqueued, self.frontier.on_finished)

    def _use_record_queues(self, engine: ExecutionEngine) -> None:
        """Swap the scheduler's queues for queues of records (:mod:`.checkpoint.queues`) while
        they are empty: after the checkpoint is read, right before it is restored."""
        objects = self.frontier
        assert isinstance(objects, Frontier)
        assert self.crawler.stats is not None
        stats = self.crawler.stats
        frontier = QueueFrontier(objects.codec, stats, objects.seen, objects.fingerprint)
        if objects.open_count or not internals.install_memory_queues(
            engine.scheduler, frontier.queue_class
        ):
            logger.info(
                "Requests were scheduled before the checkpoint was read: the scheduler keeps"
                " Request objects in its queues for this crawl (ACTOR_EVENTS_COMPACT_QUEUE)."
            )
            return
        access = internals.queue_access(engine.scheduler, engine.downloader)
        placer = record_placer(
            access.slots if access else False,
            internals.slot_key_is_scrapys(engine.downloader),
            engine.downloader.get_slot_key,
        )
        frontier.attach(
            access.place if access else None,
            access.target if access else None,
            placer,
            wake=lambda: internals.wake_engine(engine),
        )
        self.frontier = frontier
        self._hook(engine, None, frontier.on_finished)

    def _hook(
        self,
        engine: ExecutionEngine,
        on_enqueued: Callable[[Request], None] | None,
        on_finished: Callable[[Request], None],
    ) -> None:
        if self.download_log is not None:
            on_enqueued, on_finished = self.download_log.wrap(on_enqueued, on_finished)
        self._unhook()
        self._unhook = internals.hook_frontier(engine, on_enqueued, on_finished)

    def _listen_to_events(self, engine: ExecutionEngine) -> None:
        hold = EngineHold(engine)
        self.migration = Migration(
            hold,
            self.request_checkpoint,
            in_flight=lambda: self._in_flight(engine),
            stop_timer=self.timer.stop,
            start_timer=self.timer.start,
            default_time_remaining=self.config.migration.default_time_remaining,
            resume_after=self.config.migration.resume_after,
        )
        if self.config.throttle.enabled:
            self.throttle = OverloadThrottle(self.crawler, hold, self.config.throttle)
        self.reactions = EventReactions(
            self.crawler, self.request_checkpoint, self.migration, self.throttle
        )
        if not self.config.socket.url:
            logger.debug(
                "No ACTOR_EVENTS_WEBSOCKET_URL: no platform events; checkpoints every %s s.",
                self.config.checkpoint.persist_interval,
            )
            return
        self.events = EventsConnection.listen(self.config.socket, self.reactions)

    def _in_flight(self, engine: ExecutionEngine) -> int:
        frontier = self.frontier
        if frontier is not None:
            return sum(1 for r in internals.in_progress(engine) if frontier.tracked(r))
        return sum(1 for r in internals.in_progress(engine) if r.callback is not NO_CALLBACK)

    # -- running ------------------------------------------------------------------------------

    def spider_idle(self, spider: Spider) -> None:
        if self.restorer is not None and self.restorer.pending:
            raise DontCloseSpider

    # -- closing ------------------------------------------------------------------------------

    async def spider_closed(self, spider: Spider, reason: str) -> None:
        self.timer.stop()
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
                ExitCode.STOPPED_DURING_MIGRATION,
            )
            if self.config.set_exit_code:
                internals.exit_with_code_after_shutdown(ExitCode.STOPPED_DURING_MIGRATION)
        if self.checkpointer is None or self.crawl_state is None:
            return
        # CoreStats sets elapsed_time_seconds for this process in its own spider_closed.
        await sleep(0)
        self.crawl_state.after_core_stats_closed()
        if self.checkpointer.writes_enabled:
            closing = self.checkpointer.request(Trigger.CLOSE, close_reason=reason)
            await maybe_deferred_to_future(closing)
        if self.store is not None:
            await self.store.close()
        if self.download_log is not None:
            self.download_log.close(reason)


def _explain_what_is_kept(engine: ExecutionEngine, jobdir: str | None, owns: bool) -> None:
    if jobdir:
        logger.warning(
            "JOBDIR is set: Scrapy's JOBDIR keeps the request queue, the seen requests and"
            " spider.state, and loses pending requests on a kill (it writes them on a clean"
            " close only). Checkpoints hold the stats only. Unset JOBDIR to checkpoint the"
            " whole frontier with scrapy-actor-events."
        )
    elif not owns:
        logger.info(
            "The scheduler %s is not Scrapy's: it keeps the request queue and the seen"
            " requests itself. Checkpoints hold the stats and spider.state only.",
            type(engine.scheduler).__name__,
        )
