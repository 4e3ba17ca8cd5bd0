"""Every access to Scrapy's private attributes, in one place.

Scrapy (2.19) has no public API to observe the crawl frontier, merge seen fingerprints or replace
the start iterator, so the parts of this package that need them come here. Each function says why
there is no public way. When Scrapy changes, this is the file to read;
``tests/test_scrapy_internals.py`` checks every assumption against the installed Scrapy.
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from scrapy.core import downloader, engine, scraper
from scrapy.core.scheduler import Scheduler
from scrapy.dupefilters import RFPDupeFilter
from scrapy.http import Headers, Request

if TYPE_CHECKING:
    from scrapy.core.engine import ExecutionEngine
    from scrapy.core.scheduler import BaseScheduler


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
    """The request's attributes without creating the empty containers its properties create.

    ``Request.meta``/``headers``/``cookies``/``flags``/``cb_kwargs`` allocate an empty object on
    first read; reading the slots keeps a million pending requests from growing by a million dicts.
    """
    return RequestFields(
        request._url,
        request.callback,
        request._meta,
        request.priority,
        request.dont_filter,
        request.method,
        request._headers,
        request._body,
        request._cookies,
        request._encoding,
        request.errback,
        request._flags,
        request._cb_kwargs,
    )


#: The slots ``build_request`` fills; ``tests/test_scrapy_internals.py`` fails if Scrapy adds one.
REQUEST_SLOTS = frozenset(
    {
        "__weakref__", "_body", "_cb_kwargs", "_cookies", "_encoding", "_flags", "_headers",
        "_meta", "_url", "callback", "dont_filter", "errback", "method", "priority",
    }
)  # fmt: skip


def build_request(cls: type[Request], kwargs: dict[str, Any]) -> Request:
    """Rebuild a request from the keyword arguments of its constructor.

    ``Request.__init__`` re-escapes the URL with ``safe_url_string``, two thirds of the cost of a
    restore; the URL we stored already went through it, so a plain ``Request`` gets its slots set
    directly. Subclasses may do more in ``__init__`` and always go through it.
    """
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
    """Requests taken from the scheduler whose callback has not finished yet.

    ``engine._slot.inprogress`` is the only record of them; there is no public accessor.
    """
    slot = engine._slot
    return slot.inprogress if slot is not None else set()


def is_memory_scheduler(scheduler: BaseScheduler | None) -> bool:
    """Scrapy's own scheduler (or a subclass) with memory queues only (no JOBDIR disk queue).

    ``isinstance`` will not do: BaseScheduler's metaclass accepts any class with the right methods.
    """
    return Scheduler in type(scheduler).__mro__ and getattr(scheduler, "dqs", None) is None


def seen_fingerprints(scheduler: BaseScheduler | None) -> set[bytes] | None:
    """The dupefilter's fingerprint set, if it is an ``RFPDupeFilter`` we can read and extend.

    ``RFPDupeFilter._fingerprints`` became the storage in 2.19; its public ``fingerprints`` property
    is a deprecated hex copy, useless for merging two million entries.
    """
    df = getattr(scheduler, "df", None)
    if not isinstance(df, RFPDupeFilter):
        return None
    if type(df).request_seen is not RFPDupeFilter.request_seen or getattr(
        df, "_legacy_fingerprint", False
    ):
        return None
    fingerprints = getattr(df, "_fingerprints", None)
    return fingerprints if isinstance(fingerprints, set) else None


def fingerprint_function(scheduler: BaseScheduler | None) -> Callable[[Request], bytes]:
    """The function the dupefilter fingerprints requests with (public on ``RFPDupeFilter``)."""
    df = scheduler.df  # type: ignore[union-attr]
    return df.fingerprinter.fingerprint  # type: ignore[no-any-return]


def hook_frontier(
    engine: ExecutionEngine,
    on_enqueued: Callable[[Request], None],
    on_finished: Callable[[Request], None],
) -> Callable[[Request], bool]:
    """Call ``on_enqueued`` for every request the scheduler accepts and ``on_finished`` when the
    engine is done with it (callback, items and child requests handled).

    Scrapy sends no signal when a request leaves the engine (``engine._slot.remove_request``), and
    ``request_scheduled`` fires before the dupefilter decides, so both ends are wrapped on the
    instances. Returns the scheduler's original ``enqueue_request``, for restoring without the hook.
    """
    scheduler = engine._slot.scheduler  # type: ignore[union-attr]
    slot = engine._slot
    assert slot is not None
    original_enqueue = scheduler.enqueue_request
    original_remove = slot.remove_request

    def enqueue_request(request: Request) -> bool:
        accepted = original_enqueue(request)
        if accepted:
            on_enqueued(request)
        return accepted

    def remove_request(request: Request) -> None:
        on_finished(request)
        original_remove(request)

    scheduler.enqueue_request = enqueue_request  # type: ignore[method-assign]
    slot.remove_request = remove_request  # type: ignore[method-assign]
    return original_enqueue


def callbacks_running(engine: ExecutionEngine) -> int:
    """How many responses are inside their callback (or its item pipelines) right now.

    ``engine.scraper.slot.active`` holds them from the moment the callback starts until its
    output is handled; nothing public tells whether a callback is half-way through.
    """
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
    """Let the engine hand out requests now rather than at its next 5-second heartbeat.

    ``engine.unpause()`` only clears a flag; the scheduler is read again on the next call of
    ``engine._slot.nextcall``, which nothing public can trigger.
    """
    slot = engine._slot
    if slot is not None:
        slot.nextcall.schedule()


def default_slot_delay(engine: ExecutionEngine) -> float:
    """The delay the downloader gives slots it creates (``downloader._delay``).

    AutoThrottle sets it the same way (its start delay); there is no public setter.
    """
    return float(engine.downloader._delay)


def set_default_slot_delay(engine: ExecutionEngine, delay: float) -> None:
    engine.downloader._delay = delay


def wake_download_slots(engine: ExecutionEngine) -> None:
    """Make slots waiting out a long delay look at their queue again with the current delay.

    A slot that waits calls back after the delay it had then (``slot.latercall``); after the
    delay is lowered, the downloader would still wait the old one. ``_process_queue`` is the
    downloader's own entry point for a slot; it schedules the wait again with the new delay.
    """
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
    """Wrap the iterator the engine reads ``Spider.start()`` output from (if any is left).

    By ``spider_opened`` the engine already holds the iterator (after spider middlewares) in
    ``engine._start``; a spider middleware could wrap it too, but would need a second setting.
    """
    if engine._start is not None:
        engine._start = wrap(engine._start)


def start_exhausted(engine: ExecutionEngine) -> bool:
    """Whether the engine has read all of ``start()`` (it drops the iterator then)."""
    return engine._start is None


def exit_with_code_after_shutdown(code: int) -> None:
    """Make the process exit with ``code`` once the reactor has shut down.

    ``scrapy crawl`` exits 0 whatever the close reason, and offers extensions no way to change
    that; the platform reads the exit code to decide a run's fate.
    """
    from twisted.internet import reactor as installed

    reactor: Any = installed  # typed as the interface of one method group only

    def _exit() -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)

    reactor.addSystemEventTrigger("after", "shutdown", _exit)


# -- checked at start -------------------------------------------------------------------------


def _assigns(function: Any, name: str) -> bool:
    """Whether ``function`` (an ``__init__``) names the attribute ``name``: a static check of an
    instance attribute, before any instance exists."""
    return name in getattr(getattr(function, "__code__", None), "co_names", ())


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
    "_Slot.remove_request": lambda: callable(getattr(engine._Slot, "remove_request", None)),
    "Scraper._scrape_next": lambda: callable(getattr(scraper.Scraper, "_scrape_next", None)),
    "scraper.Slot.active": lambda: _assigns(scraper.Slot.__init__, "active"),
    "Downloader._delay": lambda: _assigns(downloader.Downloader.__init__, "_delay"),
    "Downloader._process_queue": lambda: callable(
        getattr(downloader.Downloader, "_process_queue", None)
    ),
    "RFPDupeFilter._fingerprints": lambda: _assigns(RFPDupeFilter.__init__, "_fingerprints"),
}


def missing_internals() -> list[str]:
    """The Scrapy internals this package relies on that the installed Scrapy lacks."""
    return [name for name, present in REQUIREMENTS.items() if not present()]
