"""The commit logic on the local dataset: a check after doubt finds what landed in any order, passes
over another writer's items, and commit points stay true at every step."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
from scrapy.statscollectors import MemoryStatsCollector
from scrapy.utils.test import get_crawler

from scrapy_actor_events import stats_keys
from scrapy_actor_events.dataset.base import DatasetError
from scrapy_actor_events.dataset.commit import CommitPoint, Committer
from scrapy_actor_events.dataset.encoding import encode_item
from scrapy_actor_events.dataset.local import LocalDataset

from ..support.crawling import run_sync

if TYPE_CHECKING:
    from pathlib import Path


def rec(n: int) -> bytes:
    return encode_item({"n": n})


class Scripted(LocalDataset):
    """A local dataset whose pushes fail as told: "lost" stores and then fails (no answer)."""

    def __init__(self, storage: Path, script: list[str]) -> None:
        super().__init__(storage)
        self.script = script
        self.pushes: list[list[int]] = []

    async def push(self, items: list[bytes]) -> None:
        outcome = self.script.pop(0) if self.script else "ok"
        self.pushes.append([int(i[5:-1]) for i in items])
        if outcome == "fail":
            raise DatasetError("injected: not stored", stored=False)
        await super().push(items)
        if outcome == "lost":
            raise DatasetError("injected: stored, answer lost", stored=None)


def run_commit(ds: LocalDataset, start: CommitPoint, items: list[bytes], **kw: Any):
    stats = MemoryStatsCollector(get_crawler())
    points: list[CommitPoint] = kw.pop("points", [])

    async def go() -> CommitPoint:
        await ds.open()
        committer = Committer(ds, stats, attempts=kw.pop("attempts", 5), min_delay=0.01)
        return await committer.commit(start, items, progress=points.append, **kw)

    return run_sync(go()), points, stats


def ns(storage: Path) -> list[Any]:
    async def read() -> list[Any]:
        return [i.get("n", i) for i in await LocalDataset(storage).read(0, 1000)]

    return run_sync(read())  # type: ignore[no-any-return]


def test_a_lost_answer_is_checked_and_not_pushed_again(tmp_path: Path) -> None:
    ds = Scripted(tmp_path, ["ok", "lost"])
    ds.max_request_bytes = 40  # four items per request
    point, points, stats = run_commit(ds, CommitPoint(0, 0), [rec(n) for n in range(10)],
                                      check_first=False)  # fmt: skip
    assert ns(tmp_path) == list(range(10))
    assert ds.pushes == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert point == CommitPoint(10, 10)
    assert points[0] == CommitPoint(4, 4)
    assert stats.get_value(stats_keys.ITEMS_ALREADY_THERE) == 4


def test_a_check_finds_a_stored_subset_and_pushes_the_rest(tmp_path: Path) -> None:
    # Items 0-1 committed; then, in whatever order a partial store left them: 3, then 5.
    run_commit(LocalDataset(tmp_path), CommitPoint(0, 0), [rec(0), rec(1), rec(3), rec(5)],
               check_first=False)  # fmt: skip
    point, points, stats = run_commit(LocalDataset(tmp_path), CommitPoint(2, 2),
                                      [rec(n) for n in range(2, 7)], check_first=True)  # fmt: skip
    assert ns(tmp_path) == [0, 1, 3, 5, 2, 4, 6]
    assert point == CommitPoint(7, 7)
    assert stats.get_value(stats_keys.ITEMS_ALREADY_THERE) == 2
    # While 2 was missing, the point stayed before 3 and 5 (they lie at offsets 2 and 3).
    assert points[0] == CommitPoint(2, 2)


def test_another_writers_items_are_passed_over(tmp_path: Path, caplog) -> None:
    run_commit(LocalDataset(tmp_path), CommitPoint(0, 0), [rec(0), rec(1)], check_first=False)
    foreign = [encode_item({"from": "someone else"})]
    run_commit(LocalDataset(tmp_path), CommitPoint(0, 2), foreign, check_first=False)
    run_commit(LocalDataset(tmp_path), CommitPoint(0, 3), [rec(2)], check_first=False)
    point, _, stats = run_commit(LocalDataset(tmp_path), CommitPoint(2, 2), [rec(2), rec(3)],
                                 check_first=True)  # fmt: skip
    assert ns(tmp_path) == [0, 1, {"from": "someone else"}, 2, 3]
    assert point == CommitPoint(4, 5)
    assert stats.get_value(stats_keys.ITEMS_ALREADY_THERE) == 1
    assert "this crawl did not write: another writer uses the dataset" in caplog.text


def test_failures_that_stored_nothing_are_retried_without_a_check(tmp_path: Path) -> None:
    ds = Scripted(tmp_path, ["fail", "fail"])
    point, _, stats = run_commit(ds, CommitPoint(0, 0), [rec(0), rec(1)], check_first=False)
    assert point == CommitPoint(2, 2)
    assert stats.get_value(stats_keys.DATASET_CHECKS, 0) == 0
    assert stats.get_value(stats_keys.DATASET_FAILED) == 2


def test_giving_up_leaves_the_last_true_point(tmp_path: Path) -> None:
    ds = Scripted(tmp_path, ["ok", "fail", "fail"])
    ds.max_request_bytes = 20  # two items per request
    points: list[CommitPoint] = []
    with pytest.raises(DatasetError):
        run_commit(ds, CommitPoint(0, 0), [rec(n) for n in range(4)], check_first=False,
                   attempts=2, points=points)  # fmt: skip
    assert ns(tmp_path) == [0, 1]
    assert points[-1] == CommitPoint(2, 2)
