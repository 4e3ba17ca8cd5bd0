"""The chaos run: one crawl killed with SIGKILL at random moments, resumed every time.

    python -m tests.end_to_end.chaos --seed 7          # the long run: 3,000 pages, 20 kills
    python -m tests.end_to_end.chaos --seed 7 --pages 600 --kills 5

Checkpoints every 0.5 s. Checks, and prints: every page crawled at least once; pages fetched twice
within the bound of each kill (pages fetched after the newest complete checkpoint's capture, plus
its in-flight requests); the final item count equal to the distinct pages. Exit status 0 when
every check holds.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

from scrapy_actor_events.checkpoint.format import Manifest
from scrapy_actor_events.tools.site import DemoSite

from ..support.crawling import crawl_doc, read_checkpoint, run_sync, scrapy_crawl, subprocess_env

KEY = "SCRAPY_STATE_links"


@dataclass
class Kill:
    after_seconds: float
    generation: int
    pages_after_checkpoint: int
    in_flight: int
    #: Pages per second of the killed run while it crawled (its first hit to its last).
    rate: float = 0.0


@dataclass
class ChaosResult:
    seed: int
    pages: int
    kills: list[Kill] = field(default_factory=list)
    lost: int = 0
    fetched_twice: int = 0
    bound: int = 0
    items: int = 0
    distinct: int = 0
    pages_per_second: float = 0.0
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.fetched_twice <= self.bound and self.items == self.distinct


def run(seed: int, pages: int, kills: int, storage: Path, interval_ms: int = 500) -> ChaosResult:
    rng = random.Random(seed)
    result = ChaosResult(seed=seed, pages=pages)
    started = time.monotonic()
    manifest_path = storage / "key_value_stores" / "default" / KEY
    with DemoSite(pages=pages, delay=0.01) as site:
        args = ["links", "-a", f"start_url={site.url}/", "-s", "CONCURRENT_REQUESTS=8"]
        env = subprocess_env(storage, APIFY_PERSIST_STATE_INTERVAL_MILLIS=str(interval_ms))
        finished = False
        for _ in range(kills):
            wait = rng.uniform(0.3, 2.5)
            first_hit = len(site.log)
            state: dict[str, float] = {}

            def due(first_hit=first_hit, wait=wait, state=state) -> bool:
                if len(site.log) > first_hit and "since" not in state:
                    state["since"] = time.monotonic()
                return "since" in state and time.monotonic() - state["since"] >= wait

            run_ = scrapy_crawl(args, env, kill_when=due)
            manifest = (
                Manifest.from_bytes(KEY, manifest_path.read_bytes())
                if manifest_path.exists()
                else None
            )
            if not run_.killed or (manifest and manifest.close_reason == "finished"):
                finished = True  # the crawl ended before this kill came
                break
            captured = datetime.fromisoformat(manifest.created_at).timestamp() if manifest else 0.0
            hits = [(t, p) for t, p in site.log.hits[first_hit:] if p.startswith("/p/")]
            after = [p for t, p in hits if t > captured]
            span = hits[-1][0] - hits[0][0] if len(hits) > 1 else 0.0
            result.kills.append(
                Kill(round(wait, 2), manifest.generation if manifest else 0, len(after),
                     manifest.summary["in_flight"] if manifest else 0,
                     round(len(hits) / span, 1) if span > 0 else 0.0)
            )  # fmt: skip
        if not finished:
            final = scrapy_crawl(args, env)
            if final.returncode != 0 or "Spider closed (finished)" not in final.stderr:
                raise AssertionError(f"the last run did not finish:\n{final.stderr[-3000:]}")
        counts = site.log.counts()
    result.seconds = round(time.monotonic() - started, 1)
    result.lost = sum(1 for n in range(pages) if f"/p/{n}" not in counts)
    result.fetched_twice = sum(c - 1 for c in counts.values())
    result.bound = sum(k.pages_after_checkpoint + k.in_flight for k in result.kills)
    restored = run_sync(read_checkpoint(storage, KEY, "links"))
    stats = crawl_doc(restored)["stats"]
    result.items = stats["item_scraped_count"]
    result.distinct = pages + 1  # the pages and the start page
    elapsed = stats.get("elapsed_time_seconds") or 1.0
    result.pages_per_second = round(stats["response_received_count"] / elapsed, 1)
    return result


def report(result: ChaosResult) -> str:
    lines = [
        f"chaos seed {result.seed}: {result.pages} pages, {len(result.kills)} SIGKILLs,"
        f" {result.seconds} s",
        "  kill  after(s)  resumed-from-gen  pages-after-checkpoint  in-flight  pages/s",
    ]
    lines += [
        f"  {i + 1:>4}  {k.after_seconds:>8}  {k.generation:>16}  {k.pages_after_checkpoint:>22}"
        f"  {k.in_flight:>9}  {k.rate:>7}"
        for i, k in enumerate(result.kills)
    ]
    lines.append(
        f"  lost {result.lost}; fetched twice {result.fetched_twice} (bound {result.bound});"
        f" items {result.items} for {result.distinct} distinct pages;"
        f" {result.pages_per_second} pages/s; {'OK' if result.ok else 'FAILED'}"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--pages", type=int, default=3000)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--json", action="store_true", help="print the result as JSON too")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        result = run(args.seed, args.pages, args.kills, Path(tmp) / "storage")
    print(report(result))
    if args.json:
        print(json.dumps(asdict(result) | {"ok": result.ok}))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
