"""gather_bounded: bounded parallelism, order, and a failure that stops the rest."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from scrapy.utils.asyncio import sleep
from scrapy.utils.defer import deferred_f_from_coro_f

from scrapy_actor_events._async import gather_bounded


class Calls:
    def __init__(self, seconds: float = 0.01) -> None:
        self.seconds = seconds  # how long a call that does not fail takes
        self.running = 0
        self.most = 0
        self.finished: list[int] = []
        self.cancelled: list[int] = []

    async def call(self, i: int, fail: bool = False) -> int:
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await sleep(self.seconds if not fail else 0.005)
            if fail:
                raise OSError(f"call {i} failed")
            self.finished.append(i)
            return i * 10
        except asyncio.CancelledError:
            self.cancelled.append(i)
            raise
        finally:
            self.running -= 1


@deferred_f_from_coro_f
async def test_results_in_order_at_most_limit_at_once() -> None:
    calls = Calls()
    results = await gather_bounded([lambda i=i: calls.call(i) for i in range(10)], 3)
    assert results == [i * 10 for i in range(10)]
    assert calls.most == 3
    assert await gather_bounded([], 4) == []


@deferred_f_from_coro_f
async def test_the_first_failure_cancels_the_rest_and_is_raised_once_all_stopped() -> None:
    # The other calls take far longer than the failing one, so that they are still running when
    # it fails however late a busy machine wakes the loop.
    calls = Calls(seconds=5)
    work = [lambda i=i: calls.call(i, fail=i == 1) for i in range(10)]
    with pytest.raises(OSError, match="call 1 failed"):
        await gather_bounded(work, 3)
    assert calls.running == 0, "nothing keeps running behind the caller's back"
    assert sorted(calls.cancelled) == [0, 2]
    assert len(calls.finished) == 0


@deferred_f_from_coro_f
async def test_cancelling_the_caller_cancels_the_calls() -> None:
    calls = Calls(seconds=5)  # still running when the caller is cancelled, however late
    task = asyncio.ensure_future(gather_bounded([lambda i=i: calls.call(i) for i in range(6)], 2))
    await asyncio.sleep(0.005)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert calls.running == 0
    assert sorted(calls.cancelled) == [0, 1]


def test_on_a_reactor_that_is_not_asyncio() -> None:
    script = textwrap.dedent(
        """
        from twisted.internet import epollreactor
        epollreactor.install()
        from twisted.internet import task
        from twisted.internet.defer import Deferred
        from tests.test_async import Calls
        from scrapy_actor_events._async import gather_bounded

        async def main(reactor):
            calls = Calls()
            results = await gather_bounded([lambda i=i: calls.call(i) for i in range(6)], 2)
            assert results == [i * 10 for i in range(6)] and calls.most == 2, results
            failing = [lambda i=i: calls.call(i, fail=i == 0) for i in range(4)]
            try:
                await gather_bounded(failing, 2)
            except OSError as exc:
                assert calls.running == 0, calls.running
                print("ok", exc)

        task.react(lambda reactor: Deferred.fromCoroutine(main(reactor)))
        """
    )
    root = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True, check=False
    )
    assert done.stdout.strip() == "ok call 0 failed", done.stderr[-2000:]
