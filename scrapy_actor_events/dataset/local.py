"""A dataset in the local storage layout that crawlee 1.11 and the Apify SDK read and append to.

::

    <storage dir>/datasets/default/__metadata__.json     {"id", "name", "accessed_at", "created_at",
                                                          "modified_at", "item_count"}
    <storage dir>/datasets/default/000000001.json        one item per file, numbered from 1

The run's default dataset is always ``default`` locally (crawlee ignores
``ACTOR_DEFAULT_DATASET_ID`` there); a named one is ``datasets/<name>``. Items are written as
crawlee writes them (``json.dumps(ensure_ascii=False, indent=2, default=str)``), each file to a
temporary name and renamed, and the metadata after the files, with ``item_count`` equal to the
highest file: crawlee appends at ``item_count + 1``, so a file above it would be overwritten by its
next push. A kill between the files and the metadata leaves ``item_count`` behind; opening repairs
it. Offsets are positions in the list of item files sorted by number, as crawlee's ``get_data``
counts them.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scrapy.utils.asyncio import run_in_thread

from .base import PAYLOAD_LIMIT, DatasetError

METADATA = "__metadata__.json"
_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


class Unreadable:
    """An item file that is not JSON: it matches no item."""

    def __repr__(self) -> str:
        return "<unreadable item file>"


def _now() -> str:
    return str(datetime.now(UTC))


def _number(path: Path) -> int:
    # crawlee's order: by number, any other *.json first.
    return int(path.stem) if path.stem.isdigit() else 0


class LocalDataset:
    """A dataset directory in the crawlee layout (a :class:`~.base.Dataset`)."""

    max_request_bytes = PAYLOAD_LIMIT

    def __init__(self, storage_dir: str | os.PathLike[str], name: str | None = None) -> None:
        self.storage_dir = Path(storage_dir)
        self.name = name
        self.path = self.storage_dir / "datasets" / (name or "default")
        self._metadata: dict[str, Any] = {}
        self._highest = 0

    @property
    def ref(self) -> str:
        # The directory, not the metadata's id: a dataset emptied or recreated there is found
        # shorter than the checkpoint says (:mod:`.commit`), and items go on from its end.
        return self.name or "default"

    def describe(self) -> str:
        return f"local dataset {self.name or 'default'!r} at {self.path.resolve()}"

    # -- blocking parts, run in a thread --------------------------------------------------------

    def _item_files(self) -> list[Path]:
        try:
            names = os.listdir(self.path)
        except FileNotFoundError:
            return []
        files = [self.path / n for n in names if n.endswith(".json") and n != METADATA]
        files.sort(key=_number)
        self._highest = max([0, *(_number(f) for f in files)])
        return files

    def _open(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        meta_path = self.path / METADATA
        try:
            metadata = json.loads(meta_path.read_bytes())
        except FileNotFoundError:
            metadata = None
        except ValueError as exc:
            raise DatasetError(f"{meta_path} is not JSON ({exc}); fix or remove it") from None
        if not isinstance(metadata, dict):
            now = _now()
            metadata = {
                "id": "".join(secrets.choice(_ID_ALPHABET) for _ in range(17)),
                "name": self.name,
                "accessed_at": now,
                "created_at": now,
                "modified_at": now,
                "item_count": 0,
            }
        self._metadata = metadata
        self._item_files()
        # crawlee reads itemCount before item_count: either behind the files is repaired now.
        counts = {metadata.get("item_count"), metadata.get("itemCount")} - {None}
        if counts != {self._highest} or not meta_path.exists():
            self._write_metadata()

    def _write_metadata(self) -> None:
        doc = {k: v for k, v in self._metadata.items() if k not in _CAMEL_KEYS}
        for camel, snake in _CAMEL_KEYS.items():
            if camel in self._metadata and snake not in doc:
                doc[snake] = self._metadata[camel]
        now = _now()
        doc.update(accessed_at=now, modified_at=now, item_count=self._highest)
        doc.setdefault("created_at", now)
        self._metadata = doc
        _write_atomic(self.path / METADATA, json.dumps(doc, ensure_ascii=False, indent=2).encode())

    def _read(self, offset: int, limit: int) -> list[Any]:
        items: list[Any] = []
        for path in self._item_files()[offset : offset + limit]:
            try:
                items.append(json.loads(path.read_bytes()))
            except FileNotFoundError:
                continue
            except ValueError:
                items.append(Unreadable())
        return items

    def _push(self, items: list[bytes]) -> None:
        number = self._highest
        try:
            for data in items:
                number += 1
                text = json.dumps(json.loads(data), ensure_ascii=False, indent=2, default=str)
                _write_atomic(self.path / f"{number:09d}.json", text.encode())
            self._highest = number
            self._write_metadata()
            _fsync_dir(self.path)
        except OSError as exc:
            raise DatasetError(
                f"writing items to {self.describe()} failed: {exc}", stored=None
            ) from None

    # -- the async interface --------------------------------------------------------------------

    async def open(self) -> None:
        try:
            await run_in_thread(self._open)
        except OSError as exc:
            raise DatasetError(f"opening {self.describe()} failed: {exc}") from None

    async def length_lower_bound(self) -> int:
        return len(await run_in_thread(self._item_files))

    async def read(self, offset: int, limit: int) -> list[Any]:
        try:
            return await run_in_thread(self._read, offset, limit)
        except OSError as exc:
            raise DatasetError(f"reading {self.describe()} failed: {exc}") from None

    async def push(self, items: list[bytes]) -> None:
        if items:
            await run_in_thread(self._push, items)

    async def close(self) -> None:
        return None


_CAMEL_KEYS = {
    "itemCount": "item_count",
    "accessedAt": "accessed_at",
    "createdAt": "created_at",
    "modifiedAt": "modified_at",
}


def _write_atomic(target: Path, data: bytes) -> None:
    # The temporary name does not end in .json, so readers never list a half-written item.
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
