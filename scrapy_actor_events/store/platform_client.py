"""What the platform's key-value store and dataset share: apify-client on Scrapy's asyncio loop, a
transport that counts what the client's retries hide, and error text without the token."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from importlib import metadata
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

from apify_client import ApifyClientAsync
from apify_client.errors import ApifyApiError
from apify_client.http_clients import ImpitHttpClientAsync

from .. import stats_keys

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    import impit
    from scrapy.statscollectors import StatsCollector

REACTOR_HELP = (
    "Set TWISTED_REACTOR = 'twisted.internet.asyncioreactor.AsyncioSelectorReactor' (Scrapy's"
    " default), or ACTOR_EVENTS_STORE = 'local' to use the local storage."
)


def require_asyncio_reactor(what: str = "The platform key-value store") -> None:
    """Raise ``ValueError`` naming TWISTED_REACTOR if a reactor other than asyncio's runs."""
    from scrapy.utils.reactor import is_asyncio_reactor_installed, is_reactor_installed

    if is_reactor_installed() and not is_asyncio_reactor_installed():
        from twisted.internet import reactor

        raise ValueError(
            f"{what} runs apify-client on asyncio, and the installed Twisted reactor is"
            f" {type(reactor).__name__}. {REACTOR_HELP}"
        )


def require_running_loop(what: str) -> None:
    """Raise ``RuntimeError`` unless an asyncio loop runs (Scrapy's asyncio reactor)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        raise RuntimeError(
            f"{what} needs a running asyncio loop, and there is none: the Twisted reactor is"
            f" not asyncio's. {REACTOR_HELP}"
        ) from None


def package_version() -> str:
    try:
        return metadata.version("scrapy-actor-events")
    except metadata.PackageNotFoundError:
        return "unknown"


def public_url(url: str) -> str:
    """``url`` without user info, for a log line."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url.rstrip("/")
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1])).rstrip("/")


@dataclass(frozen=True)
class RequestStats:
    """The stats keys one client counts its HTTP requests under."""

    requests: str
    rate_limited: str
    server_errors: str
    network_errors: str


STORE_REQUEST_STATS = RequestStats(
    stats_keys.STORE_REQUESTS,
    stats_keys.STORE_RATE_LIMITED,
    stats_keys.STORE_SERVER_ERRORS,
    stats_keys.STORE_NETWORK_ERRORS,
)
DATASET_REQUEST_STATS = RequestStats(
    stats_keys.DATASET_REQUESTS,
    stats_keys.DATASET_RATE_LIMITED,
    stats_keys.DATASET_SERVER_ERRORS,
    stats_keys.DATASET_NETWORK_ERRORS,
)


class CountingHttpClient(ImpitHttpClientAsync):
    """apify-client's default transport, counting every request, including the retries it hides."""

    def __init__(
        self, count: Callable[[str], None], keys: RequestStats = STORE_REQUEST_STATS, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self._count = count
        self._keys = keys

    async def send_request(
        self,
        *,
        method: str,
        url: str,
        headers: dict[str, str],
        content: bytes | AsyncIterator[bytes] | None,
        timeout: float | None,
        stream: bool,
    ) -> impit.Response:
        self._count(self._keys.requests)
        try:
            response = await super().send_request(
                method=method,
                url=url,
                headers=headers,
                content=content,
                timeout=timeout,
                stream=stream,
            )
        except Exception:
            self._count(self._keys.network_errors)
            raise
        if response.status_code == 429:
            self._count(self._keys.rate_limited)
        elif response.status_code >= 500:
            self._count(self._keys.server_errors)
        return response


def new_client(
    token: str,
    api_url: str,
    count: Callable[[str], None],
    keys: RequestStats,
    *,
    max_retries: int,
    min_retry_delay: float,
) -> tuple[ApifyClientAsync, CountingHttpClient]:
    """An async apify-client and its transport (close the transport with ``aclose()``)."""
    http = CountingHttpClient(
        count,
        keys,
        token=token,
        max_retries=max_retries,
        min_delay_between_retries=timedelta(seconds=min_retry_delay),
        user_agent_suffix=f"scrapy-actor-events/{package_version()}",
    )
    return ApifyClientAsync.with_custom_http_client(token, api_url=api_url, http_client=http), http


class PlatformResource:
    """What the platform's key-value store and dataset share: the API connection's settings, the
    stats their requests are counted in, and how they name themselves in messages."""

    #: As messages name the kind of resource: "key-value store", "dataset".
    kind: ClassVar[str]

    def __init__(
        self,
        token: str,
        *,
        api_url: str,
        max_retries: int,
        min_retry_delay: float,
        timeout: float,
        stats: StatsCollector | None,
    ) -> None:
        if not token:
            raise ValueError(f"The platform {self.kind} needs an API token (APIFY_TOKEN).")
        self._token = token
        self.api_url = api_url
        self.max_retries = max_retries
        self.min_retry_delay = min_retry_delay
        self.timeout = timeout
        self.stats = stats

    def _count(self, stat: str) -> None:
        if self.stats is not None:
            self.stats.inc_value(stat)

    def _describe(self, name: str | None, resource_id: str | None) -> str:
        where = public_url(self.api_url)
        if name is None:
            return f"platform {self.kind} {resource_id} at {where}"
        found = f" (id {resource_id})" if resource_id else ""
        return f"platform {self.kind} named {name!r}{found} at {where}"


def describe_failure(exc: BaseException, token: str) -> str:
    """What went wrong, in one line at most 500 characters long, with the token scrubbed."""
    if isinstance(exc, ApifyApiError):
        reason = f"HTTP {exc.status_code}" + (f" {exc.type}" if exc.type else "")
        reason += f": {exc.message}" if exc.message else ""
        if exc.attempt > 1:
            reason += f" (after {exc.attempt} attempts)"
    else:
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    # Scrubbed before it is shortened: a cut could leave half a token.
    reason = reason.replace(token, "***") if token else reason
    return reason if len(reason) <= 500 else reason[:500] + "..."
