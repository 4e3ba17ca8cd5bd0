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
from functools import cached_property, partial
from typing import TYPE_CHECKING, Any

from scrapy.utils.asyncio import run_in_thread

from .._async import gather_bounded
from .fingerprints import check_layout, count_in, iter_digests
from .format import Manifest, UnreadableCheckpoint, decode_segment
from .items import RestoredItems, merge_items
from .records import SEQ_BYTES, make_item, prefixes, seq_of, where_from_data

if TYPE_CHECKING:
    from ..store.base import KeyValueStore
    from .records import Where

logger = logging.getLogger(__name__)

#: How many newer manifests a reader follows before it gives up on a key that keeps changing.
MAX_MANIFEST_RACES = 5


@dataclass
class Restored:
    """The newest checkpoint, merged from its base and deltas."""

    manifest: Manifest
    #: The open requests' items (:mod:`.records`) by queue, each list in number order; the
    #: ``None`` queue holds items whose queue the checkpoint did not record (format 1).
    queues: dict[Where | None, list[bytes]]
    #: Seen fingerprints: the base's compact layouts, and those listed (deltas, format 1).
    seen_layouts: list[dict[str, Any]]
    seen_listed: list[bytes]
    next_seq: int
    crawl: bytes
    #: The size of the manifest record, in bytes.
    manifest_size: int = 0
    #: The crawl's scraped items not yet committed to the dataset, and its commit point (None:
    #: the checkpoint holds no item journal: written before items went to datasets, or with
    #: ACTOR_EVENTS_DATASET off).
    output: RestoredItems | None = None

    @property
    def count(self) -> int:
        return sum(len(items) for items in self.queues.values())

    @cached_property
    def items(self) -> list[bytes]:
        """Every item, in number order (the order the requests were first scheduled in)."""
        return sorted(item for items in self.queues.values() for item in items)

    @property
    def seqs(self) -> list[int]:
        return [seq_of(item) for item in self.items]

    @property
    def records(self) -> list[bytes]:
        """The codec records, in number order (for tools: a copy of each)."""
        return [item[SEQ_BYTES:] for item in self.items]

    @property
    def seen_count(self) -> int:
        return sum(count_in(layout) for layout in self.seen_layouts) + len(self.seen_listed)

    @property
    def fingerprints(self) -> list[bytes]:
        """Every stored fingerprint (for tools: built on each call)."""
        found: list[bytes] = []
        for layout in self.seen_layouts:
            found += iter_digests(bytes(layout["blob"]), int(layout["width"]))
            found += layout.get("other") or ()
        return found + self.seen_listed


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
    """The frontier the base and deltas add up to; raises :class:`UnreadableCheckpoint`.

    Each segment says which of its records belong to which queue; numbers are never reused, so
    a number that any delta removed is gone from every segment. Segments of format 1 (numbers
    beside the records, no queues) are read too: a crawl checkpointed by an older version of the
    package resumes, and its next deltas follow its format-1 base.
    """
    removed: set[int] = set()
    parts: list[tuple[list[bytes], list[Where | None], list[int]]] = []
    layouts: list[dict[str, Any]] = []
    listed: list[bytes] = []
    try:
        for payload in payloads:
            removed.update(payload["removed"])
            if "seqs" in payload:  # format 1
                seqs, records = payload["seqs"], payload["records"]
                items = [make_item(s, r) for s, r in zip(seqs, records, strict=True)]
                groups: list[Where | None] = [None]
                runs = [0, len(items)]
            else:
                items = payload["records"]
                groups = [where_from_data(g) for g in payload["groups"]]
                runs = [int(n) for n in payload["runs"]]
            if not all(type(r) is bytes and len(r) > SEQ_BYTES for r in items):
                raise TypeError("request records must be bytes")
            parts.append((items, groups, runs))
            fingerprints = payload["fingerprints"]
            if isinstance(fingerprints, dict):
                check_layout(fingerprints)
                layouts.append(fingerprints)
            elif fingerprints:
                listed.extend(fingerprints)
        last = payloads[-1]
        if type(last["crawl"]) is not bytes:
            raise TypeError("the crawl state must be bytes")
        return Restored(
            manifest=manifest,
            queues=_by_queue(parts, prefixes(list(removed)) if removed else None),
            seen_layouts=layouts,
            seen_listed=listed,
            next_seq=int(last["next_seq"]),
            crawl=last["crawl"],
            output=merge_items(payloads),
        )
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise UnreadableCheckpoint(manifest.key, f"a segment is malformed ({exc!r})") from None


def _by_queue(
    parts: list[tuple[list[bytes], list[Where | None], list[int]]], gone: set[bytes] | None
) -> dict[Where | None, list[bytes]]:
    queues: dict[Where | None, list[bytes]] = {}
    for items, groups, runs in parts:
        at = 0
        for group, count in zip(runs[::2], runs[1::2], strict=True):
            if count < 0:
                raise ValueError(f"a run of {count} records")
            chunk = items[at : at + count]
            at += count
            if gone:
                chunk = [item for item in chunk if item[:SEQ_BYTES] not in gone]
            queues.setdefault(groups[group], []).extend(chunk)
        if at != len(items):
            raise ValueError(f"runs cover {at} of {len(items)} records")
    for items in queues.values():
        items.sort()  # base, in-flight and deltas' records of one queue, in number order
    return queues
