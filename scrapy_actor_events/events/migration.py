"""What a crawl does when the platform announces a migration.

The platform sends ``migrating`` with the seconds left before it kills the process and starts the
run again on another server. From that moment:

1. no new request leaves the scheduler (the engine is paused) and the local persist timer stops;
2. a checkpoint is taken at once, then again each time in-flight requests have finished, and a
   final time when none is left or just before the time runs out;
3. the process stays alive and waits for the kill: exiting 0 would end the run as SUCCEEDED and
   the platform would not restart it. If the spider closes anyway (a SIGTERM, a CloseSpider), the
   process exits with ``ExitCode.STOPPED_DURING_MIGRATION`` so that the platform restarts it;
4. if no kill comes ``ACTOR_EVENTS_MIGRATION_RESUME_AFTER`` seconds after the deadline, the
   migration was called off: the crawl goes on where it was (the checkpoint stays valid).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from scrapy.utils.asyncio import call_later, sleep
from scrapy.utils.defer import deferred_from_coro, maybe_deferred_to_future

from ..checkpoint.options import Trigger

if TYPE_CHECKING:
    from collections.abc import Callable

    from scrapy.utils.asyncio import CallLaterResult
    from twisted.internet.defer import Deferred

    from ..checkpoint.writer import CheckpointResult
    from .engine_hold import EngineHold

logger = logging.getLogger(__name__)

HOLD_REASON = "migration"
_POLL_SECONDS = 0.05
_MIN_MARGIN_SECONDS = 0.3


@dataclass(frozen=True)
class MigrationOptions:
    #: Seconds to the kill when ``migrating`` does not say (``timeRemainingSecs``).
    default_time_remaining: float = 5.0
    #: Seconds after the deadline with no kill before the migration counts as called off (0:
    #: wait forever).
    resume_after: float = 120.0


class Migration:
    """Flushes the frontier for a migration and then holds the crawl until the kill."""

    def __init__(
        self,
        hold: EngineHold,
        checkpoint: Callable[[Trigger], Deferred[CheckpointResult]],
        in_flight: Callable[[], int],
        stop_timer: Callable[[], None],
        start_timer: Callable[[], None],
        default_time_remaining: float,
        resume_after: float,
        requests_kept_by: str | None = None,
        called_off: Callable[[], None] = lambda: None,
    ) -> None:
        self.hold = hold
        self.checkpoint = checkpoint
        self.in_flight = in_flight
        self.stop_timer = stop_timer
        self.start_timer = start_timer
        self.default_time_remaining = default_time_remaining
        self.resume_after = resume_after
        #: The scheduler that keeps the requests when the frontier is not checkpointed.
        self.requests_kept_by = requests_kept_by
        self.called_off = called_off
        self.active = False
        self.deadline = 0.0
        self.final: CheckpointResult | None = None
        self._resume_call: CallLaterResult | None = None

    def begin(self, time_remaining: float | None) -> None:
        if self.active:
            logger.debug("Ignored a repeated migrating event: the migration flush is under way")
            return
        seconds = self.default_time_remaining if time_remaining is None else time_remaining
        self.active = True
        self.final = None
        self.deadline = time.monotonic() + seconds
        self.hold.hold(HOLD_REASON)
        self.stop_timer()
        logger.warning(
            "The platform is migrating this run in %.1f s%s: new requests are held, %d in flight"
            " finish, and %s.",
            seconds,
            " (the event gave no usable time; ACTOR_EVENTS_MIGRATION_DEFAULT_SECONDS)"
            if time_remaining is None
            else "",
            self.in_flight(),
            "the frontier is checkpointed"
            if self.requests_kept_by is None
            else "the stats and spider.state are checkpointed"
            f" ({self.requests_kept_by} keeps the requests)",
        )
        deferred_from_coro(self._flush())

    async def _checkpoint(self) -> CheckpointResult:
        return await maybe_deferred_to_future(self.checkpoint(Trigger.MIGRATING))

    async def _flush(self) -> None:
        result = await self._checkpoint()
        slowest = result.duration_ms / 1000
        last_in_flight = result.in_flight if result.saved else self.in_flight()
        why = "nothing was in flight"
        while self.active and not (result.saved and result.in_flight == 0):
            in_flight = self.in_flight()
            out_of_time = time.monotonic() >= self.deadline - max(
                _MIN_MARGIN_SECONDS, 1.5 * slowest
            )
            if in_flight and not out_of_time and in_flight >= last_in_flight:
                await sleep(_POLL_SECONDS)
                continue
            # Some in-flight requests finished (or the time is up): save what they added.
            result = await self._checkpoint()
            slowest = max(slowest, result.duration_ms / 1000)
            last_in_flight = result.in_flight if result.saved else in_flight
            why = "the time ran out" if out_of_time else "the in-flight requests finished"
            if out_of_time:
                break
            if not result.saved:
                await sleep(_POLL_SECONDS * 4)  # a failing store: try again, but do not spin
        if not self.active:
            return
        self.final = result
        left = self.deadline - time.monotonic()
        if result.saved and self.requests_kept_by is not None:
            logger.info(
                "Migration checkpoint complete (%s): stats and spider.state saved with %s"
                " requests in flight, %.1f s before the deadline; %s keeps the requests. Holding"
                " the crawl until the platform stops the process.",
                why, f"{result.in_flight:,}", left, self.requests_kept_by,
            )  # fmt: skip
        elif result.saved:
            logger.info(
                "Migration checkpoint complete (%s): %s pending, %s in flight, %.1f s before the"
                " deadline. Holding the crawl until the platform stops the process.",
                why, f"{result.pending:,}", f"{result.in_flight:,}", left,
            )  # fmt: skip
        else:
            logger.error(
                "The last migration checkpoint failed (%s); the previous checkpoint is what the"
                " next run resumes from. Holding the crawl until the platform stops the process.",
                result.error,
            )
        if self.resume_after > 0:
            self._resume_call = call_later(max(left, 0) + self.resume_after, self._called_off)

    def _called_off(self) -> None:
        self._resume_call = None
        if not self.active:
            return
        logger.warning(
            "No kill came %.0f s after the migration deadline: the migration was called off."
            " The crawl goes on from where it is.",
            self.resume_after,
        )
        self.end()
        self.start_timer()
        self.called_off()
        self.hold.release(HOLD_REASON)

    def last_checkpoint(self) -> Deferred[CheckpointResult]:
        """One more checkpoint, given the time left before the kill (at least a second): the
        process is stopping during the migration, and the flush may not have finished."""
        from twisted.internet import reactor

        left = max(self.deadline - time.monotonic(), 1.0)
        logger.warning(
            "The process is stopping during a migration with the spider still open: a last"
            " checkpoint (%.1f s left), then exit code 4 so that the platform restarts the run.",
            left,
        )
        d = self.checkpoint(Trigger.MIGRATING)
        d.addTimeout(left, reactor)
        d.addErrback(
            lambda failure: logger.error("The last checkpoint did not finish: %s", failure.value)
        )
        return d

    def end(self) -> None:
        """Stop the migration flush (the spider closes, or an abort overrides it)."""
        self.active = False
        if self._resume_call is not None:
            self._resume_call.cancel()
        self._resume_call = None
