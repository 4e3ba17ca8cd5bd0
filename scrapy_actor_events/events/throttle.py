"""Slowing the crawl down while the platform reports the CPU overloaded, and recovering after.

The platform reports ``isCpuOverloaded`` in ``cpuInfo`` (about every second) and ``systemInfo``.
One sample decides nothing: like Crawlee, the CPU counts as overloaded when more than
``ACTOR_EVENTS_OVERLOAD_RATIO`` of the samples of the last ``ACTOR_EVENTS_OVERLOAD_WINDOW`` seconds
say so, and (a hysteresis, so that a window hovering at the threshold does not flap) clear again
only when at most ``ACTOR_EVENTS_OVERLOAD_CLEAR_RATIO`` do.

While overloaded, once a second, the throttle raises the delay between requests to one slot:
``ACTOR_EVENTS_THROTTLE_START_DELAY`` first, then doubling, up to ``AUTOTHROTTLE_MAX_DELAY``. It
raises AutoThrottle's floor (``mindelay``, so AutoThrottle does not undo it), the delay of every
download slot and the delay new slots get; without AutoThrottle the slot delays alone do it. If
the overload lasts ``ACTOR_EVENTS_THROTTLE_PAUSE_AFTER`` seconds, no new request leaves the
scheduler until it clears. When clear, the delay steps down (a quarter each second) and then
the user's own values are put back exactly.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from scrapy.extensions.throttle import AutoThrottle
from scrapy.utils.asyncio import create_looping_call

from .. import _scrapy_internals as internals
from .. import stats_keys

if TYPE_CHECKING:
    from collections.abc import Callable

    from scrapy.crawler import Crawler

    from .engine_hold import EngineHold

logger = logging.getLogger(__name__)

HOLD_REASON = "cpu overload"
STEP_SECONDS = 1.0
_UP, _DOWN = 2.0, 4.0


@dataclass(frozen=True)
class ThrottleOptions:
    enabled: bool = True
    window: float = 5.0
    ratio: float = 0.4
    clear_ratio: float = 0.2
    start_delay: float = 0.5
    pause_after: float = 30.0


@dataclass
class _UserDelays:
    """What the user's settings and AutoThrottle had when the throttle stepped in."""

    mindelay: float | None
    default: float
    slots: dict[str, float]


class OverloadThrottle:
    """Receives ``isCpuOverloaded`` samples and slows the crawl while they say so."""

    def __init__(
        self,
        crawler: Crawler,
        hold: EngineHold,
        options: ThrottleOptions,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.crawler = crawler
        self.hold = hold
        self.options = options
        self.clock = clock
        self.max_delay = crawler.settings.getfloat("AUTOTHROTTLE_MAX_DELAY", 60.0)
        self.samples: deque[tuple[float, bool]] = deque()
        self.overloaded = False
        self.delay = 0.0
        #: The delays applied in the current (or the last) overload episode, in order.
        self.delays_applied: list[float] = []
        self._user: _UserDelays | None = None
        self._since = 0.0
        self._paused_since: float | None = None
        self._loop: Any = None

    # -- input --------------------------------------------------------------------------------

    def cpu_sample(self, overloaded: bool) -> None:
        now = self.clock()
        self.samples.append((now, overloaded))
        self._forget(now)
        if self._loop is None or not self._loop.running:
            self._loop = create_looping_call(self.step)
            self._loop.start(STEP_SECONDS, now=True)

    def _forget(self, now: float) -> None:
        while self.samples and self.samples[0][0] < now - self.options.window:
            self.samples.popleft()

    def ratio(self) -> float:
        self._forget(self.clock())
        if not self.samples:
            return 0.0
        return sum(1 for _, overloaded in self.samples if overloaded) / len(self.samples)

    # -- the once-a-second decision -----------------------------------------------------------

    def step(self) -> None:
        engine = self.crawler.engine
        if engine is None or engine.spider is None:
            return
        ratio = self.ratio()
        if not self.overloaded and ratio > self.options.ratio:
            self._begin(ratio)
        elif self.overloaded and ratio <= self.options.clear_ratio:
            self.overloaded = False
            self._release_pause()
        if self.overloaded:
            self._step_up()
        elif self._user is not None:
            self._step_down()
        elif not self.samples and self._loop is not None and self._loop.running:
            self._loop.stop()  # no reports for a whole window: nothing to decide until the next

    def _begin(self, ratio: float) -> None:
        engine = self.crawler.engine
        assert engine is not None
        self.overloaded = True
        if self._user is None:
            autothrottle = self._autothrottle()
            self._user = _UserDelays(
                mindelay=getattr(autothrottle, "mindelay", None) if autothrottle else None,
                default=internals.default_slot_delay(engine),
                slots={key: slot.delay for key, slot in engine.downloader.slots.items()},
            )
            self._since = self.clock()
            self.delay = 0.0
            self.delays_applied = []  # the episode's own: its closing line reports its highest
            assert self.crawler.stats is not None
            self.crawler.stats.inc_value(stats_keys.THROTTLE_EPISODES)
        logger.info(
            "The platform reports the CPU overloaded (%.0f%% of the samples of the last %.0f s):"
            " slowing the crawl down%s.",
            ratio * 100,
            self.options.window,
            ""
            if autothrottle_enabled(self.crawler)
            else " (AutoThrottle is off: slot delays only)",
        )

    def _step_up(self) -> None:
        target = max(self.options.start_delay, self.delay * _UP)
        self._apply(min(target, self.max_delay))
        pause_after = self.options.pause_after
        overdue = pause_after and self.clock() - self._since >= pause_after
        if overdue and self._paused_since is None:
            self._paused_since = self.clock()
            self.hold.hold(HOLD_REASON)
            logger.warning(
                "The CPU has been overloaded for %.0f s: no new request is sent until it clears.",
                self.clock() - self._since,
            )

    def _step_down(self) -> None:
        assert self._user is not None
        lowered = self.delay / _DOWN
        if lowered > self.options.start_delay / 2:
            self._apply(lowered)
            return
        self._restore()

    def _release_pause(self) -> None:
        if self._paused_since is not None:
            self._record(stats_keys.THROTTLE_PAUSED_SECONDS, self.clock() - self._paused_since)
            self._paused_since = None
            self.hold.release(HOLD_REASON)

    # -- applying delays ----------------------------------------------------------------------

    def _apply(self, delay: float) -> None:
        engine = self.crawler.engine
        assert engine is not None
        assert self._user is not None
        lowering = delay < self.delay
        self.delay = delay
        self.delays_applied.append(delay)
        user = self._user
        autothrottle = self._autothrottle()
        if autothrottle is not None and user.mindelay is not None:
            autothrottle.mindelay = max(user.mindelay, delay)
        internals.set_default_slot_delay(engine, max(user.default, delay))
        for key, slot in engine.downloader.slots.items():
            floor = user.slots.get(key, user.default)
            slot.delay = max(floor, delay) if lowering else max(slot.delay, delay)
        if lowering:
            internals.wake_download_slots(engine)
        stats = self.crawler.stats
        assert stats is not None
        stats.max_value(stats_keys.THROTTLE_MAX_DELAY, round(delay, 3))

    def _restore(self) -> None:
        """Put back exactly what the user had, and end the episode."""
        engine = self.crawler.engine
        assert engine is not None
        assert self._user is not None
        user, self._user = self._user, None
        autothrottle = self._autothrottle()
        if autothrottle is not None and user.mindelay is not None:
            autothrottle.mindelay = user.mindelay
        internals.set_default_slot_delay(engine, user.default)
        for key, slot in engine.downloader.slots.items():
            slot.delay = user.slots.get(key, user.default)
        internals.wake_download_slots(engine)
        seconds = self.clock() - self._since
        self._record(stats_keys.THROTTLE_SECONDS, seconds)
        highest = max(self.delays_applied, default=0.0)
        logger.info(
            "The CPU is clear again: the crawl is back to its configured speed after %.1f s"
            " throttled (highest delay %.2f s).",
            seconds,
            highest,
        )
        self.delay = 0.0

    def _record(self, key: str, seconds: float) -> None:
        stats = self.crawler.stats
        assert stats is not None
        stats.set_value(key, round(stats.get_value(key, 0) + seconds, 3))

    def _autothrottle(self) -> AutoThrottle | None:
        if not autothrottle_enabled(self.crawler):
            return None
        return self.crawler.get_extension(AutoThrottle)

    def close(self) -> None:
        """The spider closes: stop deciding and leave the user's delays as they were."""
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._release_pause()
        if self._user is not None and self.crawler.engine is not None:
            self._restore()


def autothrottle_enabled(crawler: Crawler) -> bool:
    return crawler.settings.getbool("AUTOTHROTTLE_ENABLED")
