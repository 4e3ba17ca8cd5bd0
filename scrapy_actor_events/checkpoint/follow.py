"""Following the frontier of a crawl whose scheduler is Scrapy's own: the hooks, and the queues.

Until the checkpoint is read, the scheduler's queues hold ``Request`` objects and a
:class:`~.frontier.Frontier` follows them. Right after (while the queues are still empty), with
``ACTOR_EVENTS_COMPACT_QUEUE`` on, the queues are swapped for queues of records
(:mod:`.queues`) and a :class:`~.queue_frontier.QueueFrontier` follows those instead. Whoever else
must see requests enter and leave the frontier (the download log, the item journal) is given
through ``observe``, which wraps the two hooks.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from .. import _scrapy_internals as internals
from .codec import RequestCodec
from .fingerprints import CompactFingerprintSet
from .frontier import Frontier
from .queue_frontier import QueueFrontier, record_placer

if TYPE_CHECKING:
    from collections.abc import Callable

    from scrapy import Request, Spider
    from scrapy.core.engine import ExecutionEngine
    from scrapy.statscollectors import StatsCollector

    Hook = Callable[[Request], None]
    Observe = Callable[[Hook | None, Hook], tuple[Hook | None, Hook]]

logger = logging.getLogger(__name__)


class FrontierFollower:
    """Keeps the frontier of one crawl hooked to the scheduler and the engine."""

    def __init__(self, engine: ExecutionEngine, stats: StatsCollector, observe: Observe) -> None:
        self.engine = engine
        self.stats = stats
        self.observe = observe
        self.frontier: Frontier | QueueFrontier | None = None
        self._unhook: Callable[[], None] = lambda: None

    def start(self, spider: Spider, compact_fingerprints: bool) -> Frontier:
        """Follow the queues of ``Request`` objects, from before the checkpoint is read."""
        scheduler = self.engine.scheduler
        seen = None
        if compact_fingerprints:
            seen = internals.replace_seen_fingerprints(scheduler, CompactFingerprintSet)
        seen = seen if seen is not None else internals.seen_fingerprints(scheduler)
        if seen is None:
            logger.warning(
                "The dupefilter %s is not an RFPDupeFilter: seen requests are not checkpointed,"
                " so a resumed crawl may fetch pages again.",
                type(getattr(scheduler, "df", None)).__name__,
            )
        engine = self.engine
        frontier = Frontier(
            RequestCodec(spider),
            self.stats,
            in_progress=lambda: internals.in_progress(engine),
            seen=seen,
            fingerprint=internals.fingerprint_function(scheduler) if seen is not None else None,
        )
        self.frontier = frontier
        self._hook(frontier.on_enqueued, frontier.on_finished)
        return frontier

    def use_record_queues(self) -> None:
        """Swap the scheduler's queues for queues of records while they are empty: after the
        checkpoint is read, right before it is restored."""
        objects = self.frontier
        assert isinstance(objects, Frontier)
        engine = self.engine
        frontier = QueueFrontier(objects.codec, self.stats, objects.seen, objects.fingerprint)
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
        self._hook(None, frontier.on_finished)

    def tracked(self, request: Request) -> bool:
        """Whether ``request`` is one of the frontier's open requests (encoded, not finished)."""
        return self.frontier is not None and self.frontier.tracked(request)

    def _hook(self, on_enqueued: Hook | None, on_finished: Hook) -> None:
        on_enqueued, on_finished = self.observe(on_enqueued, on_finished)
        self._unhook()
        self._unhook = internals.hook_frontier(self.engine, on_enqueued, on_finished)


def explain_what_is_kept(engine: ExecutionEngine, jobdir: str | None, owns: bool) -> None:
    """Say once, at start, what checkpoints hold when the frontier is not the package's."""
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
