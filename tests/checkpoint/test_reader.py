"""Reading checkpoints back: whose they are, and reading while a writer replaces them."""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

import pytest
from scrapy.utils.defer import deferred_f_from_coro_f

from scrapy_actor_events.checkpoint.format import Manifest, UnreadableCheckpoint
from scrapy_actor_events.checkpoint.reader import read_checkpoint
from scrapy_actor_events.store.local import LocalKeyValueStore

from .test_writer import KEY, Harness

if TYPE_CHECKING:
    from pathlib import Path


class WriterRacingStore(LocalKeyValueStore):
    """Before the reader's first chunk read, a new checkpoint lands (and old chunks go)."""

    def __init__(self, storage: Path, harness: Harness, races: int) -> None:
        super().__init__(storage)
        self.harness = harness
        self.races = races

    async def get(self, key: str) -> bytes | None:
        if ".part-" in key and self.races:
            self.races -= 1
            self.harness.finish(10)
            self.harness.add(5)
            # A base replaces every chunk the reader's manifest pointed at.
            assert (await self.harness.checkpoint()).saved
        return await super().get(key)


@deferred_f_from_coro_f
async def test_the_manifest_records_its_store_and_another_store_is_refused(
    storage: Path,
) -> None:
    h = Harness(storage)
    h.add(3)
    assert (await h.checkpoint()).saved
    data = await h.store.get(KEY)
    assert Manifest.from_bytes(KEY, data).store == "default"
    # The records copied into a store with another id, as a user copying directories would.
    shutil.copytree(h.store.path, storage / "key_value_stores" / "other")
    other = LocalKeyValueStore(storage, "other")
    with pytest.raises(UnreadableCheckpoint, match="written to store 'default', not 'other'"):
        await read_checkpoint(other, KEY, "unit", other.ref)
    # The same records read as the store they were written to.
    restored = await read_checkpoint(h.store, KEY, "unit", h.store.ref)
    assert restored is not None
    assert len(restored.records) == 3


@deferred_f_from_coro_f
async def test_a_reader_follows_a_checkpoint_replaced_while_it_reads(storage: Path) -> None:
    h = Harness(storage, ACTOR_EVENTS_MAX_DELTAS=0)  # every checkpoint a base: old chunks go
    h.add(20)
    assert (await h.checkpoint()).saved
    racing = WriterRacingStore(storage, h, races=2)
    restored = await read_checkpoint(racing, KEY, "unit", "default")
    assert restored is not None
    assert racing.races == 0
    assert restored.manifest.generation == 3
    # What the reader returns is the crawl as the newest checkpoint left it.
    assert sorted(await h.restored_urls()) == sorted(h.open)
    assert len(restored.records) == len(h.open) == 10


@deferred_f_from_coro_f
async def test_a_chunk_missing_under_an_unchanged_manifest_is_damage(storage: Path) -> None:
    h = Harness(storage)
    h.add(20)
    assert (await h.checkpoint()).saved
    chunk = next(iter(h.chunk_files()))
    (h.store.path / chunk).unlink()
    with pytest.raises(UnreadableCheckpoint, match=f"chunk '{chunk}' is missing"):
        await read_checkpoint(h.store, KEY, "unit", "default")
