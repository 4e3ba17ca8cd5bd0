"""The platform dataset through the real apify-client against the local API server: the emulator
behaves as the platform does where it matters (a push stored but not confirmed, a lagging count,
whole-request refusals), apify-client's own retries duplicate items, and the commit does not."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from typing import Any

import pytest
from apify_client import ApifyClientAsync
from apify_client.errors import ApifyApiError
from scrapy.statscollectors import MemoryStatsCollector
from scrapy.utils.test import get_crawler

from scrapy_actor_events import stats_keys
from scrapy_actor_events.dataset.apify import ApifyDataset
from scrapy_actor_events.dataset.base import DatasetError, ItemsRefused
from scrapy_actor_events.dataset.commit import CommitPoint, Committer
from scrapy_actor_events.dataset.encoding import encode_item

from ..servers.apify_api import ApifyApiServer
from ..support.crawling import run_sync

RETRY = timedelta(milliseconds=10)


@pytest.fixture
def api():
    with ApifyApiServer() as server:
        yield server


def records(n: int, start: int = 0, pad: int = 0) -> list[bytes]:
    return [encode_item({"n": i, "pad": "x" * pad}) for i in range(start, start + n)]


def stats() -> MemoryStatsCollector:
    return MemoryStatsCollector(get_crawler())


def dataset(api: ApifyApiServer, dataset_id: str, st=None, timeout: float = 5.0) -> ApifyDataset:
    return ApifyDataset(
        api.token, api_url=api.url, dataset_id=dataset_id, timeout=timeout,
        min_retry_delay=0.05, stats=st,
    )  # fmt: skip


ORIGIN = CommitPoint(0, 0)


def commit(ds: ApifyDataset, st, items: list[bytes], start=ORIGIN, **kw) -> Any:
    async def run() -> CommitPoint:
        committer = Committer(ds, st, attempts=kw.pop("attempts", 5), min_delay=0.05)
        try:
            return await committer.commit(start, items, progress=lambda p: None, **kw)
        finally:
            await ds.close()

    kw.setdefault("check_first", False)
    return run_sync(run())


def ns(api: ApifyApiServer, dataset_id: str) -> list[int]:
    return [item["n"] for item in api.datasets.items(dataset_id)]


def test_apify_clients_own_retries_store_a_push_twice(api: ApifyApiServer) -> None:
    """The emulator is realistic: the failure that duplicates items under blind retries."""
    did = api.datasets.create()
    api.datasets.faults.script = ["store+500"]

    async def naive() -> None:
        client = ApifyClientAsync(api.token, api_url=api.url, min_delay_between_retries=RETRY)
        await client.dataset(did).push_items(items=[{"n": 1}])

    run_sync(naive())
    assert ns(api, did) == [1, 1], "apify-client retried a push the server had stored"


def test_a_timed_out_push_is_stored_twice_by_apify_client(api: ApifyApiServer) -> None:
    did = api.datasets.create()
    api.datasets.faults.script = ["store+stall"]
    api.datasets.faults.stall_seconds = 1.5

    async def naive() -> None:
        client = ApifyClientAsync(
            api.token, api_url=api.url, timeout_medium=timedelta(seconds=0.5),
            min_delay_between_retries=RETRY,
        )  # fmt: skip
        await client.dataset(did).push_items(items=[{"n": 1}])

    run_sync(naive())
    assert ns(api, did) == [1, 1]


@pytest.mark.parametrize("fault", ["store+500", "store+stall", "500", "429"])
def test_the_commit_stores_each_item_once_whatever_the_answer(api: ApifyApiServer, fault) -> None:
    did = api.datasets.create()
    api.datasets.faults.script = [fault]
    api.datasets.faults.stall_seconds = 1.5
    st = stats()
    point = commit(dataset(api, did, st, timeout=0.5), st, records(5))
    assert ns(api, did) == [0, 1, 2, 3, 4]
    assert point == CommitPoint(5, 5)
    already = 5 if fault.startswith("store") else 0
    assert st.get_value(stats_keys.ITEMS_ALREADY_THERE, 0) == already
    # One request per push, none hidden by client retries: the failed one, then a read (unless
    # the answer said nothing was stored), then the push that was needed (if any).
    expected = 1 if fault.startswith("store") else 2
    deadline = time.monotonic() + 5  # a stalled answer is logged once it is sent
    while len(posts := [e for e in api.requests("POST") if e.store == did]) < expected:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert len(posts) == expected


def test_a_commit_resumed_from_a_point_pushes_only_what_is_missing(api: ApifyApiServer) -> None:
    did = api.datasets.create()
    items = records(10)
    st = stats()
    # A previous process pushed items 0-6 (its last push of 4-6 unconfirmed), then was killed:
    # its checkpoint says 0-3 are committed.
    commit(dataset(api, did, st), st, items[:7])
    point = commit(dataset(api, did, st), st, items[4:], CommitPoint(4, 4), check_first=True)
    assert ns(api, did) == list(range(10))
    assert point == CommitPoint(10, 10)
    assert st.get_value(stats_keys.ITEMS_ALREADY_THERE) == 3


def test_the_item_count_lags_and_the_check_does_not_use_it(api: ApifyApiServer) -> None:
    did = api.datasets.create()
    api.datasets.count_lag = 60.0
    st = stats()
    commit(dataset(api, did, st), st, records(3))

    async def count() -> int:
        ds = dataset(api, did)
        try:
            return await ds.length_lower_bound()
        finally:
            await ds.close()

    assert run_sync(count()) == 0, "the platform's count lags the writes"
    again = commit(dataset(api, did, st), st, records(3), check_first=True)
    assert again == CommitPoint(3, 3)
    assert ns(api, did) == [0, 1, 2], "the check read the items, not the count"


def test_items_the_platform_names_as_invalid_are_left_out_and_counted(api: ApifyApiServer) -> None:
    did = api.datasets.create()
    api.datasets.validator = lambda item: "odd" if item["n"] % 3 == 1 else None
    st = stats()
    point = commit(dataset(api, did, st), st, records(8))
    assert ns(api, did) == [0, 2, 3, 5, 6]
    assert st.get_value(stats_keys.ITEMS_REFUSED) == 3
    assert point == CommitPoint(8, 5)


def test_a_refusal_that_names_no_item_is_narrowed_down_by_halves(api: ApifyApiServer) -> None:
    did = api.datasets.create()
    api.datasets.validator = lambda item: "bad" if item["n"] in (2, 5) else None
    api.datasets.name_invalid_items = False
    st = stats()
    point = commit(dataset(api, did, st), st, records(8))
    assert ns(api, did) == [0, 1, 3, 4, 6, 7]
    assert st.get_value(stats_keys.ITEMS_REFUSED) == 2
    assert point == CommitPoint(8, 6)


def test_requests_are_split_at_the_sdks_limit_and_again_on_413(api: ApifyApiServer) -> None:
    did = api.datasets.create()
    api.datasets.max_request_bytes = 5_000_000  # what the API reference says
    st = stats()
    items = records(5, pad=2_000_000)  # 10 MB: two requests at the SDK's limit, each too big here
    point = commit(dataset(api, did, st), st, items)
    assert ns(api, did) == [0, 1, 2, 3, 4]
    assert point == CommitPoint(5, 5)
    statuses = [e.status for e in api.requests("POST") if e.store == did]
    assert 413 in statuses
    assert st.get_value(stats_keys.ITEMS_REFUSED, 0) == 0


def test_compressed_bodies_and_pagination_headers(api: ApifyApiServer) -> None:
    did = api.datasets.create()

    async def run() -> tuple[list[Any], Any, list[Any]]:
        for compression in ("gzip", "brotli"):
            client = ApifyClientAsync(api.token, api_url=api.url, compression=compression)
            await client.dataset(did).push_items(items=[{"n": i, "p": "é" * 600} for i in range(3)])
        client = ApifyClientAsync(api.token, api_url=api.url)
        page = await client.dataset(did).list_items(offset=1, limit=2, desc=True)
        every = [i async for i in client.dataset(did).iterate_items()]
        return page.items, page, every

    items, page, every = run_sync(run())
    assert [i["n"] for i in items] == [1, 0]
    assert (page.offset, page.limit, page.count, page.desc) == (1, 2, 2, True)
    assert len(every) == 6
    encodings = {e.size for e in api.requests("POST")}
    assert all(size < 1800 for size in encodings), "the bodies came compressed"


def test_a_request_that_is_not_objects_is_refused_whole(api: ApifyApiServer) -> None:
    did = api.datasets.create()

    async def run() -> None:
        ds = dataset(api, did)
        try:
            await ds.push([b'{"n":1}', b"[2]"])
        finally:
            await ds.close()

    with pytest.raises(ItemsRefused):
        run_sync(run())
    assert ns(api, did) == []


def test_errors_never_show_the_token(api: ApifyApiServer) -> None:
    async def run() -> None:
        ds = dataset(api, "missing")
        try:
            await ds.push(records(1))
        finally:
            await ds.close()

    with pytest.raises(DatasetError) as info:
        run_sync(run())
    assert api.token not in str(info.value)
    assert info.value.stored is False


def test_a_named_dataset_is_found_or_created(api: ApifyApiServer) -> None:
    async def run() -> str:
        ds = ApifyDataset(api.token, api_url=api.url, dataset_name="pages")
        try:
            await ds.open()
            await ds.push(records(2))
            return ds.dataset_id or ""
        finally:
            await ds.close()

    first = run_sync(run())
    assert run_sync(run()) == first
    assert ns(api, first) == [0, 1, 0, 1]


def test_the_emulator_answers_as_apify_clients_models_expect(api: ApifyApiServer) -> None:
    did = api.datasets.create()

    async def run() -> Any:
        client = ApifyClientAsync(api.token, api_url=api.url)
        return await client.dataset(did).get(), await client.dataset("nope").get()

    found, missing = run_sync(run())
    assert found.id == did
    assert found.item_count == 0
    assert missing is None
    with pytest.raises(ApifyApiError):
        run_sync(asyncio.wait_for(_push_garbage(api, did), 10))


async def _push_garbage(api: ApifyApiServer, did: str) -> None:
    client = ApifyClientAsync(api.token, api_url=api.url, max_retries=0)
    await client.dataset(did).push_items(items="not json")
