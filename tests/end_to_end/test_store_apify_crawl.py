"""Whole crawls that checkpoint to the platform store while it fails, stalls and rate-limits; and
a crawl at DEBUG level that must not show the API token anywhere."""

from __future__ import annotations

import json
import logging
import re
from typing import TYPE_CHECKING

import pytest
from scrapy.utils.defer import deferred_f_from_coro_f

from scrapy_actor_events.config import DEFAULTS
from scrapy_actor_events.exit_codes import CLOSE_STORE_UNAVAILABLE
from scrapy_actor_events.stats_keys import CHECKPOINT_FAILED as STATS_FAILED
from scrapy_actor_events.tools.site import DemoSite

from ..support.crawling import crawl, crawl_doc, scrapy_crawl, subprocess_env
from ..support.spiders import PagesSpider

if TYPE_CHECKING:
    from pathlib import Path

    from ..servers.apify_api import ApifyApiServer

KEY = "SCRAPY_STATE_pages"
UPLOAD_CONCURRENCY = DEFAULTS["ACTOR_EVENTS_UPLOAD_CONCURRENCY"]
PAGES = 150  # and the start page

#: name: (server faults, settings)
FAULTS = {
    "30% of writes fail": ({"write_error_rate": 0.3}, {"ACTOR_EVENTS_API_MAX_RETRIES": 1}),
    "30% of writes fail after landing": (
        {"write_error_rate": 0.3, "error_after_write": True},
        {"ACTOR_EVENTS_API_MAX_RETRIES": 1},
    ),
    "a slow store": ({"latency": 0.05}, {}),
    "429 bursts": ({"burst_every": 10, "burst_length": 3}, {}),
}


@pytest.mark.parametrize("fault", list(FAULTS))
@deferred_f_from_coro_f
async def test_the_crawl_goes_on_through_store_faults(
    fault: str, storage: Path, apify_api: ApifyApiServer, monkeypatch, caplog
) -> None:
    faults, settings = FAULTS[fault]
    sid = apify_api.create_store()
    for name, value in apify_api.env(sid).items():
        monkeypatch.setenv(name, value)
    for name, value in faults.items():
        setattr(apify_api.faults, name, value)
    caplog.set_level(logging.INFO, logger="scrapy_actor_events")
    with DemoSite(pages=PAGES, delay=0.01) as site:
        crawler = await crawl(
            PagesSpider,
            crawl_kwargs={"url": f"{site.url}/"},
            CONCURRENT_REQUESTS=4,
            ACTOR_EVENTS_PERSIST_INTERVAL=0.02,
            # Several chunks per checkpoint, so that a good share of checkpoints fail (9% of puts
            # fail twice), not one in chance.
            ACTOR_EVENTS_CHUNK_BYTES=1024,
            ACTOR_EVENTS_API_MIN_RETRY_DELAY=0.01,
            **settings,
        )
    stats = crawler.stats.get_stats()
    assert stats["finish_reason"] == "finished"
    assert stats["item_scraped_count"] == PAGES + 1
    assert crawler.spider.state["pages"] == PAGES + 1
    saved, failed = stats["actor_events/checkpoint/count"], stats.get(STATS_FAILED, 0)
    print(f"{fault}: {saved} checkpoints saved, {failed} failed, {apify_api.verified} verified;")
    print({k: v for k, v in stats.items() if k.startswith("actor_events/store/")})
    # Every manifest the store held, at every write and delete, was readable whole.
    assert apify_api.verification_errors == []
    assert apify_api.verified >= saved
    assert saved >= 10
    if "fail" in fault:
        assert failed > 0
        assert stats["actor_events/store/server_errors"] > failed
        assert stats["actor_events/store/failed"] >= failed
        messages = [r.getMessage() for r in caplog.records]
        first_failure = next(i for i, m in enumerate(messages) if "could not be saved" in m)
        assert any("saved to" in m for m in messages[first_failure:]), "the next one tried again"
    if fault == "429 bursts":
        assert stats["actor_events/store/rate_limited"] > 0
    # Every request is counted, retries included. A failed checkpoint cancels the uploads it
    # still runs, and one cancelled before its first byte left counts as sent but never reaches
    # the server: at most the other uploads of each failed checkpoint.
    unseen = stats["actor_events/store/requests"] - len(apify_api.log)
    assert 0 <= unseen <= failed * (UPLOAD_CONCURRENCY - 1), (stats, apify_api.log[-5:])
    last = apify_api.read_checkpoint(sid, KEY, "pages")
    assert last is not None
    saved_generations = [re.match(r"Checkpoint (\d+) saved", m) for m in caplog.messages]
    newest_saved = max(int(m[1]) for m in saved_generations if m)
    if fault == "30% of writes fail after landing":
        # A manifest that landed but was answered with a 500 counts as failed, yet is newest.
        assert last.manifest.generation >= newest_saved
    else:
        assert last.manifest.generation == newest_saved


def test_the_token_is_in_no_output(storage: Path, apify_api: ApifyApiServer) -> None:
    token = apify_api.token
    sid = apify_api.create_store()
    apify_api.faults.write_error_rate = 0.3  # error paths are logged too
    apify_api.echo_auth_in_errors = True  # even when the server repeats the header
    settings = ["-s", "LOG_LEVEL=DEBUG", "-s", "ACTOR_EVENTS_API_MAX_RETRIES=0"]
    settings += ["-s", "ACTOR_EVENTS_API_MIN_RETRY_DELAY=0.01"]
    with DemoSite(pages=100, delay=0.01) as site:
        args = ["links", "-a", f"start_url={site.url}/", *settings]
        env = subprocess_env(
            storage, **apify_api.env(sid, APIFY_PERSIST_STATE_INTERVAL_MILLIS="50")
        )
        run = scrapy_crawl(args, env)
        assert run.returncode == 0, run.stderr[-3000:]
        # A wrong token: the crawl stops at start, and says why.
        wrong = "apify_api_WRONG-secret-987654321"
        refused = scrapy_crawl(args, {**env, "APIFY_TOKEN": wrong})
    assert "[apify_client] DEBUG" in run.stderr, "the client's debug log is on"
    assert "Checkpoint could not be saved" in run.stderr
    assert "Dumping Scrapy stats" in run.stderr
    assert CLOSE_STORE_UNAVAILABLE in refused.stderr
    assert "HTTP 401" in refused.stderr
    for output in (run.stdout, run.stderr, refused.stdout, refused.stderr):
        assert token not in output
        assert wrong not in output
    for key in apify_api.keys(sid):
        record = apify_api.record(sid, key)
        assert token.encode() not in record.value
        assert token.encode() not in record.decoded()
    restored = apify_api.read_checkpoint(sid, "SCRAPY_STATE_links", "links")
    assert token not in json.dumps(crawl_doc(restored), default=str)
    assert all(token.encode() not in r for r in restored.records)
