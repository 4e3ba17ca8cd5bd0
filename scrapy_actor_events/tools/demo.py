"""The demo: crawl a local site with the example project, kill it with SIGKILL, resume it.

It serves :class:`~.site.DemoSite` on 127.0.0.1, runs ``scrapy crawl links`` from
``example_project/`` with checkpoints in the local store, kills the process the way a platform
migration does, runs it again on the same storage and prints what survived: the pages, and the
items in the local dataset (one per page, none twice). Fully offline.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..store.local import LocalKeyValueStore
from .dataset_tally import count_items, tally
from .harness import CrawlRun, crawl_environment, run_crawl, scrapy_command
from .inspection import delete_checkpoint, records_of
from .site import DemoSite

if TYPE_CHECKING:
    from collections.abc import Callable

REPO_ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_PROJECT = REPO_ROOT / "example_project"
KEY = "SCRAPY_STATE_links"


def find_project(path: str | None) -> Path:
    project = Path(path) if path else EXAMPLE_PROJECT
    if not (project / "scrapy.cfg").is_file():
        raise SystemExit(
            f"No Scrapy project at {project}: run the demo from a clone of the repository"
            " (it uses example_project/), or pass --project."
        )
    return project


def _echo(verbose: bool) -> Callable[[str], None]:
    def echo(line: str) -> None:
        if verbose or "[scrapy_actor_events." in line or "Closing spider" in line:
            sys.stdout.write("    | " + line.split("] ", 1)[-1] if "] " in line else line)
            sys.stdout.flush()

    return echo


def crawl_once(
    project: Path, site: DemoSite, env: dict[str, str], kill_after_pages: int | None, verbose: bool
) -> tuple[CrawlRun, int]:
    """One run of the crawl; SIGKILLed once the site has served ``kill_after_pages`` pages."""

    def pages() -> int:
        return site.log.pages

    before = pages()
    run = run_crawl(
        scrapy_command("links", "-a", f"start_url={site.url}/"),
        env=env,
        cwd=project,
        kill_when=None
        if kill_after_pages is None
        else lambda: pages() - before >= kill_after_pages,
        on_line=_echo(verbose),
    )
    return run, pages() - before


def clear_checkpoint(storage: Path, key: str) -> int:
    """Delete the previous demo's checkpoint; how many records it had."""

    async def clear() -> int:
        store = LocalKeyValueStore(storage)
        has_manifest, chunks, _ = await records_of(store, key)
        if has_manifest or chunks:
            await delete_checkpoint(store, key, chunks, 8)
        return int(has_manifest) + len(chunks)

    return asyncio.run(clear())


def main(
    pages: int = 400,
    kill_after: int = 150,
    delay: float = 0.01,
    storage: str = "storage",
    project: str | None = None,
    verbose: bool = False,
) -> int:
    project_dir = find_project(project)
    storage_dir = Path(storage).resolve()
    cleared = clear_checkpoint(storage_dir, KEY)
    items_before = count_items(storage_dir)  # of earlier demos: this one's come after
    env = crawl_environment(
        storage_dir,
        pythonpath=[REPO_ROOT],
        APIFY_PERSIST_STATE_INTERVAL_MILLIS=os.environ.get(
            "APIFY_PERSIST_STATE_INTERVAL_MILLIS", "1000"
        ),
    )
    print("scrapy-actor-events demo: a crawl that survives SIGKILL")
    if cleared:
        print(f"  (removed the previous demo checkpoint {KEY} from {storage_dir})")
    with DemoSite(pages=pages, delay=delay) as site:
        print(f"  site: {pages} linked pages (with redirects and duplicate links) at {site.url}/")
        print(f"  checkpoints: {storage_dir}/key_value_stores/default/{KEY}, every second")
        print(f"  items: the dataset {storage_dir}/datasets/default, after each checkpoint")
        print(f"\n1. Crawling, then killing the process with SIGKILL after {kill_after} pages...")
        first, fetched = crawl_once(project_dir, site, env, kill_after, verbose)
        print(f"   killed after {fetched} requests (exit status {first.returncode})")
        print("\n2. Running the same crawl again on the same storage...")
        second, _ = crawl_once(project_dir, site, env, None, verbose)
        counts = site.log.counts()
    lost = [f"/p/{n}" for n in range(pages) if f"/p/{n}" not in counts]
    twice = sum(1 for c in counts.values() if c > 1)
    items = tally(storage_dir, since=items_before)
    # One item per page: every /p/ page and the start page.
    distinct_pages = len(counts) + 1
    print("\nResult")
    print(f"  pages in the site:           {pages}")
    print(f"  pages crawled:               {len(counts)}")
    print(f"  pages lost:                  {len(lost)}")
    print(
        f"  pages fetched twice:         {twice} (fetched after the last checkpoint, or in flight)"
    )
    print(f"  items in the dataset:        {items.items} for {distinct_pages} distinct pages")
    print(f"  items in the dataset twice:  {items.duplicates}")
    print(f"  second run exit status:      {second.returncode}")
    ok = (
        not lost
        and second.returncode == 0
        and first.killed
        and items.items == distinct_pages
        and items.duplicates == 0
    )
    verdict = "OK, the crawl and its output survived the kill" if ok else "FAILED"
    print(f"  verdict:                     {verdict}")
    return 0 if ok else 1
