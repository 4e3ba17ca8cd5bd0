"""A dataset on the Apify platform, through apify-client's async client on Scrapy's asyncio loop.

Pushes go through a client with ``max_retries=0``: apify-client retries a push that got a 5xx or
timed out, and a push that was in fact stored then lands twice (there is no idempotency key for
dataset items). A failed push raises :class:`~.base.DatasetError` with ``stored=None`` instead,
and the caller reads the dataset before pushing again (:mod:`.commit`). Reads are idempotent and
go through a second client that retries as the store's does (``ACTOR_EVENTS_API_MAX_RETRIES``).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Self

from apify_client.errors import ApifyApiError

from ..store.platform_client import (
    DATASET_REQUEST_STATS,
    PlatformResource,
    describe_failure,
    new_client,
    require_running_loop,
)
from .base import PAYLOAD_LIMIT, DatasetError, ItemsRefused
from .encoding import json_array

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from apify_client import ApifyClientAsync
    from apify_client._resource_clients import DatasetClientAsync
    from scrapy.statscollectors import StatsCollector

    from ..store.platform_client import CountingHttpClient
    from .base import DatasetOptions

logger = logging.getLogger(__name__)

#: Statuses after which the platform surely stored nothing of the request.
_REFUSED = {400, 413}


class ApifyDataset(PlatformResource):
    """A dataset on the Apify platform (a :class:`~.base.Dataset`)."""

    kind = "dataset"
    max_request_bytes = PAYLOAD_LIMIT

    def __init__(
        self,
        token: str,
        *,
        api_url: str,
        dataset_id: str | None = None,
        dataset_name: str | None = None,
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
        if (dataset_id is None) == (dataset_name is None):
            raise ValueError("Give the platform dataset either a dataset id or a name.")
        self.dataset_id = dataset_id
        self.dataset_name = dataset_name
        self._reads: tuple[ApifyClientAsync, CountingHttpClient] | None = None
        self._pushes: tuple[ApifyClientAsync, CountingHttpClient] | None = None

    @classmethod
    def from_options(cls, options: DatasetOptions, stats: StatsCollector | None = None) -> Self:
        store = options.store
        if not store.token:
            raise ValueError(
                "The platform dataset needs an API token and APIFY_TOKEN is not set. Set it, or"
                " ACTOR_EVENTS_DATASET = False to keep items out of the dataset."
            )
        dataset_id = options.dataset_id or options.default_dataset_id
        if options.dataset_name is None and dataset_id is None:
            raise ValueError(
                "Items go to the platform's dataset, and no dataset is named: set"
                " ACTOR_DEFAULT_DATASET_ID (the platform sets it in a run), ACTOR_EVENTS_DATASET_ID"
                " or ACTOR_EVENTS_DATASET_NAME, or ACTOR_EVENTS_DATASET = False."
            )
        return cls(
            store.token,
            api_url=store.api_url,
            dataset_id=None if options.dataset_name else dataset_id,
            dataset_name=options.dataset_name,
            max_retries=store.api_max_retries,
            min_retry_delay=store.api_min_retry_delay,
            timeout=store.api_timeout,
            stats=stats,
        )

    @property
    def ref(self) -> str:
        return self.dataset_name or self.dataset_id or ""

    def describe(self) -> str:
        return self._describe(self.dataset_name, self.dataset_id)

    # -- plumbing -----------------------------------------------------------------------------

    def _client(self, *, retries: bool) -> ApifyClientAsync:
        require_running_loop("The platform dataset")
        if retries:
            if self._reads is None:
                self._reads = new_client(
                    self._token, self.api_url, self._count, DATASET_REQUEST_STATS,
                    max_retries=self.max_retries, min_retry_delay=self.min_retry_delay,
                )  # fmt: skip
            return self._reads[0]
        if self._pushes is None:
            # No retries: a push the platform stored but did not confirm must not be sent again
            # before the dataset has been read.
            self._pushes = new_client(
                self._token, self.api_url, self._count, DATASET_REQUEST_STATS,
                max_retries=0, min_retry_delay=self.min_retry_delay,
            )  # fmt: skip
        return self._pushes[0]

    def _dataset(self, *, retries: bool = True) -> DatasetClientAsync:
        if self.dataset_id is None:
            raise DatasetError(f"{self.describe()} is not open")
        return self._client(retries=retries).dataset(self.dataset_id)

    def _timeout(self) -> timedelta:
        return timedelta(seconds=self.timeout)

    async def _call(self, what: str, operation: Callable[[], Awaitable[Any]]) -> Any:
        try:
            return await operation()
        except asyncio.CancelledError:
            raise
        except DatasetError:
            raise
        except Exception as exc:
            reason = describe_failure(exc, self._token)
            message = f"{what} {self.describe()} failed: {reason}"
            if isinstance(exc, ApifyApiError) and exc.status_code in _REFUSED:
                raise ItemsRefused(message, _invalid_positions(exc)) from None
            if isinstance(exc, ApifyApiError) and exc.status_code == 429:
                raise DatasetError(message, stored=False) from None
            if isinstance(exc, ApifyApiError) and exc.status_code < 500:
                # 401, 403, 404: nothing was stored, and trying again will not help soon.
                raise DatasetError(message, stored=False) from None
            raise DatasetError(message, stored=None) from None

    # -- the Dataset protocol -----------------------------------------------------------------

    async def open(self) -> None:
        if self.dataset_id is not None:
            return
        assert self.dataset_name is not None
        name = self.dataset_name

        async def resolve() -> str:
            found = (
                await self._client(retries=True)
                .datasets()
                .get_or_create(name=name, timeout=self._timeout())
            )
            return found.id

        self.dataset_id = await self._call("opening", resolve)
        logger.info("Platform dataset %r has id %s", name, self.dataset_id)

    async def length_lower_bound(self) -> int:
        async def get() -> int:
            found = await self._dataset().get(timeout=self._timeout())
            if found is None:
                raise DatasetError(f"{self.describe()} does not exist", stored=False)
            return int(found.item_count)

        # The count lags writes by seconds (documented): it is a lower bound, never more.
        return int(await self._call("reading the item count of", get))

    async def read(self, offset: int, limit: int) -> list[Any]:
        async def read() -> list[Any]:
            page = await self._dataset().list_items(
                offset=offset, limit=limit, timeout=self._timeout()
            )
            return list(page.items)

        return list(await self._call(f"reading items {offset:,}+ of", read))

    async def push(self, items: list[bytes]) -> None:
        if not items:
            return
        body = json_array(items).decode("utf-8")

        async def push() -> None:
            # A str is sent as it is: the bytes the checkpoint holds, not a second serialization.
            await self._dataset(retries=False).push_items(items=body, timeout=self._timeout())

        await self._call(f"pushing {len(items):,} items to", push)

    async def close(self) -> None:
        clients = [c for c in (self._reads, self._pushes) if c is not None]
        self._reads = self._pushes = None
        for _, http in clients:
            await http.aclose()


def _invalid_positions(exc: ApifyApiError) -> list[int] | None:
    """The positions the platform named in a schema-validation error (``data.invalidItems``)."""
    data: Any = exc.data
    invalid = data.get("invalidItems") if isinstance(data, dict) else None
    if not isinstance(invalid, list):
        return None
    positions: list[int] = []
    for entry in invalid:
        position = entry.get("itemPosition") if isinstance(entry, dict) else None
        if type(position) is not int or position < 0:
            return None
        positions.append(position)
    return sorted(set(positions)) or None
