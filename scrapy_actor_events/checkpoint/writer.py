"""Writing checkpoints to the store and reading the newest one back.

One checkpoint runs at a time. A request that arrives while one is being written is served by the
next one, which captures the crawl after the request: two concurrent requests coalesce into one
write, and no request is answered by a capture older than itself. A failed write leaves the
previous manifest, and every chunk it points at, untouched.

Chunks are written and read ``ACTOR_EVENTS_UPLOAD_CONCURRENCY`` at a time, the manifest last. A
write that fails or is cancelled carries its changes into the next checkpoint, and its generation
is never used again: an upload still on its way cannot overwrite a chunk of a later checkpoint.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from scrapy.utils.asyncio import run_in_thread
from twisted.internet.defer import Deferred

from .. import stats_keys
from .._async import gather_bounded, start_task
from ..store.base import BINARY, JSON
from .format import (
    ChunkRef,
    Manifest,
    SegmentKind,
    SegmentRef,
    aside_key,
    chunk_prefix,
    chunk_refs,
    encode_segment,
    parse_chunk_key,
    split_chunks,
)
from .options import URGENT_TRIGGERS, Trigger
from .reader import Restored, read_checkpoint

if TYPE_CHECKING:
    from collections.abc import Callable

    from scrapy.statscollectors import StatsCollector

    from ..store.base import KeyValueStore
    from .frontier import FrontierCapture
    from .options import CheckpointOptions

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckpointResult:
    """What one checkpoint did: written or not, and its figures."""

    saved: bool
    generation: int = 0
    kind: SegmentKind | None = None
    pending: int = 0
    in_flight: int = 0
    seen: int = 0
    bytes: int = 0
    duration_ms: float = 0.0
    error: str | None = None


class CaptureSource(Protocol):
    """What a checkpoint is taken from: the crawl, on the reactor thread."""

    async def capture(self, base: bool) -> tuple[FrontierCapture, bytes]:
        """The frontier (a base if ``base``, else what changed) and the crawl state, now."""
        ...

    def failed(self, capture: FrontierCapture) -> None:
        """The capture did not reach the store: carry its changes into the next one."""
        ...


def describe_triggers(triggers: frozenset[Trigger]) -> str:
    """The triggers one checkpoint served, as its manifest records them: ``migrating+timer``."""
    return "+".join(sorted(triggers))


def _mb(n: int) -> str:
    return f"{n / 1_000_000:.1f} MB" if n >= 100_000 else f"{n / 1000:.1f} kB"


class Checkpointer:
    """Takes checkpoints of one crawl into one key of one store."""

    def __init__(
        self,
        store: KeyValueStore,
        key: str,
        spider_name: str,
        options: CheckpointOptions,
        stats: StatsCollector,
        store_ref: str | None = None,
    ) -> None:
        self.store = store
        self.store_ref = store_ref
        self.key = key
        self.spider_name = spider_name
        self.options = options
        self.stats = stats
        self.source: CaptureSource | None = None
        #: Called with each capture once its manifest is in the store (the item sink's commit).
        self.on_landed: Callable[[FrontierCapture], None] | None = None
        self.writes_enabled = True
        self.manifest: Manifest | None = None
        self._min_generation = 0
        self._waiters: list[tuple[Deferred[CheckpointResult], Trigger, str | None]] = []
        self._busy = False
        #: Called with every checkpoint saved (the run's status message follows them).
        self.on_saved: list[Callable[[CheckpointResult], None]] = []

    # -- reading ------------------------------------------------------------------------------

    async def read(self) -> Restored | None:
        """The newest checkpoint under the key, or None; raises :class:`UnreadableCheckpoint`."""
        return await read_checkpoint(
            self.store, self.key, self.spider_name, self.store_ref, self.options.upload_concurrency
        )

    def adopt(self, manifest: Manifest | None) -> None:
        """Continue the generation numbers and chunk bookkeeping of ``manifest``."""
        self.manifest = manifest

    async def set_aside(self, data: bytes | None = None) -> str:
        """Copy the unreadable manifest to ``<key>.unreadable-<time>``; write above its chunks."""
        if data is None:
            data = await self.store.get(self.key) or b""
        aside = aside_key(self.key, f"{datetime.now(UTC):%Y%m%d%H%M%S}")
        await self.store.put(aside, data, BINARY)
        self._min_generation = await self._highest_chunk_generation()
        return aside

    async def _highest_chunk_generation(self) -> int:
        generations = [
            parsed[0]
            for k in await self.store.list_keys(chunk_prefix(self.key))
            if (parsed := parse_chunk_key(self.key, k)) is not None
        ]
        return max(generations, default=0)

    async def collect_garbage(self) -> int:
        """Delete chunk records of this key that the current manifest does not point at.

        A failure is logged, not raised: the records are removed on a later start.
        """
        try:
            removed = await self._delete_stale_chunks()
        except Exception as exc:
            logger.warning("Could not clean up old chunks of %s: %s", self.key, exc)
            return 0
        if removed:
            logger.debug("Removed %d chunk records no checkpoint points at", removed)
        return removed

    async def _delete_stale_chunks(self) -> int:
        if self.manifest is None:
            return 0
        keep = self.manifest.chunk_keys
        chunks = {
            k: parsed
            for k in await self.store.list_keys(chunk_prefix(self.key))
            if (parsed := parse_chunk_key(self.key, k)) is not None
        }
        # New chunks go above every generation found, even one whose deletion fails below.
        self._min_generation = max([self._min_generation, *(g for g, _ in chunks.values())])
        stale = [partial(self.store.delete, k) for k in sorted(chunks) if k not in keep]
        await gather_bounded(stale, self.options.upload_concurrency)
        return len(stale)

    # -- writing ------------------------------------------------------------------------------

    def request(
        self, trigger: Trigger, close_reason: str | None = None
    ) -> Deferred[CheckpointResult]:
        """Ask for a checkpoint; fires when one that started after this call has finished."""
        d: Deferred[CheckpointResult] = Deferred()
        if not self.writes_enabled or self.source is None:
            d.callback(CheckpointResult(saved=False, error="checkpoints are disabled"))
            return d
        self._waiters.append((d, trigger, close_reason))
        if not self._busy:
            self._busy = True
            start_task(self._serve())
        return d

    async def _serve(self) -> None:
        try:
            while self._waiters and self.writes_enabled:
                waiters, self._waiters = self._waiters, []
                triggers = frozenset(t for _, t, _ in waiters)
                close_reason = next((r for _, _, r in reversed(waiters) if r is not None), None)
                try:
                    result = await self._take(triggers, close_reason)
                except BaseException:  # cancelled: answer everyone rather than leave them waiting
                    cancelled = CheckpointResult(saved=False, error="the checkpoint was cancelled")
                    waiters, self._waiters = waiters + self._waiters, []
                    for d, _, _ in waiters:
                        d.callback(cancelled)
                    raise
                for d, _, _ in waiters:
                    d.callback(result)
                if result.saved:
                    self._saved(result)
            for d, _, _ in self._waiters:
                d.callback(CheckpointResult(saved=False, error="checkpoints are disabled"))
            self._waiters = []
        finally:
            self._busy = False

    def _saved(self, result: CheckpointResult) -> None:
        for listener in self.on_saved:
            try:
                listener(result)
            except Exception:  # a listener's bug must not stop checkpoints
                logger.exception("Error in a listener of saved checkpoints")

    def _wants_base(self, triggers: frozenset[Trigger]) -> bool:
        if self.manifest is None:
            return True
        if URGENT_TRIGGERS & triggers:
            return False  # folding waits for the next periodic checkpoint
        deltas = self.manifest.segments[1:]
        if len(deltas) >= self.options.max_deltas:
            return True
        # Fold the deltas in once they outweigh the base: restore time and store size stay bounded.
        return sum(s.stored_size for s in deltas) > self.manifest.segments[0].stored_size

    async def _take(
        self, triggers: frozenset[Trigger], close_reason: str | None
    ) -> CheckpointResult:
        assert self.source is not None
        started = time.perf_counter()
        captured_at = datetime.now(UTC).isoformat()
        capture, crawl = await self.source.capture(self._wants_base(triggers))
        previous = self.manifest
        generation = max(previous.generation if previous else 0, self._min_generation) + 1
        try:
            manifest, written = await self._write(
                capture, crawl, generation, captured_at, triggers, close_reason
            )
        except BaseException as exc:
            # Its records may be in the store, or arrive later: never reuse this generation.
            self._min_generation = max(self._min_generation, generation)
            self._failed(capture, exc)
            if not isinstance(exc, Exception):
                raise
            return CheckpointResult(saved=False, error=str(exc))
        self.manifest = manifest
        duration_ms = (time.perf_counter() - started) * 1000
        self.stats.inc_value(stats_keys.CHECKPOINT_COUNT)
        self.stats.inc_value(stats_keys.CHECKPOINT_BYTES, written)
        self.stats.set_value(stats_keys.CHECKPOINT_LAST_BYTES, written)
        self.stats.set_value(stats_keys.CHECKPOINT_LAST_MS, round(duration_ms, 1))
        items = capture.items
        logger.info(
            "Checkpoint %d saved to %s: %s pending, %s in flight, %s seen,%s %s in %d ms (%s, %s)",
            generation,
            self.key,
            f"{capture.pending:,}",
            f"{capture.in_flight:,}",
            f"{capture.seen:,}",
            "" if items is None else f" {items.uncommitted:,} items to commit,",
            _mb(written),
            duration_ms,
            capture.kind,
            describe_triggers(triggers),
        )
        if self.on_landed is not None:
            self.on_landed(capture)
        if previous is not None:
            await self._delete_unreferenced(previous, manifest)
        return CheckpointResult(
            saved=True,
            generation=generation,
            kind=capture.kind,
            pending=capture.pending,
            in_flight=capture.in_flight,
            seen=capture.seen,
            bytes=written,
            duration_ms=duration_ms,
        )

    def _failed(self, capture: FrontierCapture, exc: BaseException) -> None:
        assert self.source is not None
        self.stats.inc_value(stats_keys.CHECKPOINT_FAILED)
        self.source.failed(capture)
        logger.error(
            "Checkpoint could not be saved to %s (%s). The previous checkpoint stays valid;"
            " the next one will try again.",
            self.key,
            f"{type(exc).__name__}: {exc}" if str(exc) else f"{type(exc).__name__}",
        )

    async def _write(
        self,
        capture: FrontierCapture,
        crawl: bytes,
        generation: int,
        captured_at: str,
        triggers: frozenset[Trigger],
        close_reason: str | None,
    ) -> tuple[Manifest, int]:
        payload = {
            "kind": capture.kind,
            "generation": generation,
            "crawl": crawl,
            **capture.payload(),
        }
        level, chunk_bytes = self.options.compression_level, self.options.chunk_bytes

        def encode() -> tuple[list[bytes], tuple[ChunkRef, ...], int]:
            data, raw_size = encode_segment(payload, level)
            chunks = split_chunks(data, chunk_bytes)
            # Hashing tens of MB takes tens of ms: here, off the reactor thread.
            return chunks, chunk_refs(self.key, generation, chunks), raw_size

        chunks, refs, raw_size = await run_in_thread(encode)
        await gather_bounded(
            [partial(self.store.put, r.key, c, BINARY) for r, c in zip(refs, chunks, strict=True)],
            self.options.upload_concurrency,
        )
        segment = SegmentRef(
            generation=generation, kind=capture.kind, raw_size=raw_size, chunks=refs
        )
        kept = (
            ()
            if capture.kind == SegmentKind.BASE or self.manifest is None
            else self.manifest.segments
        )
        manifest = Manifest(
            key=self.key,
            spider=self.spider_name,
            generation=generation,
            created_at=captured_at,
            trigger=describe_triggers(triggers),
            close_reason=close_reason,
            segments=(*kept, segment),
            summary=self._summary(capture),
            store=self.store_ref,
        )
        await self.store.put(self.key, manifest.to_bytes(), JSON)
        return manifest, sum(r.size for r in refs)

    def _summary(self, capture: FrontierCapture) -> dict[str, Any]:
        stats = self.stats.get_stats()
        summary: dict[str, Any] = {
            "pending": capture.pending,
            "in_flight": capture.in_flight,
            "seen": capture.seen,
            "stats": {
                k: stats[k] for k in stats_keys.SUMMARY if isinstance(stats.get(k), (int, float))
            },
        }
        if capture.items is not None:
            items = capture.items
            summary["items"] = {
                "dataset": items.dataset,
                "committed": items.point.index,
                "uncommitted": items.uncommitted,
            }
        return summary

    async def _delete_unreferenced(self, previous: Manifest, current: Manifest) -> None:
        stale = [partial(self.store.delete, k) for k in previous.chunk_keys - current.chunk_keys]
        try:
            await gather_bounded(stale, self.options.upload_concurrency)
        except Exception as exc:
            logger.warning(
                "Could not delete %d old chunks (%s); they are removed on the next start.",
                len(stale),
                exc,
            )


__all__ = ["CheckpointResult", "Checkpointer", "Restored"]
