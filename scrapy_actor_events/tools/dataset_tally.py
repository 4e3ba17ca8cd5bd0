"""What a crawl left in the local dataset, for ``demo`` and ``rehearse``: items, distinct items,
and items that are there twice (the same ``url`` when every item has one, else the same JSON)."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..dataset.encoding import canonical
from ..dataset.local import LocalDataset

if TYPE_CHECKING:
    from pathlib import Path


@dataclass(frozen=True)
class DatasetTally:
    items: int
    distinct: int
    duplicates: int
    #: "url" or "content": what makes two items the same.
    keyed_by: str
    urls: frozenset[str] = frozenset()


def _read_all(storage: Path, since: int) -> list[Any]:
    async def read() -> list[Any]:
        dataset = LocalDataset(storage)
        out: list[Any] = []
        while batch := await dataset.read(since + len(out), 10_000):
            out += batch
        return out

    return asyncio.run(read())


def count_items(storage: Path) -> int:
    """How many items the local default dataset holds (0 if there is none)."""

    async def count() -> int:
        return await LocalDataset(storage).length_lower_bound()

    return asyncio.run(count())


def tally(storage: Path, since: int = 0) -> DatasetTally:
    """The local default dataset's items from offset ``since`` on."""
    items = _read_all(storage, since)
    by_url = all(isinstance(i, dict) and isinstance(i.get("url"), str) for i in items)
    keys = Counter(i["url"] if by_url else canonical(i) for i in items)
    return DatasetTally(
        items=len(items),
        distinct=len(keys),
        duplicates=sum(n - 1 for n in keys.values()),
        keyed_by="url" if by_url else "content",
        urls=frozenset(keys) if by_url else frozenset(),
    )
