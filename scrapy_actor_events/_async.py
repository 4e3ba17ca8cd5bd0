"""Small bridges between coroutines, threads and whichever reactor or loop is running."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable

T = TypeVar("T")


def get_reactor() -> Any:
    """The installed Twisted reactor, imported late (importing it early would install one)."""
    from twisted.internet import reactor

    return reactor


def call_later(delay: float, func: Callable[..., Any], *args: Any) -> Any:
    """``reactor.callLater``: returns an ``IDelayedCall``."""
    return get_reactor().callLater(delay, func, *args)


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
