"""The crawl frontier: every request the scheduler accepted whose callback has not finished.

Pending requests (in the scheduler's queues) and in-flight ones (taken from the scheduler, callback
still running) are one set here, the *open* requests: both must be fetched again after a kill.
Two journals follow that set as it changes, so that a checkpoint costs what changed since the last
one, not the size of the crawl:

* :class:`~.queue_frontier.QueueFrontier` (the default): the scheduler's queues hold the requests
  as records (:mod:`.records`) and the journal shares those very bytes;
* :class:`Frontier` (this module), for queues that hold ``Request`` objects
  (``ACTOR_EVENTS_COMPACT_QUEUE = False``, or queues that could not be swapped): fed by two hooks
  (:func:`._scrapy_internals.hook_frontier`), it keeps each open request's record beside it.

For the second:

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
from typing import TYPE_CHECKING, Any

from scrapy.http.request import NO_CALLBACK

from .. import stats_keys
from .codec import RequestCodec, UndecodableError
from .data import UnencodableError
from .fingerprints import restore_into, snapshot
from .format import SegmentKind
from .records import make_item, record_of, seq_of, where_to_data

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from scrapy import Request
    from scrapy.statscollectors import StatsCollector

    from .items import ItemsCapture
    from .reader import Restored
    from .records import Where

logger = logging.getLogger(__name__)


@dataclass
class FrontierCapture:
    """The frontier at one instant: a full list (``base``) or the changes since the last one.

    ``records`` are items (:mod:`.records`: sequence number + codec record). ``groups`` lists
    the queues they belong to (None: not known, found from the record on restore) and ``runs``
    says which: ``[group, count, group, count, ...]`` over ``records`` in order (None: all in
    ``groups[0]``).
    """

    kind: SegmentKind
    records: list[bytes]
    removed: list[int]
    fingerprints: Any
    next_seq: int
    pending: int
    in_flight: int
    seen: int
    #: The journal this capture consumed, given back to the frontier if the capture never
    #: reaches the store; a base keeps it too, so that a failed base can be followed by a delta
    #: against the checkpoint still in the store.
    journal: Any = field(default=None, repr=False)
    #: A base the frontier needed (nothing valid in the store to write a delta against).
    required: bool = False
    groups: list[Where | None] = field(default_factory=lambda: [None])
    runs: list[int] | None = None
    #: The item journal, cut at the same instant (None: items do not go to a dataset).
    items: ItemsCapture | None = None

    @property
    def seqs(self) -> list[int]:
        return [seq_of(item) for item in self.records]

    def payload(self) -> dict[str, object]:
        payload: dict[str, object] = {
            "records": self.records,
            "groups": [where_to_data(w) for w in self.groups],
            "runs": self.runs if self.runs is not None else [0, len(self.records)],
            "removed": self.removed,
            "fingerprints": self.fingerprints,
            "next_seq": self.next_seq,
        }
        if self.items is not None:
            payload.update(self.items.payload())
        return payload


def grouped(
    by_queue: dict[Where | None, list[bytes]],
) -> tuple[list[bytes], list[Where | None], list[int]]:
    """Records, groups and runs (see :class:`FrontierCapture`) of items listed by queue."""
    records: list[bytes] = []
    groups: list[Where | None] = []
    runs: list[int] = []
    for where, items in by_queue.items():
        if items:
            runs += [len(groups), len(items)]
            groups.append(where)
            records += items
    return records, groups or [None], runs


class Coder:
    """The codec with the reporting around it: what cannot be encoded or decoded is counted in
    the stats and logged once per cause."""

    def __init__(self, codec: RequestCodec, stats: StatsCollector) -> None:
        self.codec = codec
        self.stats = stats
        self._causes_logged: set[str] = set()

    def encode(self, request: Request) -> bytes | None:
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

    def decode(self, item: bytes) -> Request | None:
        """The request of ``item``, None if it no longer decodes (reported)."""
        try:
            return self.codec.decode(record_of(item))
        except UndecodableError as exc:
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
            return None


class Frontier:
    """Follows the open requests of a crawl whose queues hold ``Request`` objects."""

    def __init__(
        self,
        codec: RequestCodec,
        stats: StatsCollector,
        in_progress: Callable[[], Iterable[Request]],
        seen: Any = None,
        fingerprint: Callable[[Request], bytes] | None = None,
    ) -> None:
        self.codec = codec
        self.coder = Coder(codec, stats)
        self.stats = stats
        self._in_progress = in_progress
        self._seen = seen
        self._fingerprint = fingerprint if seen is not None else None
        self._seq = 0
        self._seq_of: dict[Request, int] = {}
        self._encoded: dict[int, bytes] = {}  # number -> item
        self._added: list[int] = []
        self._removed: list[int] = []
        self._new_fps: list[bytes] = []
        # Numbers above this were never in a capture: when they finish, no delta must say so.
        self._captured_upto = 0
        # Restored items not re-enqueued yet, in number order, read from _backlog_at on.
        self._backlog: list[bytes] = []
        self._backlog_at = 0
        self._need_base = True
        self._unrestorable = 0
        # Open requests with no record (unencodable): not in any checkpoint, so not counted.
        self._unencoded_open = 0

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
        record = self.coder.encode(request)
        if record is not None:
            self._encoded[seq] = make_item(seq, record)
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
    def seen(self) -> Any:
        """The dupefilter's fingerprint set this frontier checkpoints (None: none)."""
        return self._seen

    @property
    def fingerprint(self) -> Callable[[Request], bytes] | None:
        return self._fingerprint

    @property
    def open_count(self) -> int:
        return len(self._seq_of) + self.backlog

    @property
    def backlog(self) -> int:
        return len(self._backlog) - self._backlog_at

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
            records = list(encoded.values())
            fingerprints = snapshot(self._seen) if self._seen is not None else None
            removed: list[int] = []
        else:
            records = [encoded[seq] for seq in added]
            fingerprints = self._new_fps if self._seen is not None else None
            removed = self._removed
        capture = FrontierCapture(
            kind=SegmentKind.BASE if base else SegmentKind.DELTA,
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

    # -- restore ------------------------------------------------------------------------------

    def restore(self, restored: Restored) -> int:
        """Adopt a checkpoint: its fingerprints now, its requests as a backlog to re-enqueue
        (:meth:`restore_batch`); returns how many requests it holds."""
        if self._seen is not None:
            restore_into(self._seen, restored.seen_layouts, restored.seen_listed)
        items = restored.items
        self.load(items, restored.next_seq)
        return len(items)

    def load(self, items: list[bytes], next_seq: int) -> None:
        """Adopt restored items (already in the store) as a backlog to re-enqueue."""
        # Bulk operations: a million restored requests are adopted in a fraction of a second.
        self._encoded.update(zip(map(seq_of, items), items, strict=True))
        self._backlog = self._backlog[self._backlog_at :] + items
        self._backlog_at = 0
        self._seq = max(self._seq, next_seq, seq_of(items[-1]) if items else 0)
        self._captured_upto = self._seq
        # What was restored is exactly what the store holds, so the next checkpoint can be a delta.
        self._need_base = False

    def restore_batch(
        self, enqueue: Callable[[Request], bool], limit: int, deadline: float | None = None
    ) -> int:
        """Re-enqueue up to ``limit`` backlog requests in sequence order; returns how many.

        With a ``deadline`` (``time.perf_counter()``), stop once it has passed (after at least one
        request), so that one reactor turn stays short.
        """
        restored = 0
        items = self._backlog
        at, end = self._backlog_at, min(len(items), self._backlog_at + limit)
        while at < end:
            if deadline is not None and at > self._backlog_at and time.perf_counter() >= deadline:
                break
            item = items[at]
            at += 1
            request = self.coder.decode(item)
            if request is None:
                # Kept in the checkpoint (still in _encoded): a fixed spider can restore it later.
                self._unrestorable += 1
                continue
            seq = seq_of(item)
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
        if at >= len(items):  # drained: let the list (and items of finished requests) go
            self._backlog, self._backlog_at = [], 0
        self.stats.inc_value(stats_keys.RESTORE_REQUESTS, restored)
        return restored


__all__ = ["Coder", "Frontier", "FrontierCapture", "grouped"]
