"""Stopping the crawl gracefully on SIGTERM and SIGINT where Scrapy does not.

``scrapy crawl`` (``CrawlerProcess``) turns SIGTERM and SIGINT into a graceful stop: the spider
closes, the extension saves a last checkpoint, and during a migration the process exits 4 so that
the platform restarts the run. Under ``CrawlerRunner``/``AsyncCrawlerRunner`` nothing does: with
the Apify SDK's ``run_scrapy_actor``, Twisted's ``react()`` stops the reactor at the first signal,
the spider never closes, and the process exits 0, so a migrating run ends as SUCCEEDED and the
platform does not restart it.

While the spider is open, :class:`GracefulStop` takes over SIGTERM and SIGINT if their handler is
the default one or the Twisted reactor's (never Scrapy's own, never an application's): the first
signal closes the spider with reason ``shutdown``; a second one goes to the previous handler. And
whatever stops the reactor with the spider still open, ``before_reactor_stops`` runs first (the
extension takes a last migration checkpoint there); a Deferred it returns holds the shutdown.
"""

from __future__ import annotations

import logging
import signal
from typing import TYPE_CHECKING, Any

from scrapy.utils.defer import deferred_from_coro

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import FrameType

    from scrapy.crawler import Crawler
    from twisted.internet.defer import Deferred

    Handler = Callable[[int, FrameType | None], Any] | int | None

logger = logging.getLogger(__name__)

SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor


def _ours_to_take(handler: Handler) -> bool:
    """Whether ``handler`` is one that loses the crawl: the default, or the reactor's own stop."""
    if handler in (signal.SIG_DFL, signal.default_int_handler):
        return True
    owner = getattr(handler, "__self__", None)
    return owner is not None and owner is _reactor()


class GracefulStop:
    """Closes the spider on the first SIGTERM/SIGINT where nothing else would."""

    def __init__(
        self, crawler: Crawler, before_reactor_stops: Callable[[], Deferred[Any] | None]
    ) -> None:
        self.crawler = crawler
        self.before_reactor_stops = before_reactor_stops
        self.previous: dict[int, Handler] = {}
        self.stopping = False
        self._trigger: Any = None

    def install(self) -> None:
        self._trigger = _reactor().addSystemEventTrigger(
            "before", "shutdown", self.before_reactor_stops
        )
        for signum in SIGNALS:
            current = signal.getsignal(signum)
            if not _ours_to_take(current):
                continue  # CrawlerProcess (scrapy crawl) or the application handles it
            try:
                signal.signal(signum, self._received)
            except ValueError:  # not the main thread: signals are not ours to handle
                logger.debug("Cannot handle signals outside the main thread")
                return
            self.previous[signum] = current
        if self.previous:
            names = ", ".join(signal.Signals(s).name for s in self.previous)
            logger.debug("%s close the spider gracefully (no CrawlerProcess handles them)", names)

    def uninstall(self) -> None:
        """The spider has closed: give the signals and the reactor's shutdown back."""
        if self._trigger is not None:
            _reactor().removeSystemEventTrigger(self._trigger)
            self._trigger = None
        self._give_signals_back()

    def _give_signals_back(self) -> None:
        for signum, previous in self.previous.items():
            if signal.getsignal(signum) == self._received:
                signal.signal(signum, previous)
        self.previous = {}

    def _received(self, signum: int, frame: FrameType | None) -> None:
        # No logging here: the interrupted code may be writing to the same stream.
        if self.stopping:
            # Stop at once, as the previous handler would have; before_reactor_stops still runs.
            previous = self.previous.get(signum)
            self._give_signals_back()
            if callable(previous):
                previous(signum, frame)
            elif previous == signal.SIG_DFL:
                signal.raise_signal(signum)
            return
        self.stopping = True
        _reactor().callFromThread(self._stop, signum)

    def _stop(self, signum: int) -> None:
        logger.info(
            "Received %s: closing the spider gracefully (a last checkpoint is saved). Send it"
            " again to stop at once.",
            signal.Signals(signum).name,
        )
        deferred_from_coro(self.crawler.stop_async())
