"""A capture source with a frontier of random (incompressible) request records, for big
checkpoints without a crawl: tests of chunking and the store benchmark."""

from __future__ import annotations

import random

from scrapy_actor_events.checkpoint.format import SegmentKind
from scrapy_actor_events.checkpoint.frontier import FrontierCapture


class BulkSource:
    """Captures ``total_bytes`` of random records of ``record_bytes`` each, every time as a base."""

    def __init__(self, total_bytes: int, record_bytes: int = 4096, seed: int = 1) -> None:
        rng = random.Random(seed)
        self.records = [rng.randbytes(record_bytes) for _ in range(total_bytes // record_bytes)]
        self.failures = 0

    async def capture(self, base: bool) -> tuple[FrontierCapture, bytes]:
        n = len(self.records)
        seqs = list(range(1, n + 1))
        capture = FrontierCapture(SegmentKind.BASE, seqs, self.records, [], None, n + 1, n, 0, 0)
        return capture, b"crawl state"

    def failed(self, capture: FrontierCapture) -> None:
        self.failures += 1
