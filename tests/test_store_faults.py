"""Store faults during real crawls: failing writes, writes that hang past a migration window, a
full disk, a kill in the middle of a multi-chunk write. Every time the crawl goes on or stops
cleanly, the newest complete checkpoint stays readable, and nothing half-written is restored."""

from __future__ import annotations

import json
import signal
import threading
import time
from datetime import datetime
from pathlib import Path

from scrapy_actor_events.demo_site import DemoSite
from scrapy_actor_events.snapshot import Manifest, UnreadableCheckpoint

from .support.crawling import crawl_doc, read_checkpoint, run_sync, scrapy_crawl, subprocess_env
from .support.events import EventsServerProcess
from .test_events_e2e import page_hits, wait_until

KEY = "SCRAPY_STATE_links"
STORE = "tests.support.faulty_store.FaultyStore"


class Faults:
    def __init__(self, tmp_path: Path) -> None:
        self.control = tmp_path / "control.json"
        self.log = tmp_path / "faults.log"
        self.marker = tmp_path / "paused"
        self.set({})

    def set(self, control: dict) -> None:
        self.control.write_text(json.dumps(control))

    def count(self, kind: str) -> int:
        if not self.log.exists():
            return 0
        return sum(1 for line in self.log.read_text().splitlines() if line.startswith(kind))

    def env(self, storage: Path, **extra: str) -> dict[str, str]:
        return subprocess_env(
            storage, FAULTY_STORE_CONTROL=str(self.control), FAULTY_STORE_LOG=str(self.log), **extra
        )


def manifest_path(storage: Path) -> Path:
    return storage / "key_value_stores" / "default" / KEY


def read_manifest(storage: Path) -> Manifest:
    return Manifest.from_bytes(KEY, manifest_path(storage).read_bytes())


class Watcher(threading.Thread):
    """Reads the newest checkpoint over and over while a crawl runs; it must always be readable."""

    def __init__(self, storage: Path) -> None:
        super().__init__(daemon=True)
        self.storage = storage
        self.stop = threading.Event()
        self.reads = 0
        self.errors: list[str] = []

    def run(self) -> None:
        while not self.stop.is_set():
            if manifest_path(self.storage).exists():
                before = manifest_path(self.storage).read_bytes()
                try:
                    run_sync(read_checkpoint(self.storage, KEY, "links"))
                    self.reads += 1
                except UnreadableCheckpoint as exc:
                    # Old chunks go once a newer manifest landed: a reader that was half-way
                    # through the older one tries again; any other failure is a real one.
                    if manifest_path(self.storage).read_bytes() == before:
                        self.errors.append(exc.reason)
            time.sleep(0.02)


def args_for(site: DemoSite, *extra: str) -> list[str]:
    return ["links", "-a", f"start_url={site.url}/", "-s", f"ACTOR_EVENTS_STORE={STORE}", *extra]


def test_a_third_of_writes_failing(storage: Path, tmp_path: Path) -> None:
    faults = Faults(tmp_path)
    faults.set({"fail_ratio": 0.3, "seed": 3})
    watcher = Watcher(storage)
    watcher.start()
    with DemoSite(pages=400, delay=0.01) as site:
        env = faults.env(storage, APIFY_PERSIST_STATE_INTERVAL_MILLIS="200")
        for target in (120, 250):
            run = scrapy_crawl(args_for(site), env, kill_when=lambda t=target: page_hits(site) >= t)
            assert run.killed
        final = scrapy_crawl(args_for(site), env)
    watcher.stop.set()
    watcher.join()
    assert final.returncode == 0
    assert "Spider closed (finished)" in final.stderr
    assert set(site.log.counts()) == {f"/p/{n}" for n in range(400)}, "0 pages lost"
    assert faults.count("fail") >= 3
    assert watcher.errors == []
    assert watcher.reads > 20
    stats = crawl_doc(run_sync(read_checkpoint(storage, KEY, "links")))["stats"]
    assert stats["actor_events/checkpoint/failed"] >= 1


def test_writes_that_hang_past_the_migration_window(storage: Path, tmp_path: Path) -> None:
    faults = Faults(tmp_path)
    with DemoSite(pages=300, delay=0.03) as site, EventsServerProcess() as server:
        env = faults.env(
            storage,
            ACTOR_EVENTS_WEBSOCKET_URL=server.url,
            APIFY_PERSIST_STATE_INTERVAL_MILLIS="300",
        )
        proc = _start(site, env)
        server.wait_for(r"^open 1 ")
        wait_until(lambda: page_hits(site) >= 80 and manifest_path(storage).exists())
        faults.set({"hang": 30})
        time.sleep(0.5)
        before = read_manifest(storage)
        server.send("migrating 2")
        time.sleep(2.5)
        assert proc.poll() is None, "still alive when the kill comes"
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        assert faults.count("hang") >= 1
        after = read_manifest(storage)
        assert after.generation == before.generation, "the hung write never landed"
        run_sync(read_checkpoint(storage, KEY, "links"))  # the previous checkpoint is whole
        faults.set({})
        final = scrapy_crawl(args_for(site), faults.env(storage))
        assert final.returncode == 0
        assert f"Resuming from checkpoint {before.generation}" in final.stderr
    assert set(site.log.counts()) == {f"/p/{n}" for n in range(300)}


def _start(site: DemoSite, env: dict[str, str]):
    import subprocess
    import sys

    from .support.crawling import EXAMPLE_PROJECT

    return subprocess.Popen(
        [sys.executable, "-m", "scrapy", "crawl", *args_for(site, "-s", "CONCURRENT_REQUESTS=8")],
        cwd=EXAMPLE_PROJECT,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_full_disk(storage: Path, tmp_path: Path) -> None:
    faults = Faults(tmp_path)
    with DemoSite(pages=300, delay=0.01) as site:
        env = faults.env(storage, APIFY_PERSIST_STATE_INTERVAL_MILLIS="200")
        state = {}

        def fill_the_disk() -> bool:
            if "full" not in state and manifest_path(storage).exists() and page_hits(site) >= 100:
                state["full"] = read_manifest(storage)
                faults.set({"enospc": True})
            return False

        run = scrapy_crawl(args_for(site), env, kill_when=fill_the_disk)
        assert run.returncode == 0, "the crawl goes on to its end"
        assert "No space left on device" in run.stderr
        assert "The previous checkpoint stays valid" in run.stderr
        last_good = read_manifest(storage)
        assert last_good.generation <= state["full"].generation + 1
        assert last_good.close_reason is None, "the close checkpoint could not be written"
        run_sync(read_checkpoint(storage, KEY, "links"))
        faults.set({})
        again = scrapy_crawl(args_for(site), faults.env(storage))
        assert again.returncode == 0
        assert "Resuming from checkpoint" in again.stderr
    assert set(site.log.counts()) == {f"/p/{n}" for n in range(300)}


def test_a_kill_in_the_middle_of_a_multi_chunk_write(storage: Path, tmp_path: Path) -> None:
    faults = Faults(tmp_path)
    with DemoSite(pages=300, delay=0.01) as site:
        env = faults.env(storage, APIFY_PERSIST_STATE_INTERVAL_MILLIS="200")
        small_chunks = ["-s", "ACTOR_EVENTS_CHUNK_BYTES=1024", "-s", "ACTOR_EVENTS_MAX_DELTAS=0"]
        state = {}

        def paused_mid_write() -> bool:
            if "armed" not in state and manifest_path(storage).exists() and page_hits(site) >= 80:
                state["armed"] = read_manifest(storage)
                faults.set({"pause_after_chunks": 2, "marker": str(faults.marker)})
            return faults.marker.exists()

        run = scrapy_crawl(args_for(site, *small_chunks), env, kill_when=paused_mid_write)
        assert run.killed
        manifest = read_manifest(storage)
        written = faults.marker.read_text()
        generation = int(written.split(".part-")[1].split("-")[0])
        assert generation > manifest.generation, "the interrupted write is newer than the manifest"
        assert len(manifest.segments[0].chunks) > 2, "checkpoints span several chunks"
        folder = manifest_path(storage).parent
        orphans = [p for p in folder.iterdir() if f".part-{generation}-" in p.name]
        assert orphans, "two chunks of the interrupted write are on disk"
        run_sync(read_checkpoint(storage, KEY, "links"))
        faults.set({})
        again = scrapy_crawl(args_for(site, *small_chunks), faults.env(storage))
        assert again.returncode == 0
        assert f"Resuming from checkpoint {manifest.generation}" in again.stderr
    assert set(site.log.counts()) == {f"/p/{n}" for n in range(300)}
    final = read_manifest(storage)
    left = {p.name for p in folder.iterdir() if ".part-" in p.name and "__metadata__" not in p.name}
    assert left == final.chunk_keys, "the interrupted write's chunks were cleaned up"
    assert datetime.fromisoformat(final.created_at)
