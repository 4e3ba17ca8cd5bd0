"""The short chaos run (the long one: `make chaos`, i.e. `python -m tests.end_to_end.chaos`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .chaos import report, run

if TYPE_CHECKING:
    from pathlib import Path


def test_random_kills_lose_nothing(storage: Path) -> None:
    interval = 0.5
    result = run(seed=11, pages=900, kills=6, storage=storage, interval_ms=int(interval * 1000))
    print(report(result))
    assert len(result.kills) >= 5, "the crawl must actually be killed several times"
    assert result.lost == 0
    assert result.fetched_twice <= result.bound
    assert result.items == result.distinct
    # What a kill costs is about one interval of work: at most two (the capture of the newest
    # checkpoint may be up to an interval plus a write old when the kill comes).
    worst = max(k.pages_after_checkpoint for k in result.kills)
    assert worst <= 2 * interval * result.pages_per_second + 10, (worst, result.pages_per_second)
