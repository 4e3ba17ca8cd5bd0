"""The Scrapy extension: wires the frontier, the checkpoint writer, the store and the events socket.

It holds no protocol, codec or storage logic of its own; each part lives in its folder
(``checkpoint/``, ``events/``, ``store/``) and this module connects them to Scrapy's signals.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING

from scrapy import signals
from scrapy.exceptions import CloseSpider, DontCloseSpider, NotConfigured
from scrapy.utils.asyncio import sleep
from scrapy.utils.defer import maybe_deferred_to_future

from . import _scrapy_internals as internals
from . import stats_keys
from .checkpoint.crawl_state import CrawlState
from .checkpoint.cut import CrawlCut, requests_in_flight
from .checkpoint.follow import FrontierFollower, explain_what_is_kept
from .checkpoint.options import Trigger
from .checkpoint.resume import CannotStart, Restorer, read_checkpoint
from .checkpoint.sink import DatasetSink, warn_uncommitted
from .checkpoint.timer import PersistTimer
from .checkpoint.writer import Checkpointer, CheckpointResult
from .config import Config
from .dataset import build_dataset
from .download_log import DownloadLog
from .events.engine_hold import EngineHold
from .events.migration import Migration
from .events.reactions import EventReactions
from .events.throttle import OverloadThrottle
from .exit_codes import CLOSE_REASONS, ExitCode
from .shutdown import GracefulStop
from .status import StatusReporter
from .store import build_store

if TYPE_CHECKING:
    from collections.abc import Callable

    from scrapy import Request, Spider
    from scrapy.core.engine import ExecutionEngine
    from scrapy.crawler import Crawler
    from scrapy.statscollectors import StatsCollector
    from twisted.internet.defer import Deferred

    from .checkpoint.frontier import Frontier
    from .checkpoint.queue_frontier import QueueFrontier
    from .dataset.base import Dataset
    from .events.connection import EventsConnection
    from .store.base import KeyValueStore

    Hook = Callable[[Request], None]

logger = logging.getLogger(__name__)


class ActorEventsExtension:
    """Checkpoint the crawl into a key-value store, resume it after a kill, follow the platform's
    events.

    Enable with ``EXTENSIONS = {"scrapy_actor_events.ActorEventsExtension": 100}``.
    """

    def __init__(
        self,
        crawler: Crawler,
        config: Config,
        store: KeyValueStore | None = None,
        dataset: Dataset | None = None,
    ) -> None:
        self.crawler = crawler
        self.config = config
        self.store = store
        self.dataset = dataset
        self.sink: DatasetSink | None = None
        self.checkpointer: Checkpointer | None = None
        self.follower: FrontierFollower | None = None
        self.crawl_state: CrawlState | None = None
        self.restorer: Restorer | None = None
        self.migration: Migration | None = None
        self.reactions: EventReactions | None = None
        self.events: EventsConnection | None = None
        self.throttle: OverloadThrottle | None = None
        self.graceful_stop = GracefulStop(crawler, self._reactor_stopping)
        self.status: StatusReporter | None = None
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
        if config.dataset.enabled:
            crawler.signals.connect(self.item_scraped, signal=signals.item_scraped)

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
        # Built now, so that a store or dataset that cannot work (no token, the wrong reactor)
        # stops the crawl at start rather than leaving it to run without checkpoints or output.
        store = build_store(config.store, crawler)
        dataset = build_dataset(config.dataset, crawler) if config.dataset.enabled else None
        return cls(crawler, config, store, dataset)

    @property
    def frontier(self) -> Frontier | QueueFrontier | None:
        """What follows the crawl's open requests (None: the scheduler is not Scrapy's)."""
        return self.follower.frontier if self.follower is not None else None

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
        self.sink = self._open_sink()
        jobdir = self.crawler.settings.get("JOBDIR")
        owns_frontier = internals.is_memory_scheduler(engine.scheduler) and not jobdir
        self.crawl_state = CrawlState(stats, with_spider_state=not jobdir)
        explain_what_is_kept(engine, jobdir, owns_frontier)
        # Scrapy's own enqueue, for restored requests that go back through the scheduler.
        enqueue = engine.scheduler.enqueue_request if owns_frontier else None  # type: ignore[union-attr]
        if owns_frontier:
            self.follower = FrontierFollower(engine, stats, self._observe)
            self.follower.start(spider, options.compact_fingerprints)
        try:
            on_read = self.sink.adopt if self.sink is not None else warn_uncommitted
            restored = await read_checkpoint(self.checkpointer, options, on_read)
        except CannotStart as exc:
            self.checkpointer.writes_enabled = False
            logger.error(exc.message, *exc.args_for_log)
            if self.config.set_exit_code:
                internals.exit_with_code_after_shutdown(CLOSE_REASONS[exc.reason])
            raise CloseSpider(exc.reason) from None
        if self.follower is not None and options.compact_queue:
            self.follower.use_record_queues()
        frontier = self.frontier
        self.checkpointer.source = CrawlCut(
            spider,
            engine,
            frontier,
            self.crawl_state,
            options.cut_timeout,
            items=self.sink.journal if self.sink is not None else None,
        )
        self.restorer = Restorer(stats, self.crawl_state, frontier, enqueue, options.restore_batch)
        self._report_status(stats)
        if restored is not None:
            self.restorer.restore(spider, restored)
            after_migration = stats.get_value(stats_keys.MIGRATION_UNDER_WAY, 0) == 1
            stats.set_value(stats_keys.MIGRATION_UNDER_WAY, 0)  # this process is the restart
            if self.status is not None:
                migrations = stats.get_value(stats_keys.MIGRATIONS, 0) if after_migration else 0
                self.status.resumed_from(restored.manifest.generation, migrations)
        else:
            self.crawl_state.ensure_spider_state(spider)
        if owns_frontier:
            internals.replace_start(engine, self.crawl_state.track_start)
        if self.sink is not None:
            await self.sink.open()
        await self.checkpointer.collect_garbage()
        self.timer.start()
        self._listen_to_events(engine)
        self.graceful_stop.install()
        # CoreStats sets start_time in its own spider_opened; let it run, then keep the first run's.
        await sleep(0)
        self.crawl_state.after_core_stats_opened()

    def _open_sink(self) -> DatasetSink | None:
        options = self.config.dataset
        if self.dataset is None:
            logger.info("Items go to no dataset: %s.", options.reason)
            return None
        assert self.crawler.stats is not None
        assert self.checkpointer is not None
        logger.info(
            "Items go to %s, committed after each checkpoint: %s.",
            self.dataset.describe(),
            options.reason,
        )
        sink = DatasetSink(
            self.dataset,
            self.crawler.stats,
            self.request_checkpoint,
            buffer_bytes=options.buffer_bytes,
            attempts=self.config.store.api_max_retries + 1,
            min_delay=self.config.store.api_min_retry_delay,
        )
        self.checkpointer.on_landed = sink.saved
        return sink

    def item_scraped(self, item: object, response: object, spider: Spider) -> None:
        if self.sink is not None:
            self.sink.item_scraped(item, response)

    def _observe(self, on_enqueued: Hook | None, on_finished: Hook) -> tuple[Hook | None, Hook]:
        """The frontier's hooks, seen by the item journal and the download log too."""
        if self.sink is not None and self.follower is not None:
            # Items wait under their request until its callback is done, as the frontier does.
            self.sink.journal.tracked = self.follower.tracked
            on_finished = _both(on_finished, self.sink.request_finished)
        if self.download_log is not None:
            return self.download_log.wrap(on_enqueued, on_finished)
        return on_enqueued, on_finished

    def _report_status(self, stats: StatsCollector) -> None:
        """The run's status message, when the crawl runs as an Actor on the platform store."""
        # Not imported for a local store (apify-client takes a tenth of a second to import): a
        # platform store exists only once its module was.
        apify_store = sys.modules.get("scrapy_actor_events.store.apify")
        on_platform_store = apify_store is not None and isinstance(
            self.store, apify_store.ApifyKeyValueStore
        )
        self.status = StatusReporter.build(
            self.config.environment,
            self.config.status,
            on_platform_store=on_platform_store,
            stats=stats,
            pending=self._pending,
        )
        if self.status is not None and self.checkpointer is not None:
            self.checkpointer.on_saved.append(self.status.checkpoint_saved)

    def _pending(self) -> int | None:
        scheduler = self.crawler.engine.scheduler if self.crawler.engine else None
        if scheduler is None or not hasattr(type(scheduler), "__len__"):
            return None  # the SDK's ApifyScheduler keeps its queue on the platform
        frontier = self.frontier
        return len(scheduler) + (frontier.backlog if frontier else 0)  # type: ignore[arg-type]

    def _listen_to_events(self, engine: ExecutionEngine) -> None:
        stats = self.crawler.stats
        assert stats is not None
        hold = EngineHold(engine)
        self.migration = Migration(
            hold,
            self.request_checkpoint,
            in_flight=lambda: self._in_flight(engine),
            stop_timer=self.timer.stop,
            start_timer=self.timer.start,
            default_time_remaining=self.config.migration.default_time_remaining,
            resume_after=self.config.migration.resume_after,
            requests_kept_by=None if self.follower else type(engine.scheduler).__name__,
            called_off=lambda: stats.set_value(stats_keys.MIGRATION_UNDER_WAY, 0),
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
        # Imported only here: a crawl with no socket never loads Autobahn (thousands of objects
        # more for every full garbage collection of the crawl to walk).
        from .events.connection import EventsConnection

        self.events = EventsConnection.listen(self.config.socket, self.reactions)

    def _in_flight(self, engine: ExecutionEngine) -> int:
        follower = self.follower
        if follower is not None:
            return sum(1 for r in internals.in_progress(engine) if follower.tracked(r))
        return requests_in_flight(engine)

    # -- running ------------------------------------------------------------------------------

    def spider_idle(self, spider: Spider) -> None:
        if self.restorer is not None and self.restorer.pending:
            raise DontCloseSpider

    # -- closing ------------------------------------------------------------------------------

    def _reactor_stopping(self) -> Deferred[CheckpointResult] | None:
        """The reactor stops with the spider open (Twisted's own SIGTERM handler, a second signal):
        during a migration, a last checkpoint and exit code 4, as if the spider had closed."""
        if self.events is not None and self.reactions is not None:
            self.events.stop_listening(self.reactions)  # closed with 1000, not dropped
        if self.migration is None or not self.migration.active:
            return None
        if self.config.set_exit_code:
            internals.exit_with_code_after_shutdown(ExitCode.STOPPED_DURING_MIGRATION)
        return self.migration.last_checkpoint()

    async def spider_closed(self, spider: Spider, reason: str) -> None:
        self.graceful_stop.uninstall()
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
        if self.sink is not None:
            await self.sink.flush()
            await self.sink.close()
        if self.status is not None:
            await self.status.close(reason)
        if self.store is not None:
            await self.store.close()
        if self.download_log is not None:
            self.download_log.close(reason)


def _both(
    first: Callable[[Request], None], then: Callable[[Request], None]
) -> Callable[[Request], None]:
    def both(request: Request) -> None:
        first(request)
        then(request)

    return both
