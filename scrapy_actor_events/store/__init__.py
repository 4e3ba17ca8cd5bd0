"""Key-value stores that checkpoints are written to, and the choice between them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from scrapy.utils.misc import build_from_crawler, load_object

from .base import BINARY, JSON, KeyValueStore, StoreError
from .local import LocalKeyValueStore

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

    from ..config import Config

__all__ = ["BINARY", "JSON", "KeyValueStore", "LocalKeyValueStore", "StoreError", "build_store"]


def build_store(config: Config, crawler: Crawler | None = None) -> KeyValueStore:
    """The store ``ACTOR_EVENTS_STORE`` names: ``auto``, ``local``, or a class's import path."""
    choice = config.store
    if choice.lower() in {"auto", "local"}:
        return LocalKeyValueStore.from_config(config)
    try:
        cls = load_object(choice)
    except (ImportError, NameError, ValueError, AttributeError) as exc:
        raise ValueError(
            f"ACTOR_EVENTS_STORE={choice!r} is neither 'auto', 'local' nor an importable"
            f" class: {exc}"
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
