from __future__ import annotations

import datetime as dt

from scrapy import Spider
from scrapy.statscollectors import MemoryStatsCollector
from scrapy.utils.defer import deferred_f_from_coro_f
from scrapy.utils.test import get_crawler

from scrapy_actor_events.checkpoint.crawl_state import CrawlState
from scrapy_actor_events.stats_keys import is_per_process


class StateSpider(Spider):
    name = "state"


def new_state() -> CrawlState:
    return CrawlState(MemoryStatsCollector(get_crawler()))


def test_restore_keeps_counters_and_drops_per_process_keys() -> None:
    before = new_state()
    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    for key, value in {
        "item_scraped_count": 10,
        "log_count/INFO": 55,
        "memusage/max": 123,
        "finish_reason": "shutdown",
        "finish_time": start,
        "elapsed_time_seconds": 4.0,
        "start_time": start,
        "custom/thing": [1, 2],
    }.items():
        before.stats.set_value(key, value)
    spider = StateSpider()
    spider.state = {"a": 1}
    data = before.capture(spider, in_flight=3)

    after = new_state()
    fresh = StateSpider()
    doc = CrawlState.decode(data)
    assert doc["in_flight"] == 3
    after.restore(fresh, doc)
    assert after.stats.get_stats() == {
        "item_scraped_count": 10,
        "custom/thing": [1, 2],
        "actor_events/checkpoint/count": 1,  # the checkpoint this capture is written in
    }
    assert fresh.state == {"a": 1}
    after.stats.set_value("start_time", dt.datetime.now(dt.UTC))  # what CoreStats does
    after.after_core_stats_opened()
    assert after.stats.get_value("start_time") == start
    after.stats.set_value("elapsed_time_seconds", 2.0)  # this process only, set by CoreStats
    after.after_core_stats_closed()
    assert after.stats.get_value("elapsed_time_seconds") >= 2.0 + doc["elapsed"]


def test_per_process_keys() -> None:
    assert is_per_process("log_count/ERROR")
    assert is_per_process("memusage/startup")
    assert is_per_process("actor_events/restore/requests")
    assert is_per_process("finish_time")
    assert not is_per_process("item_scraped_count")
    assert not is_per_process("actor_events/checkpoint/count")


@deferred_f_from_coro_f
async def test_start_progress_skips_what_was_read() -> None:
    state = new_state()
    state.restore(StateSpider(), {"stats": {}, "start": {"consumed": 3, "done": False}})

    async def start():
        for n in range(5):
            yield n

    seen = [item async for item in state.track_start(start())]
    assert seen == [3, 4]
    assert state.start_consumed == 5
    assert state.start_done


def test_checkpoint_count_includes_the_checkpoint_being_written() -> None:
    state = new_state()
    state.stats.set_value("actor_events/checkpoint/count", 4)  # four written before this one
    doc = CrawlState.decode(state.capture(StateSpider(), in_flight=0))
    assert doc["stats"]["actor_events/checkpoint/count"] == 5
    assert state.stats.get_value("actor_events/checkpoint/count") == 4  # counted once written
