"""The local dataset: the layout crawlee 1.11 and the Apify SDK read and append to, read back by
their own code (in a process of its own each: both cache storages per process)."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING, Any

from scrapy.statscollectors import MemoryStatsCollector
from scrapy.utils.test import get_crawler

from scrapy_actor_events import stats_keys
from scrapy_actor_events.dataset.commit import CommitPoint, Committer
from scrapy_actor_events.dataset.encoding import encode_item
from scrapy_actor_events.dataset.local import METADATA, LocalDataset

from ..support.crawling import run_sync
from ..support.datasets import crawlee_read as crawlee

if TYPE_CHECKING:
    from pathlib import Path

SDK_READ = """
import asyncio, json
from apify import Actor
async def main():
    async with Actor:
        ds = await Actor.open_dataset()
        page = await ds.get_data(limit=100000)
        print(json.dumps({"items": page.items, "total": page.total}))
asyncio.run(main())
"""


def sdk(storage: Path) -> dict[str, Any]:
    env = {"APIFY_LOCAL_STORAGE_DIR": str(storage), "APIFY_PURGE_ON_START": "0", "PATH": ""}
    done = subprocess.run(
        [sys.executable, "-c", SDK_READ],
        capture_output=True, text=True, timeout=120, check=True, env=env,
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1])


def commit(storage: Path, items: list[bytes], start: CommitPoint, check_first: bool = False):
    stats = MemoryStatsCollector(get_crawler())

    async def run() -> CommitPoint:
        ds = LocalDataset(storage)
        await ds.open()
        committer = Committer(ds, stats, min_delay=0.01)
        return await committer.commit(start, items, check_first=check_first, progress=print)

    return run_sync(run()), stats


def items(start: int, end: int) -> list[bytes]:
    return [
        encode_item({"n": n, "title": f"Page {n} é", "tags": ["a", n]}) for n in range(start, end)
    ]


def folder(storage: Path) -> Path:
    return storage / "datasets" / "default"


def metadata(storage: Path) -> dict[str, Any]:
    return json.loads((folder(storage) / METADATA).read_text())


def item_files(storage: Path) -> list[str]:
    return sorted(p.name for p in folder(storage).glob("*.json") if p.name != METADATA)


def test_crawlee_and_the_sdk_list_every_item_in_order(tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    point = CommitPoint(0, 0)
    for start, end in ((0, 10), (10, 11), (11, 25)):
        point, _ = commit(storage, items(start, end), point)
    assert point == CommitPoint(25, 25)
    expected = [json.loads(i) for i in items(0, 25)]
    read = crawlee(storage)
    assert (read["items"], read["total"]) == (expected, 25)
    assert sdk(storage)["items"] == expected
    meta = metadata(storage)
    assert meta["item_count"] == 25 == int(item_files(storage)[-1].split(".")[0])
    assert set(meta) == {"id", "name", "accessed_at", "created_at", "modified_at", "item_count"}
    assert meta["name"] is None, "the run's default dataset is unnamed, as crawlee makes it"
    # Written as crawlee writes items, so a diff against its own files shows nothing.
    text = (folder(storage) / "000000003.json").read_text()
    assert text == json.dumps(expected[2], ensure_ascii=False, indent=2, default=str)


def test_crawlee_appends_after_the_items_without_overwriting_one(tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    commit(storage, items(0, 5), CommitPoint(0, 0))
    crawlee(storage, push={"from": "crawlee"})
    read = crawlee(storage)
    assert [i.get("n", i.get("from")) for i in read["items"]] == [0, 1, 2, 3, 4, "crawlee"]


def test_a_kill_between_the_files_and_the_metadata_is_repaired_and_not_pushed_twice(
    tmp_path: Path,
) -> None:
    storage = tmp_path / "storage"
    commit(storage, items(0, 5), CommitPoint(0, 0))
    # A push of items 5-7 wrote its files and was killed before the metadata.
    meta_before = (folder(storage) / METADATA).read_text()
    commit(storage, items(5, 8), CommitPoint(5, 5))
    (folder(storage) / METADATA).write_text(meta_before)
    assert metadata(storage)["item_count"] == 5
    # The next run's checkpoint says 0-4; it reads the dataset first and pushes 8-9 only.
    point, stats = commit(storage, items(5, 10), CommitPoint(5, 5), check_first=True)
    assert point == CommitPoint(10, 10)
    assert stats.get_value(stats_keys.ITEMS_ALREADY_THERE) == 3
    assert [i["n"] for i in crawlee(storage)["items"]] == list(range(10))
    assert metadata(storage)["item_count"] == 10


def test_opening_repairs_a_count_behind_the_files_before_crawlee_overwrites_them(
    tmp_path: Path,
) -> None:
    storage = tmp_path / "storage"
    commit(storage, items(0, 4), CommitPoint(0, 0))
    meta = metadata(storage)
    path = folder(storage) / METADATA
    path.write_text(json.dumps({**meta, "item_count": 2}))
    run_sync(LocalDataset(storage).open())
    assert metadata(storage)["item_count"] == 4
    crawlee(storage, push={"from": "crawlee"})
    assert [i.get("n", "c") for i in crawlee(storage)["items"]] == [0, 1, 2, 3, "c"]


def test_camel_case_metadata_is_rewritten_in_crawlees_shape(tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    folder(storage).mkdir(parents=True)
    camel = {"id": "abc", "name": None, "createdAt": "2024-01-01T00:00:00Z",
             "modifiedAt": "2024-01-01T00:00:00Z", "accessedAt": "2024-01-01T00:00:00Z",
             "itemCount": 0, "extra": 1}  # fmt: skip
    (folder(storage) / METADATA).write_text(json.dumps(camel))
    commit(storage, items(0, 2), CommitPoint(0, 0))
    meta = metadata(storage)
    assert "itemCount" not in meta, "crawlee would read the stale camelCase count first"
    assert (meta["id"], meta["item_count"], meta["extra"]) == ("abc", 2, 1)
    assert meta["created_at"] == "2024-01-01T00:00:00Z"
    assert len(crawlee(storage)["items"]) == 2


def test_rewriting_a_dataset_the_check_finds_complete_changes_nothing(tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    commit(storage, items(0, 6), CommitPoint(0, 0))
    before = {name: (folder(storage) / name).read_bytes() for name in item_files(storage)}
    point, stats = commit(storage, items(0, 6), CommitPoint(0, 0), check_first=True)
    assert point == CommitPoint(6, 6)
    assert stats.get_value(stats_keys.ITEMS_PUSHED, 0) == 0
    assert {n: (folder(storage) / n).read_bytes() for n in item_files(storage)} == before


def test_an_emptied_dataset_is_appended_to_from_its_new_end(tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    commit(storage, items(0, 3), CommitPoint(0, 0))
    for name in item_files(storage):  # purged by someone, the checkpoint kept
        (folder(storage) / name).unlink()
    point, _ = commit(storage, items(3, 5), CommitPoint(3, 3), check_first=True)
    assert [i["n"] for i in crawlee(storage)["items"]] == [3, 4]
    assert point == CommitPoint(5, 2)
