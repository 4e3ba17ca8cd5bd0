"""The download log: what a crawl accepted, fetched and finished, one JSON line each."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from scrapy.utils.defer import deferred_f_from_coro_f

from scrapy_actor_events.tools.download_log_reader import read_download_log
from scrapy_actor_events.tools.site import DemoSite

from .support.crawling import crawl
from .support.spiders import PagesSpider

if TYPE_CHECKING:
    from pathlib import Path


@deferred_f_from_coro_f
async def test_a_crawl_writes_what_it_fetched(storage: Path, tmp_path: Path) -> None:
    log = tmp_path / "downloads.jsonl"
    with DemoSite(pages=40) as site:
        await crawl(
            PagesSpider,
            crawl_kwargs={"url": f"{site.url}/"},
            ACTOR_EVENTS_DOWNLOAD_LOG=str(log),
            ROBOTSTXT_OBEY=True,
        )
        hits = site.log.counts()
    (run,) = read_download_log(log)
    assert run.close_reason == "finished"
    pages = [u for u in run.fetched if "/p/" in u]
    assert sorted(pages) == sorted(f"{site.url}{p}" for p in hits)  # robots.txt left out
    assert run.accepted == run.finished  # nothing lost in a crawl that finished
    assert f"{site.url}/r/" in " ".join(run.accepted)  # redirects are requests too
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert {line["event"] for line in lines} == {
        "opened", "accepted", "fetched", "finished", "closed"
    }  # fmt: skip
    assert all(isinstance(line["pid"], int) and line["time"] > 0 for line in lines)
