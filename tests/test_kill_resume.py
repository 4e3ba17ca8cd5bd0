"""A real crawl of a local site, run with `scrapy crawl` and killed with SIGKILL at several
points, one of them in the middle of a checkpoint write, then run again until it ends."""

from __future__ import annotations

import json
from datetime import datetime
from typing import TYPE_CHECKING

from scrapy_actor_events.demo_site import DemoSite
from scrapy_actor_events.snapshot import Manifest

from .support.crawling import crawl_doc, read_checkpoint, run_sync, scrapy_crawl, subprocess_env

if TYPE_CHECKING:
    from pathlib import Path

KEY = "SCRAPY_STATE_links"
PAGES = 300


def manifest_file(storage: Path) -> Path:
    return storage / "key_value_stores" / "default" / KEY


def read_manifest(storage: Path) -> Manifest:
    return Manifest.from_bytes(KEY, manifest_file(storage).read_bytes())


def test_killed_crawl_resumes_without_losing_pages(storage: Path, tmp_path: Path) -> None:
    marker = tmp_path / "writing-manifest"
    with DemoSite(pages=PAGES, delay=0.01) as site:
        args = ["links", "-a", f"start_url={site.url}/", "-s", "CONCURRENT_REQUESTS=8"]
        env = subprocess_env(storage, APIFY_PERSIST_STATE_INTERVAL_MILLIS="250")
        pausing = {
            **env,
            "PAUSING_STORE_MARKER": str(marker),
            "PAUSING_STORE_AFTER": "1",
        }
        store_arg = ["-s", "ACTOR_EVENTS_STORE=tests.support.stores.PausingStore"]

        def hits() -> int:
            return sum(site.log.counts().values())

        kills = []  # (manifest the next run resumes from, /p/ hits of the killed run after it)

        def killed_run(run_args: list[str], run_env: dict[str, str], kill_when) -> None:
            start = len(site.log)
            run = scrapy_crawl(run_args, run_env, kill_when=kill_when)
            assert run.killed, run.stderr[-3000:]
            manifest = read_manifest(storage)
            captured = datetime.fromisoformat(manifest.created_at).timestamp()
            run_hits = site.log.hits[start:]
            after = [p for t, p in run_hits if t > captured and p.startswith("/p/")]
            kills.append((manifest, len(after)))

        # 1. Killed in the middle of the crawl, after a few checkpoints.
        first_target = 60
        killed_run(args, env, lambda: hits() >= first_target and manifest_file(storage).exists())

        # 2. Killed during a checkpoint write: its chunks are written, its manifest is not.
        before = read_manifest(storage)
        killed_run(args + store_arg, pausing, marker.exists)
        after = read_manifest(storage)
        assert after.generation > before.generation  # one checkpoint landed in this run
        assert marker.read_text() == KEY
        orphans = [
            p.name
            for p in (storage / "key_value_stores" / "default").iterdir()
            if p.name.startswith(f"{KEY}.part-{after.generation + 1}-")
            and "__metadata__" not in p.name
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
    assert set(counts) == {f"/p/{n}" for n in range(PAGES)}, "every page crawled at least once"
    duplicates = sum(c - 1 for c in counts.values())
    bound = sum(after + m.summary["in_flight"] for m, after in kills)
    per_kill = [(m.generation, after) for m, after in kills]
    print(f"pages fetched twice: {duplicates}, bound: {bound}, kills: {per_kill}")
    assert duplicates <= bound
    assert site.log.counts("/")["/"] == 1, "the start URL is fetched once across all runs"

    # The orphan chunks of the killed write were cleaned up by a later run.
    left = sorted(p.name for p in (storage / "key_value_stores" / "default").iterdir())
    final_manifest = read_manifest(storage)
    chunk_files = {n for n in left if ".part-" in n and "__metadata__" not in n}
    assert chunk_files == final_manifest.chunk_keys

    restored = run_sync(read_checkpoint(storage, KEY, "links"))
    assert restored is not None
    assert restored.manifest.close_reason == "finished"
    doc = crawl_doc(restored)
    distinct = PAGES + 1  # every /p/ page and the start page
    assert doc["stats"]["item_scraped_count"] == distinct
    assert doc["state"]["pages"] == distinct, "spider.state carried over across the kills"
    assert doc["stats"]["finish_reason"] == "finished"
    assert restored.seqs == []
    json.dumps(restored.manifest.summary)
