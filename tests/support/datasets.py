"""The dataset a crawl under test wrote, read back the way its users read it: the local layout
with crawlee's own dataset client (in a process of its own: crawlee caches storages per process),
the platform's from the local API server."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections import Counter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    from .backends import LocalBackend

CRAWLEE_READ = """
import asyncio, json
from crawlee.configuration import Configuration
from crawlee.storages import Dataset
async def main():
    ds = await Dataset.open(configuration=Configuration(storage_dir=STORAGE, purge_on_start=False))
    page = await ds.get_data(limit=10_000_000)
    if PUSH is not None:
        await ds.push_data(PUSH)
    print(json.dumps({"items": page.items, "total": page.total}))
asyncio.run(main())
"""


def crawlee_read(storage: Path, push: Any = None) -> dict[str, Any]:
    """``Dataset.open().get_data()`` of the default dataset (then ``push_data(push)``, if any)."""
    script = f"STORAGE = {str(storage)!r}\nPUSH = {push!r}\n" + textwrap.dedent(CRAWLEE_READ)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def dataset_items(backend: LocalBackend) -> list[Any]:
    """Every item of the crawl's dataset, in order."""
    api = getattr(backend, "api", None)
    if api is not None:
        return api.datasets.items(backend.dataset_id)  # type: ignore[attr-defined,no-any-return]
    return crawlee_read(backend.storage)["items"]  # type: ignore[no-any-return]


def page_items(items: list[Any]) -> Counter[str]:
    """How many items each page has (by the ``url`` the links spider puts in each)."""
    return Counter(item["url"] for item in items)
