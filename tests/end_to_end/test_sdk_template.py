"""The Apify SDK's Scrapy template, for real: ``run_scrapy_actor``, ``apply_apify_settings`` and
this package's extension, in a process of its own, offline, on local storage with purge off.

Both the SDK and the extension listen to the package's events server (the SDK through its
``ApifyEventManager``, which it opens only on the platform: the project puts it in crawlee's service
locator). Migrations, SIGTERM, SIGKILL and resumes, with the SDK's ``ApifyScheduler`` and with
Scrapy's own scheduler.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from typing import TYPE_CHECKING

import pytest

from scrapy_actor_events.exit_codes import ExitCode
from scrapy_actor_events.tools.harness import crawl_environment, run_crawl
from scrapy_actor_events.tools.site import DemoSite

from ..support.crawling import ROOT
from ..support.events import start_events_server
from ..support.sdk_template import dataset_items, write_template_project

if TYPE_CHECKING:
    from pathlib import Path

    from scrapy_actor_events.tools.harness import EventsServerProcess

KEY = "SCRAPY_STATE_pages"
COMMAND = [sys.executable, "-m", "tmplactor"]
SCHEDULERS = ["ApifyScheduler", "Scheduler"]


def template_env(storage: Path, site: DemoSite, server: EventsServerProcess, scheduler: str):
    return crawl_environment(
        storage,
        pythonpath=[ROOT],
        START_URL=f"{site.url}/p/0",
        ACTOR_EVENTS_WEBSOCKET_URL=server.url,
        TEMPLATE_PLATFORM_EVENTS="1",
        TEMPLATE_SCHEDULER="scrapy" if scheduler == "Scheduler" else "apify",
        APIFY_PURGE_ON_START="0",
        CRAWLEE_PURGE_ON_START="0",
    )


def manifest(storage: Path) -> dict:
    return json.loads((storage / "key_value_stores" / "default" / KEY).read_text())


def page_hits(site: DemoSite) -> Counter[str]:
    return site.log.counts("/p/")


class Terminated:
    """The template's process, sent SIGTERM (as the platform and `apify run` do) when told."""

    def __init__(self, project: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            COMMAND, cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip

    def terminate(self, times: int = 1, gap: float = 0.3) -> tuple[int, str]:
        for n in range(times):
            if n:
                time.sleep(gap)
            self.proc.send_signal(signal.SIGTERM)
        output, _ = self.proc.communicate(timeout=90)
        return self.proc.returncode, output

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


def wait_until(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.mark.parametrize(
    "scheduler", ["ApifyScheduler", pytest.param("Scheduler", marks=pytest.mark.long)]
)
def test_sigterm_during_a_migration_exits_4_under_run_scrapy_actor(
    scheduler: str, tmp_path: Path, storage: Path
) -> None:
    project = write_template_project(tmp_path / "project")
    with DemoSite(pages=300, delay=0.05) as site, start_events_server() as server:
        run = Terminated(project, template_env(storage, site, server, scheduler))
        try:
            wait_until(lambda: server.connections() >= 2 and len(page_hits(site)) >= 20)
            server.send("migrating 30")
            server.wait_for(r"^sent migrating to 2")
            time.sleep(1.5)
            code, output = run.terminate()
        finally:
            run.kill()
    # Twisted's react() alone would stop the reactor: exit 0, no spider_closed, a lost run.
    assert code == ExitCode.STOPPED_DURING_MIGRATION, output[-4000:]
    assert "closing the spider gracefully" in output
    assert "Spider closed (shutdown)" in output
    assert "during a migration: exiting with code 4" in output
    assert manifest(storage)["close_reason"] == "shutdown"


def test_a_second_sigterm_stops_at_once_and_still_exits_4(tmp_path: Path, storage: Path) -> None:
    project = write_template_project(tmp_path / "project")
    # Slow pages: the first SIGTERM's graceful stop waits for them; the second cuts it short.
    with DemoSite(pages=300, delay=1.5) as site, start_events_server() as server:
        run = Terminated(project, template_env(storage, site, server, "Scheduler"))
        try:
            wait_until(lambda: server.connections() >= 2 and len(site.log) >= 8)
            server.send("migrating 30")
            server.wait_for(r"^sent migrating to 2")
            time.sleep(0.5)
            code, output = run.terminate(times=2)
        finally:
            run.kill()
    assert code == ExitCode.STOPPED_DURING_MIGRATION, output[-4000:]
    assert "The process is stopping during a migration with the spider still open" in output
    assert manifest(storage)["trigger"].startswith("migrating")


@pytest.mark.long
def test_sigterm_outside_a_migration_closes_the_spider_and_exits_0(
    tmp_path: Path, storage: Path
) -> None:
    project = write_template_project(tmp_path / "project")
    with DemoSite(pages=300, delay=0.05) as site, start_events_server() as server:
        run = Terminated(project, template_env(storage, site, server, "ApifyScheduler"))
        try:
            wait_until(lambda: len(page_hits(site)) >= 20)
            code, output = run.terminate()
        finally:
            run.kill()
    assert code == 0, output[-4000:]
    assert "Spider closed (shutdown)" in output
    saved = manifest(storage)
    assert saved["close_reason"] == "shutdown"
    assert saved["summary"]["stats"]["item_scraped_count"] == len(dataset_items(storage))


@pytest.mark.long
@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_migrating_sigkill_and_resume_keep_items_and_state_equal_to_the_pages_crawled(
    scheduler: str, tmp_path: Path, storage: Path
) -> None:
    project = write_template_project(tmp_path / "project")
    pages = 150
    with DemoSite(pages=pages, delay=0.05) as site, start_events_server() as server:
        env = template_env(storage, site, server, scheduler)
        lines: list[str] = []
        sent: list[bool] = []

        def migrate_then_kill() -> bool:
            if not sent and server.connections() >= 2 and len(page_hits(site)) >= 40:
                server.send("migrating 20")
                sent.append(True)
            text = "".join(lines)
            flushed = "Migration checkpoint complete" in text
            # The SDK's scheduler marks the requests that finished as handled, once a second.
            settled = scheduler != "ApifyScheduler" or "Scrapy has finished the requests" in text
            return flushed and settled

        first = run_crawl(
            COMMAND, env=env, cwd=project, kill_when=migrate_then_kill, on_line=lines.append,
            timeout=120,
        )  # fmt: skip
        assert first.killed, first.stderr[-4000:]
        assert server.connections() >= 2, "both the SDK and the extension listened"
        at_kill = len(dataset_items(storage))
        second = run_crawl(COMMAND, env=env, cwd=project, timeout=120)
        hits = page_hits(site)
    assert second.returncode == 0, second.stderr[-4000:]
    assert "Resuming from checkpoint" in second.stderr
    final = manifest(storage)
    assert final["close_reason"] == "finished"
    items = dataset_items(storage)
    state_pages = final_state_pages(storage)
    # Pages crawled, in both processes: responses (from the site or the template's HTTP cache).
    crawled = final["summary"]["stats"]["response_received_count"]
    assert 0 < at_kill < len(items)
    assert {item["url"].split("/", 3)[3] for item in items} == {f"p/{n}" for n in range(pages)}
    assert set(hits) == {f"/p/{n}" for n in range(pages)}, "no page is lost"
    # Each page crawled, in either process, is one item in the dataset and one count in
    # spider.state: nothing the killed process did is missing or counted twice. (ApifyScheduler
    # ignores Scrapy's dupefilter: a page reached through a redirect is crawled, and counted,
    # twice; Scrapy's scheduler crawls each page once, the start page twice.)
    assert len(items) == state_pages == crawled, (len(items), state_pages, crawled)
    assert final["summary"]["stats"]["item_scraped_count"] == len(items)
    if scheduler == "Scheduler":
        assert crawled == pages + 1


def final_state_pages(storage: Path) -> int:
    from ..support.crawling import crawl_doc, read_checkpoint, run_sync

    restored = run_sync(read_checkpoint(storage, KEY, "pages"))
    return int(crawl_doc(restored)["state"]["pages"])
