"""How long the reactor stalls while a big checkpoint goes to the platform store.

A 5 ms LoopingCall on Scrapy's asyncio reactor records the longest gap between two of its calls
(minus the 5 ms) while a checkpoint of incompressible frontier records is written through the real
apify-client to the local API server (tests/servers/apify_api.py), then read back. The same with
the local store, and with nothing running, for comparison. Each measurement runs in a fresh
process (a reactor cannot be restarted): ``python -m bench.store_bench --child ...`` prints JSON.
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from functools import partial
from importlib.metadata import version
from typing import TYPE_CHECKING, Any

from .common import ROOT

if TYPE_CHECKING:
    from collections.abc import Awaitable, Iterator

TICK = 0.005
#: (row, store, chunks at once)
CASES = [("idle", "idle", 8), ("apify", "apify", 8), ("apify, 2 at once", "apify", 2)]
CASES += [("local", "local", 8)]


def child(store: str, megabytes: int, rounds: int, concurrency: int) -> dict[str, Any]:
    from scrapy.utils.reactor import install_reactor

    install_reactor("twisted.internet.asyncioreactor.AsyncioSelectorReactor")
    from scrapy.utils.defer import deferred_from_coro
    from twisted.internet import reactor

    out: dict[str, Any] = {}

    def done(result: Any) -> None:
        out["result"] = result
        reactor.stop()  # type: ignore[attr-defined]

    deferred_from_coro(_measure(store, megabytes, rounds, concurrency)).addBoth(done)
    reactor.run()  # type: ignore[attr-defined]
    result = out["result"]
    if not isinstance(result, dict):
        result.raiseException()
    return result


class StallMonitor:
    """The longest gap between two reactor turns of a 5 ms LoopingCall, beyond the 5 ms."""

    def __init__(self) -> None:
        from twisted.internet.task import LoopingCall

        self.worst = 0.0
        self.last = time.perf_counter()
        self.call = LoopingCall(self._tick)
        self.call.start(TICK, now=True)

    def _tick(self) -> None:
        now = time.perf_counter()
        self.worst = max(self.worst, now - self.last - TICK)
        self.last = now

    async def around(self, work: Awaitable[Any]) -> tuple[float, float, Any]:
        """Seconds ``work`` took, the longest stall meanwhile (ms), and its result."""
        from scrapy.utils.asyncio import sleep

        await sleep(0.2)  # let the previous work settle
        self.worst, self.last = 0.0, time.perf_counter()
        started = time.perf_counter()
        result = await work
        return time.perf_counter() - started, self.worst * 1000, result

    def stop(self) -> None:
        self.call.stop()


@contextmanager
def _api_process() -> Iterator[tuple[str, str]]:
    """The API server in a process of its own, so that it does not compete for our GIL."""
    cmd = [sys.executable, "-m", "bench.store_bench", "--serve"]
    with subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        assert proc.stdin is not None
        url, token = proc.stdout.readline().decode().split()
        try:
            yield url, token
        finally:
            proc.stdin.close()
            proc.wait(10)


def serve() -> None:
    """Serve the API (store id ``bench``) until stdin closes; print its URL and token."""
    from tests.servers.apify_api import ApifyApiServer

    os.nice(19)  # it stands in for a remote server: leave the CPU to the crawl
    with ApifyApiServer(rate_limit=None) as api:
        api.create_store(store_id="bench")
        print(api.url, api.token, flush=True)
        sys.stdin.read()


async def _measure(
    store_kind: str, megabytes: int, rounds: int, concurrency: int
) -> dict[str, Any]:
    from scrapy.settings import Settings
    from scrapy.statscollectors import MemoryStatsCollector
    from scrapy.utils.asyncio import sleep
    from scrapy.utils.test import get_crawler

    from scrapy_actor_events._async import gather_bounded
    from scrapy_actor_events.checkpoint.writer import Checkpointer
    from scrapy_actor_events.config import Config
    from scrapy_actor_events.environment import ActorEnvironment
    from scrapy_actor_events.store.apify import ApifyKeyValueStore
    from scrapy_actor_events.store.base import BINARY
    from scrapy_actor_events.store.local import LocalKeyValueStore
    from tests.support.bulk import BulkSource

    settings = Settings({"ACTOR_EVENTS_UPLOAD_CONCURRENCY": concurrency})
    config = Config.from_settings(settings, ActorEnvironment())
    stats = MemoryStatsCollector(get_crawler())
    source = BulkSource(megabytes * 1_000_000)
    monitor = StallMonitor()
    rows: list[dict[str, float]] = []
    with _api_process() as (url, token), tempfile.TemporaryDirectory() as tmp:
        if store_kind == "apify":
            store: Any = ApifyKeyValueStore(token, api_url=url, store_id="bench", stats=stats)
        else:
            store = LocalKeyValueStore(tmp)
        chunks = [source.records[0] * (9_000_000 // 4096)] * 5 + [b"x" * 5_000_000]
        chunks = [random.randbytes(len(c)) for c in chunks]  # 50 MB, as the checkpointer cuts it
        keys = [f"SCRAPY_STATE_raw.part-1-{i}" for i in range(len(chunks))]
        if store_kind != "idle":
            await store.get("warm-up")  # a crawl's first store call, in spider_opened
        for _ in range(rounds):
            if store_kind == "idle":
                _, stall, _ = await monitor.around(sleep(1.0))
                rows.append({"idle_stall_ms": stall})
                continue
            row: dict[str, float] = {}
            # The store alone: 50 MB of chunks up and down.
            puts = [partial(store.put, k, c, BINARY) for k, c in zip(keys, chunks, strict=True)]
            row["put_s"], row["put_stall_ms"], _ = await monitor.around(
                gather_bounded(puts, config.checkpoint.upload_concurrency)
            )
            gets = [partial(store.get, k) for k in keys]
            row["get_s"], row["get_stall_ms"], got = await monitor.around(
                gather_bounded(gets, config.checkpoint.upload_concurrency)
            )
            assert got == chunks
            # A whole checkpoint: capture, encode (msgpack + zstd, in a thread), upload, manifest.
            checkpointer = Checkpointer(
                store, "SCRAPY_STATE_bench", "bench", config.checkpoint, stats
            )
            checkpointer.source = source
            row["write_s"], row["write_stall_ms"], result = await monitor.around(
                checkpointer._take(frozenset({"bench"}), None)
            )
            assert result.saved, result.error
            row["read_s"], row["read_stall_ms"], restored = await monitor.around(
                checkpointer.read()
            )
            assert len(restored.records) == len(source.records)
            row["bytes"] = result.bytes
            row["chunks"] = len(checkpointer.manifest.chunk_keys)  # type: ignore[union-attr]
            rows.append(row)
        await store.close() if store_kind != "idle" else None
    monitor.stop()
    return {"rows": rows}


def run(megabytes: int = 50, rounds: int = 5) -> dict[str, list[dict[str, float]]]:
    results: dict[str, list[dict[str, float]]] = {"load": [{"before": os.getloadavg()[0]}]}
    for kind, store, concurrency in CASES:
        cmd = [sys.executable, "-m", "bench.store_bench", "--child", store, str(megabytes)]
        cmd.append(str(concurrency))
        cmd.append(str(rounds))
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
        results[kind] = json.loads(done.stdout.strip().splitlines()[-1])["rows"]
    return results


def report(results: dict[str, list[dict[str, float]]], megabytes: int, rounds: int) -> str:
    def worst(kind: str, field: str) -> str:
        values = [r[field] for r in results[kind]]
        return f"{statistics.median(values):.0f} / {max(values):.0f} ms"

    def med(kind: str, field: str) -> str:
        return f"{statistics.median(r[field] for r in results[kind]) * 1000:,.0f} ms"

    lines = [
        f"Longest reactor stall while {megabytes} MB go to the store and come back, {rounds}"
        " rounds, on Scrapy's AsyncioSelectorReactor: a 5 ms LoopingCall records the longest gap"
        " between two of its calls beyond its 5 ms. *Store alone*: six chunk records (5 x 9 MB +"
        " 5 MB of random bytes) put, then got, 8 at once (the `ACTOR_EVENTS_UPLOAD_CONCURRENCY`"
        f" default) or 2. *Checkpoint*: the Checkpointer captures {megabytes} MB of random 4 kB"
        " request records, encodes them (MessagePack + zstd, in a worker thread), uploads the"
        " chunks and the manifest; then reads it all back. `apify`: apify-client"
        f" {version('apify-client')} (impit {version('impit')}) to"
        " the local API server (`tests/servers/apify_api.py`) on 127.0.0.1, run in its own"
        " process at nice 19 as a stand-in for a remote server. `local`: the local store (files,"
        " fsync). `idle`: the LoopingCall alone (the noise floor). Load average (1 min) when the"
        f" run began: {results['load'][0]['before']:.1f}.",
        "",
        "| store | stall: put | stall: get | stall: checkpoint write | stall: checkpoint read"
        " | put | get | checkpoint write | checkpoint read | stored |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        f"| idle | {worst('idle', 'idle_stall_ms')} | | | | | | | | |",
    ]
    for kind, _, _ in CASES[1:]:
        rows = results[kind]
        lines.append(
            f"| {kind} | {worst(kind, 'put_stall_ms')} | {worst(kind, 'get_stall_ms')}"
            f" | {worst(kind, 'write_stall_ms')} | {worst(kind, 'read_stall_ms')}"
            f" | {med(kind, 'put_s')} | {med(kind, 'get_s')} | {med(kind, 'write_s')}"
            f" | {med(kind, 'read_s')} | {rows[0]['bytes'] / 1e6:.1f} MB in"
            f" {rows[0]['chunks']:.0f} chunks |"
        )
    lines += [
        "",
        "Stalls: median / worst of the rounds; times: medians. No stall comes from waiting on"
        " the store (every call is async); they come from work that holds the GIL or runs on the"
        " loop thread. In the checkpoint write: MessagePack packing the whole segment in one C"
        " call (about 70 ms for 50 MB; in a worker thread, but holding the GIL). In the read:"
        " joining the chunks and unpacking the segment (about 30 ms each, same). With"
        " apify-client: impit copying each 9 MB body into Rust and each response out of it on the"
        " loop thread (1-10 ms per chunk; more when several of the 8 uploads start or finish in"
        " one loop turn). On 2 cores shared with the API server and the encoding threads, a"
        " thread holding the GIL may also be descheduled, which makes the worst rounds several"
        " times the median.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    if sys.argv[1:2] == ["--serve"]:
        serve()
    elif sys.argv[1:2] == ["--child"]:
        kind, mb, concurrency, rounds = sys.argv[2], *map(int, sys.argv[3:6])
        print(json.dumps(child(kind, mb, rounds, concurrency)))
    else:
        print(report(run(), 50, 5))
