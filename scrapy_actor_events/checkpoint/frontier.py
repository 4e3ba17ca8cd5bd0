"""The crawl frontier: every request the scheduler accepted whose callback has not finished.

Pending requests (in the scheduler's queues) and in-flight ones (taken from the scheduler, callback
still running) are one set here, the *open* requests: both must be fetched again after a kill. The
:class:`Frontier` follows that set as it changes (a journal fed by two hooks, see
:func:`._scrapy_internals.hook_frontier`), so that a checkpoint costs what changed since the last
one, not the size of the crawl:

* each open request gets a sequence number when the scheduler accepts it; numbers only grow, so
  re-enqueueing open requests in number order rebuilds every scheduler queue in the same order;
* a request is encoded once, when the scheduler accepts it, and its bytes are kept for every
  checkpoint that follows. A few microseconds per request, spread over the crawl, so that no
  checkpoint encodes tens of thousands of requests at once (a migration flush has seconds);
* a *delta* lists the requests added (number and bytes), the numbers removed and the fingerprints
  the dupefilter learned since the previous checkpoint: it touches what changed, never the whole
  frontier.

Everything here runs on the reactor thread; a capture is one consistent cut of the crawl.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from scrapy.http.request import NO_CALLBACK

from .. import stats_keys
from .codec import RequestCodec, UndecodableError
from .data import UnencodableError
from .format import SegmentKind

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from scrapy import Request
    from scrapy.statscollectors import StatsCollector

    from .items import ItemsCapture

logger = logging.getLogger(__name__)


@dataclass
class FrontierCapture:
    """The frontier at one instant: a full list (``base``) or the changes since the last one."""

    kind: SegmentKind
    seqs: list[int]
    records: list[bytes]
    removed: list[int]
    fingerprints: list[bytes] | None
    next_seq: int
    pending: int
    in_flight: int
    seen: int
    #: The journal this capture consumed (added, removed, new fingerprints), given back to the
    #: frontier if the capture never reaches the store; a base keeps it too, so that a failed
    #: base can be followed by a delta against the checkpoint still in the store.
    journal: tuple[list[int], list[int], list[bytes]] = field(
        default_factory=lambda: ([], [], []), repr=False
    )
    #: A base the frontier needed (nothing valid in the store to write a delta against).
    required: bool = False
    #: The item journal, cut at the same instant (None: items do not go to a dataset).
    items: ItemsCapture | None = None

    def payload(self) -> dict[str, object]:
        payload: dict[str, object] = {
            "seqs": self.seqs,
            "records": self.records,
            "removed": self.removed,
            "fingerprints": self.fingerprints,
            "next_seq": self.next_seq,
        }
        if self.items is not None:
            payload.update(self.items.payload())
        return payload


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
        self._added: list[int] = []
        self._removed: list[int] = []
        self._new_fps: list[bytes] = []
        # Numbers above this were never in a capture: when they finish, no delta must say so.
        self._captured_upto = 0
        # Restored requests not re-enqueued yet: (numbers, records), read from _backlog_at on.
        self._backlog_seqs: list[int] = []
        self._backlog_records: list[bytes] = []
        self._backlog_at = 0
        self._need_base = True
        self._unrestorable = 0
        # Open requests with no record (unencodable): not in any checkpoint, so not counted.
        self._unencoded_open = 0
        self._causes_logged: set[str] = set()

    # -- the journal --------------------------------------------------------------------------

    def on_enqueued(self, request: Request) -> None:
        if request.callback is NO_CALLBACK:
            return
        if request in self._seq_of:
            self.on_finished(request)  # the same object queued twice: keep the newer position
        self._seq += 1
        seq = self._seq
        self._seq_of[request] = seq
        # Encoded now, while it is what the scheduler accepted: downloader middlewares change
        # in-flight requests (headers, meta) in ways a restart must not replay.
        record = self._encode(request)
        if record is not None:
            self._encoded[seq] = record
            self._added.append(seq)
        else:
            self._unencoded_open += 1
        if self._fingerprint is not None and not request.dont_filter:
            self._new_fps.append(self._fingerprint(request))

    def on_finished(self, request: Request) -> None:
        seq = self._seq_of.pop(request, None)
        if seq is None:
            return
        if self._encoded.pop(seq, None) is None:
            self._unencoded_open -= 1
            return
        if seq <= self._captured_upto:
            self._removed.append(seq)

    @property
    def backlog(self) -> int:
        return len(self._backlog_seqs) - self._backlog_at

    def tracked(self, request: Request) -> bool:
        return request in self._seq_of

    # -- capture ------------------------------------------------------------------------------

    def capture(self, full: bool = False) -> FrontierCapture:
        """Take the frontier as it is now; call :meth:`failed` if it never reaches the store.

        A delta costs what changed since the previous capture: the requests added (already
        encoded), the numbers removed, the new fingerprints and the in-flight requests. Only a
        base walks the whole frontier and the whole fingerprint set.
        """
        encoded = self._encoded
        added = [seq for seq in self._added if seq in encoded]  # some finished since
        journal = (added, self._removed, self._new_fps)
        seq_of = self._seq_of
        in_flight = sum(1 for r in self._in_progress() if seq_of.get(r, 0) in encoded)
        required = self._need_base
        base = full or required
        if base:
            seqs = list(encoded)
            records = list(encoded.values())
            fingerprints = list(self._seen) if self._seen is not None else None
            removed: list[int] = []
        else:
            seqs, records = added, [encoded[seq] for seq in added]
            fingerprints = self._new_fps if self._seen is not None else None
            removed = self._removed
        capture = FrontierCapture(
            kind=SegmentKind.BASE if base else SegmentKind.DELTA,
            seqs=seqs,
            records=records,
            removed=removed,
            fingerprints=fingerprints,
            next_seq=self._seq,
            pending=len(seq_of)
            - self._unencoded_open
            - in_flight
            + self.backlog
            + self._unrestorable,
            in_flight=in_flight,
            seen=len(self._seen) if self._seen is not None else 0,
            journal=journal,
            required=required,
        )
        self._added = []
        self._removed = []
        self._new_fps = []
        self._captured_upto = self._seq
        self._need_base = False
        return capture

    def failed(self, capture: FrontierCapture) -> None:
        """The capture never reached the store: give its journal back so the next one carries it.

        The store still holds the checkpoint before it, so the next capture may be a delta even
        after a failed base, unless that base was required.
        """
        added, removed, new_fps = capture.journal
        self._added = added + self._added
        self._removed = removed + self._removed
        self._new_fps = new_fps + self._new_fps
        if capture.required:
            self._need_base = True

    def _encode(self, request: Request) -> bytes | None:
        try:
            return self.codec.encode(request)
        except UnencodableError as exc:
            self.stats.inc_value(stats_keys.REQUESTS_UNSERIALIZABLE)
            if exc.cause not in self._causes_logged:
                self._causes_logged.add(exc.cause)
                logger.warning(
                    "Request %s cannot be checkpointed and will not survive a restart: %s."
                    " Further requests failing for this reason are only counted in %s.",
                    request.url,
                    exc.cause,
                    stats_keys.REQUESTS_UNSERIALIZABLE,
                )
            return None

    # -- restore ------------------------------------------------------------------------------

    def load(self, seqs: list[int], records: list[bytes], next_seq: int) -> None:
        """Adopt restored requests (already in the store) as a backlog to re-enqueue."""
        # Bulk operations: a million restored requests are adopted in a fraction of a second.
        self._encoded.update(zip(seqs, records, strict=True))
        self._backlog_seqs = self._backlog_seqs[self._backlog_at :] + seqs
        self._backlog_records = self._backlog_records[self._backlog_at :] + records
        self._backlog_at = 0
        self._seq = max(self._seq, next_seq, seqs[-1] if seqs else 0)
        self._captured_upto = self._seq
        # What was restored is exactly what the store holds, so the next checkpoint can be a delta.
        self._need_base = False

    def merge_fingerprints(self, fingerprints: Iterable[bytes]) -> None:
        if self._seen is not None:
            self._seen.update(fingerprints)

    def restore_batch(
        self, enqueue: Callable[[Request], bool], limit: int, deadline: float | None = None
    ) -> int:
        """Re-enqueue up to ``limit`` backlog requests in sequence order; returns how many.

        With a ``deadline`` (``time.perf_counter()``), stop once it has passed (after at least one
        request), so that one reactor turn stays short.
        """
        restored = 0
        seqs, records = self._backlog_seqs, self._backlog_records
        at, end = self._backlog_at, min(len(seqs), self._backlog_at + limit)
        while at < end:
            if deadline is not None and at > self._backlog_at and time.perf_counter() >= deadline:
                break
            seq, record = seqs[at], records[at]
            at += 1
            try:
                request = self.codec.decode(record)
            except UndecodableError as exc:
                # Kept in the checkpoint (still in _encoded): a fixed spider can restore it later.
                self._unrestorable += 1
                self.stats.inc_value(stats_keys.RESTORE_UNDECODABLE)
                cause = str(exc)
                if cause not in self._causes_logged:
                    self._causes_logged.add(cause)
                    logger.error(
                        "A checkpointed request cannot be restored and stays in the checkpoint: %s."
                        " Further failures are only counted in %s.",
                        cause,
                        stats_keys.RESTORE_UNDECODABLE,
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
        self._backlog_at = at
        if at >= len(seqs):  # drained: let the lists (and records of finished requests) go
            self._backlog_seqs, self._backlog_records, self._backlog_at = [], [], 0
        self.stats.inc_value(stats_keys.RESTORE_REQUESTS, restored)
        return restored
