"""Scheduler memory queues that hold pending requests as records, not ``Request`` objects.

A ``Request`` waiting in Scrapy's memory queue costs about 2.5 kB (the object, its meta and
headers dicts, cache entries); its record (:mod:`.records`) about 140 bytes.
:func:`record_queue_class` wraps the queue class the user chose (``SCHEDULER_MEMORY_QUEUE``,
``SCHEDULER_START_MEMORY_QUEUE``): Scrapy's priority queues still decide everything (priority,
download slot, start queue) from the ``Request`` they are given, then hand it to the wrapper,
which stores its record in the user's queue and rebuilds the request when the priority queue pops
it. FIFO or LIFO is the user's queue's own ``pop``; the order of requests is Scrapy's, exactly.

Requests the codec cannot encode (meta holding live objects, callbacks that are not the spider's
methods) and Scrapy's own requests without a callback are stored as they are, in the same queue:
their place in the order is kept.

A request that comes out is a new object built from its record, as with JOBDIR's disk queues: code
that relies on the identity of a queued request, or on a mutable object shared through the meta of
several requests, sees copies (``ACTOR_EVENTS_COMPACT_QUEUE = False`` keeps objects).
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from queuelib.queue import FifoMemoryQueue
from scrapy.utils.misc import build_from_crawler

from .records import SEQ_BYTES

if TYPE_CHECKING:
    from collections.abc import Callable

    from scrapy import Request
    from scrapy.crawler import Crawler

    from .records import Where


class Journal(Protocol):
    """What a record queue reports to (:class:`~.queue_frontier.QueueFrontier`)."""

    place: Callable[[Request, bool], Where | None] | None

    def admit(self, request: Request, where: Where | None) -> bytes | Request: ...

    def release(self, item: bytes, where: Where | None) -> Request | None: ...

    def peek(self, item: bytes) -> Request | None: ...

    def register(self, queue: RecordQueue) -> None: ...

    def unregister(self, queue: RecordQueue) -> None: ...


class RecordQueue:
    """One downstream queue of a priority queue; see :func:`record_queue_class`."""

    __slots__ = ("inner", "objects", "placed", "shadow", "where")

    journal: ClassVar[Journal]
    inner_class: ClassVar[type]
    start: ClassVar[bool]

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.where: Where | None = None
        self.placed = False
        self.objects = 0  # requests kept as objects in this queue
        # A queuelib memory queue keeps its items in a deque a checkpoint can read; for any other
        # queue class, the records are also kept here (by number), in push order.
        walkable = type(getattr(inner, "q", None)) is deque and (
            getattr(type(inner), "push", None) is FifoMemoryQueue.push
        )
        self.shadow: dict[bytes, bytes] | None = None if walkable else {}
        self.journal.register(self)

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> RecordQueue:
        # The user's class gets exactly the arguments Scrapy would have given it.
        return cls(build_from_crawler(cls.inner_class, crawler, *args, **kwargs))

    def push(self, request: Request) -> None:
        if not self.placed:  # every request of one queue shares it: learnt from the first
            place = self.journal.place
            self.where = place(request, self.start) if place is not None else None
            self.placed = True
        item = self.journal.admit(request, self.where)
        self.inner.push(item)
        if item.__class__ is bytes:
            if self.shadow is not None:
                self.shadow[item[:SEQ_BYTES]] = item
        else:
            self.objects += 1

    def pop(self) -> Any:
        while True:
            item = self.inner.pop()
            if item.__class__ is not bytes:
                if item is not None:
                    self.objects -= 1
                return item
            if self.shadow is not None:
                self.shadow.pop(item[:SEQ_BYTES], None)
            request = self.journal.release(item, self.where)
            if request is not None:
                return request
            # A record that no longer decodes stays in the journal (and in checkpoints); the
            # scheduler gets the next request instead of an error.

    def peek(self) -> Any:
        item = self.inner.peek()
        return self.journal.peek(item) if item.__class__ is bytes else item

    def close(self) -> None:
        self.journal.unregister(self)
        self.inner.close()

    def __len__(self) -> int:
        return len(self.inner)

    # -- for the journal ----------------------------------------------------------------------

    def records(self) -> list[bytes]:
        """The records in this queue, oldest first."""
        if self.shadow is not None:
            return list(self.shadow.values())
        q = self.inner.q
        return [x for x in q if x.__class__ is bytes] if self.objects else list(q)

    def put_back(self, items: list[bytes], where: Where | None) -> None:
        """Restored records (in number order, older than anything pushed in this process)."""
        if not self.placed:
            self.where, self.placed = where, True
        if self.shadow is not None:
            for item in items:
                self.inner.push(item)
                self.shadow[item[:SEQ_BYTES]] = item
            return
        q = self.inner.q
        if q:
            q.extendleft(reversed(items))
        else:
            q.extend(items)


def record_queue_class(inner_class: type, journal: Journal, start: bool) -> type[RecordQueue]:
    """A queue class storing records in instances of ``inner_class``, for one crawl's journal."""
    name = f"RecordQueue[{inner_class.__qualname__}]"
    attributes = {"__slots__": (), "journal": journal, "inner_class": inner_class, "start": start}
    return type(name, (RecordQueue,), attributes)
