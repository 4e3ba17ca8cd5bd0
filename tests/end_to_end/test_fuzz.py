"""Fuzzing: generated event messages through the real parser and dispatcher, and damaged or
crafted checkpoints through the real reader. Only the documented errors, never a crash, never
code execution."""

from __future__ import annotations

import json
import os
import pickle
import random
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scrapy import Request, Spider
from scrapy.settings import Settings
from scrapy.statscollectors import MemoryStatsCollector
from scrapy.utils.defer import deferred_f_from_coro_f, maybe_deferred_to_future
from scrapy.utils.test import get_crawler
from twisted.internet.defer import succeed

from scrapy_actor_events.checkpoint.codec import RequestCodec, UndecodableError
from scrapy_actor_events.checkpoint.crawl_state import CrawlState
from scrapy_actor_events.checkpoint.cut import CrawlCut
from scrapy_actor_events.checkpoint.format import UnreadableCheckpoint
from scrapy_actor_events.checkpoint.frontier import Frontier
from scrapy_actor_events.checkpoint.writer import Checkpointer, CheckpointResult
from scrapy_actor_events.config import Config
from scrapy_actor_events.events.messages import parse_message
from scrapy_actor_events.events.migration import Migration
from scrapy_actor_events.events.reactions import EventReactions
from scrapy_actor_events.store.local import LocalKeyValueStore

from ..support.crawling import run_sync

KEY = "SCRAPY_STATE_fuzz"


# -- events -------------------------------------------------------------------------------------


class RecordingHold:
    def __init__(self) -> None:
        self.holds = 0

    def hold(self, reason: str) -> None:
        self.holds += 1

    def release(self, reason: str) -> None:
        pass


class QuietCrawler:
    """What EventReactions needs from a crawler: stats, and an engine with no open spider."""

    def __init__(self) -> None:
        self.stats = MemoryStatsCollector(get_crawler())
        self.engine = None


FIELDS = ["isMigrating", "timeRemainingSecs", "isCpuOverloaded", "cpuCurrentUsage", "z"]
names = st.sampled_from(["persistState", "migrating", "aborting", "cpuInfo", "systemInfo", "x", ""])
values = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=8)
    | st.lists(st.integers(), max_size=2)
)
documents = st.fixed_dictionaries(
    {"name": names},
    optional={
        "createdAt": st.text(max_size=30) | st.integers(),
        "data": st.none() | st.lists(values, max_size=2) | st.dictionaries(
            st.sampled_from(FIELDS),
            values, max_size=4),
    },
)  # fmt: skip
frames = st.one_of(
    documents.map(lambda d: (json.dumps(d).encode(), False)),
    st.binary(max_size=200).map(lambda b: (b, False)),
    st.binary(max_size=50).map(lambda b: (b, True)),
    st.text(max_size=100).map(lambda t: (t.encode(), False)),
)


def test_ten_thousand_event_messages_through_parser_and_dispatcher() -> None:
    crawler = QuietCrawler()
    checkpoints: list[str] = []
    hold = RecordingHold()

    def checkpoint(trigger: str):
        checkpoints.append(trigger)
        return succeed(CheckpointResult(saved=True))

    migration = Migration(hold, checkpoint, lambda: 0, lambda: None, lambda: None, 5.0, 0.0)
    samples: list[bool] = []

    class Cpu:
        def cpu_sample(self, overloaded: bool) -> None:
            samples.append(overloaded)

    reactions = EventReactions(crawler, checkpoint, migration, Cpu())  # type: ignore[arg-type]
    seen = {"frames": 0, "events": 0}

    # A hundred frames per example: Hypothesis's cost is per example, not per frame drawn.
    @settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.lists(frames, min_size=100, max_size=100))
    def hundred(batch: list[tuple[bytes, bool]]) -> None:
        for frame in batch:
            seen["frames"] += 1
            event = parse_message(*frame)
            if event is not None:
                seen["events"] += 1
                reactions(event)

    hundred()
    stats = crawler.stats.get_stats()
    assert seen["frames"] >= 10_000
    assert seen["events"] > 1000, "enough of the generated frames were events"
    assert (
        sum(v for k, v in stats.items() if k.startswith("actor_events/events/")) == seen["events"]
    )
    assert hold.holds <= 1, "a migration begins once, whatever repeats"
    assert checkpoints.count("aborting") <= 1, "an abort happens once"
    assert all(isinstance(s, bool) for s in samples)


# -- checkpoints --------------------------------------------------------------------------------


class FuzzSpider(Spider):
    name = "fuzz"

    def parse(self, response):
        pass


async def write_checkpoint(storage: Path, chunk_bytes: int = 1024) -> tuple[Checkpointer, Config]:
    spider = FuzzSpider()
    stats = MemoryStatsCollector(get_crawler())
    config = Config.from_settings(Settings({"ACTOR_EVENTS_CHUNK_BYTES": chunk_bytes}))
    store = LocalKeyValueStore(storage)
    frontier = Frontier(
        RequestCodec(spider),
        stats,
        in_progress=set,
        seen=set(),
        fingerprint=lambda r: r.url.encode(),
    )
    rng = random.Random(3)
    for n in range(300):
        request = Request(
            f"https://example.com/{n}/{rng.random()}", callback=spider.parse, meta={"n": n}
        )
        frontier._seen.add(request.url.encode())
        frontier.on_enqueued(request)
    spider.state = {"a": 1}
    checkpointer = Checkpointer(store, KEY, "fuzz", config.checkpoint, stats)
    checkpointer.source = CrawlCut(spider, None, frontier, CrawlState(stats), 0)
    for _ in range(3):  # a base and two deltas
        for request in list(frontier._seq_of)[:20]:
            frontier.on_finished(request)
        result = await maybe_deferred_to_future(checkpointer.request("fuzz"))
        assert result.saved
    return checkpointer, config


def reader(storage: Path, config: Config) -> Checkpointer:
    return Checkpointer(
        LocalKeyValueStore(storage),
        KEY,
        "fuzz",
        config.checkpoint,
        MemoryStatsCollector(get_crawler()),
    )


def files(storage: Path) -> dict[str, Path]:
    folder = storage / "key_value_stores" / "default"
    return {p.name: p for p in folder.iterdir() if "__metadata__" not in p.name}


@deferred_f_from_coro_f
async def test_mutated_checkpoints_are_unreadable_never_a_crash(tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    _, config = await write_checkpoint(storage)
    records = files(storage)
    pristine = {name: path.read_bytes() for name, path in records.items()}
    chunk_names = sorted(n for n in records if ".part-" in n)
    assert len(chunk_names) >= 4
    rng = random.Random(1234)
    outcomes: dict[str, int] = {}
    for _ in range(300):
        for name, data in pristine.items():
            records[name].write_bytes(data)
        target = rng.choice([KEY, *chunk_names])
        data = bytearray(pristine[target])
        how = rng.choice(["flip", "truncate", "drop", "garbage", "extend", "swap"])
        if how == "flip":
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        elif how == "truncate":
            del data[rng.randrange(len(data)) :]
        elif how == "garbage":
            data = bytearray(rng.randbytes(rng.randint(0, 64)))
        elif how == "extend":
            data += rng.randbytes(8)
        elif how == "swap" and target != KEY:
            data = bytearray(pristine[rng.choice(chunk_names)])
        if how == "drop":
            records[target].unlink()
        else:
            records[target].write_bytes(bytes(data))
        changed = how == "drop" or bytes(data) != pristine[target]
        try:
            restored = await reader(storage, config).read()
        except UnreadableCheckpoint as exc:
            assert exc.key == KEY  # noqa: PT017 - every trial is counted, not one raise expected
            outcomes["unreadable"] = outcomes.get("unreadable", 0) + 1
        else:
            # Only an unchanged checkpoint reads back (a deleted manifest reads as none at all).
            if how == "drop" and target == KEY:
                assert restored is None
            else:
                assert not changed, (how, target)
            outcomes["read"] = outcomes.get("read", 0) + 1
        if how == "drop":
            records[target].write_bytes(pristine[target])
    assert outcomes.get("unreadable", 0) > 250, outcomes


def craft_manifest(doc: dict[str, Any]) -> bytes:
    from scrapy_actor_events.checkpoint.format import _checksum

    body = dict(doc)
    body.pop("checksum", None)
    body["checksum"] = _checksum(body)
    return json.dumps(body).encode()


class Boom:
    def __reduce__(self):
        return (os.system, (f"touch {MARKER}",))


MARKER = Path("/tmp/scrapy-actor-events-pwned")


@deferred_f_from_coro_f
async def test_crafted_records_never_execute_code(tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    MARKER.unlink(missing_ok=True)
    _, config = await write_checkpoint(storage)
    records = files(storage)
    manifest = json.loads(records[KEY].read_bytes())
    payload = pickle.dumps(Boom())
    attempts = {
        "pickle as the manifest": lambda: records[KEY].write_bytes(payload),
        "pickle as a chunk": lambda: records[
            manifest["segments"][0]["chunks"][0]["key"]
        ].write_bytes(payload),
        "pickle as a chunk, checksums forged": lambda: forge_chunk(records, manifest, payload),
        "manifest pointing at the wrong generation": lambda: records[KEY].write_bytes(
            craft_manifest(
                {**manifest, "segments": [{**manifest["segments"][0], "generation": 99}]}
            )
        ),
        "manifest of another version": lambda: records[KEY].write_bytes(
            craft_manifest({**manifest, "version": 99})
        ),
    }
    pristine = {name: path.read_bytes() for name, path in records.items()}
    for label, damage in attempts.items():
        for name, data in pristine.items():
            records[name].write_bytes(data)
        damage()
        with pytest.raises(UnreadableCheckpoint):
            await reader(storage, config).read()
        assert not MARKER.exists(), label


def forge_chunk(records: dict[str, Path], manifest: dict[str, Any], payload: bytes) -> None:
    """Replace a chunk and fix the manifest's checksums, as an attacker with store access can."""
    import hashlib

    segment = manifest["segments"][0]
    segment = {
        **segment,
        "chunks": [
            {
                **segment["chunks"][0],
                "size": len(payload),
                "sha256": hashlib.sha256(payload).hexdigest(),
            }
        ],
    }
    records[segment["chunks"][0]["key"]].write_bytes(payload)
    records[KEY].write_bytes(craft_manifest({**manifest, "segments": [segment]}))


@pytest.mark.parametrize(
    "record",
    [
        ["https://e.com", "__reduce__"],
        [
            "https://e.com",
            "parse",
            None,
            0,
            False,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            "os:system",
        ],
        [
            "https://e.com",
            "parse",
            None,
            0,
            False,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            "builtins:eval",
        ],
        [
            "https://e.com",
            None,
            None,
            0,
            False,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            None,
            {"__class__": 1},
        ],
        ["javascript:alert(1)"],
    ],
)
def test_crafted_request_records_are_refused(record) -> None:
    codec = RequestCodec(FuzzSpider())
    with pytest.raises(UndecodableError):
        codec.decode(msgpack.packb(record))
    assert not MARKER.exists()


def test_readback_after_fuzzing_is_still_fine(tmp_path: Path) -> None:
    async def go():
        storage = tmp_path / "storage"
        _, config = await write_checkpoint(storage)
        return await reader(storage, config).read()

    restored = run_sync(go())
    assert len(restored.seqs) == 240
