"""Coroutines on Scrapy's reactor: what ``scrapy.utils.asyncio`` and ``scrapy.utils.defer`` do
not offer (sleeping, threads and timers come from there)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Coroutine, Sequence

    from twisted.python.failure import Failure

T = TypeVar("T")


def start_task(coro: Coroutine[Any, Any, None]) -> None:
    """Run ``coro`` on the reactor in the background; cancelling it is not an error to report."""
    from scrapy.utils.defer import deferred_from_coro

    deferred_from_coro(coro).addErrback(_ignore_cancelled)


def _ignore_cancelled(failure: Failure) -> Failure | None:
    from twisted.internet.defer import CancelledError

    cancelled = isinstance(failure.value, (CancelledError, asyncio.CancelledError))
    return None if cancelled else failure


async def gather_bounded(calls: Sequence[Callable[[], Awaitable[T]]], limit: int) -> list[T]:
    """Await ``calls`` with at most ``limit`` of them running at once; their results, in order.

    The first failure stops the rest: calls not started are dropped, running ones are cancelled,
    and the failure is raised once every call has stopped, so nothing keeps writing behind the
    caller's back. Cancelling the caller cancels the running calls the same way.
    (``scrapy.utils.defer.parallel_async`` bounds concurrency too, but neither stops at the first
    failure nor cancels what runs.)
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
