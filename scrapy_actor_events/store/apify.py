"""The Apify platform's key-value store, through apify-client's async client.

Every call runs on the asyncio loop under Scrapy's ``AsyncioSelectorReactor``: an upload never
blocks the reactor (the client prepares bodies in a worker thread and its transport, impit, is
async).
The client retries 5xx answers, 429s and network errors with exponential backoff
(``ACTOR_EVENTS_API_MAX_RETRIES``, ``ACTOR_EVENTS_API_MIN_RETRY_DELAY``); what still fails is raised
as :class:`StoreError`, whose message never holds the API token. Every operation can be cancelled
(``asyncio.timeout``, ``Task.cancel``): a record PUT is one request, so the platform keeps either
the old value or the new one.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Self, TypeVar

from apify_client.errors import NotFoundError

from .. import stats_keys
from .base import JSON, MAX_RECORD_BYTES, StoreError, StoreMissing, check_key
from .platform_client import (
    STORE_REQUEST_STATS,
    CountingHttpClient,
    PlatformResource,
    describe_failure,
    new_client,
    public_url,
    require_running_loop,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from apify_client import ApifyClientAsync
    from apify_client._resource_clients import KeyValueStoreClientAsync
    from scrapy.statscollectors import StatsCollector

    from .base import StoreOptions

logger = logging.getLogger(__name__)

T = TypeVar("T")

#: Most keys one listing call returns.
_LIST_PAGE = 1000


class ApifyKeyValueStore(PlatformResource):
    """A key-value store on the Apify platform (a :class:`~.base.KeyValueStore`)."""

    kind = "key-value store"

    def __init__(
        self,
        token: str,
        *,
        api_url: str,
        store_id: str | None = None,
        store_name: str | None = None,
        max_retries: int = 4,
        min_retry_delay: float = 0.5,
        timeout: float = 60.0,
        stats: StatsCollector | None = None,
    ) -> None:
        super().__init__(
            token,
            api_url=api_url,
            max_retries=max_retries,
            min_retry_delay=min_retry_delay,
            timeout=timeout,
            stats=stats,
        )
        if (store_id is None) == (store_name is None):
            raise ValueError("Give the platform key-value store either a store id or a name.")
        self.store_id = store_id
        self.store_name = store_name
        self._client: ApifyClientAsync | None = None
        self._http: CountingHttpClient | None = None
        self._kv: KeyValueStoreClientAsync | None = None
        # Fixed before a name is resolved to an id, so that it is the same in every run.
        self._ref = store_name or store_id or ""
        self._resolving: asyncio.Lock | None = None

    @classmethod
    def from_options(cls, options: StoreOptions, stats: StatsCollector | None = None) -> Self:
        if not options.token:
            raise ValueError(
                "The platform key-value store needs an API token and APIFY_TOKEN is not set"
                + (" (APIFY_IS_AT_HOME is)" if options.is_at_home else "")
                + ". Set it, or ACTOR_EVENTS_STORE = 'local' to checkpoint to the local store."
            )
        return cls(
            options.token,
            api_url=options.api_url,
            store_id=None if options.store_name else options.store_id,
            store_name=options.store_name,
            max_retries=options.api_max_retries,
            min_retry_delay=options.api_min_retry_delay,
            timeout=options.api_timeout,
            stats=stats,
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"

    @property
    def ref(self) -> str:
        return self._ref

    def describe(self) -> str:
        return self._describe(self.store_name, self.store_id)

    # -- plumbing -----------------------------------------------------------------------------

    def _new_client(self) -> ApifyClientAsync:
        try:
            require_running_loop("The platform key-value store")
        except RuntimeError as exc:
            raise StoreError(str(exc)) from None
        client, self._http = new_client(
            self._token,
            self.api_url,
            self._count,
            STORE_REQUEST_STATS,
            max_retries=self.max_retries,
            min_retry_delay=self.min_retry_delay,
        )
        return client

    async def _store(self) -> KeyValueStoreClientAsync:
        if self._kv is not None:
            return self._kv
        if self._resolving is None:
            self._resolving = asyncio.Lock()
        async with self._resolving:  # one resolution, however many first calls run at once
            if self._kv is not None:
                return self._kv
            if self._client is None:
                self._client = self._new_client()
            if self.store_id is None:
                assert self.store_name is not None
                found = await self._client.key_value_stores().get_or_create(
                    name=self.store_name, timeout=self._timeout()
                )
                self.store_id = found.id
                logger.info("Platform key-value store %r has id %s", self.store_name, found.id)
            else:
                await self._check_exists(self._client, self.store_id)
            self._kv = self._client.key_value_store(self.store_id)
        return self._kv

    async def _check_exists(self, client: ApifyClientAsync, store_id: str) -> None:
        """Raise :class:`StoreMissing` unless the store ``store_id`` exists.

        apify-client turns every 404 into None: without this, a store that is gone reads as "no
        checkpoint", a new crawl starts, and every write fails. The SDK checks the same way.
        """
        if await client.key_value_store(store_id).get(timeout=self._timeout()) is not None:
            return
        raise StoreMissing(
            f"The platform key-value store {store_id} does not exist at"
            f" {public_url(self.api_url)} (or this token may not see it). Unnamed stores expire"
            " 7 days after their run. Point ACTOR_EVENTS_STORE_ID (or the run's"
            " ACTOR_DEFAULT_KEY_VALUE_STORE_ID) at an existing store, or set"
            " ACTOR_EVENTS_STORE_NAME to keep checkpoints in a named store, created if missing."
        )

    def _timeout(self) -> timedelta:
        return timedelta(seconds=self.timeout)

    async def _call(self, what: str, operation: Callable[[], Awaitable[T]]) -> T:
        """Run ``operation``; raise what still fails after the client's retries as StoreError."""
        try:
            return await operation()
        except StoreError:
            self._count(stats_keys.STORE_FAILED)
            raise
        except Exception as exc:
            self._count(stats_keys.STORE_FAILED)
            # `from None`: the client's exception and its cause are not shown.
            reason = describe_failure(exc, self._token)
            raise StoreError(f"{what} in {self.describe()} failed: {reason}") from None

    # -- the KeyValueStore protocol -----------------------------------------------------------

    async def get(self, key: str) -> bytes | None:
        check_key(key)

        async def get() -> bytes | None:
            record = await (await self._store()).get_record_as_bytes(key, timeout=self._timeout())
            if record is None:
                return None
            value = record["value"]
            return bytes(value) if value is not None else b""

        return await self._call(f"reading {key}", get)

    async def put(self, key: str, value: bytes, content_type: str) -> None:
        check_key(key)
        if len(value) > MAX_RECORD_BYTES:
            self._count(stats_keys.STORE_FAILED)
            raise StoreError(
                f"record {key} is {len(value):,} bytes; the platform refuses records over"
                f" {MAX_RECORD_BYTES:,} bytes"
            )
        # JSON is worth the client's gzip; checkpoint chunks are zstd already: sent as they are.
        encoding = None if content_type == JSON else "identity"

        async def put() -> None:
            await (await self._store()).set_record(
                key,
                value,
                content_type=content_type,
                content_encoding=encoding,
                timeout=self._timeout(),
            )

        await self._call(f"writing {key} ({len(value):,} bytes)", put)

    async def delete(self, key: str) -> None:
        check_key(key)

        async def delete() -> None:
            try:
                await (await self._store()).delete_record(key, timeout=self._timeout())
            except NotFoundError:
                return

        await self._call(f"deleting {key}", delete)

    async def list_keys(self, prefix: str) -> list[str]:
        async def list_keys() -> list[str]:
            store = await self._store()
            found = store.iterate_keys(
                prefix=prefix or None, chunk_size=_LIST_PAGE, timeout=self._timeout()
            )
            return sorted([item.key async for item in found if item.key.startswith(prefix)])

        return await self._call(f"listing keys {prefix}*", list_keys)

    async def close(self) -> None:
        http, self._http, self._client, self._kv = self._http, None, None, None
        if http is not None:
            await http.aclose()
