"""The overload throttle: decisions on a window, delays stepped up and back, the user's settings
restored exactly; with a controlled clock on a real (paused) crawl, and end to end against a real
events server sending cpuInfo."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import pytest
from scrapy import Request
from scrapy.extensions.throttle import AutoThrottle
from scrapy.utils.asyncio import sleep
from scrapy.utils.defer import deferred_f_from_coro_f, maybe_deferred_to_future

from scrapy_actor_events import ActorEventsExtension
from scrapy_actor_events import _scrapy_internals as internals
from scrapy_actor_events.events.engine_hold import EngineHold
from scrapy_actor_events.events.throttle import (
    HOLD_REASON,
    OverloadThrottle,
    ThrottleOptions,
)
from scrapy_actor_events.stats_keys import THROTTLE_EPISODES as STATS_EPISODES
from scrapy_actor_events.stats_keys import THROTTLE_MAX_DELAY as STATS_MAX_DELAY
from scrapy_actor_events.tools.site import DemoSite

from ..support.events import (
    events_settings,
    eventually,
    finish,
    start,
    start_events_server,
    wait_for_lines,
)
from ..support.probe import paused_crawl

if TYPE_CHECKING:
    from pathlib import Path

AUTOTHROTTLE = {
    "AUTOTHROTTLE_ENABLED": True,
    "AUTOTHROTTLE_START_DELAY": 0.1,
    "AUTOTHROTTLE_MAX_DELAY": 8.0,
    "AUTOTHROTTLE_TARGET_CONCURRENCY": 8.0,
    "DOWNLOAD_DELAY": 0.01,
}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def feed(throttle: OverloadThrottle, clock: Clock, samples: list[bool]) -> list[float]:
    """One sample and one decision per second; the delay after each second."""
    delays = []
    for overloaded in samples:
        clock.now += 1.0
        throttle.samples.append((clock.now, overloaded))
        throttle.step()
        delays.append(throttle.delay)
    return delays


async def with_throttle(site: DemoSite, check, **settings):
    def requests(spider):
        hosts = [site.url, site.url.replace("127.0.0.1", "localhost")]
        return [Request(f"{host}/p/{n}") for n in range(4) for host in hosts]

    async def action(crawler):
        engine = crawler.engine
        engine.unpause()  # let a few requests through so that download slots exist
        internals.wake_engine(engine)
        while len(engine.downloader.slots) < 2:
            await sleep(0.01)
        engine.pause()
        clock = Clock()
        hold = EngineHold(engine)
        options = ThrottleOptions(
            window=5, ratio=0.4, clear_ratio=0.2, start_delay=0.5, pause_after=6
        )
        throttle = OverloadThrottle(crawler, hold, options, clock=clock)
        try:
            return check(crawler, throttle, clock, hold)
        finally:
            throttle.close()  # as the extension does when the spider closes

    return await paused_crawl(requests, action, **settings)


def snapshot(crawler) -> dict:
    engine = crawler.engine
    autothrottle = (
        crawler.get_extension(AutoThrottle)
        if crawler.settings.getbool("AUTOTHROTTLE_ENABLED")
        else None
    )
    return {
        "mindelay": getattr(autothrottle, "mindelay", None),
        "maxdelay": getattr(autothrottle, "maxdelay", None),
        "default": internals.default_slot_delay(engine),
        "slots": {k: s.delay for k, s in engine.downloader.slots.items()},
    }


@deferred_f_from_coro_f
async def test_overload_steps_up_pauses_then_restores_exactly(
    storage: Path, site: DemoSite
) -> None:
    def check(crawler, throttle, clock, hold):
        before = snapshot(crawler)
        up = feed(throttle, clock, [True] * 8)
        during = snapshot(crawler)
        paused = HOLD_REASON in hold.reasons and crawler.engine.paused
        down = feed(throttle, clock, [False] * 10)
        return before, up, during, paused, down, snapshot(crawler), hold.reasons

    crawler, (before, up, during, paused, down, after, reasons) = await with_throttle(
        site, check, **AUTOTHROTTLE
    )
    assert up == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0], "doubling up to AUTOTHROTTLE_MAX_DELAY"
    assert during["mindelay"] == 8.0
    assert during["default"] == 8.0
    assert all(delay == 8.0 for delay in during["slots"].values())
    assert paused, "an overload longer than ACTOR_EVENTS_THROTTLE_PAUSE_AFTER holds new requests"
    assert not reasons, "the hold is released once the CPU is clear"
    # The window still says overloaded for a few seconds, then the delay steps down to nothing.
    assert down == sorted(down, reverse=True)
    assert [d for d in down if 0 < d < 8.0] == [2.0, 0.5]
    assert down[-1] == 0.0
    assert after == before, "the user's own values are back, exactly"
    stats = crawler.stats
    assert stats.get_value(STATS_EPISODES) == 1
    assert stats.get_value(STATS_MAX_DELAY) == 8.0
    assert stats.get_value("actor_events/throttle/seconds") > 0
    assert stats.get_value("actor_events/throttle/paused_seconds") > 0


@deferred_f_from_coro_f
async def test_without_autothrottle_slot_delays_do_it(storage: Path, site: DemoSite) -> None:
    def check(crawler, throttle, clock, hold):
        before = snapshot(crawler)
        feed(throttle, clock, [True] * 3)
        during = snapshot(crawler)
        feed(throttle, clock, [False] * 10)
        return before, during, snapshot(crawler)

    _, (before, during, after) = await with_throttle(site, check, DOWNLOAD_DELAY=0.05)
    assert before["mindelay"] is None
    assert during["default"] == 2.0
    assert set(during["slots"].values()) == {2.0}
    assert after == before


@deferred_f_from_coro_f
async def test_never_overloaded_changes_nothing(storage: Path, site: DemoSite) -> None:
    def check(crawler, throttle, clock, hold):
        before = snapshot(crawler)
        delays = feed(throttle, clock, [False] * 20 + [True, False, False, False, False] * 4)
        return before, delays, snapshot(crawler), throttle.delays_applied

    crawler, (before, delays, after, applied) = await with_throttle(site, check, **AUTOTHROTTLE)
    assert set(delays) == {0.0}
    assert applied == []
    assert after == before
    assert crawler.stats.get_value(STATS_EPISODES) is None


@deferred_f_from_coro_f
async def test_flapping_input_does_not_make_the_delay_oscillate(
    storage: Path, site: DemoSite
) -> None:
    def check(crawler, throttle, clock, hold):
        throttle.options = ThrottleOptions(
            window=5, ratio=0.4, clear_ratio=0.2, start_delay=0.5, pause_after=0
        )
        return feed(throttle, clock, [True, False] * 15)

    _, delays = await with_throttle(site, check, **AUTOTHROTTLE)
    active = [d for d in delays if d]
    assert active, "half the samples overloaded is over the 40% threshold"
    direction_changes = sum(
        1 for a, b, c in zip(active, active[1:], active[2:], strict=False) if (b - a) * (c - b) < 0
    )
    assert direction_changes == 0, delays
    assert delays == sorted(delays), "alternating samples never step the delay back down"


def rate(site: DemoSite, start: float, end: float) -> float:
    return sum(1 for t, _ in site.log.hits if start <= t < end) / (end - start)


@deferred_f_from_coro_f
async def test_a_real_crawl_slows_down_while_overloaded_and_recovers(storage: Path) -> None:
    # The site's delay, not the CPU, sets the pace (about 50 responses/s), so that tests running
    # beside this one do not change the rates compared. The server reports the CPU four times a
    # second and the crawl decides on the last second's reports: it counts as clear about a
    # second after the CPU is. (The window itself is tested on a controlled clock above.)
    with (
        DemoSite(pages=6000, delay=0.1, links=6) as site,
        start_events_server(extra_args=["--cpu-interval", "0.25"]) as server,
    ):
        settings = events_settings(
            server.url, CONCURRENT_REQUESTS=8, ACTOR_EVENTS_OVERLOAD_WINDOW=1, **AUTOTHROTTLE
        )
        crawler, done = start(site, **settings)
        await wait_for_lines(server, r"^open 1 ", 1)
        throttle = crawler.get_extension(ActorEventsExtension).throttle
        assert throttle is not None
        await eventually(lambda: len(site.log) >= 50, "the crawl is under way")
        configured = snapshot(crawler)
        t_before = time.time()
        await sleep(2)
        t_on = time.time()
        server.send("cpu on")
        await sleep(2)
        assert throttle.overloaded, "overloaded for as long as the reports say so"
        t_off = time.time()
        server.send("cpu off")
        await eventually(
            lambda: bool(throttle.delays_applied) and throttle._user is None,
            "the throttle steps down and puts the user's delays back",
        )
        t_restored = time.time()
        restored = snapshot(crawler)
        await sleep(2)
        t_end = time.time()
        await crawler.engine.close_spider_async(reason="measured")
        await maybe_deferred_to_future(done)
    before, during, after = (
        rate(site, t_before, t_on),
        rate(site, t_on, t_off),
        rate(site, t_restored, t_end),
    )
    print(
        f"responses/s: before {before:.1f}, overloaded {during:.1f},"
        f" in the {t_end - t_restored:.1f} s after the delays were restored"
        f" ({t_restored - t_off:.1f} s after the CPU was clear) {after:.1f}"
    )
    assert during <= before / 3
    assert after >= 0.6 * before
    assert restored["mindelay"] == configured["mindelay"] == 0.01
    assert restored["maxdelay"] == configured["maxdelay"] == 8.0
    assert restored["default"] == configured["default"]
    assert crawler.stats.get_value(STATS_EPISODES) == 1
    assert throttle._user is None


@deferred_f_from_coro_f
async def test_a_real_crawl_never_overloaded_is_left_alone(
    storage: Path, endless_site: DemoSite
) -> None:
    with start_events_server() as server:
        crawler, done = start(endless_site, **events_settings(server.url, **AUTOTHROTTLE))
        await wait_for_lines(server, r"^open 1 ", 1)
        configured = snapshot(crawler)
        server.send("cpu off")
        stats = crawler.stats
        # Two samples a second apart: the throttle decides on each.
        await eventually(
            lambda: (stats.get_value("actor_events/events/cpuInfo") or 0) >= 2,
            "two cpuInfo samples arrive",
        )
        await finish(crawler, done)
    throttle = crawler.get_extension(ActorEventsExtension).throttle
    assert crawler.stats.get_value("actor_events/events/cpuInfo") >= 2
    assert throttle.delays_applied == []
    assert crawler.stats.get_value(STATS_EPISODES) is None
    assert crawler.get_extension(AutoThrottle).mindelay == configured["mindelay"]


@deferred_f_from_coro_f
async def test_each_episode_reports_its_own_highest_delay(
    storage: Path, site: DemoSite, caplog: pytest.LogCaptureFixture
) -> None:
    def check(crawler, throttle, clock, hold):
        feed(throttle, clock, [True] * 5 + [False] * 20)  # up to 8 s, then clear
        first = list(throttle.delays_applied)
        throttle.max_delay = 2.0  # a second episode that cannot climb as high
        feed(throttle, clock, [True] * 5 + [False] * 20)
        return first, list(throttle.delays_applied)

    caplog.set_level(logging.INFO, logger="scrapy_actor_events.events.throttle")
    _, (first, second) = await with_throttle(site, check, **AUTOTHROTTLE)
    assert max(first) == 8.0
    assert second[0] == 0.5, "the second episode's delays only, from its start"
    assert max(second) == 2.0
    highest = [r.getMessage() for r in caplog.records if "highest delay" in r.getMessage()]
    assert len(highest) == 2
    assert "highest delay 8.00 s" in highest[0]
    assert "highest delay 2.00 s" in highest[1], "not the all-time highest"
