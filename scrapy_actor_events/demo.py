"""The demo: crawl a local site with the example project, kill it with SIGKILL, resume it.

It serves :class:`~.demo_site.DemoSite` on 127.0.0.1, runs ``scrapy crawl links`` from
``example_project/`` with checkpoints in the local store, kills the process the way a platform
migration does, runs it again on the same storage and prints what survived. Fully offline.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .demo_site import DemoSite

REPO_ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_PROJECT = REPO_ROOT / "example_project"
KEY = "SCRAPY_STATE_links"


@dataclass
class RunResult:
    returncode: int
    killed: bool
    pages: int


def find_project(path: str | None) -> Path:
    project = Path(path) if path else EXAMPLE_PROJECT
    if not (project / "scrapy.cfg").is_file():
        raise SystemExit(
            f"No Scrapy project at {project}: run the demo from a clone of the repository"
            " (it uses example_project/), or pass --project."
        )
    return project


def _echo(stream: object, lines: list[str], verbose: bool) -> None:
    for line in stream:  # type: ignore[attr-defined]
        lines.append(line)
        if verbose or "[scrapy_actor_events." in line or "Closing spider" in line:
            sys.stdout.write("    | " + line.split("] ", 1)[-1] if "] " in line else line)
            sys.stdout.flush()


def run_crawl(
    project: Path,
    site: DemoSite,
    env: dict[str, str],
    kill_after_pages: int | None,
    verbose: bool,
) -> RunResult:
    start_hits = sum(site.log.counts().values())
    cmd = [sys.executable, "-m", "scrapy", "crawl", "links", "-a", f"start_url={site.url}/"]
    lines: list[str] = []
    with subprocess.Popen(
        cmd, cwd=project, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True
    ) as proc:
        reader = threading.Thread(target=_echo, args=(proc.stderr, lines, verbose), daemon=True)
        reader.start()
        killed = False
        while proc.poll() is None:
            pages = sum(site.log.counts().values()) - start_hits
            if kill_after_pages is not None and pages >= kill_after_pages:
                proc.send_signal(signal.SIGKILL)
                killed = True
                break
            time.sleep(0.01)
        proc.wait()
        reader.join(timeout=5)
    pages = sum(site.log.counts().values()) - start_hits
    return RunResult(proc.returncode, killed, pages)


def clear_local_checkpoint(storage: Path, key: str) -> int:
    folder = storage / "key_value_stores" / "default"
    if not folder.is_dir():
        return 0
    removed = 0
    for path in folder.iterdir():
        if path.name == key or path.name.startswith((f"{key}.", f"{key}.part-")):
            path.unlink()
            removed += 1
    return removed


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
    cleared = clear_local_checkpoint(storage_dir, KEY)
    env = {
        **os.environ,
        "APIFY_LOCAL_STORAGE_DIR": str(storage_dir),
        "APIFY_PERSIST_STATE_INTERVAL_MILLIS": os.environ.get(
            "APIFY_PERSIST_STATE_INTERVAL_MILLIS", "1000"
        ),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    print("scrapy-actor-events demo: a crawl that survives SIGKILL")
    if cleared:
        print(f"  (removed the previous demo checkpoint {KEY} from {storage_dir})")
    with DemoSite(pages=pages, delay=delay) as site:
        print(f"  site: {pages} linked pages (with redirects and duplicate links) at {site.url}/")
        print(f"  checkpoints: {storage_dir}/key_value_stores/default/{KEY}, every second")
        print(f"\n1. Crawling, then killing the process with SIGKILL after {kill_after} pages...")
        first = run_crawl(project_dir, site, env, kill_after, verbose)
        print(f"   killed after {first.pages} requests (exit status {first.returncode})")
        print("\n2. Running the same crawl again on the same storage...")
        second = run_crawl(project_dir, site, env, None, verbose)
        counts = site.log.counts()
    lost = [f"/p/{n}" for n in range(pages) if f"/p/{n}" not in counts]
    twice = sum(1 for c in counts.values() if c > 1)
    print("\nResult")
    print(f"  pages in the site:           {pages}")
    print(f"  pages crawled:               {len(counts)}")
    print(f"  pages lost:                  {len(lost)}")
    print(
        f"  pages fetched twice:         {twice} (fetched after the last checkpoint, or in flight)"
    )
    print(f"  second run exit status:      {second.returncode}")
    ok = not lost and second.returncode == 0 and first.killed
    print(f"  verdict:                     {'OK, the crawl survived the kill' if ok else 'FAILED'}")
    return 0 if ok else 1
