"""Peers: crawl speed and peak RSS, and what one SIGKILL costs, for this extension and its peers.

The contenders (``bench.peer_crawl``): plain Scrapy; scrapy-actor-events checkpointing every 5 s to
the local store; Scrapy's JOBDIR; scrapy-redis with ``SCHEDULER_PERSIST`` on a redis-server on
127.0.0.1; the Apify SDK's ``ApifyScheduler`` on its local storage, inside ``async with Actor``.
Each crawl runs in its own process against the same site (``bench.peer_site``, in another process)
with the same settings.
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import tempfile
import time
from collections import Counter
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from .common import verdict
from .peer_common import LABELS, crawl, mb, peer_versions, redis_server, start_crawl
from .peer_site import get, serve_site

CONTENDERS = ("plain", "extension", "objects", "jobdir", "redis", "apify")
#: Run unless --peers names the contenders: "objects" (compact off) only on request.
DEFAULT_CONTENDERS = ("plain", "extension", "jobdir", "redis", "apify")
STATE_FILE = Path("storage", "key_value_stores", "default", "SCRAPY_STATE_peers")


def _flush(redis_url: str) -> None:
    import redis

    client = redis.Redis.from_url(redis_url)
    client.flushall()
    client.close()


def run_throughput(
    rounds: int, pages: int, links: int, cap: float, contenders: tuple[str, ...] = CONTENDERS
) -> dict[str, Any]:
    """Every contender crawls the whole site once per round, in turn; ``cap`` seconds at most."""
    results: dict[str, list[dict[str, float]]] = {name: [] for name in contenders}
    load = os.getloadavg()[0]
    with serve_site("graph", pages, links) as url, redis_server() as (redis_url, _):
        for turn in range(rounds):
            # Each round starts with another contender, so none always runs first or last.
            for name in contenders[turn % len(contenders) :] + contenders[: turn % len(contenders)]:
                get(url + "/__reset")
                _flush(redis_url)
                with tempfile.TemporaryDirectory() as tmp:
                    out = crawl(
                        name, url, tmp, redis_url=redis_url, settings={"CLOSESPIDER_TIMEOUT": cap}
                    )
                print(f"  {name}: {out['pages']} pages in {out['seconds']:.1f} s", flush=True)
                results[name].append(
                    {
                        "rate": out["pages"] / out["seconds"],
                        "cpu_rate": out["pages"] / out["cpu"],
                        "rss": out["rss"],
                        "pages": out["pages"],
                        "checkpoints": out["stats"].get("actor_events/checkpoint/count", 0),
                    }
                )
    return {"rows": results, "load": load, "pages": pages, "links": links, "cap": cap}


def report_throughput(data: dict[str, Any], rounds: int) -> str:
    rows: dict[str, list[dict[str, float]]] = data["rows"]

    def med(name: str, field: str) -> float:
        return statistics.median(r[field] for r in rows[name])

    lines = [
        f"Every contender crawls the same local site ({data['pages']:,} pages of"
        f" {data['links'] + 1} links each, served by `bench/peer_site.py` in a process of its"
        f" own) with the same settings (`CONCURRENT_REQUESTS` 32, 32 per domain, `LOG_LEVEL`"
        f" WARNING, no robots.txt), each crawl in its own process, {rounds} rounds with the"
        " contenders interleaved in every round (each round starting with the next one);"
        " medians. *pages/s*: responses over the time"
        " from `spider_opened` to `engine_stopped` (a crawl stops at the end of the site or"
        f" after {data['cap']:.0f} s, `CLOSESPIDER_TIMEOUT`); *pages per CPU second*: responses"
        " over the CPU time of the crawl process over the same span. *Peak RSS*: the crawl"
        " process's `VmHWM`, its own peak (redis-server's memory is not in it)."
        f" Peers: {peer_versions()} (the bench starts its own redis-server, and installs"
        " Debian's package with apt-get when there is none)."
        f" Load average (1 min) when the run began: {data['load']:.1f} (the machine is shared).",
        "",
        "| contender | pages/s | vs plain | pages/s, each round | pages per CPU second"
        " | vs plain | each round | peak RSS | vs plain | pages per crawl"
        " | checkpoints per crawl |",
        "|---|---:|---:|---|---:|---:|---|---:|---:|---:|---:|",
    ]
    base_rate = med("plain", "rate") if "plain" in rows else 0.0
    base_cpu = med("plain", "cpu_rate") if "plain" in rows else 0.0
    base_rss = med("plain", "rss") if "plain" in rows else 0.0
    for name in rows:
        rate, cpu, rss = med(name, "rate"), med(name, "cpu_rate"), med(name, "rss")
        each = ", ".join(f"{r['rate']:.0f}" for r in rows[name])
        each_cpu = ", ".join(f"{r['cpu_rate']:.0f}" for r in rows[name])
        lines.append(
            f"| {LABELS[name]} | {rate:,.0f} | {rate / base_rate:.3f} | {each} | {cpu:,.0f}"
            f" | {cpu / base_cpu:.3f} | {each_cpu} | {mb(rss)} | {rss / base_rss:.2f}"
            f" | {med(name, 'pages'):,.0f} | {med(name, 'checkpoints'):.0f} |"
        )
    if "extension" in rows and base_rate:
        lines += [
            "",
            "Target: with checkpoints every 5 s, at least 0.97 of plain Scrapy's pages/s. "
            + _verdict(rows, "rate", "Wall clock")
            + " "
            + _verdict(rows, "cpu_rate", "Per CPU second")
            + " The crawl is CPU-bound (several ms of Scrapy per page on this machine; the site"
            " answers in well under a millisecond from another process), so work the extension"
            " adds shows up in both. The machine is shared: when other work competes for its 2"
            " cores, pages/s swings by tens of percent from round to round (the rounds are"
            " listed); pages per CPU second counts only the crawl process's own CPU time (all its"
            " threads, from `spider_opened` to `engine_stopped`) and is less sensitive to it, but"
            " not immune (a contended core runs slower). *Spread*: (max - min) / median of plain"
            " Scrapy's own rounds; a gap to plain smaller than that cannot be told from noise.",
        ]
    return "\n".join(lines)


def _verdict(rows: dict[str, list[dict[str, float]]], field: str, label: str) -> str:
    plain = [r[field] for r in rows["plain"]]
    ratio = statistics.median(r[field] for r in rows["extension"]) / statistics.median(plain)
    return f"{label}: {ratio:.3f}, {verdict(ratio, 0.97, plain)}."


def _kill_one(
    name: str, url: str, pages: int, kill_at: int, tmp: str, redis_url: str | None
) -> dict[str, Any]:
    get(url + "/__reset")
    record = str(Path(tmp, "parsed.txt"))
    log = Path(tmp, "killed.log")
    proc = start_crawl(name, url, tmp, log, redis_url=redis_url, record=record)
    started = time.monotonic()
    while proc.poll() is None and int(get(url + "/__count")) < kill_at:
        time.sleep(0.02)
    if proc.poll() is not None:
        raise RuntimeError(f"{name} exited before the kill: {Path(tmp, 'killed.log').read_text()}")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = time.time()
    alive = time.monotonic() - started
    time.sleep(0.3)
    before = int(get(url + "/__count"))
    state = Path(tmp, STATE_FILE)
    age = killed_at - state.stat().st_mtime if state.exists() else None
    parsed_before = len(Path(record).read_bytes().splitlines())
    crawl(name, url, tmp, redis_url=redis_url, resume=True, record=record)
    hits = {p: c for p, c in json.loads(get(url + "/__hits")).items() if p.startswith("/p/")}
    parsed = Counter(Path(record).read_bytes().splitlines())
    return {
        "alive": alive,
        "before": before,
        "parsed_before": parsed_before,
        "after": int(get(url + "/__count")) - before,
        "never": pages - len(hits),
        "twice": sum(1 for c in hits.values() if c > 1),
        "never_parsed": pages - len(parsed),
        "parsed_twice": sum(1 for c in parsed.values() if c > 1),
        "checkpoint_age": age,
    }


def run_kill(
    rounds: int, pages: int, links: int, kill_at: int, contenders: tuple[str, ...] = CONTENDERS
) -> dict[str, Any]:
    """Kill each contender's crawl after ``kill_at`` pages, run it again on the same state."""
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in contenders}
    with serve_site("graph", pages, links) as url:
        for _ in range(rounds):
            for name in contenders:
                server = redis_server() if name == "redis" else nullcontext(None)
                with server as redis, tempfile.TemporaryDirectory() as tmp:
                    redis_url = redis[0] if redis else None
                    row = _kill_one(name, url, pages, kill_at, tmp, redis_url)
                print(f"  {name}: {row}", flush=True)
                results[name].append(row)
    return {"rows": results, "pages": pages, "links": links, "kill_at": kill_at}


def report_kill(data: dict[str, Any], rounds: int) -> str:
    rows: dict[str, list[dict[str, Any]]] = data["rows"]
    pages = data["pages"]

    def med(name: str, field: str) -> float:
        return float(statistics.median(r[field] for r in rows[name]))

    lines = [
        f"The same site ({pages:,} pages of {data['links'] + 1} links, every page reachable"
        " from `/p/0`, which the site counts hits of). Each contender crawls it in a process"
        f" that gets SIGKILL once the site has answered {data['kill_at']:,} pages, then"
        " crawls it again, to the end, on what the first process left (same JOBDIR, same"
        " redis-server, same local storage without purging). From the site's count of hits per"
        " page: *never fetched*, pages that neither process fetched (lost for good); *fetched"
        " twice*, pages fetched more than once. The spider also writes a line per callback run"
        " (unbuffered, so a kill keeps it): *callbacks never run* are pages whose callback ran"
        " in neither process (in a spider that yields items, their items are lost), *callbacks"
        " run twice* are pages whose items would be yielded twice. *Killed after*: seconds from"
        " the process's start to the kill. Median of"
        f" {rounds} round(s). Peers: {peer_versions()}.",
        "",
        "| contender | killed after | fetched before the kill | callbacks run before the kill"
        " | fetched by the rerun | never fetched | fetched twice | callbacks never run"
        " | callbacks run twice |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name in rows:
        lines.append(
            f"| {LABELS[name]} | {med(name, 'alive'):.1f} s | {med(name, 'before'):,.0f}"
            f" | {med(name, 'parsed_before'):,.0f} | {med(name, 'after'):,.0f}"
            f" | {med(name, 'never'):,.0f} | {med(name, 'twice'):,.0f}"
            f" | {med(name, 'never_parsed'):,.0f} | {med(name, 'parsed_twice'):,.0f} |"
        )
    notes = {
        "plain": "nothing survives: the rerun starts over and fetches every page again",
        "jobdir": "the queue's index (`requests.queue/active.json`) is written only on close,"
        " and `requests.seen` is buffered: the rerun starts with an empty queue and a seen set"
        " that filters the links it finds, so the pages still pending at the kill are lost",
        "redis": "the queue and the seen set live in redis, but the requests in flight were"
        " popped and are seen: they are never fetched again, nor are pages only they linked to",
        "apify": "the request queue keeps the requests in flight (unhandled until Scrapy is"
        " done with them), so they are fetched again rather than lost; requests that had"
        " finished but whose mark as handled (sent in batches, off the crawl's path) had not"
        " reached the queue yet are fetched again too. Every request costs a blocking call to"
        " the queue, which is what makes this crawl several times slower than the others",
    }
    lines.append("")
    if "extension" in rows:
        ages = [r["checkpoint_age"] for r in rows["extension"] if r["checkpoint_age"] is not None]
        if ages:
            lines.append(
                f"- {LABELS['extension']}: the rerun resumes from the last checkpoint, taken"
                f" {statistics.median(ages):.1f} s before the kill (median): the pages fetched"
                " since then are fetched again, none is lost."
            )
        else:
            lines.append(
                f"- {LABELS['extension']}: the kill came before the first checkpoint, so the rerun"
                " starts over, as plain Scrapy's does (a larger `--kill-at` measures the steady"
                " state)."
            )
    lines += [f"- {LABELS[name]}: {text}." for name, text in notes.items() if name in rows]
    return "\n".join(lines)
