"""A big frontier: peak RSS of the crawl, and the bytes each contender keeps to survive a restart.

Real crawls of the ``fan`` site (``bench.peer_site``): every page adds 1,000 new requests, pages are
crawled before leaves, and leaves answer after 1 s, so the frontier grows by about 1,000 requests
per page. Once the scheduler holds ``target`` requests the spider stops following links, crawls on
for ``hold`` seconds (so that periodic checkpoints see the whole frontier) and closes.
"""

from __future__ import annotations

import statistics
import tempfile
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from .common import verdict
from .peer_common import LABELS, crawl, mb, peer_versions, redis_memory, redis_server, tree_bytes
from .peer_site import serve_site

CONTENDERS = ("plain", "extension", "objects", "jobdir", "redis")
#: Run unless --peers names the contenders: "objects" (compact off) only on request.
DEFAULT_CONTENDERS = ("plain", "extension", "jobdir", "redis")
LINKS = 1_000
#: Above this frontier scrapy-redis is left out (its memory is redis-server's, not the crawl's).
REDIS_UP_TO = 200_000
#: Peak RSS of the extension's crawl against plain Scrapy's crawl of the same frontier.
TARGETS = {200_000: 0.3, 1_000_000: 0.25}


def _one(name: str, url: str, target: int, hold: float) -> dict[str, Any]:
    server = redis_server() if name == "redis" else nullcontext(None)
    with server as redis, tempfile.TemporaryDirectory() as tmp:
        redis_url = redis[0] if redis else None
        out = crawl(name, url, tmp, redis_url=redis_url, target=target, hold=hold)
        row: dict[str, Any] = {
            "rss": out["rss"],
            "frontier": out["frontier"],
            "seconds": out["seconds"],
            "pages": out["pages"],
        }
        if name in ("extension", "objects"):
            stats = out["stats"]
            row["stored"] = tree_bytes(Path(tmp, "storage", "key_value_stores", "default"))
            row["written"] = stats.get("actor_events/checkpoint/bytes", 0)
            row["checkpoints"] = stats.get("actor_events/checkpoint/count", 0)
        if name == "jobdir":
            job = Path(tmp, "job")
            row["queue"] = tree_bytes(job / "requests.queue")
            row["seen"] = tree_bytes(job / "requests.seen")
            row["stored"] = tree_bytes(job)
        if redis:
            row.update(redis_memory(*redis))
    return row


def run(
    targets: list[int], rounds: int, hold: float, contenders: tuple[str, ...] = CONTENDERS
) -> dict[str, Any]:
    results: dict[int, dict[str, list[dict[str, Any]]]] = {}
    for target in targets:
        chosen = [name for name in contenders if target <= REDIS_UP_TO or name != "redis"]
        rows: dict[str, list[dict[str, Any]]] = {name: [] for name in chosen}
        with serve_site("fan", target // LINKS + 100, LINKS) as url:
            for _ in range(rounds):
                for name in chosen:
                    row = _one(name, url, target, hold)
                    print(f"  {name} at {target:,}: {row}", flush=True)
                    rows[name].append(row)
        results[target] = rows
    return {"results": results, "hold": hold}


def report(data: dict[str, Any], rounds: int) -> str:
    results: dict[int, dict[str, list[dict[str, Any]]]] = data["results"]
    lines = [
        "Real crawls that stop at the same frontier: a local site where every page links to"
        f" the next page and to {LINKS:,} leaves (leaves answer after 1 s; pages go first, so"
        f" each page crawled adds {LINKS:,} requests to the frontier). Once the scheduler holds"
        " the target, the spider stops following links, crawls on for"
        f" {data['hold']:.0f} s and closes. Same settings as the peers above; each crawl in its"
        f" own process; {rounds} round(s), contenders interleaved, medians. *Peak RSS*: the"
        " crawl process's `VmHWM`. *Kept on disk*: scrapy-actor-events: every file of its"
        " checkpoint in the local key-value store after the close (the one it would resume"
        " from); JOBDIR: `requests.queue/` (pickled requests, one per pending request) and"
        " `requests.seen` (hex fingerprints) after the close. scrapy-redis keeps its frontier"
        f" in redis-server's memory instead (its own peak shown), left out above"
        f" {REDIS_UP_TO:,}. Every crawl runs in a process started for it, and reports that"
        " process's own peak (`VmHWM`; `ru_maxrss` would carry over the size of the bench"
        f" process that started it). Peers: {peer_versions()}.",
    ]
    for target, rows in results.items():

        def med(name: str, field: str, rows: dict[str, list[dict[str, Any]]] = rows) -> float:
            return float(statistics.median(r.get(field, 0) for r in rows[name]))

        base_rss = med("plain", "rss") if "plain" in rows else 0.0
        lines += [
            "",
            f"**Target frontier: {target:,} requests.**",
            "",
            "| contender | frontier at the stop | crawl time | peak RSS | vs plain"
            " | kept to resume | per pending request |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for name in rows:
            frontier, rss = med(name, "frontier"), med(name, "rss")
            kept, per = "", ""
            if name in ("extension", "objects"):
                kept = (
                    f"{mb(med(name, 'stored'))} in the store (written over the crawl:"
                    f" {mb(med(name, 'written'))} in {med(name, 'checkpoints'):.0f}"
                    " checkpoints)"
                )
                per = f"{med(name, 'stored') / frontier:.1f} B"
            elif name == "jobdir":
                kept = (
                    f"{mb(med(name, 'queue') + med(name, 'seen'))} (`requests.queue/`"
                    f" {mb(med(name, 'queue'))} + `requests.seen` {mb(med(name, 'seen'))})"
                )
                per = f"{(med(name, 'queue') + med(name, 'seen')) / frontier:.1f} B"
            elif name == "redis":
                kept = (
                    f"in redis: {mb(med(name, 'used_memory_peak'))} peak dataset,"
                    f" redis-server peak RSS {mb(med(name, 'rss_peak'))}"
                )
            versus = f"{rss / base_rss:.2f}" if base_rss else ""
            lines.append(
                f"| {LABELS[name]} | {frontier:,.0f} | {med(name, 'seconds'):.0f} s | {mb(rss)}"
                f" | {versus} | {kept} | {per} |"
            )
        verdicts = []
        if "extension" in rows and base_rss:
            ratio = med("extension", "rss") / base_rss
            limit = TARGETS.get(target)
            if limit is not None:
                plain = [r["rss"] for r in rows["plain"]]
                verdicts.append(
                    f"peak RSS with the extension <= {limit}x plain Scrapy's: {ratio:.2f}x,"
                    f" {verdict(ratio, limit, plain, at_most=True)}"
                )
        if "extension" in rows and "jobdir" in rows:
            jobdir = med("jobdir", "queue") + med("jobdir", "seen")
            ratio = med("extension", "stored") / jobdir
            jobdir_rounds = [r["queue"] + r["seen"] for r in rows["jobdir"]]
            verdicts.append(
                f"checkpoint bytes <= 1/10 of JOBDIR's for the same frontier: 1/{1 / ratio:.0f},"
                f" {verdict(ratio, 0.1, jobdir_rounds, at_most=True)}"
            )
        if verdicts:
            lines += ["", "Targets: " + "; ".join(verdicts) + "."]
    return "\n".join(lines)
