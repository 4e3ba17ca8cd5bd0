"""Reading the newest checkpoint back: the manifest, its chunks, the merged frontier.

A reader may race a writer: the crawl that owns the key (when ``inspect`` runs beside it), or the
previous process of a migrated run whose last upload is still landing. The writer puts a new
manifest and then deletes the chunks of the old one, so a reader can find a chunk gone that the
manifest it read pointed at. That is not damage: the reader reads the newer manifest and tries
again. A chunk missing under a manifest that has not changed is damage, and reported as such.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from scrapy.utils.asyncio import run_in_thread

from .._async import gather_bounded
from .format import Manifest, UnreadableCheckpoint, decode_segment
from .items import RestoredItems, merge_items

if TYPE_CHECKING:
    from ..store.base import KeyValueStore

logger = logging.getLogger(__name__)

#: How many newer manifests a reader follows before it gives up on a key that keeps changing.
MAX_MANIFEST_RACES = 5


@dataclass
class Restored:
    """The newest checkpoint, merged from its base and deltas."""

    manifest: Manifest
    seqs: list[int]
    records: list[bytes]
    fingerprints: list[bytes]
    next_seq: int
    crawl: bytes
    #: The size of the manifest record, in bytes.
    manifest_size: int = 0
    #: The items not yet committed to the dataset, and its commit point (None: the checkpoint
    #: holds no item journal, as before items went to datasets or with ACTOR_EVENTS_DATASET off).
    items: RestoredItems | None = None


class ChunkVanished(Exception):
    """A chunk the manifest points at is not in the store (yet to be told: damage or a race)."""


async def read_checkpoint(
    store: KeyValueStore,
    key: str,
    spider_name: str | None,
    store_ref: str | None = None,
    concurrency: int = 8,
) -> Restored | None:
    """The newest checkpoint under ``key``, or None; raises :class:`UnreadableCheckpoint`.

    ``store_ref`` names the store the reader expects (its name or id): a checkpoint written to
    another store and copied here is refused, as is one of another spider than ``spider_name``
    (None: any spider, for tools that look inside checkpoints).
    """
    data = await store.get(key)
    for _ in range(MAX_MANIFEST_RACES):
        if data is None:
            return None
        manifest = Manifest.from_bytes(key, data)
        _check_owner(manifest, spider_name, store_ref)
        try:
            restored = await _read_segments(store, manifest, concurrency)
            restored.manifest_size = len(data)
            return restored
        except ChunkVanished as exc:
            newer = await store.get(key)
            if newer == data:
                raise UnreadableCheckpoint(key, f"chunk {exc} is missing from the store") from None
            logger.debug("Checkpoint %s changed while it was read; reading the newer one.", key)
            data = newer
    raise UnreadableCheckpoint(
        key,
        f"it changed {MAX_MANIFEST_RACES} times while it was read; is another crawl writing it?",
    )


def _check_owner(manifest: Manifest, spider_name: str | None, store_ref: str | None) -> None:
    if spider_name is not None and manifest.spider != spider_name:
        raise UnreadableCheckpoint(
            manifest.key,
            f"it belongs to spider {manifest.spider!r}, not {spider_name!r};"
            " give each spider its own SPIDER_STATE_KEY",
        )
    if store_ref is not None and manifest.store is not None and manifest.store != store_ref:
        raise UnreadableCheckpoint(
            manifest.key,
            f"it was written to store {manifest.store!r}, not {store_ref!r}: it was copied"
            " from another store. Clear it, or point ACTOR_EVENTS_STORE_ID /"
            " ACTOR_EVENTS_STORE_NAME at the store it came from",
        )


async def _read_segments(store: KeyValueStore, manifest: Manifest, concurrency: int) -> Restored:
    refs = [c for segment in manifest.segments for c in segment.chunks]
    fetched = await gather_bounded([partial(store.get, c.key) for c in refs], concurrency)
    missing = next((c.key for c, data in zip(refs, fetched, strict=True) if data is None), None)
    if missing is not None:
        raise ChunkVanished(repr(missing))
    records = dict(zip((c.key for c in refs), fetched, strict=True))
    payloads = []
    for segment in manifest.segments:
        chunks = [records.pop(c.key) for c in segment.chunks]
        payloads.append(await run_in_thread(decode_segment, manifest.key, segment, chunks))
    # Merging a million requests takes a few hundred ms: off the reactor thread too.
    return await run_in_thread(merge_segments, manifest, payloads)


def merge_segments(manifest: Manifest, payloads: list[dict[str, Any]]) -> Restored:
    """The frontier the base and deltas add up to; raises :class:`UnreadableCheckpoint`."""
    entries: dict[int, bytes] = {}
    fingerprints: list[bytes] = []
    try:
        for payload in payloads:
            for seq in payload["removed"]:
                entries.pop(seq, None)
            entries.update(zip(payload["seqs"], payload["records"], strict=True))
            if payload["fingerprints"]:
                fingerprints.extend(payload["fingerprints"])
        last = payloads[-1]
        seqs = sorted(entries)
        records = [entries[s] for s in seqs]
        if not all(type(r) is bytes for r in records) or type(last["crawl"]) is not bytes:
            raise TypeError("request records and crawl state must be bytes")
        return Restored(
            manifest=manifest,
            seqs=seqs,
            records=records,
            fingerprints=fingerprints,
            next_seq=int(last["next_seq"]),
            crawl=last["crawl"],
            items=merge_items(payloads),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise UnreadableCheckpoint(manifest.key, f"a segment is malformed ({exc!r})") from None
