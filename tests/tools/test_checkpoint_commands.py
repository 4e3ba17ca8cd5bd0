"""`scrapy-actor-events inspect` and `clear` on checkpoints left by real `scrapy crawl` runs, in
the local store and in the platform store (the local API server), run as the user runs them:
what a checkpoint holds (its items and their commit point too), and a checkpoint damaged in the
store."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from typing import TYPE_CHECKING

from scrapy.settings import Settings

from scrapy_actor_events import exit_codes
from scrapy_actor_events.config import Config
from scrapy_actor_events.environment import ActorEnvironment
from scrapy_actor_events.store import BINARY, build_store
from scrapy_actor_events.tools.site import DemoSite

from ..support.crawling import crawl_doc, run_sync, scrapy_crawl, subprocess_env
from ..support.datasets import dataset_items

if TYPE_CHECKING:
    from pathlib import Path

    from ..support.backends import LocalBackend

KEY = "SCRAPY_STATE_links"


def cli(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "scrapy_actor_events", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def inspect_json(env: dict[str, str], cwd: Path, *key: str) -> dict:
    result = cli("inspect", *key, "--json", env=env, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def saved(stderr: str) -> int:
    return len(re.findall(r"Checkpoint \d+ saved to", stderr))


def test_inspect_and_clear_what_a_killed_crawl_left(backend: LocalBackend, tmp_path: Path) -> None:
    env = backend.env(APIFY_PERSIST_STATE_INTERVAL_MILLIS="200")
    with DemoSite(pages=150, delay=0.01) as site:
        args = ["links", "-a", f"start_url={site.url}/", "-s", "CONCURRENT_REQUESTS=4"]
        first = scrapy_crawl(
            args,
            env,
            kill_when=lambda: len(site.log) >= 60 and backend.value(KEY) is not None,
        )
        backend.after_kill()
        assert first.killed, first.stderr[-3000:]

        # No KEY: the store holds one checkpoint, and inspect shows it.
        report = inspect_json(env, tmp_path)
        restored = backend.read(KEY, "links")
        assert restored is not None
        doc = crawl_doc(restored)
        assert report["key"] == KEY
        assert report["spider"] == "links"
        assert report["generation"] == restored.manifest.generation
        assert report["close_reason"] is None  # killed: no close checkpoint
        assert report["requests"] == len(restored.records) > 0
        assert report["pending"] + report["in_flight"] == report["requests"]
        assert report["in_flight"] == min(doc["in_flight"], len(restored.records))
        assert report["seen"] == len(restored.fingerprints) > 0
        assert report["top_domains"] == [{"domain": "127.0.0.1", "requests": report["requests"]}]
        assert sum(p["requests"] for p in report["top_priorities"]) == report["requests"]
        assert report["stats"]["item_scraped_count"] == doc["stats"]["item_scraped_count"]
        assert report["spider_state_keys"] == ["pages"]
        assert report["spider_state"]["pages"] == doc["state"]["pages"]
        assert report["stored_bytes"] == restored.manifest.stored_size
        assert backend.name in report["store"] or "platform" in report["store"]
        # The items it holds and the commit point, as the manifest's summary says.
        summary = json.loads(backend.value(KEY) or b"")["summary"]["items"]
        dataset = backend.dataset_id if backend.name == "apify" else "default"
        assert report["items_dataset"] == dataset
        assert report["items_committed"] == summary["committed"]
        assert report["items_buffered"] == summary["uncommitted"]
        assert report["items_committed"] + report["items_buffered"] > 0
        # The dataset holds at least what the checkpoint says is committed, at the offsets it says.
        assert len(dataset_items(backend)) >= report["items_offset"]

        text = cli("inspect", KEY, env=env, cwd=tmp_path)
        assert text.returncode == 0, text.stderr
        assert f"{report['requests']:,} ({report['pending']:,} pending" in text.stdout
        assert "it was killed" in text.stdout
        line = next(line for line in text.stdout.splitlines() if line.strip().startswith("items"))
        assert f"{report['items_buffered']:,} item" in line
        assert f"committed to dataset {dataset}" in line

        # Resumed to the end: the checkpoint says how the crawl stopped, and counts every save.
        second = scrapy_crawl(args, env)
        assert second.returncode == 0, second.stderr[-3000:]
    final = inspect_json(env, tmp_path, KEY)
    assert final["close_reason"] == "finished"
    assert final["requests"] == final["pending"] == final["in_flight"] == 0
    # Every save is counted. The kill may fall between a manifest landing in the store and its
    # log line, so the first run may have saved one more than it logged.
    first_run = final["stats"]["actor_events/checkpoint/count"] - saved(second.stderr)
    assert saved(first.stderr) <= first_run <= saved(first.stderr) + 1
    assert final["spider_state"]["pages"] == final["stats"]["item_scraped_count"] == 151

    # clear asks first; with no terminal to ask on, it needs --yes.
    refused = cli("clear", KEY, env=env, cwd=tmp_path)
    assert refused.returncode == exit_codes.ExitCode.USAGE
    assert "--yes" in refused.stderr
    assert backend.value(KEY) is not None
    chunks = backend.chunk_keys(KEY)
    assert chunks

    # A chunk damaged in the store: inspect reports the checkpoint unreadable and says how to
    # clear it; clear (which lists the records by key, reading none) removes it all the same.
    corrupt(backend, env, sorted(backend.manifest(KEY).chunk_keys)[0])
    result = cli("inspect", KEY, env=env, cwd=tmp_path)
    assert result.returncode == exit_codes.ExitCode.UNREADABLE, result.stderr
    assert f"Checkpoint {KEY}" in result.stderr
    assert "does not match its checksum" in result.stderr
    assert f"scrapy-actor-events clear {KEY}" in result.stderr
    # With no KEY it is the only checkpoint, so the same.
    assert cli("inspect", env=env, cwd=tmp_path).returncode == exit_codes.ExitCode.UNREADABLE

    cleared = cli("clear", KEY, "--yes", env=env, cwd=tmp_path)
    assert cleared.returncode == 0, cleared.stderr
    assert f"({len(chunks)} chunk records)" in cleared.stdout
    assert backend.value(KEY) is None
    assert backend.chunk_keys(KEY) == set()

    missing = cli("inspect", KEY, env=env, cwd=tmp_path)
    assert missing.returncode == exit_codes.ExitCode.NO_CHECKPOINT
    assert f"No checkpoint under {KEY}" in missing.stderr
    assert (
        cli("clear", KEY, "-y", env=env, cwd=tmp_path).returncode
        == exit_codes.ExitCode.NO_CHECKPOINT
    )
    empty = cli("inspect", env=env, cwd=tmp_path)
    assert empty.returncode == exit_codes.ExitCode.NO_CHECKPOINT


def _store_of(env: dict[str, str]):
    return build_store(Config.from_settings(Settings(), ActorEnvironment.from_environ(env)).store)


def corrupt(backend: LocalBackend, env: dict[str, str], chunk: str) -> None:
    """Cut the record ``chunk`` of the store ``env`` names to half its length."""
    data = backend.value(chunk)
    assert data is not None

    async def put() -> None:
        store = _store_of(env)
        await store.put(chunk, data[: len(data) // 2], BINARY)
        await store.close()

    api = getattr(backend, "api", None)
    if api is not None:
        api.verify_checkpoints = False  # the API server would flag the corruption as its own bug
    run_sync(put())


def test_foreign_records_and_a_bad_key(storage: Path, tmp_path: Path) -> None:
    env = subprocess_env(storage)
    future = b'{"format": "scrapy-actor-events/checkpoint", "version": 99}'

    async def put() -> None:
        store = _store_of(env)
        await store.put(KEY, future, BINARY)
        await store.put(f"{KEY}.part-1-0", b"x", BINARY)
        await store.put("SCRAPY_STATE_other", future, BINARY)
        await store.put("SCRAPY_STATE_notours", b'{"a": 1}', BINARY)
        await store.put("INPUT", b'{"startUrls": []}', BINARY)

    run_sync(put())
    result = cli("inspect", KEY, env=env, cwd=tmp_path)
    assert result.returncode == exit_codes.ExitCode.UNREADABLE
    assert "format version 99" in result.stderr
    listing = inspect_json(env, tmp_path)["checkpoints"]
    assert [(c["key"], c["readable"]) for c in listing] == [
        (KEY, False),
        ("SCRAPY_STATE_other", False),
    ]
    text = cli("inspect", env=env, cwd=tmp_path)
    assert text.returncode == 0
    assert "unreadable: format version 99" in text.stdout
    bad = cli("inspect", "no/slashes", env=env, cwd=tmp_path)
    assert bad.returncode == exit_codes.ExitCode.USAGE


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_store(storage: Path, tmp_path: Path) -> None:
    token = "secret-token-that-must-not-show"
    env = subprocess_env(
        storage,
        APIFY_IS_AT_HOME="1",
        APIFY_TOKEN=token,
        ACTOR_DEFAULT_KEY_VALUE_STORE_ID="abc",
        APIFY_API_BASE_URL=f"http://127.0.0.1:{_closed_port()}",
    )
    result = cli("inspect", KEY, "-s", "ACTOR_EVENTS_API_MAX_RETRIES=0", env=env, cwd=tmp_path)
    assert result.returncode == exit_codes.ExitCode.STORE_UNAVAILABLE, result.stderr
    assert "Cannot use platform key-value store abc" in result.stderr
    assert token not in result.stderr + result.stdout
    cleared = cli("clear", KEY, "-y", "-s", "ACTOR_EVENTS_API_MAX_RETRIES=0", env=env, cwd=tmp_path)
    assert cleared.returncode == exit_codes.ExitCode.STORE_UNAVAILABLE

    no_token = {k: v for k, v in env.items() if k != "APIFY_TOKEN"}
    result = cli("inspect", env=no_token, cwd=tmp_path)
    assert result.returncode == exit_codes.ExitCode.STORE_UNAVAILABLE
    assert "APIFY_TOKEN is not set" in result.stderr
