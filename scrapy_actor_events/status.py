"""The run's status message on the Apify platform: what the crawl has done, in the Console.

Crawlee-based Actors show a line such as "Crawled 45/100 pages, 0 failed requests" in the run's
view. When the crawl runs as an Actor (``ACTOR_RUN_ID`` is set and checkpoints go to the platform
store), :class:`StatusReporter` sets the run's status message after checkpoints, through
apify-client's run client::

    Crawled 1,234 pages, 5,678 pending, 1,230 items; checkpoint 17 saved 3 s ago; resumed after
    migration 1

At most one message every ``ACTOR_EVENTS_STATUS_INTERVAL`` seconds, sent by a background task:
never on the crawl's path, and a slow or failing API costs the crawl nothing. A failure is logged
once. When the spider closes, a terminal message says how the crawl ended.
``ACTOR_EVENTS_STATUS_MESSAGE = False`` turns it off.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from . import stats_keys

if TYPE_CHECKING:
    from collections.abc import Callable

    from scrapy.statscollectors import StatsCollector

    from .checkpoint.writer import CheckpointResult
    from .environment import ActorEnvironment

logger = logging.getLogger(__name__)

#: The longest a status update may take, and how often the client retries it: a message that
#: cannot be set now is replaced by the next one anyway.
REQUEST_TIMEOUT = timedelta(seconds=10)
MAX_RETRIES = 1


@dataclass(frozen=True)
class StatusOptions:
    #: ``ACTOR_EVENTS_STATUS_MESSAGE``: set the run's status message when running as an Actor.
    enabled: bool = True
    #: ``ACTOR_EVENTS_STATUS_INTERVAL``: seconds between two messages, at least.
    interval: float = 5.0


def _age(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class StatusReporter:
    """Sets the run's status message from the crawl's stats and its checkpoints."""

    def __init__(
        self,
        run_id: str,
        client: Any,
        options: StatusOptions,
        stats: StatsCollector,
        pending: Callable[[], int | None] = lambda: None,
        clock: Callable[[], float] = time.monotonic,
        secret: str = "",
    ) -> None:
        self.run_id = run_id
        self._secret = secret
        self.client = client
        self.options = options
        self.stats = stats
        self.pending = pending
        self.clock = clock
        self.last_checkpoint: CheckpointResult | None = None
        self._checkpoint_at = 0.0
        #: Set on a resume: ``resumed after migration N`` (or ``from checkpoint G``).
        self.resumed: str | None = None
        self._sent_at: float | None = None
        self._task: asyncio.Task[None] | None = None
        self._failure_logged = False
        self._closed = False
        self._sending = False

    @classmethod
    def build(
        cls,
        environment: ActorEnvironment,
        options: StatusOptions,
        on_platform_store: bool,
        stats: StatsCollector,
        pending: Callable[[], int | None],
    ) -> StatusReporter | None:
        """A reporter when the crawl runs as an Actor with the platform store; else None."""
        if not (options.enabled and environment.run_id and environment.token and on_platform_store):
            return None
        from apify_client import ApifyClientAsync

        client = ApifyClientAsync(
            environment.token,
            api_url=environment.api_base_url,
            max_retries=MAX_RETRIES,
            timeout_short=REQUEST_TIMEOUT,
        )
        return cls(environment.run_id, client, options, stats, pending, secret=environment.token)

    # -- what the crawl tells it --------------------------------------------------------------

    def resumed_from(self, generation: int, migrations: int) -> None:
        """The crawl resumed from a checkpoint: said at once, and in every message after."""
        self.resumed = (
            f"resumed after migration {migrations}"
            if migrations
            else f"resumed from checkpoint {generation}"
        )
        self._schedule()

    def checkpoint_saved(self, result: CheckpointResult) -> None:
        """After a checkpoint: a message now, or when the interval since the last one is over."""
        if not result.saved:
            return
        self.last_checkpoint = result
        self._checkpoint_at = self.clock()
        self._schedule()

    def _schedule(self) -> None:
        if self._closed or (self._task is not None and not self._task.done()):
            return  # the message on its way reads the figures when it goes
        # The platform store runs on asyncio, and so does this: a task on the reactor's loop.
        self._task = asyncio.ensure_future(self._send_soon())

    @property
    def sending(self) -> bool:
        """Whether a request to the platform is on its way now."""
        return self._sending

    async def close(self, reason: str) -> None:
        """The terminal message, once the spider has closed (after the close checkpoint)."""
        self._closed = True
        task = self._task
        if task is not None and not task.done():
            if self._sending:
                # Let the update under way finish rather than abandon it: apify-client's
                # transport (impit) would go on with it on its own threads, unawaited, maybe
                # while the interpreter exits.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(task), 2 * REQUEST_TIMEOUT.seconds)
            else:
                task.cancel()  # only waiting for its interval: no request out
        ended = "Finished" if reason == "finished" else "Stopped"
        text = f"{ended} ({reason}): {self._figures()}" + (
            f"; {self.resumed}" if self.resumed else ""
        )
        try:
            # A retry included, bounded: the process must not hang at its end for a message.
            await asyncio.wait_for(self._send(text, terminal=True), 2.5 * REQUEST_TIMEOUT.seconds)
        except TimeoutError:
            self._failed(TimeoutError("no answer in time"))
        await self.client.http_client.aclose()

    # -- sending ------------------------------------------------------------------------------

    async def _send_soon(self) -> None:
        if self._sent_at is not None:
            wait = self._sent_at + self.options.interval - self.clock()
            if wait > 0:
                await asyncio.sleep(wait)  # the figures are read after the wait: the newest
        if not self._closed:
            await self._send(self.message(), terminal=False)

    def message(self) -> str:
        parts = [self._figures()]
        if self.last_checkpoint is not None:
            age = _age(max(self.clock() - self._checkpoint_at, 0.0))
            parts.append(f"checkpoint {self.last_checkpoint.generation} saved {age} ago")
        if self.resumed:
            parts.append(self.resumed)
        return "; ".join(parts)

    def _figures(self) -> str:
        pages = int(self.stats.get_value(stats_keys.RESPONSES, 0) or 0)
        items = int(self.stats.get_value(stats_keys.ITEMS, 0) or 0)
        pending = self.pending()
        waiting = f", {pending:,} pending" if pending is not None else ""
        return f"Crawled {pages:,} pages{waiting}, {items:,} items"

    async def _send(self, text: str, terminal: bool) -> None:
        self._sent_at = self.clock()
        self._sending = True
        try:
            await self.client.run(self.run_id).update(
                status_message=text, is_status_message_terminal=terminal, timeout=REQUEST_TIMEOUT
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._failed(exc)
            return
        finally:
            self._sending = False
        self.stats.inc_value(stats_keys.STATUS_UPDATES)
        logger.debug("Status message: %s", text)

    def _failed(self, exc: BaseException) -> None:
        self.stats.inc_value(stats_keys.STATUS_FAILED)
        if self._failure_logged:
            return
        self._failure_logged = True
        reason = f"{type(exc).__name__}: {exc}"
        if self._secret:
            reason = reason.replace(self._secret, "***")
        logger.warning(
            "Could not set the run's status message (%s); the crawl goes on, and further"
            " failures are only counted in %s.",
            reason[:300],
            stats_keys.STATUS_FAILED,
        )
