"""The compact fingerprint set: a set's behaviour, growth, its checkpoint layout, and when the
extension swaps it into the dupefilter."""

from __future__ import annotations

import hashlib
import random
from typing import TYPE_CHECKING

import pytest
from scrapy import Request
from scrapy.dupefilters import BaseDupeFilter, RFPDupeFilter
from scrapy.utils.defer import deferred_f_from_coro_f, maybe_deferred_to_future

from scrapy_actor_events import ActorEventsExtension
from scrapy_actor_events.checkpoint import fingerprints
from scrapy_actor_events.checkpoint.fingerprints import (
    CompactFingerprintSet,
    check_layout,
    restore_into,
)

from ..support.crawling import read_checkpoint
from ..support.probe import paused_crawl

if TYPE_CHECKING:
    from pathlib import Path

    from scrapy_actor_events.tools.site import DemoSite


def digests(n: int, start: int = 0) -> list[bytes]:
    return [hashlib.sha1(str(i).encode()).digest() for i in range(start, start + n)]


def test_membership_add_discard_and_iteration_behave_as_a_set() -> None:
    seen = CompactFingerprintSet()
    plain: set[bytes] = set()
    rng = random.Random(4)
    pool = digests(3_000)
    for _ in range(20_000):
        fp = rng.choice(pool)
        action = rng.random()
        if action < 0.6:
            assert (fp in seen) == (fp in plain)
            seen.add(fp)
            plain.add(fp)
        elif action < 0.8:
            seen.discard(fp)
            plain.discard(fp)
        else:
            assert (fp in seen) == (fp in plain)
        assert len(seen) == len(plain)
    assert set(seen) == plain
    assert seen.copy() == plain
    assert b"short" not in seen
    assert 42 not in seen


def test_growth_keeps_every_digest_findable() -> None:
    seen = CompactFingerprintSet()
    everything = digests(120_000)  # several tables double their buckets on the way
    for fp in everything:
        if fp not in seen:
            seen.add(fp)
    assert len(seen) == 120_000
    assert all(fp in seen for fp in everything)
    assert not any(fp in seen for fp in digests(2_000, start=500_000))
    assert max(t.bits for t in seen._tables) > fingerprints.START_BITS


def test_other_widths_and_types_go_beside_the_digests() -> None:
    seen = CompactFingerprintSet(digests(10))
    seen.add(b"a 32-byte fingerprint of another.")
    seen.add("not bytes")  # type: ignore[arg-type]
    assert len(seen) == 12
    assert b"a 32-byte fingerprint of another." in seen
    assert "not bytes" in seen
    assert set(seen) == {*digests(10), b"a 32-byte fingerprint of another.", "not bytes"}
    seen.discard("not bytes")  # type: ignore[arg-type]
    assert len(seen) == 11


def test_layout_round_trip_loads_in_bulk_and_merges_into_a_full_set() -> None:
    seen = CompactFingerprintSet(digests(60_000))
    seen.add(b"odd")
    layout = seen.layout()
    check_layout(layout)
    assert len(layout["blob"]) == 60_000 * 20
    loaded = CompactFingerprintSet.from_layout(layout)
    assert loaded == seen
    assert [t.bits for t in loaded._tables] == [t.bits for t in seen._tables]  # sliced, not added
    # Into a set that is not empty: added one by one, still right.
    other = CompactFingerprintSet(digests(10, start=1_000_000))
    other.load_layout(layout)
    assert len(other) == 60_011
    # Into the plain set of a dupefilter that is not swapped.
    plain: set[bytes] = set()
    restore_into(plain, [layout], [b"x" * 20])
    assert plain == {*digests(60_000), b"odd", b"x" * 20}


def test_an_inconsistent_layout_still_loads_every_digest() -> None:
    seen = CompactFingerprintSet(digests(1_000))
    layout = {**seen.layout(), "lengths": b"\x00" * 12}  # wrong shape: loaded one by one
    loaded = CompactFingerprintSet.from_layout(layout)
    assert set(loaded) == set(digests(1_000))
    with pytest.raises(ValueError, match="whole fingerprints"):
        check_layout({**seen.layout(), "blob": b"123"})


def test_memory_per_fingerprint_is_a_third_of_a_set() -> None:
    import sys

    seen = CompactFingerprintSet(digests(100_000))
    held = sum(sys.getsizeof(b) for t in seen._tables for b in t.buckets)
    held += sum(sys.getsizeof(t.buckets) for t in seen._tables)
    plain = set(digests(100_000))
    in_set = sys.getsizeof(plain) + sum(sys.getsizeof(fp) for fp in plain)
    assert held / 100_000 < 40 < 90 < in_set / 100_000


class SeenDifferently(RFPDupeFilter):
    def request_seen(self, request: Request) -> bool:
        return super().request_seen(request)


class OwnFilter(BaseDupeFilter):
    def __init__(self) -> None:
        self.urls: set[str] = set()

    def request_seen(self, request: Request) -> bool:
        seen = request.url in self.urls
        self.urls.add(request.url)
        return seen

    def log(self, request: Request, spider) -> None:
        pass


@pytest.mark.parametrize(
    ("settings", "compact", "checkpointed"),
    [
        ({}, True, True),
        ({"ACTOR_EVENTS_COMPACT_FINGERPRINTS": False}, False, True),
        ({"DUPEFILTER_CLASS": f"{__name__}.SeenDifferently"}, False, False),
        ({"DUPEFILTER_CLASS": f"{__name__}.OwnFilter"}, False, False),
    ],
    ids=["default", "setting off", "own request_seen", "own dupefilter"],
)
@deferred_f_from_coro_f
async def test_the_compact_set_replaces_only_rfpdupefilters_own_set(
    storage: Path, site: DemoSite, settings: dict, compact: bool, checkpointed: bool
) -> None:
    urls = [f"{site.url}/p/{n}" for n in range(20)]

    def make(spider):
        return [Request(u, callback=spider.parse) for u in [*urls, *urls]]

    async def look(crawler):
        df = crawler.engine.scheduler.df
        result = await maybe_deferred_to_future(
            crawler.get_extension(ActorEventsExtension).request_checkpoint("test")
        )
        return df, result

    _, (df, result) = await paused_crawl(make, look, **settings)
    assert result.pending == 20, "duplicates filtered by every dupefilter"
    if isinstance(df, OwnFilter):
        assert df.urls == set(urls)  # untouched, and not checkpointed (as before)
        assert result.seen == 0
        return
    assert type(df._fingerprints) is (CompactFingerprintSet if compact else set)
    assert len(df._fingerprints) == 20
    # A request_seen of the user's own is not checkpointed (as before the compact set).
    assert result.seen == (20 if checkpointed else 0)
    restored = await read_checkpoint(storage, "SCRAPY_STATE_list", "list")
    assert sorted(restored.fingerprints) == (sorted(df._fingerprints) if checkpointed else [])
