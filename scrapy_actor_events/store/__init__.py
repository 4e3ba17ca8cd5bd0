"""Key-value stores that checkpoints are written to, and the choice between them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from scrapy.utils.misc import build_from_crawler, load_object

from .base import BINARY, JSON, KeyValueStore, StoreError
from .local import LocalKeyValueStore

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

    from ..config import Config

__all__ = [
    "BINARY",
    "JSON",
    "KeyValueStore",
    "LocalKeyValueStore",
    "StoreError",
    "build_store",
    "on_platform",
]


def on_platform(config: Config) -> bool:
    """Whether ``ACTOR_EVENTS_STORE=auto`` picks the platform store.

    On the platform (``APIFY_IS_AT_HOME=1``), or off it with a token and a platform store named:
    ``ACTOR_DEFAULT_KEY_VALUE_STORE_ID`` in the environment or ``ACTOR_EVENTS_STORE_NAME``.
    """
    env = config.environment
    return env.is_at_home or (
        env.token is not None and (env.store_id_configured or config.store_name is not None)
    )


def build_store(config: Config, crawler: Crawler | None = None) -> KeyValueStore:
    """The store ``ACTOR_EVENTS_STORE`` names: ``auto``, ``local``, ``apify``, or an import path.

    With a crawler, the platform store requires Scrapy's asyncio reactor and counts its requests in
    the crawler's stats.
    """
    choice = config.store
    if choice.lower() == "local" or (choice.lower() == "auto" and not on_platform(config)):
        return LocalKeyValueStore.from_config(config)
    if choice.lower() in {"auto", "apify"}:
        from .apify import ApifyKeyValueStore, require_asyncio_reactor

        if crawler is not None:
            require_asyncio_reactor()
        return ApifyKeyValueStore.from_config(config, crawler.stats if crawler else None)
    try:
        cls = load_object(choice)
    except (ImportError, NameError, ValueError, AttributeError) as exc:
        raise ValueError(
            f"ACTOR_EVENTS_STORE={choice!r} is neither 'auto', 'local', 'apify' nor an"
            f" importable class: {exc}"
        ) from None
    if crawler is not None:
        store = build_from_crawler(cls, crawler)
    elif hasattr(cls, "from_config"):
        store = cls.from_config(config)
    else:
        store = cls()
    if not isinstance(store, KeyValueStore):
        raise ValueError(
            f"ACTOR_EVENTS_STORE={choice!r} does not implement the KeyValueStore protocol"
        )
    return store
