"""Run crawls for tests: in this process (through Scrapy's crawler API) or as `scrapy crawl`."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from scrapy.utils.test import get_crawler

from scrapy_actor_events.checkpointer import Checkpointer, Restored
from scrapy_actor_events.config import Config
from scrapy_actor_events.crawl_state import CrawlState
from scrapy_actor_events.store.local import LocalKeyValueStore

if TYPE_CHECKING:
    from collections.abc import Callable

    from scrapy import Spider
    from scrapy.crawler import Crawler

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_PROJECT = ROOT / "example_project"

EXTENSION = {"scrapy_actor_events.ActorEventsExtension": 100}
BASE_SETTINGS: dict[str, Any] = {
    "EXTENSIONS": EXTENSION,
    "ACTOR_EVENTS_SET_EXIT_CODE": False,
    "ROBOTSTXT_OBEY": False,
    "LOG_LEVEL": "INFO",
}


def make_crawler(spidercls: type[Spider], **settings: Any) -> Crawler:
    return get_crawler(spidercls, {**BASE_SETTINGS, **settings})


async def crawl(
    spidercls: type[Spider], *, crawl_kwargs: dict[str, Any] | None = None, **settings: Any
) -> Crawler:
    crawler = make_crawler(spidercls, **settings)
    await crawler.crawl_async(**(crawl_kwargs or {}))
    return crawler


async def read_checkpoint(
    storage: Path, key: str, spider: str, store_id: str = "default"
) -> Restored | None:
    from scrapy.settings import Settings

    config = Config.from_settings(Settings({"ACTOR_EVENTS_STORAGE_DIR": str(storage)}))
    store = LocalKeyValueStore(storage, store_id)
    from scrapy.statscollectors import MemoryStatsCollector

    stats = MemoryStatsCollector(get_crawler())
    return await Checkpointer(store, key, spider, config, stats).read()


def crawl_doc(restored: Restored) -> dict[str, Any]:
    return CrawlState.decode(restored.crawl)


@dataclass
class Run:
    returncode: int
    stderr: str
    killed: bool
    stdout: str = ""


def subprocess_env(storage: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("APIFY_", "ACTOR_", "CRAWLEE_"))
    }
    env.update(
        PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        APIFY_LOCAL_STORAGE_DIR=str(storage),
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def scrapy_crawl(
    args: list[str],
    env: dict[str, str],
    *,
    kill_when: Callable[[], bool] | None = None,
    timeout: float = 120.0,
    cwd: Path = EXAMPLE_PROJECT,
) -> Run:
    """Run ``scrapy crawl`` with ``args``; SIGKILL it as soon as ``kill_when()`` is true."""
    cmd = [sys.executable, "-m", "scrapy", "crawl", *args]
    with subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        killed = False
        if kill_when is not None:
            deadline = time.monotonic() + timeout
            while proc.poll() is None and time.monotonic() < deadline:
                if kill_when():
                    proc.send_signal(signal.SIGKILL)
                    killed = True
                    break
                time.sleep(0.002)
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, stderr = proc.communicate()
            raise AssertionError(
                f"crawl did not finish in {timeout} s:\n{stderr[-5000:]}"
            ) from None
    return Run(proc.returncode, stderr, killed, stdout)


def run_sync(coro: Any) -> Any:
    """Run a coroutine to the end from a synchronous test (the reactor's loop is busy here)."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()
