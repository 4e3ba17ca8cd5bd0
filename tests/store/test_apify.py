"""The platform store through the real apify-client, against the local API server."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest
from apify_client import ApifyClientAsync
from apify_client.errors import ApifyApiError
from scrapy.settings import Settings
from scrapy.statscollectors import MemoryStatsCollector
from scrapy.utils.defer import deferred_f_from_coro_f, maybe_deferred_to_future
from scrapy.utils.test import get_crawler

from scrapy_actor_events.checkpoint.writer import Checkpointer
from scrapy_actor_events.config import Config
from scrapy_actor_events.environment import ActorEnvironment
from scrapy_actor_events.stats_keys import CHECKPOINT_FAILED as STATS_FAILED
from scrapy_actor_events.store import JSON, LocalKeyValueStore, StoreError, build_store
from scrapy_actor_events.store.apify import MAX_RECORD_BYTES, ApifyKeyValueStore
from scrapy_actor_events.store.base import BINARY

from ..support.bulk import BulkSource
from ..support.crawling import scrapy_crawl, subprocess_env

if TYPE_CHECKING:
    from pathlib import Path

    from ..servers.apify_api import ApifyApiServer

KEY = "SCRAPY_STATE_big"


def make_store(api: ApifyApiServer, store_id: str, **kwargs) -> ApifyKeyValueStore:
    kwargs.setdefault("min_retry_delay", 0.01)
    return ApifyKeyValueStore(api.token, api_url=api.url, store_id=store_id, **kwargs)


def stats_collector() -> MemoryStatsCollector:
    return MemoryStatsCollector(get_crawler())


def platform_config(api: ApifyApiServer | None = None, **settings) -> Config:
    env = ActorEnvironment.from_environ(api.env("unused") if api else {})
    return Config.from_settings(Settings(settings), env)


@deferred_f_from_coro_f
async def test_records_keys_and_encodings(apify_api: ApifyApiServer) -> None:
    apify_api.page_limit = 2  # several pages of keys
    sid = apify_api.create_store()
    store = make_store(apify_api, sid)
    manifest = b'{"format": "x", "padding": "' + b"p" * 5000 + b'"}'
    await store.put("STATE(1)", manifest, JSON)
    for i in range(5):
        await store.put(f"STATE(1).part-1-{i}", bytes([i]) * 2000, BINARY)
    await store.put("other!'_-.", b"", BINARY)
    # JSON goes up gzipped and is stored as uploaded; chunks (zstd already) go as they are.
    assert apify_api.record(sid, "STATE(1)").content_encoding == "gzip"
    assert apify_api.record(sid, "STATE(1)").value != manifest
    assert apify_api.record(sid, "STATE(1).part-1-0").content_encoding == "identity"
    assert await store.get("STATE(1)") == manifest
    assert await store.get("STATE(1).part-1-3") == bytes([3]) * 2000
    assert await store.get("other!'_-.") == b""
    assert await store.get("missing") is None
    assert await store.list_keys("STATE(1).part-") == [f"STATE(1).part-1-{i}" for i in range(5)]
    assert len(await store.list_keys("")) == 7
    apify_api.redirect_reads = True  # the platform may answer a read with a 302
    assert await store.get("STATE(1).part-1-4") == bytes([4]) * 2000
    assert [e.status for e in apify_api.log[-2:]] == [302, 200]
    apify_api.redirect_reads = False
    client = ApifyClientAsync(apify_api.token, api_url=apify_api.url)
    assert await client.key_value_store(sid).record_exists("STATE(1)")  # HEAD
    assert not await client.key_value_store(sid).record_exists("missing")
    await client.http_client.aclose()
    await store.delete("STATE(1).part-1-0")
    await store.delete("never-existed")
    assert "STATE(1).part-1-0" not in apify_api.keys(sid)
    for key in ("a/b", "", "a b", "x" * 257, "a:b"):
        with pytest.raises(StoreError, match="invalid key"):
            await store.put(key, b"", JSON)
    await store.close()


@deferred_f_from_coro_f
async def test_a_named_store_is_created_once(apify_api: ApifyApiServer) -> None:
    first = ApifyKeyValueStore(apify_api.token, api_url=apify_api.url, store_name="checkpoints")
    assert first.describe() == f"platform key-value store named 'checkpoints' at {apify_api.url}"
    await first.put("k", b"1", BINARY)
    second = ApifyKeyValueStore(apify_api.token, api_url=apify_api.url, store_name="checkpoints")
    assert await second.get("k") == b"1"
    assert first.store_id == second.store_id
    assert [s.name for s in apify_api.stores.values()] == ["checkpoints"]
    assert f"(id {first.store_id})" in first.describe()
    await first.close()
    await second.close()


@deferred_f_from_coro_f
async def test_a_wrong_token_fails_without_showing_any_token(apify_api: ApifyApiServer) -> None:
    apify_api.echo_auth_in_errors = True  # a careless server that repeats the header
    apify_api.forbidden_tokens = ("apify_api_READONLY",)
    sid = apify_api.create_store()
    for token, status in (("apify_api_WRONG", 401), ("apify_api_READONLY", 403)):
        store = ApifyKeyValueStore(token, api_url=apify_api.url, store_id=sid, max_retries=0)
        with pytest.raises(StoreError) as caught:
            await store.get("k")
        message = str(caught.value)
        assert f"HTTP {status}" in message
        assert token not in message
        assert "***" in message  # the echoed header, scrubbed
        assert caught.value.__cause__ is None
        assert caught.value.__suppress_context__
        assert token not in repr(store) + store.describe()
        await store.close()


@deferred_f_from_coro_f
async def test_records_over_the_limit_are_refused(apify_api: ApifyApiServer) -> None:
    sid = apify_api.create_store()
    store = make_store(apify_api, sid)
    await store.put("at-the-limit", b"\0" * MAX_RECORD_BYTES, BINARY)
    assert len(apify_api.value(sid, "at-the-limit")) == MAX_RECORD_BYTES
    with pytest.raises(StoreError, match="refuses records over 9,437,184 bytes"):
        await store.put("over", b"\0" * (MAX_RECORD_BYTES + 1), BINARY)
    # The server refuses them too, whatever the client.
    client = ApifyClientAsync(apify_api.token, api_url=apify_api.url, max_retries=0)
    kv = client.key_value_store(sid)
    with pytest.raises(ApifyApiError) as caught:
        await kv.set_record("over", b"\0" * (MAX_RECORD_BYTES + 1), content_encoding="identity")
    assert caught.value.status_code == 413
    assert "over" not in apify_api.keys(sid)
    await client.http_client.aclose()
    await store.close()


@deferred_f_from_coro_f
async def test_retries_are_counted_and_what_still_fails_is_a_store_error(
    apify_api: ApifyApiServer,
) -> None:
    sid = apify_api.create_store()
    stats = stats_collector()
    store = make_store(apify_api, sid, max_retries=2, stats=stats)
    apify_api.burst_429(2)
    await store.put("k", b"v", BINARY)  # two 429s, then it lands
    assert apify_api.value(sid, "k") == b"v"
    apify_api.faults.write_error_rate = 1.0
    with pytest.raises(StoreError, match=r"writing k \(1 bytes\) .* HTTP 500 .*after 3 attempts"):
        await store.put("k", b"w", BINARY)
    assert apify_api.value(sid, "k") == b"v"
    assert stats.get_stats() == {
        "actor_events/store/requests": 7,  # the store's existence check, then 3 + 3 record PUTs
        "actor_events/store/rate_limited": 2,
        "actor_events/store/server_errors": 3,
        "actor_events/store/failed": 1,
    }
    await store.close()


@deferred_f_from_coro_f
async def test_a_cancelled_put_leaves_the_old_value_or_the_new_one(
    apify_api: ApifyApiServer,
) -> None:
    sid = apify_api.create_store()
    store = make_store(apify_api, sid)
    old, new = b"old" * 100_000, b"new" * 1_000_000
    await store.put("k", old, BINARY)
    apify_api.faults.latency = 0.3
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(store.put("k", new, BINARY), 0.1)
    assert apify_api.value(sid, "k") in (old, new)
    apify_api.faults.latency = 0
    await asyncio.sleep(0.4)  # the server finishes the request it had
    assert apify_api.value(sid, "k") in (old, new)
    await store.put("k2", b"after", BINARY)  # the store goes on working
    assert await store.get("k2") == b"after"
    await store.close()


@deferred_f_from_coro_f
async def test_a_checkpoint_over_30_mb_round_trips_in_chunks(apify_api: ApifyApiServer) -> None:
    sid = apify_api.create_store()
    stats = stats_collector()
    store = make_store(apify_api, sid, stats=stats)
    source = BulkSource(31_000_000)
    config = platform_config(ACTOR_EVENTS_UPLOAD_CONCURRENCY=3)
    checkpointer = Checkpointer(store, KEY, "big", config.checkpoint, stats)
    checkpointer.source = source
    apify_api.faults.latency = 0.05
    result = await checkpointer._take(frozenset({"test"}), None)
    assert result.saved, result.error
    assert result.bytes > 30_000_000
    puts = [e for e in apify_api.requests("PUT") if e.key and e.key.startswith(f"{KEY}.part-")]
    assert len(puts) == 4
    assert max(e.size for e in apify_api.requests("PUT")) <= 9_000_000 < MAX_RECORD_BYTES
    assert apify_api.max_in_flight == 3, "chunks go up ACTOR_EVENTS_UPLOAD_CONCURRENCY at a time"
    apify_api.max_in_flight = 0
    restored = await Checkpointer(store, KEY, "big", config.checkpoint, stats).read()
    assert restored.records == source.records
    assert apify_api.max_in_flight == 3, "and come down the same way"
    assert apify_api.verified == 1
    await store.close()


@deferred_f_from_coro_f
async def test_a_cancelled_checkpoint_keeps_the_previous_one(apify_api: ApifyApiServer) -> None:
    sid = apify_api.create_store()
    stats = stats_collector()
    store = make_store(apify_api, sid, stats=stats)
    config = platform_config(ACTOR_EVENTS_CHUNK_BYTES=200_000)
    checkpointer = Checkpointer(store, KEY, "big", config.checkpoint, stats)
    checkpointer.source = BulkSource(1_000_000)
    first = await checkpointer._take(frozenset({"test"}), None)
    assert first.saved
    before = apify_api.value(sid, KEY)
    apify_api.faults.latency = 0.3
    with pytest.raises(TimeoutError):  # a deadline, in the middle of the chunk uploads
        await asyncio.wait_for(checkpointer._take(frozenset({"deadline"}), None), 0.1)
    assert checkpointer.source.failures == 1
    assert stats.get_value(STATS_FAILED) == 1
    assert apify_api.value(sid, KEY) == before
    apify_api.faults.latency = 0
    await asyncio.sleep(0.4)  # uploads the cancel could not stop land now
    assert apify_api.read_checkpoint(sid, KEY, "big").manifest.generation == 1
    third = await checkpointer._take(frozenset({"test"}), None)
    assert third.saved
    assert third.generation == 3, "the cancelled checkpoint's chunk keys are not reused"
    assert await checkpointer.collect_garbage() > 0  # what the cancelled write left
    assert set(apify_api.keys(sid)) == {KEY} | checkpointer.manifest.chunk_keys
    await store.close()


@deferred_f_from_coro_f
async def test_cancelling_the_writer_answers_every_waiter(apify_api: ApifyApiServer) -> None:
    sid = apify_api.create_store()
    checkpointer = Checkpointer(
        make_store(apify_api, sid), KEY, "big", platform_config().checkpoint, stats_collector()
    )
    checkpointer.source = BulkSource(100_000)
    apify_api.faults.latency = 0.5
    writing = checkpointer.request("a")
    await asyncio.sleep(0.1)
    queued = checkpointer.request("b")
    [task] = [t for t in asyncio.all_tasks() if t.get_coro().__qualname__ == "Checkpointer._serve"]
    task.cancel()
    results = [await maybe_deferred_to_future(d) for d in (writing, queued)]
    assert [r.error for r in results] == ["the checkpoint was cancelled"] * 2
    apify_api.faults.latency = 0
    assert (await maybe_deferred_to_future(checkpointer.request("c"))).saved


def test_the_store_is_chosen_from_the_environment(
    apify_api: ApifyApiServer, tmp_path: Path
) -> None:
    def chosen(env: dict[str, str], **settings) -> str:
        config = Config.from_settings(
            Settings({"ACTOR_EVENTS_STORAGE_DIR": str(tmp_path), **settings}),
            ActorEnvironment.from_environ(env),
        )
        return build_store(config.store).describe()

    url, token = apify_api.url, apify_api.token
    assert chosen({}).startswith("local store")
    assert chosen({"APIFY_TOKEN": token}).startswith("local store")
    # Locally the run's default store is key_value_stores/default/, as crawlee keeps it.
    assert chosen({"ACTOR_DEFAULT_KEY_VALUE_STORE_ID": "abc"}).startswith("local store 'default'")
    platform = {"APIFY_TOKEN": token, "APIFY_API_BASE_URL": url}
    assert chosen({**platform, "APIFY_IS_AT_HOME": "1"}) == (
        f"platform key-value store default at {url}"
    )
    assert chosen({**platform, "ACTOR_DEFAULT_KEY_VALUE_STORE_ID": "abc"}) == (
        f"platform key-value store abc at {url}"
    )
    assert chosen(platform, ACTOR_EVENTS_STORE_NAME="my-store").startswith(
        "platform key-value store named 'my-store'"
    )
    assert chosen({**platform, "APIFY_IS_AT_HOME": "1"}, ACTOR_EVENTS_STORE="local").startswith(
        "local store"
    )
    assert chosen(platform, ACTOR_EVENTS_STORE="apify").startswith("platform key-value store")
    assert "secret" not in chosen(
        {**platform, "APIFY_IS_AT_HOME": "1", "APIFY_API_BASE_URL": "https://u:secret@h.example"}
    )
    with pytest.raises(ValueError, match="APIFY_TOKEN is not set \\(APIFY_IS_AT_HOME is\\)"):
        chosen({"APIFY_IS_AT_HOME": "1"})
    with pytest.raises(ValueError, match="APIFY_TOKEN is not set"):
        chosen({}, ACTOR_EVENTS_STORE="apify")
    with pytest.raises(ValueError, match="ACTOR_EVENTS_STORE_NAME='a/b' is not a valid"):
        chosen(platform, ACTOR_EVENTS_STORE_NAME="a/b")
    assert isinstance(
        build_store(
            Config.from_settings(Settings({"ACTOR_EVENTS_STORAGE_DIR": str(tmp_path)})).store
        ),
        LocalKeyValueStore,
    )


def test_the_platform_store_needs_the_asyncio_reactor(storage: Path, apify_api) -> None:
    env = subprocess_env(storage, **apify_api.env(apify_api.create_store()))
    reactor = "twisted.internet.epollreactor.EPollReactor"
    run = scrapy_crawl(["links", "-s", f"TWISTED_REACTOR={reactor}"], env, timeout=60)
    assert run.returncode != 0
    assert "installed Twisted reactor is EPollReactor" in run.stderr
    assert "Set TWISTED_REACTOR = 'twisted.internet.asyncioreactor.AsyncioSelectorReactor'" in (
        run.stderr
    )
    assert apify_api.log == []
