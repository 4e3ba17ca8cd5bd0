"""A platform store id that does not exist stops the crawl at start, naming the store and the fix.

apify-client turns every 404 into None: without a check, a store that is gone (unnamed stores expire
after 7 days) reads as "no checkpoint", a new crawl starts, and every write fails.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from scrapy.utils.defer import deferred_f_from_coro_f

from scrapy_actor_events.exit_codes import CLOSE_STORE_UNAVAILABLE, ExitCode
from scrapy_actor_events.store import StoreMissing
from scrapy_actor_events.store.apify import ApifyKeyValueStore
from scrapy_actor_events.tools.site import DemoSite

from ..support.crawling import scrapy_crawl, subprocess_env

if TYPE_CHECKING:
    from pathlib import Path

    from ..servers.apify_api import ApifyApiServer


@deferred_f_from_coro_f
async def test_a_store_id_that_does_not_exist_is_refused(apify_api: ApifyApiServer) -> None:
    store = ApifyKeyValueStore(apify_api.token, api_url=apify_api.url, store_id="goneStore123")
    with pytest.raises(StoreMissing, match="goneStore123 does not exist") as raised:
        await store.get("SCRAPY_STATE_x")
    assert "ACTOR_EVENTS_STORE_ID" in str(raised.value)
    assert "ACTOR_EVENTS_STORE_NAME" in str(raised.value)
    with pytest.raises(StoreMissing):
        await store.put("SCRAPY_STATE_x", b"{}", "application/json")
    await store.close()
    assert [(r.method, r.store, r.key) for r in apify_api.requests()] == [
        ("GET", "goneStore123", None),
        ("GET", "goneStore123", None),
    ], "only the store is asked for: no record is read or written"
    # A store that exists is used as before.
    sid = apify_api.create_store()
    store = ApifyKeyValueStore(apify_api.token, api_url=apify_api.url, store_id=sid)
    assert await store.get("SCRAPY_STATE_x") is None
    await store.close()


def test_a_crawl_pointed_at_a_missing_store_stops_at_start(
    storage: Path, apify_api: ApifyApiServer
) -> None:
    with DemoSite(pages=20) as site:
        env = subprocess_env(storage, **apify_api.env("expiredStoreId"))
        run = scrapy_crawl(["links", "-a", f"start_url={site.url}/"], env)
        fetched = len(site.log)
    assert run.returncode == ExitCode.STORE_UNAVAILABLE, run.stderr[-3000:]
    assert f"'finish_reason': '{CLOSE_STORE_UNAVAILABLE}'" in run.stderr
    assert "The platform key-value store expiredStoreId does not exist" in run.stderr
    assert "Point ACTOR_EVENTS_STORE_ID" in run.stderr
    assert fetched == 0, "no page is crawled"
    assert not [r for r in apify_api.requests() if r.key is not None], "no record is touched"
