"""Exactly once, end to end: a real `scrapy crawl` of a local site yielding one item per page,
killed with SIGKILL at random moments, migrated then killed, aborted (the platform's ``aborting``
end to end, in both stores); then run to its end. The dataset ends with exactly one item per
page, none missing and none twice: read back with crawlee's own dataset client (local layout), or
from the API server (platform), whose pushes here lose their answer after storing a share of the
time, the failure that duplicates items under blind retries.

The long variant (20 kills) is marked long: ``pytest -m long``.
"""

from __future__ import annotations

import random
import time
from typing import TYPE_CHECKING

import pytest

from scrapy_actor_events import stats_keys
from scrapy_actor_events.tools.site import DemoSite

from ..support.crawling import crawl_doc, scrapy_crawl
from ..support.datasets import dataset_items, page_items
from ..support.events import start_events_server

if TYPE_CHECKING:
    from ..support.backends import LocalBackend

KEY = "SCRAPY_STATE_links"


def crawl_args(site: DemoSite) -> list[str]:
    return ["links", "-a", f"start_url={site.url}/", "-s", "CONCURRENT_REQUESTS=8"]


def lossy_platform(backend: LocalBackend) -> None:
    """On the platform store, a quarter of the pushes is stored and then answered 500."""
    api = getattr(backend, "api", None)
    if api is not None:
        api.datasets.faults.push_error_rate = 0.25
        api.datasets.faults.error_kind = "store+500"


def assert_one_item_per_page(backend: LocalBackend, site: DemoSite, pages: int) -> None:
    per_page = page_items(dataset_items(backend))
    expected = {f"{site.url}/p/{n}" for n in range(pages)} | {f"{site.url}/"}
    missing = expected - set(per_page)
    twice = {url: n for url, n in per_page.items() if n > 1}
    print(f"{backend.name}: {sum(per_page.values())} items for {len(expected)} pages")
    assert not missing, f"{len(missing)} pages have no item: {sorted(missing)[:5]}"
    assert not twice, f"{len(twice)} pages have items twice: {list(twice.items())[:5]}"
    assert set(per_page) == expected


def crawl_with_kills(backend: LocalBackend, pages: int, kills: int, seed: int) -> None:
    rng = random.Random(seed)
    lossy_platform(backend)
    with DemoSite(pages=pages, delay=0.02) as site:
        env = backend.env(APIFY_PERSIST_STATE_INTERVAL_MILLIS="300", ACTOR_EVENTS_API_TIMEOUT="5")
        killed = 0
        for _ in range(kills):
            wait, first_hit, since = rng.uniform(0.2, 1.0), len(site.log), [0.0]

            def due(first_hit=first_hit, wait=wait, since=since) -> bool:
                if not since[0] and len(site.log) > first_hit:
                    since[0] = time.monotonic()
                return bool(since[0]) and time.monotonic() - since[0] >= wait

            run = scrapy_crawl(crawl_args(site), env, kill_when=due)
            backend.after_kill()
            if not run.killed:
                break
            killed += 1
        else:
            run = scrapy_crawl(crawl_args(site), env)
        assert run.returncode == 0, run.stderr[-3000:]
        assert "Traceback" not in run.stderr, run.stderr[-3000:]
        assert_one_item_per_page(backend, site, pages)
    assert killed == kills, "the crawl must be killed every time (a larger site?)"
    restored = backend.read(KEY, "links")
    assert restored is not None
    stats = crawl_doc(restored)["stats"]
    print(f"{backend.name}: {killed} kills; stats {_items_stats(stats)}")


def _items_stats(stats: dict) -> dict:
    prefixes = ("actor_events/items/", "actor_events/dataset/")
    return {k: v for k, v in stats.items() if k.startswith(prefixes)}


def test_a_few_random_kills_leave_one_item_per_page(backend: LocalBackend) -> None:
    crawl_with_kills(backend, pages=200, kills=3, seed=5)


@pytest.mark.long
def test_twenty_random_kills_leave_one_item_per_page(backend: LocalBackend) -> None:
    crawl_with_kills(backend, pages=1500, kills=20, seed=14)


def test_migrating_then_killed_leaves_one_item_per_page(backend: LocalBackend) -> None:
    lossy_platform(backend)
    with DemoSite(pages=150, delay=0.02) as site, start_events_server() as server:
        env = backend.env(ACTOR_EVENTS_WEBSOCKET_URL=server.url)  # the timer: every 60 s
        state: dict[str, float] = {}

        def act() -> bool:
            if "sent" not in state and server.connections() and len(site.log) >= 40:
                server.send("migrating 1")
                state["sent"] = time.monotonic()
            return "sent" in state and time.monotonic() - state["sent"] >= 1.0

        run = scrapy_crawl(crawl_args(site), env, kill_when=act)
        backend.after_kill()
        assert run.killed, run.stderr[-3000:]
        assert "Migration checkpoint complete" in run.stderr, run.stderr[-3000:]
        # Within the seconds a migration leaves, the migration checkpoint's items were pushed.
        restored = backend.read(KEY, "links")
        assert restored is not None
        assert restored.output is not None
        assert len(dataset_items(backend)) == restored.output.end
        final = scrapy_crawl(crawl_args(site), backend.env())
        assert final.returncode == 0, final.stderr[-3000:]
        assert "Resuming from checkpoint" in final.stderr
        assert_one_item_per_page(backend, site, 150)


def test_aborting_leaves_one_item_per_page(backend: LocalBackend) -> None:
    """Also the platform's ``aborting`` end to end: the crawl closes with reason ``aborted``,
    exits 0 and closes the socket with 1000; its close checkpoint keeps the pending requests,
    and the next run resumes from it and crawls every page."""
    lossy_platform(backend)
    with DemoSite(pages=120, delay=0.02) as site, start_events_server() as server:
        env = backend.env(ACTOR_EVENTS_WEBSOCKET_URL=server.url)

        def act() -> bool:
            if server.connections() and len(site.log) >= 30 and not server.matching("^sent"):
                server.send("aborting")
            return False

        run = scrapy_crawl(crawl_args(site), env, kill_when=act, timeout=60)
        assert server.matching("^sent"), "the crawl ended before the platform aborted it"
        assert run.returncode == 0, run.stderr[-3000:]
        assert "Spider closed (aborted)" in run.stderr
        server.wait_for(r"^closed 1 1000", timeout=5)  # the socket was closed cleanly
        restored = backend.read(KEY, "links")
        assert restored is not None
        assert restored.manifest.close_reason == "aborted"
        assert restored.seqs, "the aborted crawl had pending requests"
        assert restored.output is not None
        # The aborted crawl pushed every item of its close checkpoint before it exited.
        assert len(dataset_items(backend)) == restored.output.end
        stats = crawl_doc(restored)["stats"]
        assert stats["item_scraped_count"] == restored.output.end
        final = scrapy_crawl(crawl_args(site), backend.env())
        assert final.returncode == 0, final.stderr[-3000:]
        assert "Resuming from checkpoint" in final.stderr
        assert_one_item_per_page(backend, site, 120)
        assert set(site.log.counts()) == {f"/p/{n}" for n in range(120)}
        last = backend.read(KEY, "links")
        assert last is not None
        assert crawl_doc(last)["stats"][stats_keys.ITEMS_JOURNALED] == 121
