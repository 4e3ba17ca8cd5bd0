"""Holding new requests back for more than one reason at a time.

A migration and a CPU overload both stop requests from leaving the scheduler (Scrapy's
``engine.pause()``); either may end first, and the crawl must go on only when neither holds it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import _scrapy_internals as internals

if TYPE_CHECKING:
    from scrapy.core.engine import ExecutionEngine


class EngineHold:
    """Pauses the engine while at least one reason holds it."""

    def __init__(self, engine: ExecutionEngine) -> None:
        self.engine = engine
        self.reasons: set[str] = set()

    def hold(self, reason: str) -> None:
        if not self.reasons:
            self.engine.pause()
        self.reasons.add(reason)

    def release(self, reason: str) -> None:
        if reason not in self.reasons:
            return
        self.reasons.discard(reason)
        if not self.reasons:
            self.engine.unpause()
            internals.wake_engine(self.engine)
