"""Datasets the crawl's items are committed to, and the choice between them.

The dataset goes where the checkpoints go: the platform's (the run's default dataset, or one named
by ``ACTOR_EVENTS_DATASET_ID`` / ``ACTOR_EVENTS_DATASET_NAME``) when the key-value store is the
platform's, else the local one in the layout crawlee and the Apify SDK read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import Dataset, DatasetChoice, DatasetError, DatasetOptions, ItemsRefused
from .local import LocalDataset

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

__all__ = [
    "Dataset",
    "DatasetChoice",
    "DatasetError",
    "DatasetOptions",
    "ItemsRefused",
    "LocalDataset",
    "build_dataset",
]


def build_dataset(options: DatasetOptions, crawler: Crawler | None = None) -> Dataset:
    """The dataset items go to (``options.enabled`` is the caller's to check)."""
    if not options.on_platform:
        return LocalDataset(options.store.storage_dir, options.dataset_name or options.dataset_id)
    from ..store.platform_client import require_asyncio_reactor
    from .apify import ApifyDataset

    if crawler is not None:
        require_asyncio_reactor("The platform dataset")
    return ApifyDataset.from_options(options, crawler.stats if crawler is not None else None)
