"""Store faults during real crawls, with the local store and with the platform store (through
apify-client, against the local API server): failing writes, writes that hang past a migration
window, a full disk, a kill in the middle of a multi-chunk write. Every time the crawl goes on or
stops cleanly, the newest complete checkpoint stays readable, and nothing half-written is
restored."""

from __future__ import annotations

import json
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest

from scrapy_actor_events.checkpoint.format import UnreadableCheckpoint
from scrapy_actor_events.tools.site import DemoSite

from ..support.crawling import crawl_doc, page_hits, scrapy_crawl
from ..support.events import start_events_server

if TYPE_CHECKING:
    from pathlib import Path

    from ..support.backends import LocalBackend

KEY = "SCRAPY_STATE_links"
STORES = {
    "local": "tests.support.faulty_store.FaultyStore",
    "apify": "tests.support.faulty_store.FaultyApifyStore",
}


class Faults:
    def __init__(self, backend: LocalBackend, tmp_path: Path) -> None:
        self.backend = backend
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

    def env(self, **extra: str) -> dict[str, str]:
        return self.backend.env(
            FAULTY_STORE_CONTROL=str(self.control), FAULTY_STORE_LOG=str(self.log), **extra
        )

    def args(self, site: DemoSite, *extra: str) -> list[str]:
        store = STORES[self.backend.name]
        return [
            "links",
            "-a",
            f"start_url={site.url}/",
            "-s",
            f"ACTOR_EVENTS_STORE={store}",
            *extra,
        ]

    def has_manifest(self) -> bool:
        return self.backend.value(KEY) is not None


class Watcher(threading.Thread):
    """Reads the newest checkpoint over and over while a crawl runs; it must always be readable."""

    def __init__(self, backend: LocalBackend) -> None:
        super().__init__(daemon=True)
        self.backend = backend
        self.stop = threading.Event()
        self.reads = 0
        self.errors: list[str] = []

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                # The reader follows a manifest replaced mid-read, so any failure is damage.
                if self.backend.read(KEY, "links") is not None:
                    self.reads += 1
            except UnreadableCheckpoint as exc:
                self.errors.append(exc.reason)
            time.sleep(0.02)


def test_a_third_of_writes_failing(backend: LocalBackend, tmp_path: Path) -> None:
    faults = Faults(backend, tmp_path)
    faults.set({"fail_ratio": 0.3, "seed": 3})
    watcher = Watcher(backend)
    watcher.start()
    with DemoSite(pages=250, delay=0.01) as site:
        env = faults.env(APIFY_PERSIST_STATE_INTERVAL_MILLIS="200")
        for target in (75, 155):
            run = scrapy_crawl(
                faults.args(site), env, kill_when=lambda t=target: page_hits(site) >= t
            )
            backend.after_kill()
            assert run.killed
        final = scrapy_crawl(faults.args(site), env)
    watcher.stop.set()
    watcher.join()
    assert final.returncode == 0
    assert "Spider closed (finished)" in final.stderr
    assert set(site.log.counts()) == {f"/p/{n}" for n in range(250)}, "0 pages lost"
    assert faults.count("fail") >= 3
    assert watcher.errors == []
    assert watcher.reads > 10
    stats = crawl_doc(backend.read(KEY, "links"))["stats"]
    assert stats["actor_events/checkpoint/failed"] >= 1
    print(
        f"{backend.name}: {faults.count('fail')} writes failed,"
        f" {stats['actor_events/checkpoint/failed']} checkpoints failed,"
        f" {stats['actor_events/checkpoint/count']} saved; the watcher read the newest"
        f" checkpoint {watcher.reads} times, 0 unreadable"
    )


# The faults below are injected in front of the store (tests/support/faulty_store.py), so the
# two stores would run the same code: they run with the local store only. The platform store's
# own slow, stalled and failing requests are in test_store_apify_crawl.py and store/test_apify.py.


@pytest.mark.parametrize("backend", ["local"], indirect=True)
def test_writes_that_hang_past_the_migration_window(backend: LocalBackend, tmp_path: Path) -> None:
    faults = Faults(backend, tmp_path)
    time_remaining = 1.0
    with DemoSite(pages=200, delay=0.03) as site, start_events_server() as server:
        env = faults.env(
            ACTOR_EVENTS_WEBSOCKET_URL=server.url, APIFY_PERSIST_STATE_INTERVAL_MILLIS="300"
        )
        state: dict[str, Any] = {}

        def platform() -> bool:
            """Hang every write; announce a migration; SIGKILL the crawl once its time is up."""
            if "hanging" not in state:
                if server.matching(r"^open 1 ") and page_hits(site) >= 60 and faults.has_manifest():
                    faults.set({"hang": 30})
                    state["hanging"] = True
            elif "before" not in state:
                # Checkpoints are written one at a time: once a write hangs, the one before it
                # has landed whole, and no later manifest can.
                if faults.count("hang") >= 1:
                    state["before"] = backend.manifest(KEY)
                    server.send(f"migrating {time_remaining:g}")
                    state["at"] = time.monotonic()
            else:
                return time.monotonic() - state["at"] > time_remaining + 0.5
            return False

        run = scrapy_crawl(
            faults.args(site, "-s", "CONCURRENT_REQUESTS=8"), env, kill_when=platform
        )
        backend.after_kill()
        assert run.killed, "still alive when the kill comes"
        before = state["before"]
        assert faults.count("hang") >= 1
        assert backend.manifest(KEY).generation == before.generation, "the hung write never landed"
        backend.read(KEY, "links")  # the previous checkpoint is whole
        faults.set({})
        final = scrapy_crawl(faults.args(site), faults.env())
        assert final.returncode == 0
        assert f"Resuming from checkpoint {before.generation}" in final.stderr
    assert set(site.log.counts()) == {f"/p/{n}" for n in range(200)}


@pytest.mark.parametrize("backend", ["local"], indirect=True)
def test_a_full_disk(backend: LocalBackend, tmp_path: Path) -> None:
    faults = Faults(backend, tmp_path)
    with DemoSite(pages=120, delay=0.01) as site:
        env = faults.env(APIFY_PERSIST_STATE_INTERVAL_MILLIS="200")
        state = {}

        def fill_the_disk() -> bool:
            if "full" not in state and faults.has_manifest() and page_hits(site) >= 40:
                state["full"] = backend.manifest(KEY)
                faults.set({"enospc": True})
            return False

        run = scrapy_crawl(faults.args(site), env, kill_when=fill_the_disk)
        assert run.returncode == 0, "the crawl goes on to its end"
        assert "No space left on device" in run.stderr
        assert "The previous checkpoint stays valid" in run.stderr
        last_good = backend.manifest(KEY)
        assert last_good.generation <= state["full"].generation + 1
        assert last_good.close_reason is None, "the close checkpoint could not be written"
        backend.read(KEY, "links")
        faults.set({})
        again = scrapy_crawl(faults.args(site), faults.env())
        assert again.returncode == 0
        assert "Resuming from checkpoint" in again.stderr
    assert set(site.log.counts()) == {f"/p/{n}" for n in range(120)}


def test_a_kill_in_the_middle_of_a_multi_chunk_write(backend: LocalBackend, tmp_path: Path) -> None:
    faults = Faults(backend, tmp_path)
    with DemoSite(pages=200, delay=0.01) as site:
        env = faults.env(APIFY_PERSIST_STATE_INTERVAL_MILLIS="200")
        small_chunks = ["-s", "ACTOR_EVENTS_CHUNK_BYTES=1024", "-s", "ACTOR_EVENTS_MAX_DELTAS=0"]
        state = {}

        def paused_mid_write() -> bool:
            if "armed" not in state and faults.has_manifest() and page_hits(site) >= 80:
                state["armed"] = True
                faults.set({"pause_after_chunks": 2, "marker": str(faults.marker)})
            if faults.marker.exists():
                # Kill once an upload of the paused write has landed in the store.
                generation = faults.marker.read_text().split(".part-")[1].split("-")[0]
                return any(f".part-{generation}-" in k for k in backend.chunk_keys(KEY))
            return False

        run = scrapy_crawl(faults.args(site, *small_chunks), env, kill_when=paused_mid_write)
        backend.after_kill()
        assert run.killed
        manifest = backend.manifest(KEY)
        written = faults.marker.read_text()
        generation = int(written.split(".part-")[1].split("-")[0])
        assert generation > manifest.generation, "the interrupted write is newer than the manifest"
        assert len(manifest.segments[0].chunks) > 2, "checkpoints span several chunks"
        orphans = [k for k in backend.chunk_keys(KEY) if f".part-{generation}-" in k]
        assert orphans, "chunks of the interrupted write are in the store"
        backend.read(KEY, "links")
        faults.set({})
        again = scrapy_crawl(faults.args(site, *small_chunks), faults.env())
        assert again.returncode == 0
        assert f"Resuming from checkpoint {manifest.generation}" in again.stderr
    assert set(site.log.counts()) == {f"/p/{n}" for n in range(200)}
    final = backend.manifest(KEY)
    assert backend.chunk_keys(KEY) == final.chunk_keys, "the interrupted write was cleaned up"
