"""The frontier whose pending requests live in the scheduler's queues, as records.

The scheduler's memory queues are :class:`~.queues.RecordQueue` instances: a request the scheduler
accepts is encoded once, when its queue stores it (:meth:`QueueFrontier.admit`), and that one
``bytes`` object is all there is of it until a queue hands it out (:meth:`QueueFrontier.release`
decodes it). The journal keeps no map of pending requests:

* ``added`` references the items admitted since the last capture (the same objects the queues
  hold), with their queue; a delta lists those still open;
* requests handed out and not finished are the only ones kept by request (``in flight``): when
  one finishes, its number goes to ``removed`` (a delta says so) if a capture holds it;
* a base capture walks the queues themselves.

A restore puts the stored items straight back into the queues they were taken from, without
rebuilding a single request: a million in a fraction of a second. Only a priority queue of the
user's own class (``SCHEDULER_PRIORITY_QUEUE``) gets them through the scheduler, decoded, in
slices.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from scrapy import Request
from scrapy.http.request import NO_CALLBACK

from .. import stats_keys
from .codec import UndecodableError
from .fingerprints import restore_into, snapshot
from .format import SegmentKind
from .frontier import Coder, FrontierCapture, grouped
from .queues import RecordQueue, record_queue_class
from .records import HostSlots, RecordPlacer, make_item, record_of, seq_of

if TYPE_CHECKING:
    from scrapy.statscollectors import StatsCollector

    from .codec import RequestCodec
    from .reader import Restored
    from .records import Where

logger = logging.getLogger(__name__)

#: The scheduler's queue for a stored queue (created if need be), and the queue it stands for
#: there (a slot means nothing to ScrapyPriorityQueue; a start flag nothing without start queues).
QueueTarget = Callable[["Where"], "tuple[RecordQueue, Where]"]


class QueueFrontier:
    """Journal of a crawl whose memory queues are :class:`~.queues.RecordQueue` classes."""

    def __init__(
        self,
        codec: RequestCodec,
        stats: StatsCollector,
        seen: Any = None,
        fingerprint: Callable[[Request], bytes] | None = None,
    ) -> None:
        self.codec = codec
        self.coder = Coder(codec, stats)
        self.stats = stats
        self._seen = seen
        self._fingerprint = fingerprint if seen is not None else None
        # Set by attach(): see there.
        self.place: Callable[[Request, bool], Where | None] | None = None
        self.wake: Callable[[], None] | None = None
        self._target: QueueTarget | None = None
        self._placer = RecordPlacer(None)
        self._queues: set[RecordQueue] = set()
        self._seq = 0
        self._captured_upto = 0  # numbers up to this are in the store (or on their way)
        self._added: list[bytes] = []
        self._added_where: list[Where | None] = []
        self._removed: list[int] = []
        self._finished_new: set[int] = set()  # finished, never captured: left out of deltas
        self._new_fps: list[bytes] = []
        self._in_flight: dict[Request, tuple[bytes, Where | None]] = {}
        self._unrestorable: list[tuple[bytes, Where | None]] = []
        self._pending = 0  # records in the queues
        self._backlog: list[bytes] = []  # restored items for a priority queue of the user's own
        self._backlog_at = 0
        self._reuse: tuple[Request, bytes] | None = None
        self._need_base = True
        self._class_decodes: dict[type, bool] = {}

    @property
    def seen(self) -> Any:
        """The dupefilter's fingerprint set this frontier checkpoints (None: none)."""
        return self._seen

    def queue_class(self, inner_class: type, start: bool) -> type[RecordQueue]:
        return record_queue_class(inner_class, self, start)

    def attach(
        self,
        place: Callable[[Request, bool], Where] | None,
        target: QueueTarget | None,
        placer: RecordPlacer,
        wake: Callable[[], None],
    ) -> None:
        """Connect to the scheduler whose queues are :meth:`queue_class` instances.

        ``place`` gives a request's queue (the first of each queue asks), ``target`` the
        scheduler's queue for a stored queue (both None for a priority queue of the user's own
        class: records are then stored without their queue, and restored through the scheduler),
        ``placer`` the queue of a stored item without one, and ``wake`` is called when a record
        does not decode (the scheduler may then answer None once while it holds more).
        """
        self.place, self._target, self._placer, self.wake = place, target, placer, wake

    # -- what the queues report ---------------------------------------------------------------

    def register(self, queue: RecordQueue) -> None:
        self._queues.add(queue)

    def unregister(self, queue: RecordQueue) -> None:
        self._queues.discard(queue)

    def admit(self, request: Request, where: Where | None) -> bytes | Request:
        """What a queue stores for ``request``: its item, or the request itself."""
        if request.callback is NO_CALLBACK:
            return request
        reuse = self._reuse
        if reuse is not None and reuse[0] is request:  # a restored request: same number
            self._reuse = None
            self._pending += 1
            return reuse[1]
        if self._fingerprint is not None and not request.dont_filter:
            self._new_fps.append(self._fingerprint(request))
        record = self.coder.encode(request)
        if record is None:
            return request
        if request.__class__ is not Request and not self._decodes(request, record):
            return request
        self._seq += 1
        item = make_item(self._seq, record)
        self._added.append(item)
        self._added_where.append(where)
        self._pending += 1
        return item

    def _decodes(self, request: Request, record: bytes) -> bool:
        """Whether requests of this class come back from their record (checked once a class):
        a class whose constructor does not take its own attributes stays an object."""
        cls = request.__class__
        known = self._class_decodes.get(cls)
        if known is None:
            try:
                self.codec.decode(record)
                known = True
            except UndecodableError as exc:
                known = False
                logger.warning(
                    "Requests of class %s cannot be rebuilt from their record (%s): they stay"
                    " objects in the scheduler's queues and will not survive a restart; counted"
                    " in %s.",
                    cls.__qualname__,
                    exc,
                    stats_keys.REQUESTS_UNSERIALIZABLE,
                )
            self._class_decodes[cls] = known
        if not known:
            self.stats.inc_value(stats_keys.REQUESTS_UNSERIALIZABLE)
        return known

    def release(self, item: bytes, where: Where | None) -> Request | None:
        """The request of an item a queue hands out; None if it no longer decodes (it is then
        counted, logged once per cause and kept for checkpoints: a fixed spider restores it)."""
        self._pending -= 1
        request = self.coder.decode(item)
        if request is None:
            self._unrestorable.append((item, where))
            if self.wake is not None:
                self.wake()
            return None
        self._in_flight[request] = (item, where)
        return request

    def peek(self, item: bytes) -> Request | None:
        try:
            return self.codec.decode(record_of(item))
        except UndecodableError:
            return None

    def on_finished(self, request: Request) -> None:
        """The engine is done with ``request`` (its callback and what it returned)."""
        entry = self._in_flight.pop(request, None)
        if entry is None:
            return
        seq = seq_of(entry[0])
        if seq <= self._captured_upto:
            self._removed.append(seq)
            return
        self._finished_new.add(seq)
        if len(self._finished_new) > max(10_000, len(self._added) // 2):
            # No capture for a long while (the timer is off): drop finished items from the
            # journal rather than hold them until the next capture.
            self._added, self._added_where = self._still_open()
            self._finished_new = set()

    def _still_open(self) -> tuple[list[bytes], list[Where | None]]:
        finished = self._finished_new
        if not finished:
            return self._added, self._added_where
        kept = [
            (item, where)
            for item, where in zip(self._added, self._added_where, strict=True)
            if seq_of(item) not in finished
        ]
        return [i for i, _ in kept], [w for _, w in kept]

    @property
    def open_count(self) -> int:
        return self.pending + len(self._in_flight)

    @property
    def pending(self) -> int:
        return self._pending + len(self._unrestorable) + self.backlog

    @property
    def backlog(self) -> int:
        return len(self._backlog) - self._backlog_at

    def tracked(self, request: Request) -> bool:
        return request in self._in_flight

    def open_items(self) -> dict[Where | None, list[bytes]]:
        """Every open request's item by queue: in the queues, in flight, not restored yet."""
        by_queue: dict[Where | None, list[bytes]] = {}
        for queue in self._queues:
            if len(queue):
                by_queue.setdefault(queue.where, []).extend(queue.records())
        for item, where in (*self._in_flight.values(), *self._unrestorable):
            by_queue.setdefault(where, []).append(item)
        backlog = self._backlog[self._backlog_at :]
        if backlog:
            by_queue.setdefault(None, []).extend(backlog)
        return by_queue

    # -- capture ------------------------------------------------------------------------------

    def capture(self, full: bool = False) -> FrontierCapture:
        """Take the frontier as it is now; call :meth:`failed` if it never reaches the store."""
        added, added_where = self._still_open()
        journal = (added, added_where, self._removed, self._new_fps)
        required = self._need_base
        base = full or required
        by_queue: dict[Where | None, list[bytes]] = {}
        if base:
            by_queue = self.open_items()
            fingerprints = snapshot(self._seen) if self._seen is not None else None
            removed: list[int] = []
        else:
            for item, where in zip(added, added_where, strict=True):
                by_queue.setdefault(where, []).append(item)
            fingerprints = self._new_fps if self._seen is not None else None
            removed = self._removed
        records, groups, runs = grouped(by_queue)
        capture = FrontierCapture(
            kind=SegmentKind.BASE if base else SegmentKind.DELTA,
            records=records,
            removed=removed,
            fingerprints=fingerprints,
            next_seq=self._seq,
            pending=self.pending,
            in_flight=len(self._in_flight),
            seen=len(self._seen) if self._seen is not None else 0,
            journal=journal,
            required=required,
            groups=groups,
            runs=runs,
        )
        self._added, self._added_where = [], []
        self._removed, self._new_fps, self._finished_new = [], [], set()
        self._captured_upto = self._seq
        self._need_base = False
        return capture

    def failed(self, capture: FrontierCapture) -> None:
        """The capture never reached the store: give its journal back so the next one carries it.

        Its items that finish later are listed as removed too: the reader drops a number that any
        segment removed, so carrying both is harmless.
        """
        added, added_where, removed, new_fps = capture.journal
        self._added = added + self._added
        self._added_where = added_where + self._added_where
        self._removed = removed + self._removed
        self._new_fps = new_fps + self._new_fps
        if capture.required:
            self._need_base = True

    # -- restore ------------------------------------------------------------------------------

    def restore(self, restored: Restored) -> int:
        """Put a checkpoint back: fingerprints, and every item into the queue it came from, as
        it is (for a priority queue of the user's own class, through the scheduler in slices:
        :meth:`restore_batch`). Returns how many requests it holds."""
        target, placer = self._target, self._placer
        if self._seen is not None:
            restore_into(self._seen, restored.seen_layouts, restored.seen_listed)
        self._seq = max(self._seq, restored.next_seq)
        self._captured_upto = self._seq
        # What was restored is exactly what the store holds, so the next checkpoint can be a delta.
        self._need_base = False
        if target is None:
            self._backlog = self._backlog[self._backlog_at :] + restored.items
            self._backlog_at = 0
            return restored.count
        queues = restored.queues
        unplaced = [w for w in queues if w is None or (w[0] is None and placer.slots)]
        if unplaced:
            queues = dict(queues)
            for where in unplaced:
                for item in queues.pop(where):
                    queues.setdefault(placer(item), []).append(item)
        into: dict[int, tuple[RecordQueue, Where, list[bytes]]] = {}
        for where, items in queues.items():
            if not items:
                # Every record of this queue finished after the base. No empty queue: Scrapy's
                # priority queue answers None once for an empty queue at its current priority,
                # and the engine then asks again only at its 5-second heartbeat.
                continue
            queue, stands_for = target(where)  # type: ignore[arg-type]
            into.setdefault(id(queue), (queue, stands_for, []))[2].extend(items)
        total = 0
        for queue, where, items in into.values():
            items.sort()  # several stored queues may land in one (a setting changed)
            queue.put_back(items, where)
            total += len(items)
        self._pending += total
        self.stats.inc_value(stats_keys.RESTORE_REQUESTS, total)
        return total

    def restore_batch(
        self, enqueue: Callable[[Request], bool], limit: int, deadline: float | None = None
    ) -> int:
        """Enqueue up to ``limit`` backlog items through the scheduler (a priority queue of the
        user's own class), decoded; returns how many. With a ``deadline``
        (``time.perf_counter()``), stop once it has passed, after at least one."""
        restored = 0
        items = self._backlog
        at, end = self._backlog_at, min(len(items), self._backlog_at + limit)
        while at < end:
            if deadline is not None and at > self._backlog_at and time.perf_counter() >= deadline:
                break
            item = items[at]
            at += 1
            self._backlog_at = at
            request = self.coder.decode(item)
            if request is None:
                self._unrestorable.append((item, None))
                continue
            # Through the dupefilter once (the fingerprint is restored already); the queue keeps
            # the stored item and its number (admit() sees _reuse).
            dont_filter, request.dont_filter = request.dont_filter, True
            self._reuse = (request, item)
            try:
                accepted = enqueue(request)
            finally:
                request.dont_filter = dont_filter
                reused = self._reuse is None
                self._reuse = None
            if accepted and reused:
                restored += 1
            elif seq_of(item) <= self._captured_upto:
                self._removed.append(seq_of(item))  # dropped, or queued under a new number
        if self._backlog_at >= len(items):
            self._backlog, self._backlog_at = [], 0
        self.stats.inc_value(stats_keys.RESTORE_REQUESTS, restored)
        return restored


def record_placer(slots: bool, scrapys: bool, slot_key: Callable[[Request], str]) -> RecordPlacer:
    """Where a stored item without its queue goes: its slot as Scrapy's downloader computes it
    from the record (``scrapys``), else from a request of its URL and meta (a downloader of the
    user's own), or no slot at all (``ScrapyPriorityQueue``)."""
    if not slots:
        return RecordPlacer(None)
    if scrapys:
        return RecordPlacer(HostSlots())
    return RecordPlacer(lambda url, meta: slot_key(Request(url, meta=meta)))


__all__ = ["QueueFrontier", "QueueTarget", "record_placer"]
