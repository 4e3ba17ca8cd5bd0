"""The platform's events over a real WebSocket server, driving real `scrapy crawl` processes."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import pytest

from scrapy_actor_events.tools.site import DemoSite

from .support.crawling import (
    EXAMPLE_PROJECT,
    crawl_doc,
    read_checkpoint,
    run_sync,
    scrapy_crawl,
    subprocess_env,
)
from .support.events import start_events_server

if TYPE_CHECKING:
    from pathlib import Path

KEY = "SCRAPY_STATE_links"
CONCURRENCY = 8


def crawl_args(site: DemoSite) -> list[str]:
    return ["links", "-a", f"start_url={site.url}/", "-s", f"CONCURRENT_REQUESTS={CONCURRENCY}"]


def start_crawl(site: DemoSite, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "scrapy", "crawl", *crawl_args(site)],
        cwd=EXAMPLE_PROJECT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )


def page_hits(site: DemoSite) -> int:
    return sum(site.log.counts().values())


def wait_until(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.005)


@pytest.mark.parametrize("server_kind", ["autobahn", "websockets"])
def test_migrating_then_killed_then_resumed(server_kind: str, storage: Path) -> None:
    with DemoSite(pages=300, delay=0.03) as site, start_events_server(server_kind) as server:
        env = subprocess_env(
            storage,
            ACTOR_EVENTS_WEBSOCKET_URL=server.url,
            APIFY_PERSIST_STATE_INTERVAL_MILLIS="60000",
        )
        proc = start_crawl(site, env)
        server.wait_for(r"^open 1 ")
        wait_until(lambda: page_hits(site) >= 80)
        server.send("migrating 3")
        server.wait_for(r"^sent migrating to 1")
        announced = page_hits(site)
        time.sleep(3)
        assert proc.poll() is None, "the process must not exit on its own during a migration"
        after = page_hits(site)
        proc.send_signal(signal.SIGKILL)
        _, stderr = proc.communicate(timeout=30)
        assert after - announced <= CONCURRENCY, "no new request left the scheduler after migrating"
        assert "Migration checkpoint complete" in stderr, stderr[-3000:]
        restored = run_sync(read_checkpoint(storage, KEY, "links"))
        assert restored.manifest.trigger.startswith("migrating")
        assert restored.manifest.summary["in_flight"] == 0

        final = scrapy_crawl(crawl_args(site), subprocess_env(storage))
        assert final.returncode == 0, final.stderr[-3000:]
        assert "Resuming from checkpoint" in final.stderr

    counts = site.log.counts()
    assert set(counts) == {f"/p/{n}" for n in range(300)}, "0 pages lost"
    duplicates = sum(c - 1 for c in counts.values())
    print(f"{server_kind}: pages fetched twice after the migration: {duplicates}")
    assert duplicates <= CONCURRENCY
    assert site.log.counts("/")["/"] == 1


def test_aborting_closes_with_reason_aborted_and_exit_0_then_resumes(storage: Path) -> None:
    with DemoSite(pages=200, delay=0.02) as site, start_events_server() as server:
        env = subprocess_env(storage, ACTOR_EVENTS_WEBSOCKET_URL=server.url)
        proc = start_crawl(site, env)
        server.wait_for(r"^open 1 ")
        wait_until(lambda: page_hits(site) >= 50)
        server.send("aborting")
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 0
        assert "Spider closed (aborted)" in stderr
        server.wait_for(r"^closed 1 1000", timeout=5)  # the socket was closed cleanly
        restored = run_sync(read_checkpoint(storage, KEY, "links"))
        assert restored.manifest.close_reason == "aborted"
        assert restored.seqs, "the aborted crawl had pending requests"

        final = scrapy_crawl(crawl_args(site), subprocess_env(storage))
        assert final.returncode == 0
        assert "Resuming from checkpoint" in final.stderr
    assert set(site.log.counts()) == {f"/p/{n}" for n in range(200)}


def test_persist_state_and_cpu_events_are_acted_on_and_counted(storage: Path) -> None:
    with DemoSite(pages=150, delay=0.03) as site, start_events_server() as server:
        env = subprocess_env(storage, ACTOR_EVENTS_WEBSOCKET_URL=server.url)
        proc = start_crawl(site, env)
        server.wait_for(r"^open 1 ")
        wait_until(lambda: page_hits(site) >= 20)
        for command in ("persistState", "cpu on", "systemInfo", 'raw {"name": "somethingNew"}'):
            server.send(command)
        time.sleep(1.5)
        server.send("cpu off")
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 0
    assert "persistState)" in stderr  # a checkpoint line taken for the platform's persistState
    stats = crawl_doc(run_sync(read_checkpoint(storage, KEY, "links")))["stats"]
    assert stats["actor_events/events/persistState"] == 1
    # "cpu on" reports every second in both forms, as the platform does; plus one systemInfo.
    assert stats["actor_events/events/systemInfo"] == stats["actor_events/events/cpuInfo"] + 1
    assert stats["actor_events/events/unknown"] == 1
    assert stats["actor_events/events/cpuInfo"] >= 2
    assert stats["actor_events/cpu/overloaded_samples"] >= 2
