"""What the crawl does on each event from the platform.

========================  ==================================================================
``persistState``          a checkpoint (the platform's, or the local timer's)
``migrating``             the migration flush (:mod:`.migration`)
``aborting``              a checkpoint, then the spider closes with reason ``aborted``; the
                          process exits 0 and the checkpoint stays for a resurrected run
``cpuInfo``/``systemInfo``  ``isCpuOverloaded`` goes to the overload throttle
========================  ==================================================================

Every event is counted in ``actor_events/events/<name>``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Protocol

from scrapy.utils.defer import deferred_from_coro, maybe_deferred_to_future

from .. import stats_keys
from ..checkpoint.options import Trigger
from ..exit_codes import CLOSE_ABORTED
from .messages import ABORTING, CPU_INFO, KNOWN_EVENTS, MIGRATING, PERSIST_STATE, SYSTEM_INFO

if TYPE_CHECKING:
    from collections.abc import Callable

    from scrapy.crawler import Crawler
    from twisted.internet.defer import Deferred

    from ..checkpoint.writer import CheckpointResult
    from .messages import ActorEvent
    from .migration import Migration

logger = logging.getLogger(__name__)


class CpuListener(Protocol):
    """What receives the platform's CPU overload reports (the overload throttle)."""

    def cpu_sample(self, overloaded: bool) -> None: ...


class EventReactions:
    """Turns platform events into checkpoints, a migration flush, an abort, or throttling."""

    def __init__(
        self,
        crawler: Crawler,
        checkpoint: Callable[[Trigger], Deferred[CheckpointResult]],
        migration: Migration,
        cpu: CpuListener | None = None,
    ) -> None:
        self.crawler = crawler
        self.checkpoint = checkpoint
        self.migration = migration
        self.cpu = cpu
        self.aborting = False

    def __call__(self, event: ActorEvent) -> None:
        stats = self.crawler.stats
        assert stats is not None
        name = event.name if event.name in KNOWN_EVENTS else "unknown"
        stats.inc_value(stats_keys.event_key(name))
        if event.name == PERSIST_STATE:
            if not self.aborting:
                self.checkpoint(Trigger.PERSIST_STATE)
        elif event.name == MIGRATING:
            if not self.aborting:
                if not self.migration.active:
                    stats.inc_value(stats_keys.MIGRATIONS)  # one per migration, not per event
                    stats.set_value(stats_keys.MIGRATION_UNDER_WAY, 1)
                self.migration.begin(event.time_remaining)
        elif event.name == ABORTING:
            self.abort()
        elif event.name in (CPU_INFO, SYSTEM_INFO):
            overloaded = event.is_cpu_overloaded
            if overloaded is None:
                return
            if overloaded:
                stats.inc_value(stats_keys.CPU_OVERLOADED_SAMPLES)
            if self.cpu is not None:
                self.cpu.cpu_sample(overloaded)

    def abort(self) -> None:
        if self.aborting:
            logger.debug("Ignored a repeated aborting event")
            return
        self.aborting = True
        self.migration.end()
        logger.warning(
            "The platform asked this run to abort: checkpointing, then closing the spider"
            " (reason %r). The checkpoint stays, so a resurrected run continues.",
            CLOSE_ABORTED,
        )
        deferred_from_coro(self._abort())

    async def _abort(self) -> None:
        await maybe_deferred_to_future(self.checkpoint(Trigger.ABORTING))
        engine = self.crawler.engine
        if engine is not None and engine.spider is not None:
            await engine.close_spider_async(reason=CLOSE_ABORTED)
