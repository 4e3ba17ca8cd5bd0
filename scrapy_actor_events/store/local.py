"""The embedded default store: the Apify local storage layout on disk.

::

    <storage dir>/key_value_stores/default/__metadata__.json
    <storage dir>/key_value_stores/default/<urlquote(key)>                     the value
    <storage dir>/key_value_stores/default/<urlquote(key)>.__metadata__.json   its metadata:
                                                  {"key": ..., "content_type": ..., "size": ...}

This is what the Apify SDK (4.x) and crawlee-python read, so ``Actor.get_value(key)`` sees the
checkpoint manifest. crawlee's file-system client keeps the run's default store in ``default/``
whatever ``ACTOR_DEFAULT_KEY_VALUE_STORE_ID`` says, and so does this store;
``ACTOR_EVENTS_STORE_ID`` names another directory. Every file is written to a temporary name,
flushed with fsync and renamed, so a kill at any instant leaves either the old file or the new one.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Self
from urllib.parse import quote, unquote

from scrapy.utils.asyncio import run_in_thread

from .base import check_key

if TYPE_CHECKING:
    from scrapy.statscollectors import StatsCollector

    from .base import StoreOptions

_METADATA_SUFFIX = ".__metadata__.json"
_STORE_METADATA = "__metadata__.json"


def _now() -> str:
    return datetime.now(UTC).isoformat()


class LocalKeyValueStore:
    """A key-value store in the Apify local storage layout."""

    def __init__(self, storage_dir: str | os.PathLike[str], store_id: str = "default") -> None:
        self.storage_dir = Path(storage_dir)
        self.store_id = store_id
        self.path = self.storage_dir / "key_value_stores" / store_id

    @classmethod
    def from_options(cls, options: StoreOptions, stats: StatsCollector | None = None) -> Self:
        return cls(options.storage_dir, options.local_store_id)

    @property
    def ref(self) -> str:
        return self.store_id

    def describe(self) -> str:
        return f"local store {self.store_id!r} at {self.path.resolve()}"

    # -- blocking parts, run in a thread --------------------------------------------------------

    def _file(self, key: str) -> Path:
        return self.path / quote(key, safe="")

    def _ensure_dir(self) -> None:
        if not self.path.is_dir():
            self.path.mkdir(parents=True, exist_ok=True)
        meta = self.path / _STORE_METADATA
        if not meta.exists():
            now = _now()
            # The run's default store is unnamed, as Crawlee and the Apify SDK create it: with a
            # name they would take it for a named (global) store and never purge it on start.
            doc = {"id": self.store_id, "name": None, "accessed_at": now,
                   "created_at": now, "modified_at": now}  # fmt: skip
            self._write_atomic(meta, json.dumps(doc, indent=2).encode())

    def _write_atomic(self, target: Path, data: bytes) -> None:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name[:40]}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def _fsync_dir(self) -> None:
        fd = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _get(self, key: str) -> bytes | None:
        for candidate in (self._file(key), self.path / f"{quote(key, safe='')}.json"):
            try:
                return candidate.read_bytes()
            except FileNotFoundError:
                continue
        return None

    def _put(self, key: str, value: bytes, content_type: str) -> None:
        self._ensure_dir()
        target = self._file(key)
        self._write_atomic(target, value)
        sidecar = {"key": key, "content_type": content_type, "size": len(value)}
        self._write_atomic(
            target.with_name(target.name + _METADATA_SUFFIX), json.dumps(sidecar).encode()
        )
        self._fsync_dir()

    def _delete(self, key: str) -> None:
        target = self._file(key)
        for path in (target, target.with_name(target.name + _METADATA_SUFFIX)):
            path.unlink(missing_ok=True)

    def _list(self, prefix: str) -> list[str]:
        try:
            names = os.listdir(self.path)
        except FileNotFoundError:
            return []
        keys = []
        for name in names:
            if name.startswith(".") or name.endswith(_METADATA_SUFFIX) or name == _STORE_METADATA:
                continue
            key = unquote(name)
            if key.startswith(prefix):
                keys.append(key)
        return sorted(keys)

    # -- the async interface --------------------------------------------------------------------

    async def get(self, key: str) -> bytes | None:
        check_key(key)
        return await run_in_thread(self._get, key)

    async def put(self, key: str, value: bytes, content_type: str) -> None:
        check_key(key)
        await run_in_thread(self._put, key, value, content_type)

    async def delete(self, key: str) -> None:
        check_key(key)
        await run_in_thread(self._delete, key)

    async def list_keys(self, prefix: str) -> list[str]:
        return await run_in_thread(self._list, prefix)

    async def close(self) -> None:
        return None
