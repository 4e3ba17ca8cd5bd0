"""What a checkpoint holds, read from a store without a crawl: for ``scrapy-actor-events inspect``.

Reading goes through the code a resuming crawl uses (:func:`..checkpoint.reader.read_checkpoint`,
with the same checks of spider and store), so what ``inspect`` calls readable is what a crawl can
resume from. Request records are looked at as data only (URL and priority); nothing is rebuilt
into a ``Request``, no spider is needed.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .. import stats_keys
from .._async import gather_bounded
from ..checkpoint.codec import UndecodableError, url_and_priority
from ..checkpoint.crawl_state import CrawlState
from ..checkpoint.format import (
    ASIDE_INFIX,
    DEFAULT_KEY_PREFIX,
    Manifest,
    UnreadableCheckpoint,
    chunk_owner,
    chunk_prefix,
    parse_chunk_key,
)
from ..checkpoint.reader import read_checkpoint
from ..checkpoint.records import record_of

if TYPE_CHECKING:
    from ..checkpoint.items import RestoredItems
    from ..store.base import KeyValueStore

#: Stats shown by ``inspect`` without ``--json`` (which shows them all).
MAIN_STATS = (
    stats_keys.ITEMS,
    stats_keys.RESPONSES,
    stats_keys.DOWNLOADS,
    stats_keys.ENQUEUED[0],
    stats_keys.DEPTH_MAX,
    stats_keys.CHECKPOINT_COUNT,
    stats_keys.CHECKPOINT_FAILED,
    stats_keys.REQUESTS_UNSERIALIZABLE,
    stats_keys.RESTORE_REQUESTS,
    stats_keys.START_TIME,
)
TOP = 10


@dataclass
class CheckpointReport:
    """The contents of one checkpoint, in numbers."""

    key: str
    spider: str
    generation: int
    created_at: str
    trigger: str
    close_reason: str | None
    segments: int
    chunks: int
    stored_bytes: int
    manifest_bytes: int
    requests: int
    pending: int
    in_flight: int
    seen: int
    top_domains: list[tuple[str, int]]
    top_priorities: list[tuple[int, int]]
    start_requests_read: int
    start_done: bool
    elapsed_seconds: float
    stats: dict[str, Any]
    spider_state: dict[str, Any] = field(default_factory=dict)
    #: The dataset the checkpoint's items go to (None: it holds no item journal).
    items_dataset: str | None = None
    #: Items of the crawl committed to it (the commit point), and at which dataset offset on.
    items_committed: int = 0
    items_offset: int = 0
    #: Items the checkpoint holds that the dataset may not hold yet (pushed after it landed).
    items_buffered: int = 0

    @property
    def main_stats(self) -> dict[str, Any]:
        return {k: self.stats[k] for k in MAIN_STATS if k in self.stats}

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["top_domains"] = [{"domain": d, "requests": n} for d, n in self.top_domains]
        doc["top_priorities"] = [{"priority": p, "requests": n} for p, n in self.top_priorities]
        doc["stats"] = _jsonable(self.stats)
        doc["spider_state"] = _jsonable(self.spider_state)
        doc["spider_state_keys"] = sorted(map(str, self.spider_state))
        return doc


@dataclass(frozen=True)
class ListedCheckpoint:
    """One checkpoint of a store listing; ``error`` says why it is unreadable, if it is."""

    key: str
    manifest: Manifest | None
    error: str | None = None


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


async def read_manifest(store: KeyValueStore, key: str) -> tuple[Manifest, int] | None:
    """The manifest under ``key`` and its size, None if there is no such record."""
    data = await store.get(key)
    if data is None:
        return None
    return Manifest.from_bytes(key, data), len(data)


async def read_report(store: KeyValueStore, key: str, concurrency: int) -> CheckpointReport | None:
    """What the checkpoint under ``key`` holds; raises :class:`.UnreadableCheckpoint`."""
    # Any spider's checkpoint: the tool looks inside it; the store must still be this one.
    restored = await read_checkpoint(store, key, None, store.ref, concurrency)
    if restored is None:
        return None
    manifest = restored.manifest
    try:
        crawl = CrawlState.decode(restored.crawl)
    except Exception as exc:
        raise UnreadableCheckpoint(key, f"its crawl state is malformed ({exc})") from None
    domains: Counter[str] = Counter()
    priorities: Counter[int] = Counter()
    for item in restored.items:
        try:
            url, priority = url_and_priority(record_of(item))
        except UndecodableError as exc:
            raise UnreadableCheckpoint(key, f"a request record is malformed ({exc})") from None
        domains[urlsplit(url).hostname or "(no host)"] += 1
        priorities[priority] += 1
    count = restored.count
    in_flight = min(int(crawl.get("in_flight") or 0), count)
    start = crawl.get("start") or {}
    state = crawl.get("state")
    return CheckpointReport(
        key=key,
        spider=manifest.spider,
        generation=manifest.generation,
        created_at=manifest.created_at,
        trigger=manifest.trigger,
        close_reason=manifest.close_reason,
        segments=len(manifest.segments),
        chunks=len(manifest.chunk_keys),
        stored_bytes=manifest.stored_size,
        manifest_bytes=restored.manifest_size,
        requests=count,
        pending=count - in_flight,
        in_flight=in_flight,
        seen=restored.seen_count,
        top_domains=domains.most_common(TOP),
        top_priorities=sorted(priorities.items(), key=lambda p: (-p[1], -p[0]))[:TOP],
        start_requests_read=int(start.get("consumed") or 0),
        start_done=bool(start.get("done")),
        elapsed_seconds=float(crawl.get("elapsed") or 0.0),
        stats=dict(crawl["stats"]),
        spider_state=dict(state) if isinstance(state, dict) else {},
        **_items(restored.output),
    )


def _items(items: RestoredItems | None) -> dict[str, Any]:
    if items is None:
        return {}
    return {
        "items_dataset": items.dataset,
        "items_committed": items.point.index,
        "items_offset": items.point.offset,
        "items_buffered": items.end - items.point.index,
    }


def checkpoint_keys(keys: list[str]) -> list[str]:
    """Of a store's keys, those that may be checkpoint manifests: keys with chunk records, and
    keys named like the default ``SCRAPY_STATE_<spider>``."""
    present = set(keys)
    candidates = {owner for k in keys if (owner := chunk_owner(k)) is not None} & present
    candidates |= {k for k in keys if k.startswith(DEFAULT_KEY_PREFIX) and "." not in k}
    return sorted(candidates)


async def list_checkpoints(store: KeyValueStore) -> list[ListedCheckpoint]:
    """The checkpoints in ``store``, readable or not (records that are not ours are left out)."""
    listed = []
    for key in checkpoint_keys(await store.list_keys("")):
        try:
            found = await read_manifest(store, key)
        except UnreadableCheckpoint as exc:
            if "not a scrapy-actor-events checkpoint" in exc.reason:
                continue
            listed.append(ListedCheckpoint(key, None, exc.reason))
            continue
        if found is not None:
            listed.append(ListedCheckpoint(key, found[0]))
    return listed


async def records_of(store: KeyValueStore, key: str) -> tuple[bool, list[str], list[str]]:
    """Whether ``key`` has a manifest, its chunk records, and copies set aside as unreadable."""
    chunks = [k for k in await store.list_keys(chunk_prefix(key)) if parse_chunk_key(key, k)]
    aside = await store.list_keys(f"{key}{ASIDE_INFIX}")
    return await store.get(key) is not None, chunks, aside


async def delete_checkpoint(
    store: KeyValueStore, key: str, chunks: list[str], concurrency: int
) -> None:
    """Delete the manifest under ``key``, then ``chunks`` (:func:`records_of`).

    The manifest first: a deletion cut short leaves chunks no manifest points at (the next one
    removes them), never a manifest pointing at missing chunks.
    """
    await store.delete(key)
    await gather_bounded([partial(store.delete, c) for c in chunks], concurrency)
