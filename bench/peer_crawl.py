"""One crawl of one contender of the peer benchmarks, in a process of its own.

    python -m bench.peer_crawl '{"contender": "plain", "url": "http://127.0.0.1:8000", ...}'

Prints one JSON line: pages fetched, seconds (and CPU seconds) from spider_opened to
engine_stopped, the largest frontier seen, the peak RSS of this process (``VmHWM``) and the
crawl's stats. The contenders differ only in the settings below (and, for the Apify SDK, in running
inside ``async with Actor``, as its Scrapy template does).
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from typing import TYPE_CHECKING, Any

import scrapy
from scrapy import signals
from scrapy.exceptions import CloseSpider

from .rss import peak_rss

if TYPE_CHECKING:
    from collections.abc import Iterator

    from scrapy.http import Response

CONTENDERS = ("plain", "extension", "objects", "jobdir", "redis", "apify")

#: The same for every contender.
COMMON: dict[str, Any] = {
    "LOG_LEVEL": "WARNING",
    "ROBOTSTXT_OBEY": False,
    "CONCURRENT_REQUESTS": 32,
    "CONCURRENT_REQUESTS_PER_DOMAIN": 32,
    "TELNETCONSOLE_ENABLED": False,
    "REMOTE_CONTROL_ENABLED": False,
    "COOKIES_ENABLED": False,
}

HREF = re.compile(r'href="([^"]+)"')


def contender_settings(name: str, workdir: str, redis_url: str | None) -> dict[str, Any]:
    if name == "plain":
        return {}
    if name == "extension":
        return {
            "EXTENSIONS": {"scrapy_actor_events.ActorEventsExtension": 100},
            "ACTOR_EVENTS_PERSIST_INTERVAL": 5,
            "ACTOR_EVENTS_STORE": "local",
            "ACTOR_EVENTS_STORAGE_DIR": os.path.join(workdir, "storage"),
        }
    if name == "objects":  # the extension as before the compact frontier: Request objects
        return {
            **contender_settings("extension", workdir, redis_url),
            "ACTOR_EVENTS_COMPACT_QUEUE": False,
            "ACTOR_EVENTS_COMPACT_FINGERPRINTS": False,
        }
    if name == "jobdir":
        return {"JOBDIR": os.path.join(workdir, "job")}
    if name == "redis":
        return {
            "SCHEDULER": "scrapy_redis.scheduler.Scheduler",
            "DUPEFILTER_CLASS": "scrapy_redis.dupefilter.RFPDupeFilter",
            "SCHEDULER_PERSIST": True,
            "REDIS_URL": redis_url,
        }
    if name == "apify":
        return {}  # apply_apify_settings() adds its own, inside the Actor
    raise ValueError(f"unknown contender {name!r}; choose from {', '.join(CONTENDERS)}")


class PeerSpider(scrapy.Spider):
    """Follows every link. With ``target``, stops following once the frontier holds ``target``
    requests, crawls on for ``hold`` seconds, then closes (reason ``frontier``)."""

    name = "peers"

    def __init__(
        self, url: str, target: int = 0, hold: float = 0.0, record: str = "", **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        # One line per callback run, unbuffered: what a SIGKILL leaves of it is what ran.
        self.record = open(record, "ab", buffering=0) if record else None  # noqa: SIM115
        self.start_urls = [url + "/p/0"]
        self.target, self.hold = target, hold
        self.yielded = 0
        self.frontier = 0
        self.full_at: float | None = None

    def _frontier(self) -> int:
        scheduler = self.crawler.engine.scheduler if self.crawler.engine else None
        try:
            return len(scheduler)  # type: ignore[arg-type]
        except TypeError:  # ApifyScheduler has no len(): requests made minus responses
            return self.yielded - int(self.crawler.stats.get_value("response_received_count", 0))

    def parse(self, response: Response) -> Iterator[scrapy.Request]:
        if self.record:
            self.record.write(response.url.encode() + b"\n")
        if self.full_at is None:
            for href in HREF.findall(response.text):
                # Pages before leaves: a fan site's frontier grows by a page's links per page.
                priority = 1 if href.startswith("/p/") else 0
                yield scrapy.Request(response.urljoin(href), self.parse, priority=priority)
                self.yielded += 1
        if not self.target:
            return
        if self.full_at is None:
            self.frontier = max(self.frontier, self._frontier())
            if self.frontier >= self.target:
                self.full_at = time.monotonic()
        if self.full_at is not None and time.monotonic() - self.full_at >= self.hold:
            raise CloseSpider("frontier")


def _watch(crawler: Any, out: dict[str, Any]) -> None:
    def opened() -> None:
        out["t0"], out["c0"] = time.perf_counter(), time.process_time()

    def stopped() -> None:
        out["t1"], out["c1"] = time.perf_counter(), time.process_time()

    crawler.signals.connect(opened, signals.spider_opened, weak=False)
    crawler.signals.connect(stopped, signals.engine_stopped, weak=False)


def _result(crawler: Any, out: dict[str, Any]) -> dict[str, Any]:
    stats = crawler.stats.get_stats()
    spider = crawler.spider
    return {
        "pages": stats.get("response_received_count", 0),
        "seconds": out["t1"] - out["t0"],
        "cpu": out["c1"] - out["c0"],  # every thread of the process, user + system
        "frontier": spider.frontier if spider else 0,
        "rss": peak_rss(),
        "reason": stats.get("finish_reason"),
        "stats": {k: v for k, v in stats.items() if isinstance(v, int | float)},
    }


def _spider_args(args: dict[str, Any]) -> dict[str, Any]:
    keys = ("target", "hold", "record")
    return {"url": args["url"], **{k: args[k] for k in keys if k in args}}


def crawl_scrapy(args: dict[str, Any]) -> dict[str, Any]:
    from scrapy.crawler import CrawlerProcess

    settings = {
        **COMMON,
        **contender_settings(args["contender"], args["workdir"], args.get("redis_url")),
        **args.get("settings", {}),  # a run's own settings win over the contender's
    }
    process = CrawlerProcess(settings)
    crawler = process.create_crawler(PeerSpider)
    out: dict[str, Any] = {}
    _watch(crawler, out)
    process.crawl(crawler, **_spider_args(args))
    if args.get("profile"):  # the reactor thread's functions, to a pstats file
        import cProfile

        profiler = cProfile.Profile()
        profiler.runcall(process.start)
        profiler.dump_stats(args["profile"])
    else:
        process.start()
    return _result(crawler, out)


def crawl_apify(args: dict[str, Any]) -> None:
    """As the Apify SDK's Scrapy template runs a spider: ``async with Actor`` around the crawl."""
    os.environ["APIFY_LOCAL_STORAGE_DIR"] = os.path.join(args["workdir"], "storage")
    os.environ["APIFY_PURGE_ON_START"] = "0" if args.get("resume") else "1"
    from apify.scrapy import run_scrapy_actor

    result: dict[str, Any] = {}

    async def main() -> None:
        from apify import Actor
        from apify.scrapy import apply_apify_settings
        from scrapy.crawler import AsyncCrawlerRunner
        from scrapy.settings import Settings
        from scrapy.settings.default_settings import DOWNLOADER_MIDDLEWARES, ITEM_PIPELINES

        async with Actor:
            settings = Settings({**COMMON, **args.get("settings", {})})
            settings["ITEM_PIPELINES"] = dict(ITEM_PIPELINES)
            settings["DOWNLOADER_MIDDLEWARES"] = dict(DOWNLOADER_MIDDLEWARES)
            settings["EXTENSIONS"] = {}
            apply_apify_settings(settings=settings)
            runner = AsyncCrawlerRunner(settings)
            crawler = runner.create_crawler(PeerSpider)
            out: dict[str, Any] = {}
            _watch(crawler, out)
            await runner.crawl(crawler, **_spider_args(args))
            result.update(_result(crawler, out))
        print(json.dumps(result), flush=True)  # react() below ends the process with sys.exit

    run_scrapy_actor(main())


if __name__ == "__main__":
    arguments = json.loads(sys.argv[1])
    for name in [n for n in os.environ if n.startswith(("APIFY_", "ACTOR_", "CRAWLEE_"))]:
        del os.environ[name]  # a benchmark never talks to the platform
    if arguments["contender"] == "apify":
        crawl_apify(arguments)
    else:
        print(json.dumps(crawl_scrapy(arguments)), flush=True)
