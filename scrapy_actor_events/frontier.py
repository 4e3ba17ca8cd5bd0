"""The crawl frontier: every request the scheduler accepted whose callback has not finished.

Pending requests (in the scheduler's queues) and in-flight ones (taken from the scheduler, callback
still running) are one set here, the *open* requests: both must be fetched again after a kill. The
:class:`Frontier` follows that set as it changes (a journal fed by two hooks, see
:func:`._scrapy_internals.hook_frontier`), so that a checkpoint costs what changed since the last
one, not the size of the crawl:

* each open request gets a sequence number when the scheduler accepts it; numbers only grow, so
  re-enqueueing open requests in number order rebuilds every scheduler queue in the same order;
* a request is encoded once, at the first checkpoint that sees it, and its bytes are kept for the
  full (*base*) checkpoints that follow;
* a *delta* lists the requests added (number and bytes), the numbers removed and the fingerprints
  the dupefilter learned since the previous checkpoint.

Everything here runs on the reactor thread; a capture is one consistent cut of the crawl.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from scrapy.http.request import NO_CALLBACK

from .codec import RequestCodec, UndecodableError, UnencodableError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from scrapy import Request
    from scrapy.statscollectors import StatsCollector

logger = logging.getLogger(__name__)

STATS_UNSERIALIZABLE = "actor_events/requests/unserializable"
STATS_UNDECODABLE = "actor_events/restore/undecodable"
STATS_RESTORED = "actor_events/restore/requests"


@dataclass
class FrontierCapture:
    """The frontier at one instant: a full list (``base``) or the changes since the last one."""

    kind: str
    seqs: list[int]
    records: list[bytes]
    removed: list[int]
    fingerprints: list[bytes] | None
    next_seq: int
    pending: int
    in_flight: int
    seen: int
    added: list[Request] = field(default_factory=list, repr=False)

    def payload(self) -> dict[str, object]:
        return {
            "seqs": self.seqs,
            "records": self.records,
            "removed": self.removed,
            "fingerprints": self.fingerprints,
            "next_seq": self.next_seq,
        }


class Frontier:
    """Follows the open requests of one crawl and captures or restores them."""

    def __init__(
        self,
        codec: RequestCodec,
        stats: StatsCollector,
        in_progress: Callable[[], Iterable[Request]],
        seen: set[bytes] | None = None,
        fingerprint: Callable[[Request], bytes] | None = None,
    ) -> None:
        self.codec = codec
        self.stats = stats
        self._in_progress = in_progress
        self._seen = seen
        self._fingerprint = fingerprint if seen is not None else None
        self._seq = 0
        self._seq_of: dict[Request, int] = {}
        self._encoded: dict[int, bytes] = {}
        self._added: list[Request] = []
        self._removed: list[int] = []
        self._new_fps: list[bytes] = []
        self._backlog: deque[tuple[int, bytes]] = deque()
        self._need_base = True
        self._unrestorable = 0
        self._causes_logged: set[str] = set()

    # -- the journal --------------------------------------------------------------------------

    def on_enqueued(self, request: Request) -> None:
        if request.callback is NO_CALLBACK:
            return
        if request in self._seq_of:
            self.on_finished(request)  # the same object queued twice: keep the newer position
        self._seq += 1
        self._seq_of[request] = self._seq
        self._added.append(request)
        if self._fingerprint is not None and not request.dont_filter:
            self._new_fps.append(self._fingerprint(request))

    def on_finished(self, request: Request) -> None:
        seq = self._seq_of.pop(request, None)
        if seq is not None and self._encoded.pop(seq, None) is not None:
            self._removed.append(seq)

    @property
    def tracks_fingerprints(self) -> bool:
        return self._seen is not None

    @property
    def open_count(self) -> int:
        return len(self._seq_of) + len(self._backlog)

    @property
    def backlog(self) -> int:
        return len(self._backlog)

    def tracked(self, request: Request) -> bool:
        return request in self._seq_of

    # -- capture ------------------------------------------------------------------------------

    def capture(self, full: bool = False) -> FrontierCapture:
        """Take the frontier as it is now; call :meth:`failed` if it never reaches the store."""
        added_seqs: list[int] = []
        added_records: list[bytes] = []
        added_requests: list[Request] = []
        for request in self._added:
            seq = self._seq_of.get(request)
            if seq is None:
                continue  # finished before any checkpoint saw it
            record = self._encoded.get(seq)
            if record is None:
                record = self._encode(request)
                if record is None:
                    continue
                self._encoded[seq] = record
            added_seqs.append(seq)
            added_records.append(record)
            added_requests.append(request)
        in_flight = sum(1 for r in self._in_progress() if r in self._seq_of)
        base = full or self._need_base
        if base:
            seqs = list(self._encoded)
            records = list(self._encoded.values())
            fingerprints = list(self._seen) if self._seen is not None else None
            removed: list[int] = []
        else:
            seqs, records = added_seqs, added_records
            fingerprints = self._new_fps if self._seen is not None else None
            removed = self._removed
        capture = FrontierCapture(
            kind="base" if base else "delta",
            seqs=seqs,
            records=records,
            removed=removed,
            fingerprints=fingerprints,
            next_seq=self._seq,
            pending=len(self._seq_of) - in_flight + len(self._backlog) + self._unrestorable,
            in_flight=in_flight,
            seen=len(self._seen) if self._seen is not None else 0,
            added=added_requests,
        )
        self._added = []
        self._removed = []
        self._new_fps = []
        self._need_base = False
        return capture

    def failed(self, capture: FrontierCapture) -> None:
        """The capture never reached the store: fold it back so the next one carries it."""
        if capture.kind == "base":
            self._need_base = True
            return
        self._added = capture.added + self._added
        self._removed = capture.removed + self._removed
        if capture.fingerprints is not None:
            self._new_fps = capture.fingerprints + self._new_fps

    def _encode(self, request: Request) -> bytes | None:
        try:
            return self.codec.encode(request)
        except UnencodableError as exc:
            self.stats.inc_value(STATS_UNSERIALIZABLE)
            if exc.cause not in self._causes_logged:
                self._causes_logged.add(exc.cause)
                logger.warning(
                    "Request %s cannot be checkpointed and will not survive a restart: %s."
                    " Further requests failing for this reason are only counted in %s.",
                    request.url,
                    exc.cause,
                    STATS_UNSERIALIZABLE,
                )
            return None

    # -- restore ------------------------------------------------------------------------------

    def load(self, seqs: list[int], records: list[bytes], next_seq: int) -> None:
        """Adopt restored requests (already in the store) as a backlog to re-enqueue."""
        for seq, record in zip(seqs, records, strict=True):
            self._encoded[seq] = record
            self._backlog.append((seq, record))
        self._seq = max(self._seq, next_seq, seqs[-1] if seqs else 0)
        # What was restored is exactly what the store holds, so the next checkpoint can be a delta.
        self._need_base = False

    def merge_fingerprints(self, fingerprints: Iterable[bytes]) -> None:
        if self._seen is not None:
            self._seen.update(fingerprints)

    def restore_batch(self, enqueue: Callable[[Request], bool], limit: int) -> int:
        """Re-enqueue up to ``limit`` backlog requests in sequence order; returns how many."""
        restored = 0
        while self._backlog and restored < limit:
            seq, record = self._backlog.popleft()
            try:
                request = self.codec.decode(record)
            except UndecodableError as exc:
                # Kept in the checkpoint (still in _encoded): a fixed spider can restore it later.
                self._unrestorable += 1
                self.stats.inc_value(STATS_UNDECODABLE)
                cause = str(exc)
                if cause not in self._causes_logged:
                    self._causes_logged.add(cause)
                    logger.error(
                        "A checkpointed request cannot be restored and stays in the checkpoint: %s."
                        " Further failures are only counted in %s.",
                        cause,
                        STATS_UNDECODABLE,
                    )
                continue
            # Restored requests are in the restored fingerprint set already: let them through the
            # dupefilter once, without changing what the request says about later filtering.
            dont_filter = request.dont_filter
            request.dont_filter = True
            try:
                accepted = enqueue(request)
            finally:
                request.dont_filter = dont_filter
            if accepted:
                self._seq_of[request] = seq
                restored += 1
            else:
                self._encoded.pop(seq, None)
                self._removed.append(seq)
        self.stats.inc_value(STATS_RESTORED, restored)
        return restored
