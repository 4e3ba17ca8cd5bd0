"""Every access to Scrapy's private attributes, in one place.

Scrapy (2.19) has no public API to observe the crawl frontier, swap its queues or seen set, or
replace the start iterator, so the parts of this package that need them come here; each function
says why there is no public way. ``tests/test_scrapy_internals.py`` checks every assumption.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Callable, MutableSet
from typing import TYPE_CHECKING, Any, NamedTuple

from scrapy.core import downloader, engine, scraper
from scrapy.core.scheduler import Scheduler
from scrapy.dupefilters import RFPDupeFilter
from scrapy.http import Headers, Request
from scrapy.pqueues import DownloaderAwarePriorityQueue, ScrapyPriorityQueue

if TYPE_CHECKING:
    from scrapy.core.engine import ExecutionEngine
    from scrapy.core.scheduler import BaseScheduler

#: A request's queue: (download slot or None, -priority, start queue); see checkpoint/records.py.
Where = tuple[str | None, int, bool]


class RequestFields(NamedTuple):
    url: str
    callback: Any
    meta: dict[str, Any] | None
    priority: int
    dont_filter: bool
    method: str
    headers: Headers | None
    body: bytes
    cookies: Any
    encoding: str
    errback: Any
    flags: list[str] | None
    cb_kwargs: dict[str, Any] | None


def request_fields(request: Request) -> RequestFields:
    """The request's attributes without creating the empty containers its properties create:
    ``Request.meta``/``headers``/``cookies``/``flags``/``cb_kwargs`` allocate an empty object on
    first read; reading the slots keeps a million pending requests from growing by a million dicts.
    """
    return RequestFields(
        request._url, request.callback, request._meta, request.priority, request.dont_filter,
        request.method, request._headers, request._body, request._cookies, request._encoding,
        request.errback, request._flags, request._cb_kwargs,
    )  # fmt: skip


#: The slots ``build_request`` fills; ``tests/test_scrapy_internals.py`` fails if Scrapy adds one.
REQUEST_SLOTS = frozenset({
    "__weakref__", "_body", "_cb_kwargs", "_cookies", "_encoding", "_flags", "_headers", "_meta",
    "_url", "callback", "dont_filter", "errback", "method", "priority",
})  # fmt: skip


def build_request(cls: type[Request], kwargs: dict[str, Any]) -> Request:
    """Rebuild a request from the keyword arguments of its constructor. ``Request.__init__``
    re-escapes the URL (``safe_url_string``), two thirds of the cost; a stored URL went through it
    already, so a plain ``Request`` gets its slots set directly. Subclasses go through theirs."""
    if cls is not Request:
        return cls(**kwargs)
    url = kwargs["url"]
    priority = kwargs["priority"]
    if not isinstance(url, str) or not ("://" in url or url.startswith(("about:", "data:"))):
        raise ValueError(f"bad request url {url!r}")
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise TypeError(f"Request priority not an integer: {priority!r}")
    encoding = kwargs["encoding"]
    body = kwargs["body"]
    headers = kwargs["headers"]
    meta, cb_kwargs, flags = kwargs["meta"], kwargs["cb_kwargs"], kwargs["flags"]
    request = Request.__new__(Request)
    request._encoding = str(encoding)
    request.method = str(kwargs["method"]).upper()
    request._meta = dict(meta) if meta else None
    request._url = url
    request._body = (
        b"" if not body else body if isinstance(body, bytes) else str(body).encode(encoding)
    )
    request.priority = priority
    request.callback = kwargs["callback"]
    request.errback = kwargs["errback"]
    request._cookies = kwargs["cookies"] or None
    request._headers = Headers(headers, encoding=encoding) if headers else None
    request.dont_filter = bool(kwargs["dont_filter"])
    request._cb_kwargs = dict(cb_kwargs) if cb_kwargs else None
    request._flags = list(flags) if flags else None
    return request


# -- the engine and the scheduler -------------------------------------------------------------


def in_progress(engine: ExecutionEngine) -> set[Request]:
    """Requests taken from the scheduler whose callback has not finished yet
    (``engine._slot.inprogress`` is the only record of them; there is no public accessor)."""
    slot = engine._slot
    return slot.inprogress if slot is not None else set()


def is_memory_scheduler(scheduler: BaseScheduler | None) -> bool:
    """Scrapy's own scheduler (or a subclass) with memory queues only (no JOBDIR disk queue);
    ``isinstance`` will not do: BaseScheduler's metaclass accepts any class with its methods."""
    return Scheduler in type(scheduler).__mro__ and getattr(scheduler, "dqs", None) is None


def seen_fingerprints(scheduler: BaseScheduler | None) -> MutableSet[bytes] | None:
    """The dupefilter's fingerprint set, if it is an ``RFPDupeFilter`` we can read and extend
    (its public ``fingerprints`` property is a deprecated hex copy of ``_fingerprints``)."""
    df = getattr(scheduler, "df", None)
    if not isinstance(df, RFPDupeFilter):
        return None
    own = type(df).request_seen is RFPDupeFilter.request_seen
    if not own or getattr(df, "_legacy_fingerprint", False):
        return None
    fingerprints = getattr(df, "_fingerprints", None)
    return fingerprints if isinstance(fingerprints, MutableSet) else None


def replace_seen_fingerprints(
    scheduler: BaseScheduler | None, make: Callable[[set[bytes]], MutableSet[bytes]]
) -> MutableSet[bytes] | None:
    """Swap the dupefilter's ``set`` for ``make(set)`` (a compact set); None if not ours to swap:
    only ``RFPDupeFilter``'s own ``request_seen`` (``in`` and ``add``), an exact ``set``, no JOBDIR
    file (a subclass may use ``_fingerprints`` in ways a set-like object breaks)."""
    seen = seen_fingerprints(scheduler)
    df = getattr(scheduler, "df", None)
    if type(seen) is not set or getattr(df, "file", None) is not None:
        return None
    compact = make(seen)
    df._fingerprints = compact  # type: ignore[union-attr]
    return compact


def fingerprint_function(scheduler: BaseScheduler | None) -> Callable[[Request], bytes]:
    """The function the dupefilter fingerprints requests with (public on ``RFPDupeFilter``)."""
    df = scheduler.df  # type: ignore[union-attr]
    return df.fingerprinter.fingerprint  # type: ignore[no-any-return]


def hook_frontier(
    engine: ExecutionEngine,
    on_enqueued: Callable[[Request], None] | None,
    on_finished: Callable[[Request], None],
) -> Callable[[], None]:
    """Call ``on_enqueued`` for every request the scheduler accepts and ``on_finished`` when the
    engine is done with it (callback, items and child requests handled); returns the unhook.
    Scrapy sends no signal when a request leaves the engine (``_slot.remove_request``), and
    ``request_scheduled`` fires before the dupefilter decides: both are wrapped on the instances.
    """
    slot = engine._slot
    assert slot is not None
    scheduler: Any = slot.scheduler
    original_enqueue = scheduler.enqueue_request
    original_remove = slot.remove_request

    def enqueue_request(request: Request) -> bool:
        accepted: bool = original_enqueue(request)
        if accepted:
            on_enqueued(request)  # type: ignore[misc]
        return accepted

    def remove_request(request: Request) -> None:
        on_finished(request)
        original_remove(request)

    if on_enqueued is not None:
        scheduler.enqueue_request = enqueue_request
    slot.remove_request = remove_request  # type: ignore[method-assign]

    def unhook() -> None:
        if vars(scheduler).get("enqueue_request") is enqueue_request:
            scheduler.enqueue_request = original_enqueue
        if vars(slot).get("remove_request") is remove_request:
            slot.remove_request = original_remove  # type: ignore[method-assign]

    return unhook


# -- the scheduler's memory queues ------------------------------------------------------------
def install_memory_queues(scheduler: Any, wrap: Callable[[type, bool], type]) -> bool:
    """Rebuild the scheduler's empty memory queue with its downstream queue classes wrapped
    (``wrap(cls, is_start_queue)``); False, changing nothing, if it holds requests already.
    Settings are frozen once extensions exist; the scheduler keeps the classes in ``mqclass`` and
    ``_smqclass`` and builds with ``_mq()`` (which keeps a subclass's override)."""
    if len(scheduler.mqs):
        return False
    start_class = scheduler._smqclass
    scheduler.mqclass = wrap(scheduler.mqclass, False)
    scheduler._smqclass = wrap(start_class, True) if start_class is not None else None
    scheduler.mqs.close()
    scheduler.mqs = scheduler._mq()
    return True


class QueueAccess(NamedTuple):
    """Scrapy's priority queues from outside ``push`` (which needs a ``Request``; they have no
    other way in). ``place``: the queue ``push`` puts a request in (DownloaderAwarePriorityQueue
    keys by the downloader's slot, ScrapyPriorityQueue by ``-priority``; start requests apart).
    ``target``: the downstream queue at a stored place, created as ``push`` would."""

    place: Callable[[Request, bool], Where]
    target: Callable[[Where], tuple[Any, Where]]
    slots: bool


def queue_access(scheduler: Any, downloader: Any) -> QueueAccess | None:
    """For Scrapy's own priority queue classes only (None for a class of the user's own)."""
    mqs = scheduler.mqs
    kind = type(mqs)
    if kind is ScrapyPriorityQueue:
        return QueueAccess(
            lambda request, start: (None, -request.priority, start),
            lambda where: _downstream(mqs, None, where[1], where[2]),
            slots=False,
        )
    if kind is not DownloaderAwarePriorityQueue:
        return None
    slot_key = downloader.get_slot_key

    def target(where: Where) -> tuple[Any, Where]:
        pq = mqs.pqueues.get(where[0])
        if pq is None:
            pq = mqs.pqueues[where[0]] = mqs.pqfactory(where[0])
        return _downstream(pq, where[0], where[1], where[2])

    return QueueAccess(
        lambda request, start: (slot_key(request), -request.priority, start), target, slots=True
    )


def _downstream(pq: Any, slot: str | None, prio: int, start: bool) -> tuple[Any, Where]:
    start = bool(start and pq._start_queue_cls)
    queues = pq._start_queues if start else pq.queues
    queue = queues.get(prio)
    if queue is None:
        queue = queues[prio] = pq._sqfactory(prio) if start else pq.qfactory(prio)
    if pq.curprio is None or prio < pq.curprio:
        pq.curprio = prio
    return queue, (slot, prio, start)


def slot_key_is_scrapys(loader: Any) -> bool:
    """Whether the downloader's slots are Scrapy's: ``meta["download_slot"]`` or the hostname."""
    own = type(loader).get_slot_key is downloader.Downloader.get_slot_key
    return own and not loader.ip_concurrency


def callbacks_running(engine: ExecutionEngine) -> int:
    """How many responses are inside their callback (or its item pipelines) right now
    (``engine.scraper.slot.active``; nothing public tells whether a callback is half-way)."""
    slot = engine.scraper.slot
    return len(slot.active) if slot is not None else 0


Release = Callable[[], None]


def hold_callbacks(engine: ExecutionEngine) -> Release:
    """Stop starting callbacks (responses wait in the scraper's queue); returns the release.
    A checkpoint taken while a callback is half-way through would record its items and its
    ``spider.state`` changes but also its request as unfinished, so both would happen twice after
    a restart. The scraper starts callbacks only through ``Scraper._scrape_next``; shadowing it
    on the instance makes new responses wait until the release.
    """
    scraper = engine.scraper
    if "_scrape_next" in vars(scraper):
        return lambda: None  # already held by an outer caller

    def hold() -> None:
        return None

    scraper._scrape_next = hold  # type: ignore[method-assign]

    def release() -> None:
        if vars(scraper).get("_scrape_next") is hold:
            del scraper._scrape_next
            if scraper.slot is not None:
                scraper._scrape_next()

    return release


def wake_engine(engine: ExecutionEngine) -> None:
    """Let the engine hand out requests now rather than at its next 5-second heartbeat
    (the scheduler is read on ``engine._slot.nextcall``, which nothing public triggers)."""
    slot = engine._slot
    if slot is not None:
        slot.nextcall.schedule()


def default_slot_delay(engine: ExecutionEngine) -> float:
    """The delay the downloader gives slots it creates (``downloader._delay``): AutoThrottle
    sets it the same way (its start delay); there is no public setter."""
    return float(engine.downloader._delay)


def set_default_slot_delay(engine: ExecutionEngine, delay: float) -> None:
    engine.downloader._delay = delay


def wake_download_slots(engine: ExecutionEngine) -> None:
    """Make slots waiting out a long delay look at their queue again with the current delay:
    a waiting slot calls back after its old delay (``slot.latercall``); ``_process_queue``, the
    downloader's entry point for a slot, schedules the wait again with the new one."""
    downloader = engine.downloader
    for slot in list(downloader.slots.values()):
        if slot.latercall is not None:
            slot.latercall.cancel()
            slot.latercall = None
            downloader._process_queue(slot)


def replace_start(
    engine: ExecutionEngine,
    wrap: Callable[[AsyncIterator[Any]], AsyncIterator[Any]],
) -> None:
    """Wrap the iterator the engine reads ``Spider.start()`` output from (if any is left): by
    ``spider_opened`` the engine holds it in ``engine._start`` (a spider middleware could wrap it
    too, but would need a second setting)."""
    if engine._start is not None:
        engine._start = wrap(engine._start)


def start_exhausted(engine: ExecutionEngine) -> bool:
    return engine._start is None  # the engine drops the iterator once start() is exhausted


def exit_with_code_after_shutdown(code: int) -> None:
    """Make the process exit with ``code`` once the reactor has shut down: ``scrapy crawl``
    exits 0 whatever the close reason; the platform reads the exit code to decide a run's fate."""
    from twisted.internet import reactor as installed

    reactor: Any = installed  # typed as the interface of one method group only

    def _exit() -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)

    reactor.addSystemEventTrigger("after", "shutdown", _exit)


# -- checked at start -------------------------------------------------------------------------


def _assigns(function: Any, *names: str) -> bool:
    """Whether ``function`` (an ``__init__``) names every attribute in ``names``: a static check
    of instance attributes, before any instance exists."""
    return set(names) <= set(getattr(getattr(function, "__code__", None), "co_names", ()))


def _has(cls: type, *methods: str) -> bool:
    return all(callable(getattr(cls, name, None)) for name in methods)


#: What each function above relies on, checked against the installed Scrapy at start.
REQUIREMENTS: dict[str, Callable[[], bool]] = {
    "Request.__slots__": lambda: (
        set().union(*(getattr(c, "__slots__", ()) for c in Request.__mro__)) >= REQUEST_SLOTS
    ),
    "ExecutionEngine._slot": lambda: _assigns(engine.ExecutionEngine.__init__, "_slot"),
    "ExecutionEngine._start": lambda: any(
        _assigns(getattr(engine.ExecutionEngine, name, None), "_start")
        for name in ("__init__", "_start_request_processing", "open_spider_async")
    ),
    "_Slot.inprogress": lambda: _assigns(engine._Slot.__init__, "inprogress"),
    "_Slot.nextcall": lambda: _assigns(engine._Slot.__init__, "nextcall"),
    "_Slot.remove_request": lambda: _has(engine._Slot, "remove_request"),
    "Scraper._scrape_next": lambda: _has(scraper.Scraper, "_scrape_next"),
    "scraper.Slot.active": lambda: _assigns(scraper.Slot.__init__, "active"),
    "Downloader._delay": lambda: _assigns(downloader.Downloader.__init__, "_delay"),
    "Downloader._process_queue": lambda: _has(downloader.Downloader, "_process_queue"),
    "RFPDupeFilter._fingerprints": lambda: _assigns(RFPDupeFilter.__init__, "_fingerprints"),
    "Scheduler.mqclass/_smqclass/_mq": lambda: (
        _assigns(Scheduler.__init__, "mqclass", "_smqclass") and _has(Scheduler, "_mq")
    ),
    "ScrapyPriorityQueue.queues": lambda: (
        _has(ScrapyPriorityQueue, "qfactory", "_sqfactory")
        and _assigns(ScrapyPriorityQueue.__init__, "queues", "_start_queues", "_start_queue_cls")
    ),
    "DownloaderAwarePriorityQueue.pqueues": lambda: (
        _assigns(DownloaderAwarePriorityQueue.__init__, "pqueues")
        and _has(DownloaderAwarePriorityQueue, "pqfactory")
    ),
}


def missing_internals() -> list[str]:
    """The Scrapy internals this package relies on that the installed Scrapy lacks."""
    return [name for name, present in REQUIREMENTS.items() if not present()]
