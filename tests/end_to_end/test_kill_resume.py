"""A real crawl of a local site, run with `scrapy crawl` and killed with SIGKILL at several
points, one of them in the middle of a checkpoint write, then run again until it ends: with the
local store, and with the platform store (through apify-client, against the local API server)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING

from scrapy_actor_events.tools.site import DemoSite

from ..support.crawling import crawl_doc, scrapy_crawl

if TYPE_CHECKING:
    from ..support.backends import LocalBackend

KEY = "SCRAPY_STATE_links"
PAGES = 300


def test_killed_crawl_resumes_without_losing_pages(backend: LocalBackend) -> None:
    with DemoSite(pages=PAGES, delay=0.01) as site:
        args = ["links", "-a", f"start_url={site.url}/", "-s", "CONCURRENT_REQUESTS=8"]
        env = backend.env(APIFY_PERSIST_STATE_INTERVAL_MILLIS="250")

        def hits() -> int:
            return site.log.pages

        kills = []  # (manifest the next run resumes from, /p/ hits of the killed run after it)

        def killed_run(run_args: list[str], run_env: dict[str, str], kill_when) -> None:
            start = len(site.log)
            run = scrapy_crawl(run_args, run_env, kill_when=kill_when)
            backend.after_kill()
            assert run.killed, run.stderr[-3000:]
            manifest = backend.manifest(KEY)
            captured = datetime.fromisoformat(manifest.created_at).timestamp()
            run_hits = site.log.hits[start:]
            after = [p for t, p in run_hits if t > captured and p.startswith("/p/")]
            kills.append((manifest, len(after)))

        # 1. Killed in the middle of the crawl, after a few checkpoints.
        first_target = 60
        killed_run(args, env, lambda: hits() >= first_target and backend.value(KEY) is not None)

        # 2. Killed during a checkpoint write: its chunks are written, its manifest is not.
        before = backend.manifest(KEY)
        pausing_args, pausing_env = backend.pause_before_manifest(args, env, KEY, after=1)
        killed_run(pausing_args, pausing_env, backend.paused)
        after = backend.manifest(KEY)
        assert after.generation > before.generation  # one checkpoint landed in this run
        orphans = [
            k
            for k in backend.chunk_keys(KEY)
            if k.startswith(f"{KEY}.part-{after.generation + 1}-")
        ]
        assert orphans, "the killed write should have left its chunks without a manifest"

        # 3. Killed again, later.
        third_target = hits() + 80
        killed_run(args, env, lambda: hits() >= third_target)

        # 4. Runs to the end.
        final = scrapy_crawl(args, env)
        assert final.returncode == 0, final.stderr[-3000:]
        assert "Closing spider (finished)" in final.stderr
        assert "Resuming from checkpoint" in final.stderr

    counts = site.log.counts()
    assert site.log.pages == sum(counts.values())  # the count kill_when polls
    assert set(counts) == {f"/p/{n}" for n in range(PAGES)}, "every page crawled at least once"
    duplicates = sum(c - 1 for c in counts.values())
    bound = sum(after + m.summary["in_flight"] for m, after in kills)
    per_kill = [(m.generation, after) for m, after in kills]
    print(f"{backend.name}: pages fetched twice: {duplicates}, bound: {bound}, kills: {per_kill}")
    assert duplicates <= bound
    assert site.log.counts("/")["/"] == 1, "the start URL is fetched once across all runs"

    # The orphan chunks of the killed write were cleaned up by a later run.
    final_manifest = backend.manifest(KEY)
    assert backend.chunk_keys(KEY) == final_manifest.chunk_keys

    restored = backend.read(KEY, "links")
    assert restored is not None
    assert restored.manifest.close_reason == "finished"
    doc = crawl_doc(restored)
    distinct = PAGES + 1  # every /p/ page and the start page
    assert doc["stats"]["item_scraped_count"] == distinct
    assert doc["state"]["pages"] == distinct, "spider.state carried over across the kills"
    assert doc["stats"]["finish_reason"] == "finished"
    assert restored.seqs == []
    json.dumps(restored.manifest.summary)
