"""A capture source with a frontier of random (incompressible) request records, for big
checkpoints without a crawl: tests of chunking and the store benchmark."""

from __future__ import annotations

import random

from scrapy_actor_events.checkpoint.format import SegmentKind
from scrapy_actor_events.checkpoint.frontier import FrontierCapture
from scrapy_actor_events.checkpoint.records import SEQ_BYTES, make_item


class BulkSource:
    """Captures ``total_bytes`` of random records of ``record_bytes`` each, every time as a base."""

    def __init__(self, total_bytes: int, record_bytes: int = 4096, seed: int = 1) -> None:
        rng = random.Random(seed)
        count = total_bytes // record_bytes
        self.items = [make_item(n + 1, rng.randbytes(record_bytes)) for n in range(count)]
        self.failures = 0

    @property
    def records(self) -> list[bytes]:
        return [item[SEQ_BYTES:] for item in self.items]

    async def capture(self, base: bool) -> tuple[FrontierCapture, bytes]:
        n = len(self.items)
        capture = FrontierCapture(SegmentKind.BASE, self.items, [], None, n + 1, n, 0, 0)
        return capture, b"crawl state"

    def failed(self, capture: FrontierCapture) -> None:
        self.failures += 1
