"""The platform's events over a real WebSocket server, driving real `scrapy crawl` processes.

``aborting`` end to end (closed as aborted, exit 0, the socket closed with 1000, resumed to the
end) is test_dataset_exactly_once.py's aborting test, in both stores: the same crawl, which also
checks the dataset."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

import pytest

from scrapy_actor_events.tools.site import DemoSite

from ..support.crawling import (
    CONCURRENCY,
    crawl_args,
    crawl_doc,
    page_hits,
    read_checkpoint,
    run_sync,
    scrapy_crawl,
    subprocess_env,
)
from ..support.events import start_events_server

if TYPE_CHECKING:
    from pathlib import Path

    from scrapy_actor_events.tools.harness import EventsServerProcess

KEY = "SCRAPY_STATE_links"
#: ``migrating``'s timeRemainingSecs: ample for a flush of at most CONCURRENCY requests of 0.03 s.
TIME_REMAINING = 1.5


def connected(server: EventsServerProcess) -> bool:
    return bool(server.matching(r"^open 1 "))


@pytest.mark.parametrize("server_kind", ["autobahn", "websockets"])
def test_migrating_then_killed_then_resumed(server_kind: str, storage: Path) -> None:
    pages = 150
    with DemoSite(pages=pages, delay=0.03) as site, start_events_server(server_kind) as server:
        env = subprocess_env(
            storage,
            ACTOR_EVENTS_WEBSOCKET_URL=server.url,
            APIFY_PERSIST_STATE_INTERVAL_MILLIS="60000",
        )
        state: dict[str, float] = {}

        def platform() -> bool:
            """Announce a migration after 60 pages; SIGKILL the crawl once its time is up."""
            if "sent" not in state:
                if connected(server) and page_hits(site) >= 60:
                    server.send(f"migrating {TIME_REMAINING}")
                    state["sent"] = 1
            elif "announced" not in state:
                if server.matching(r"^sent migrating to 1"):
                    state["announced"] = page_hits(site)
                    state["at"] = time.monotonic()
            elif time.monotonic() - state["at"] > TIME_REMAINING + 0.5:
                state["after"] = page_hits(site)
                return True
            return False

        run = scrapy_crawl(crawl_args(site), env, kill_when=platform)
        assert run.killed, "the process must not exit on its own during a migration"
        after, announced = state["after"], state["announced"]
        assert after - announced <= CONCURRENCY, "no new request left the scheduler after migrating"
        assert "Migration checkpoint complete" in run.stderr, run.stderr[-3000:]
        restored = run_sync(read_checkpoint(storage, KEY, "links"))
        assert restored.manifest.trigger.startswith("migrating")
        assert restored.manifest.summary["in_flight"] == 0

        final = scrapy_crawl(crawl_args(site), subprocess_env(storage))
        assert final.returncode == 0, final.stderr[-3000:]
        assert "Resuming from checkpoint" in final.stderr

    counts = site.log.counts()
    assert set(counts) == {f"/p/{n}" for n in range(pages)}, "0 pages lost"
    duplicates = sum(c - 1 for c in counts.values())
    print(f"{server_kind}: pages fetched twice after the migration: {duplicates}")
    assert duplicates <= CONCURRENCY
    assert site.log.counts("/")["/"] == 1


def test_persist_state_and_cpu_events_are_acted_on_and_counted(storage: Path) -> None:
    with DemoSite(pages=150, delay=0.03) as site, start_events_server() as server:
        env = subprocess_env(storage, ACTOR_EVENTS_WEBSOCKET_URL=server.url)
        sent = threading.Event()
        throttled = threading.Event()
        cleared = threading.Event()

        def on_line(line: str) -> None:
            if "The platform reports the CPU overloaded" in line:
                throttled.set()

        def platform() -> bool:
            if not sent.is_set() and connected(server) and page_hits(site) >= 20:
                for command in (
                    "persistState", "cpu on", "systemInfo", 'raw {"name": "somethingNew"}'
                ):  # fmt: skip
                    server.send(command)
                sent.set()
            elif throttled.is_set() and not cleared.is_set():
                server.send("cpu off")
                cleared.set()
            return False

        # With a 1 s window the crawl is back to speed a second after "cpu off" (the window
        # itself is tested on a controlled clock).
        args = [*crawl_args(site), "-s", "ACTOR_EVENTS_OVERLOAD_WINDOW=1"]
        run = scrapy_crawl(args, env, kill_when=platform, on_line=on_line, timeout=60)
        assert run.returncode == 0
        assert cleared.is_set(), "the crawl ended before it was throttled"
    assert "persistState)" in run.stderr  # a checkpoint line taken for the platform's persistState
    stats = crawl_doc(run_sync(read_checkpoint(storage, KEY, "links")))["stats"]
    assert stats["actor_events/events/persistState"] == 1
    # "cpu on" reports every second in both forms, as the platform does; plus one systemInfo.
    assert stats["actor_events/events/systemInfo"] == stats["actor_events/events/cpuInfo"] + 1
    assert stats["actor_events/events/unknown"] == 1
    assert stats["actor_events/events/cpuInfo"] >= 2
    assert stats["actor_events/cpu/overloaded_samples"] >= 2
