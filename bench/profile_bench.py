"""Where the extension's time per page goes: the peer crawl under cProfile, by part.

Each contender crawls the peers' ``graph`` site once per round under ``cProfile`` (in a process of
its own, like every crawl of the benchmarks). The parts are the extension's entry points, each
counted with everything it calls (cumulative time) but the Scrapy or queuelib method it wraps,
so that no time is counted twice and a wrapper costs what it adds:

* the record queues' ``push`` (encode the request, journal it) and ``pop`` (decode it), where the
  scheduler calls them; with Request objects in the queues (``objects``), the hook on
  ``enqueue_request`` that encodes instead;
* the engine hook on a finished request (``remove_request``);
* the seen fingerprints' compact set (``in`` and ``add``, from the dupefilter);
* the extension's signal handlers and the download log;
* checkpoints on the reactor thread: the cut (waiting between callbacks is not CPU), the capture,
  the writer's steps between awaits (MessagePack and zstd run in a worker thread, which cProfile
  does not see, and neither do the figures: they are off the reactor);
* the timer, the events socket and the throttle.

The profiler slows Python code two to three times: the figures say where the time goes, and how
the parts compare, more than what they cost unprofiled (the peers section has that).
"""

from __future__ import annotations

import os
import pstats
import statistics
import tempfile
from pathlib import Path
from typing import Any

from .peer_common import LABELS, crawl
from .peer_site import get, serve_site

CONTENDERS = ("plain", "extension", "objects")
PACKAGE = "scrapy_actor_events" + os.sep

#: part -> entry points: (file, function, callees whose time is not the extension's own), with
#: files under the package, callees anywhere (a path suffix). Cumulative time, minus the callees'
#: time when called from there (a wrapper around Scrapy's own method costs what it adds).
Entry = tuple[str, str, tuple[tuple[str, str], ...]]
PARTS: dict[str, list[Entry]] = {
    "record queues: push (encode, journal)": [
        ("checkpoint/queues.py", "push", (("queuelib/queue.py", "push"),))
    ],
    "record queues: pop (decode)": [
        ("checkpoint/queues.py", "pop", (("queuelib/queue.py", "pop"),))
    ],
    "engine hook: request accepted (object queues; download log)": [
        (
            "_scrapy_internals.py",
            "enqueue_request",
            (("scrapy/core/scheduler.py", "enqueue_request"),),
        )
    ],
    "engine hook: request finished": [
        ("_scrapy_internals.py", "remove_request", (("scrapy/core/engine.py", "remove_request"),))
    ],
    "seen fingerprints (compact set)": [
        ("checkpoint/fingerprints.py", "__contains__", ()),
        ("checkpoint/fingerprints.py", "add", ()),
    ],
    "signal handlers and download log": [
        ("extension.py", "spider_idle", ()),
        ("download_log.py", "response_received", ()),
    ],
    # The writer's coroutine drives the cut and the capture: its steps hold them.
    "checkpoints on the reactor thread (cut, capture, writer)": [
        ("checkpoint/writer.py", "_serve", ())
    ],
    "events and throttle": [
        ("events/throttle.py", "step", ()),
        ("events/throttle.py", "cpu_sample", ()),
        ("events/reactions.py", "__call__", ()),
    ],
}


def _parts(path: str) -> dict[str, float]:
    """Seconds per part, and ``total``: the crawl's whole profiled time."""
    stats: dict[Any, Any] = pstats.Stats(path).stats  # type: ignore[attr-defined]
    found = dict.fromkeys(PARTS, 0.0)
    total = 0.0
    for key, (_, _, own, cumulative, _) in stats.items():
        total += own
        filename, _, function = key
        if PACKAGE not in filename:
            continue
        relative = filename.split(PACKAGE, 1)[1]
        for part, entries in PARTS.items():
            for file, name, callees in entries:
                if (relative, name) != (file, function):
                    continue
                found[part] += cumulative - sum(
                    callers[key][3]
                    for (callee_file, _, callee), (_, _, _, _, callers) in stats.items()
                    for suffix, callee_name in callees
                    if callee == callee_name and callee_file.endswith(suffix) and key in callers
                )
    found["total"] = total
    return found


def run(rounds: int, pages: int, links: int, contenders: tuple[str, ...]) -> dict[str, Any]:
    rows: dict[str, list[dict[str, float]]] = {name: [] for name in contenders}
    with serve_site("graph", pages, links) as url:
        for turn in range(rounds):
            for name in contenders[turn % len(contenders) :] + contenders[: turn % len(contenders)]:
                get(url + "/__reset")
                with tempfile.TemporaryDirectory() as tmp:
                    profile = str(Path(tmp, "crawl.prof"))
                    out = crawl(name, url, tmp, profile=profile)
                    row = {k: v / out["pages"] * 1e6 for k, v in _parts(profile).items()}
                row["pages"] = out["pages"]
                print(f"  {name}: {row['total']:.0f} µs/page profiled", flush=True)
                rows[name].append(row)
    return {"rows": rows, "pages": pages, "links": links}


def report(data: dict[str, Any], rounds: int) -> str:
    rows: dict[str, list[dict[str, float]]] = data["rows"]

    def med(name: str, field: str) -> float:
        return statistics.median(r[field] for r in rows[name])

    names = list(rows)
    lines = [
        f"The peers' site ({data['pages']:,} pages of {data['links'] + 1} links), each contender"
        f" crawling it under cProfile in a process of its own, {rounds} round(s), medians, in"
        " µs of the reactor thread per page crawled (profiled: Python code runs 2-3x slower"
        " than without the profiler). *Whole crawl*: all the profiled time of the crawl, Scrapy's"
        " included; the parts are the extension's entry points with everything they call"
        " (`bench/profile_bench.py` lists them).",
        "",
        "| | " + " | ".join(LABELS[n] for n in names) + " |",
        "|---|" + "---:|" * len(names),
        "| whole crawl | " + " | ".join(f"{med(n, 'total'):,.0f}" for n in names) + " |",
    ]
    for part in PARTS:
        lines.append(f"| {part} | " + " | ".join(f"{med(n, part):,.1f}" for n in names) + " |")
    if "plain" in rows:
        base = med("plain", "total")
        lines.append(
            "| whole crawl minus plain Scrapy's | "
            + " | ".join(f"{med(n, 'total') - base:+,.0f}" for n in names)
            + " |"
        )
    return "\n".join(lines)
