"""Small bridges between coroutines, threads and whichever reactor or loop is running."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Coroutine, Sequence

    from twisted.python.failure import Failure

T = TypeVar("T")


def get_reactor() -> Any:
    """The installed Twisted reactor, imported late (importing it early would install one)."""
    from twisted.internet import reactor

    return reactor


def call_later(delay: float, func: Callable[..., Any], *args: Any) -> Any:
    """``reactor.callLater``: returns an ``IDelayedCall``."""
    return get_reactor().callLater(delay, func, *args)


def start_task(coro: Coroutine[Any, Any, None]) -> None:
    """Run ``coro`` on the reactor in the background; cancelling it is not an error to report."""
    from scrapy.utils.defer import deferred_from_coro

    deferred_from_coro(coro).addErrback(_ignore_cancelled)


def _ignore_cancelled(failure: Failure) -> Failure | None:
    from twisted.internet.defer import CancelledError

    cancelled = isinstance(failure.value, (CancelledError, asyncio.CancelledError))
    return None if cancelled else failure


async def run_in_thread(func: Callable[..., T], *args: Any) -> T:
    """Run blocking ``func`` in a worker thread, from Scrapy's reactor or from plain asyncio."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        # A non-asyncio Twisted reactor drives this coroutine through Deferred.fromCoroutine.
        from twisted.internet.threads import deferToThread

        return await deferToThread(func, *args)
    return await asyncio.to_thread(func, *args)


async def sleep(seconds: float) -> None:
    """Sleep on asyncio if a loop runs, else on the Twisted reactor."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        from twisted.internet.task import deferLater

        await deferLater(get_reactor(), seconds)
        return
    await asyncio.sleep(seconds)


async def gather_bounded(calls: Sequence[Callable[[], Awaitable[T]]], limit: int) -> list[T]:
    """Await ``calls`` with at most ``limit`` of them running at once; their results, in order.

    The first failure stops the rest: calls not started are dropped, running ones are cancelled,
    and the failure is raised once every call has stopped, so nothing keeps writing behind the
    caller's back. Cancelling the caller cancels the running calls the same way.
    """
    results: list[Any] = [None] * len(calls)
    pending = iter(enumerate(calls))

    async def worker() -> None:
        for index, call in pending:
            results[index] = await call()

    workers = max(1, min(limit, len(calls)))
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        await _gather_twisted([worker for _ in range(workers)])
        return results
    tasks = [asyncio.ensure_future(worker()) for _ in range(workers)]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    return results


async def _gather_twisted(workers: list[Callable[[], Coroutine[Any, Any, None]]]) -> None:
    """:func:`gather_bounded` on a Twisted reactor that is not asyncio's."""
    from twisted.internet.defer import Deferred, DeferredList, FirstError

    deferreds = [Deferred.fromCoroutine(worker()) for worker in workers]
    try:
        await DeferredList(deferreds, fireOnOneErrback=True, consumeErrors=True)
    except FirstError as error:
        for d in deferreds:
            d.cancel()
        await DeferredList(deferreds, consumeErrors=True)
        error.subFailure.raiseException()
