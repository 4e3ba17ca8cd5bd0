"""The Apify SDK's Scrapy pipeline pushing N items inside ``async with Actor`` (for
``bench/dataset_bench.py``, run against the local API server): ``python sdk_pipeline_push.py N``."""

from __future__ import annotations

import asyncio
import sys


async def main(items: int) -> None:
    from apify import Actor
    from apify.scrapy.pipelines import ActorDatasetPushPipeline

    async with Actor:
        pipeline = ActorDatasetPushPipeline()
        for n in range(items):
            await pipeline.process_item({"url": f"https://example.com/p/{n}", "title": f"Page {n}"})


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
