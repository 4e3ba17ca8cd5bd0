"""`scrapy-actor-events rehearse` end to end on the example project: a real events socket, a real
`scrapy crawl`, a real SIGKILL, and the site's own log (and the dataset) to check the verdict
against."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING

from scrapy_actor_events import exit_codes
from scrapy_actor_events.tools.site import DemoSite

from ..support.crawling import EXAMPLE_PROJECT, subprocess_env
from ..support.datasets import crawlee_read, page_items

if TYPE_CHECKING:
    from pathlib import Path

PAGES = 150


def rehearse(
    storage: Path, site: DemoSite, *options: str, settings: tuple[str, ...] = ()
) -> subprocess.CompletedProcess[str]:
    crawl = [sys.executable, "-m", "scrapy", "crawl", "links", "-a", f"start_url={site.url}/"]
    for setting in settings:
        crawl += ["-s", setting]
    return subprocess.run(
        [sys.executable, "-m", "scrapy_actor_events", "rehearse", "--storage", str(storage),
         *options, "--", *crawl],
        cwd=EXAMPLE_PROJECT,
        env=subprocess_env(storage),
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip


def test_a_rehearsed_migration_loses_nothing(tmp_path: Path) -> None:
    storage = tmp_path / "rehearsal"
    with DemoSite(pages=PAGES, delay=0.01) as site:
        result = rehearse(storage, site, "--after-pages", "40", "--time-remaining", "2", "--json")
        counts = site.log.counts()
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["verdict"] == "OK: 0 lost"
    assert report["lost"] == []
    first, second = report["runs"]
    assert first["exit"] == "SIGKILL"
    assert first["pages"] >= 40
    assert second == {"pages": second["pages"], "exit": "0", "closed_as": "finished"}
    assert report["requests_restored"] > 0
    # The report agrees with what the site served.
    assert set(counts) == {f"/p/{n}" for n in range(PAGES)}
    served = sum(counts.values()) + site.log.counts("/")["/"]
    assert first["pages"] + second["pages"] == served
    assert report["fetched_twice"] == sum(1 for n in counts.values() if n > 1)
    # What the crawl printed, and the logs the rehearsal kept.
    assert "run 1: 0 pages" in result.stderr  # the progress line (every 5 s off a terminal)
    assert (storage / "rehearsal-run-1.log").read_text().count("Checkpoint") >= 1
    assert "Resuming from checkpoint" in (storage / "rehearsal-run-2.log").read_text()
    # The items: one per page in the dataset, as the report counts them, with every field the
    # example Actor's dataset view shows.
    assert (report["dataset_items"], report["dataset_duplicates"]) == (PAGES + 1, 0)
    assert report["dataset_distinct"] == PAGES + 1
    items = crawlee_read(storage)["items"]
    assert max(page_items(items).values()) == 1
    actor = json.loads((EXAMPLE_PROJECT / ".actor" / "actor.json").read_text())
    view = actor["storages"]["dataset"]["views"]["overview"]
    fields = view["transformation"]["fields"]
    assert set(view["display"]["properties"]) == set(fields)
    assert all(set(item) == set(fields) for item in items), "the view shows every field"


def test_a_rehearsed_abort_table(tmp_path: Path) -> None:
    with DemoSite(pages=PAGES, delay=0.01) as site:
        result = rehearse(tmp_path / "rehearsal", site, "--abort", "--after-pages", "40")
    assert result.returncode == 0, result.stderr[-3000:]
    table = result.stdout
    assert "Rehearsal: aborting after 40 pages" in table
    assert "aborted    finished" in table
    assert "verdict                 OK: 0 lost" in table


def test_a_crawl_that_ends_before_the_event(tmp_path: Path) -> None:
    with DemoSite(pages=20) as site:
        result = rehearse(tmp_path / "rehearsal", site, "--after-pages", "1000")
    assert result.returncode == exit_codes.ExitCode.CHECK_FAILED
    assert "The crawl ended before the rehearsal sent its event" in result.stderr
    assert "smaller --after" in result.stderr


def test_a_storage_that_is_not_empty(tmp_path: Path) -> None:
    storage = tmp_path / "rehearsal"
    (storage / "key_value_stores" / "default").mkdir(parents=True)
    with DemoSite(pages=20) as site:
        result = rehearse(storage, site)
    assert result.returncode == exit_codes.ExitCode.CHECK_FAILED
    assert "starts from an empty storage directory" in result.stderr


def test_a_rehearsed_overload_slows_the_crawl(tmp_path: Path) -> None:
    with DemoSite(pages=100, delay=0.01) as site:
        result = rehearse(
            tmp_path / "rehearsal",
            site,
            "--overload",
            "--after-pages", "20",
            "--overload-seconds", "2",
            "--json",
            # The rehearsal reports the CPU once a second; the crawl decides on the last two
            # seconds' reports (not five), so it is back to speed sooner after the overload.
            settings=("ACTOR_EVENTS_OVERLOAD_WINDOW=2",),
        )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout)
    assert report["verdict"] == "OK: 0 lost"
    assert [run["closed_as"] for run in report["runs"]] == ["finished"]
    assert report["stats"]["actor_events/throttle/episodes"] == 1
    rates = report["pages_per_second"]
    assert rates["during"] < rates["before"] / 2
