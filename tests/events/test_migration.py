"""The migration flush: holding the crawl, repeated announcements, a migration called off, and the
exit code when the spider closes during a migration."""

from __future__ import annotations

import logging
import signal
from typing import TYPE_CHECKING

from scrapy.utils.defer import deferred_f_from_coro_f, maybe_deferred_to_future

from scrapy_actor_events.exit_codes import ExitCode
from scrapy_actor_events.tools.site import DemoSite

from ..support.crawling import page_hits, start_crawl, subprocess_env, wait_until
from ..support.events import events_settings, start, start_events_server, wait_for_lines

if TYPE_CHECKING:
    from pathlib import Path


@deferred_f_from_coro_f
async def test_repeated_migrating_events_flush_once_and_a_migration_called_off_resumes(
    storage: Path, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="scrapy_actor_events")
    with DemoSite(pages=50, delay=0.01) as site, start_events_server() as server:
        crawler, done = start(
            site, **events_settings(server.url, ACTOR_EVENTS_MIGRATION_RESUME_AFTER=0.5)
        )
        await wait_for_lines(server, r"^open 1 ", 1)
        server.send("migrating 0.5")
        server.send("migrating 0.5")
        await maybe_deferred_to_future(done)
    assert crawler.stats.get_value("finish_reason") == "finished"
    assert crawler.stats.get_value("actor_events/events/migrating") == 2
    assert caplog.text.count("The platform is migrating this run") == 1
    assert caplog.text.count("Migration checkpoint complete") == 1
    assert "the migration was called off. The crawl goes on" in caplog.text
    assert set(site.log.counts()) == {f"/p/{n}" for n in range(50)}


def test_a_spider_closed_during_a_migration_exits_non_zero(storage: Path) -> None:
    with DemoSite(pages=200, delay=0.03) as site, start_events_server() as server:
        env = subprocess_env(storage, ACTOR_EVENTS_WEBSOCKET_URL=server.url)
        proc = start_crawl(site, env)
        assert proc.stderr is not None
        server.wait_for(r"^open 1 ")
        wait_until(lambda: page_hits(site) >= 30)
        server.send("migrating 30")
        log = []
        for line in proc.stderr:  # until the crawl holds its requests for the migration
            log.append(line)
            if "The platform is migrating this run" in line:
                break
        proc.send_signal(signal.SIGTERM)  # Scrapy shuts down gracefully: the spider closes
        _, rest = proc.communicate(timeout=60)
        stderr = "".join(log) + rest
    assert proc.returncode == ExitCode.STOPPED_DURING_MIGRATION, stderr[-2000:]
    assert "during a migration: exiting with code 4" in stderr
    assert "Spider closed (shutdown)" in stderr
