"""Locally, checkpoints go where the Apify SDK reads the run's default store.

crawlee's file-system client keeps the default key-value store in ``key_value_stores/default/``
whatever ``ACTOR_DEFAULT_KEY_VALUE_STORE_ID`` says (that id only means something on the platform).
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING

from scrapy.settings import Settings
from scrapy.utils.defer import deferred_f_from_coro_f

from scrapy_actor_events.config import Config
from scrapy_actor_events.environment import ActorEnvironment
from scrapy_actor_events.store import LocalKeyValueStore, build_store
from scrapy_actor_events.tools.harness import crawl_environment
from scrapy_actor_events.tools.site import DemoSite

from ..support.crawling import crawl
from ..support.spiders import PagesSpider

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

SDK_READS = """
import asyncio, json, sys
from apify import Actor

async def main():
    async with Actor(exit_process=False):
        print(json.dumps(await Actor.get_value(sys.argv[1])))

asyncio.run(main())
"""


@deferred_f_from_coro_f
async def test_the_sdk_reads_the_manifest_with_a_default_store_id_set(
    storage: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACTOR_DEFAULT_KEY_VALUE_STORE_ID", "abc123")
    with DemoSite(pages=10) as site:
        crawler = await crawl(PagesSpider, crawl_kwargs={"url": f"{site.url}/"})
    assert crawler.stats.get_value("finish_reason") == "finished"
    assert (storage / "key_value_stores" / "default" / "SCRAPY_STATE_pages").is_file()
    assert not (storage / "key_value_stores" / "abc123").exists()
    env = crawl_environment(
        storage,
        ACTOR_DEFAULT_KEY_VALUE_STORE_ID="abc123",
        APIFY_PURGE_ON_START="0",
        CRAWLEE_PURGE_ON_START="0",
    )
    read = subprocess.run(
        [sys.executable, "-c", SDK_READS, "SCRAPY_STATE_pages"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert read.returncode == 0, read.stderr[-3000:]
    manifest = json.loads(read.stdout.strip().splitlines()[-1])
    assert manifest is not None, "Actor.get_value returned None: the SDK looked elsewhere"
    assert manifest["spider"] == "pages"
    assert manifest["close_reason"] == "finished"
    assert manifest["summary"]["stats"]["item_scraped_count"] == 11


def test_an_explicit_store_id_still_names_the_local_directory(tmp_path: Path) -> None:
    env = ActorEnvironment.from_environ({"ACTOR_DEFAULT_KEY_VALUE_STORE_ID": "abc123"})
    default = build_store(Config.from_settings(Settings(), env).store)
    assert isinstance(default, LocalKeyValueStore)
    assert default.path.name == "default"
    named = build_store(
        Config.from_settings(Settings({"ACTOR_EVENTS_STORE_ID": "my-checkpoints"}), env).store
    )
    assert isinstance(named, LocalKeyValueStore)
    assert named.path.name == "my-checkpoints"
