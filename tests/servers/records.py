"""What the API server keeps (stores, records, its request log, faults), and checkpoints read from
its records with the package's own reader."""

from __future__ import annotations

import asyncio
import gzip
import json
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from scrapy.settings import Settings

from scrapy_actor_events.checkpoint.format import FORMAT, Manifest
from scrapy_actor_events.checkpoint.writer import Checkpointer
from scrapy_actor_events.config import Config
from scrapy_actor_events.environment import ActorEnvironment

if TYPE_CHECKING:
    from scrapy_actor_events.checkpoint.reader import Restored

JSON_TYPE = "application/json"


@dataclass
class Faults:
    """What goes wrong, changeable while the server runs."""

    write_error_rate: float = 0.0  # share of record PUTs and DELETEs answering 500
    error_after_write: bool = False  # a failing write is applied first (the answer is lost)
    latency: float = 0.0  # seconds added to every answer
    burst_every: int = 0  # every Nth record request starts a burst of 429s...
    burst_length: int = 0  # ...this long


@dataclass
class Logged:
    at: float
    method: str
    store: str | None
    key: str | None
    status: int
    size: int


@dataclass
class Store:
    id: str
    name: str | None
    created_at: str
    records: dict[str, Record] = field(default_factory=dict)

    def resource(self) -> dict[str, Any]:
        """The store object the API returns."""
        return {
            "id": self.id,
            "name": self.name,
            "userId": "testUser",
            "createdAt": self.created_at,
            "modifiedAt": now(),
            "accessedAt": now(),
        }


@dataclass
class Run:
    """An Actor run: its status messages, in the order they were set."""

    id: str
    started_at: str
    #: (statusMessage, isStatusMessageTerminal) of every update, None where a field was not sent.
    messages: list[tuple[str | None, bool | None]] = field(default_factory=list)
    #: When each update arrived (time.monotonic()), before it was answered.
    arrived: list[float] = field(default_factory=list)

    def resource(self) -> dict[str, Any]:
        """The run object the API returns: every field apify-client's ``Run`` model requires."""
        status_message, terminal = self.messages[-1] if self.messages else (None, None)
        return {
            "id": self.id,
            "actId": "testActor",
            "userId": "testUser",
            "startedAt": self.started_at,
            "status": "RUNNING",
            "statusMessage": status_message,
            "isStatusMessageTerminal": terminal,
            "meta": {"origin": "API"},
            "stats": {},
            "options": {"build": "latest", "timeoutSecs": 0, "memoryMbytes": 1024, "diskMbytes": 0},
            "buildId": "testBuild",
            "defaultKeyValueStoreId": "testStore",
            "defaultDatasetId": "testDataset",
            "defaultRequestQueueId": "testQueue",
        }


@dataclass
class RunFaults:
    """How run updates fail, changeable while the server runs."""

    status: int | None = None  # answer every run request with this error status
    latency: float = 0.0  # seconds before answering a run request


def keys_page(store: Store, query: dict[str, str], page_limit: int, base: str) -> dict[str, Any]:
    """A page of ``GET keys?exclusiveStartKey=&limit=&prefix=``; ``base`` is the records URL."""
    limit = min(int(query.get("limit") or 1000), 1000, page_limit)
    start, prefix = query.get("exclusiveStartKey") or "", query.get("prefix") or ""
    records = dict(store.records)
    keys = [k for k in sorted(records) if k > start and k.startswith(prefix)]
    page = keys[:limit]
    truncated = len(keys) > limit
    return {
        "items": [
            {"key": k, "size": len(records[k].value), "recordPublicUrl": base + quote(k, safe="")}
            for k in page
        ],
        "count": len(page),
        "limit": limit,
        "exclusiveStartKey": start or None,
        "isTruncated": truncated,
        "nextExclusiveStartKey": page[-1] if truncated else None,
    }


def run_resource(run_id: str, dataset_id: str = "", store_id: str = "") -> dict[str, Any]:
    """An Actor run as ``GET /v2/actor-runs/{id}`` returns it (the fields apify-client requires);
    the Apify SDK reads it when it starts on the platform."""
    return {
        "id": run_id, "actId": "testActor", "userId": "testUser", "startedAt": now(),
        "status": "RUNNING", "meta": {"origin": "API"}, "stats": {},
        "options": {"build": "latest", "timeoutSecs": 0, "memoryMbytes": 1024, "diskMbytes": 2048},
        "buildId": "testBuild", "defaultKeyValueStoreId": store_id or "default",
        "defaultDatasetId": dataset_id or "default", "defaultRequestQueueId": "default",
    }  # fmt: skip


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


Answer = tuple[int, dict[str, str], bytes]


def ok(status: int, doc: dict[str, Any]) -> Answer:
    return status, {"Content-Type": "application/json; charset=utf-8"}, json.dumps(doc).encode()


def error(status: int, kind: str, message: str) -> Answer:
    return ok(status, {"error": {"type": kind, "message": message}})


@dataclass(frozen=True)
class Record:
    value: bytes  # as uploaded
    content_type: str
    content_encoding: str | None

    def decoded(self) -> bytes:
        if self.content_encoding == "gzip":
            return gzip.decompress(self.value)
        if self.content_encoding == "deflate":
            return zlib.decompress(self.value)
        return self.value


class SnapshotStore:
    """A read-only KeyValueStore over a copy of a store's records."""

    def __init__(self, records: dict[str, Record]) -> None:
        self.records = records

    def describe(self) -> str:
        return "a snapshot of the test API server's store"

    async def get(self, key: str) -> bytes | None:
        record = self.records.get(key)
        return None if record is None else record.decoded()

    async def put(self, key: str, value: bytes, content_type: str) -> None:
        raise NotImplementedError

    async def delete(self, key: str) -> None:
        raise NotImplementedError

    async def list_keys(self, prefix: str) -> list[str]:
        return sorted(k for k in self.records if k.startswith(prefix))

    async def close(self) -> None:
        return None


def read_checkpoint(records: dict[str, Record], key: str, spider: str) -> Restored | None:
    """The checkpoint under ``key``, read as a resumed crawl reads it (raises if unreadable)."""
    config = Config.from_settings(Settings(), ActorEnvironment())
    checkpointer = Checkpointer(SnapshotStore(records), key, spider, config.checkpoint, None)  # type: ignore[arg-type]
    # A thread of its own: the caller may be on a running loop (the test's reactor).
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, checkpointer.read()).result()


def manifest_key(records: dict[str, Record], key: str) -> str | None:
    """The checkpoint a write to ``key`` belongs to: its manifest, or a chunk of it."""
    base = key[: key.rindex(".part-")] if ".part-" in key else key
    record = records.get(base)
    if record is None or not record.content_type.startswith(JSON_TYPE):
        return None
    if f'"{FORMAT}"'.encode() not in record.decoded():
        return None
    return base


def verify_after(records: dict[str, Record], key: str) -> bool:
    """After a write to ``key``: if it touched a checkpoint, read that checkpoint whole.

    True if a checkpoint was read; raises if it is unreadable (half-written, a chunk missing...).
    """
    base = manifest_key(records, key)
    if base is None:
        return False
    spider = Manifest.from_bytes(base, records[base].decoded()).spider
    read_checkpoint(records, base, spider)
    return True
