"""The tools show the items: `inspect` the items a checkpoint holds and the commit point, `demo`
and `rehearse` the items in the dataset against the pages; the example Actor fills its dataset
with what its view shows."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING

from scrapy_actor_events.tools.site import DemoSite

from ..support.crawling import EXAMPLE_PROJECT, scrapy_crawl, subprocess_env
from ..support.datasets import crawlee_read, page_items

if TYPE_CHECKING:
    from pathlib import Path

KEY = "SCRAPY_STATE_links"


def cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scrapy_actor_events", *args],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def test_inspect_shows_the_items_a_checkpoint_holds(storage: Path, tmp_path: Path) -> None:
    env = subprocess_env(storage, APIFY_PERSIST_STATE_INTERVAL_MILLIS="200")
    with DemoSite(pages=150, delay=0.02) as site:
        args = ["links", "-a", f"start_url={site.url}/", "-s", "CONCURRENT_REQUESTS=4"]
        manifest = storage / "key_value_stores" / "default" / KEY
        run = scrapy_crawl(args, env, kill_when=lambda: len(site.log) >= 60 and manifest.exists())
    assert run.killed
    result = cli("inspect", KEY, "--json", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    summary = json.loads(manifest.read_text())["summary"]["items"]
    assert report["items_dataset"] == "default"
    assert report["items_committed"] == summary["committed"]
    assert report["items_buffered"] == summary["uncommitted"]
    assert report["items_committed"] + report["items_buffered"] > 0
    # The dataset holds at least what the checkpoint says is committed, at the offsets it says.
    assert len(crawlee_read(storage)["items"]) >= report["items_offset"]
    text = cli("inspect", KEY, env=env, cwd=tmp_path).stdout
    line = next(line for line in text.splitlines() if line.strip().startswith("items"))
    assert f"{report['items_buffered']:,} item" in line
    assert "committed to dataset default" in line


def test_the_demo_reports_one_item_per_page(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "scrapy_actor_events", "demo", "--pages", "120",
         "--kill-after", "60", "--storage", str(tmp_path / "storage")],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "items in the dataset:        121 for 121 distinct pages" in result.stdout
    assert "items in the dataset twice:  0" in result.stdout


def test_a_rehearsal_counts_the_items_and_the_example_actor_fills_its_view(tmp_path: Path) -> None:
    storage = tmp_path / "rehearsal"
    with DemoSite(pages=100, delay=0.01) as site:
        crawl = [sys.executable, "-m", "scrapy", "crawl", "links", "-a", f"start_url={site.url}/"]
        result = subprocess.run(
            [sys.executable, "-m", "scrapy_actor_events", "rehearse", "--storage", str(storage),
             "--after-pages", "30", "--time-remaining", "1", "--json", "--", *crawl],
            cwd=EXAMPLE_PROJECT, env=subprocess_env(storage),
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert (report["dataset_items"], report["dataset_duplicates"]) == (101, 0)
    assert report["dataset_distinct"] == 101
    items = crawlee_read(storage)["items"]
    assert max(page_items(items).values()) == 1
    actor = json.loads((EXAMPLE_PROJECT / ".actor" / "actor.json").read_text())
    view = actor["storages"]["dataset"]["views"]["overview"]
    fields = view["transformation"]["fields"]
    assert set(view["display"]["properties"]) == set(fields)
    assert all(set(item) == set(fields) for item in items), "the view shows every field"
