"""Stores for tests that must stop a crawl at an exact point of a checkpoint write."""

from __future__ import annotations

import os
from pathlib import Path

from scrapy.utils.asyncio import sleep

from scrapy_actor_events.store.local import LocalKeyValueStore


class PausingStore(LocalKeyValueStore):
    """A local store that, once ``PAUSING_STORE_AFTER`` manifests were written, stops before the
    next manifest (its chunks already written), creates the file ``PAUSING_STORE_MARKER`` and
    waits to be killed."""

    manifests_written = 0

    async def put(self, key: str, value: bytes, content_type: str) -> None:
        marker = os.environ.get("PAUSING_STORE_MARKER")
        is_manifest = ".part-" not in key and ".unreadable-" not in key
        if marker and is_manifest:
            if PausingStore.manifests_written >= int(os.environ.get("PAUSING_STORE_AFTER", "0")):
                Path(marker).write_text(key)
                await sleep(60)
            PausingStore.manifests_written += 1
        await super().put(key, value, content_type)
