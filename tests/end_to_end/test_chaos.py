"""The chaos runs: one crawl SIGKILLed at seeded random moments and resumed every time. The short
one runs by default; the long one (`make chaos`, i.e. `python -m tests.end_to_end.chaos`) is
marked ``long``: CI runs it with `pytest -m long`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from .chaos import ChaosResult, report, run

if TYPE_CHECKING:
    from pathlib import Path

#: Seconds between checkpoints.
INTERVAL = 0.5


def check(result: ChaosResult, kills: int) -> None:
    print(report(result))
    assert len(result.kills) >= kills, "the crawl must actually be killed several times"
    assert result.lost == 0
    assert result.fetched_twice <= result.bound
    assert result.items == result.distinct
    # What a kill costs is about one interval of work: at most two (the capture of the newest
    # checkpoint may be up to an interval plus a write old when the kill comes). Work is counted
    # at the killed run's own pace: a shared machine slows some runs down, and the average over
    # all runs includes their start-up.
    for kill in result.kills:
        assert kill.pages_after_checkpoint <= 2 * INTERVAL * kill.rate + 10, kill


def test_random_kills_lose_nothing(storage: Path) -> None:
    result = run(seed=11, pages=900, kills=6, storage=storage, interval_ms=int(INTERVAL * 1000))
    check(result, kills=5)


@pytest.mark.long
def test_the_long_chaos_run(storage: Path) -> None:
    """`make chaos`: 3,000 pages, 20 SIGKILLs."""
    result = run(seed=7, pages=3000, kills=20, storage=storage, interval_ms=int(INTERVAL * 1000))
    check(result, kills=15)
