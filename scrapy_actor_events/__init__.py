"""Make a Scrapy crawl survive being killed: checkpoint the crawl frontier into a key-value store
and resume it, driven by the Apify platform's events.

Enable it with one line in ``settings.py``::

    EXTENSIONS = {"scrapy_actor_events.ActorEventsExtension": 100}
"""

from __future__ import annotations

from .checkpoint import CheckpointResult
from .extension import ActorEventsExtension
from .store import KeyValueStore, LocalKeyValueStore

__version__ = "0.1.0"

__all__ = [
    "ActorEventsExtension",
    "CheckpointResult",
    "KeyValueStore",
    "LocalKeyValueStore",
    "__version__",
]
