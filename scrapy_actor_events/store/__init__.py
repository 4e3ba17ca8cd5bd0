"""Key-value stores that checkpoints are written to, and the choice between them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from scrapy.utils.misc import build_from_crawler, load_object

from .base import (
    BINARY,
    JSON,
    KeyValueStore,
    StoreChoice,
    StoreError,
    StoreMissing,
    StoreOptions,
)
from .local import LocalKeyValueStore

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

__all__ = [
    "BINARY",
    "JSON",
    "KeyValueStore",
    "LocalKeyValueStore",
    "StoreChoice",
    "StoreError",
    "StoreMissing",
    "StoreOptions",
    "build_store",
]


def build_store(options: StoreOptions, crawler: Crawler | None = None) -> KeyValueStore:
    """The store ``ACTOR_EVENTS_STORE`` names: ``auto``, ``local``, ``apify``, or an import path.

    With a crawler, the platform store requires Scrapy's asyncio reactor and counts its requests in
    the crawler's stats. A class named by import path is built with ``from_options(options,
    stats)`` if it has one (the package's stores and their subclasses), else like any Scrapy
    component (``from_crawler``, or no arguments).
    """
    choice = options.choice.lower()
    stats = crawler.stats if crawler is not None else None
    if choice == StoreChoice.LOCAL or (choice == StoreChoice.AUTO and not options.on_platform):
        return LocalKeyValueStore.from_options(options)
    if choice in {StoreChoice.AUTO, StoreChoice.APIFY}:
        from .apify import ApifyKeyValueStore
        from .platform_client import require_asyncio_reactor

        if crawler is not None:
            require_asyncio_reactor()
        return ApifyKeyValueStore.from_options(options, stats)
    try:
        cls = load_object(options.choice)
    except (ImportError, NameError, ValueError, AttributeError) as exc:
        raise ValueError(
            f"ACTOR_EVENTS_STORE={options.choice!r} is neither 'auto', 'local', 'apify' nor an"
            f" importable class: {exc}"
        ) from None
    if hasattr(cls, "from_options"):
        store = cls.from_options(options, stats)
    elif crawler is not None:
        store = build_from_crawler(cls, crawler)
    else:
        store = cls()
    if not isinstance(store, KeyValueStore):
        raise ValueError(
            f"ACTOR_EVENTS_STORE={options.choice!r} does not implement the KeyValueStore protocol"
        )
    return store
