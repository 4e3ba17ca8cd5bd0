"""Items to the dataset: what exactly-once output costs, measured in one run.

    python -m bench.run dataset                       # 3,000 pages, 3 rounds
    python -m bench.run dataset --dataset-pages 1000 --dataset-rounds 2   # a quick check

Each round crawls the local site twice with ``example_project`` (``scrapy crawl links``, one item
per page), checkpoints going to the platform store on the local API server: once with items to
the run's dataset (``ACTOR_EVENTS_DATASET=true``), once with items going nowhere (``false``), in
turn. Speed is pages per second of the crawl (``response_received_count / elapsed_time_seconds``
from the crawl's own stats). Platform requests per 1,000 items count every dataset request the
crawl made (pushes and checks) on the API server's log. The Apify SDK's ``ActorDatasetPushPipeline``
is measured in the same run: ``process_item`` for the same number of items inside
``async with Actor`` on the same server (one POST per item, by construction).
"""

from __future__ import annotations

import ast
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from scrapy_actor_events import stats_keys
from scrapy_actor_events.tools.harness import crawl_environment, run_crawl, scrapy_command
from scrapy_actor_events.tools.site import DemoSite

from .common import ROOT, median, verdict

EXAMPLE_PROJECT = ROOT / "example_project"
SDK_SCRIPT = Path(__file__).with_name("sdk_pipeline_push.py")
VARIANTS = {"dataset": "true", "nowhere": "false"}
TARGET_RATIO = 0.97
TARGET_REQUESTS = 5.0


def _stats(stderr: str) -> dict[str, Any]:
    """Scrapy's closing stats dump, parsed as the literal it is."""
    match = re.search(r"Dumping Scrapy stats:\n(\{.*?\})\n(?=\d{4}-|\Z)", stderr, re.S)
    if match is None:
        raise RuntimeError(f"no stats in the crawl's output: {stderr[-2000:]}")
    text = re.sub(r"datetime\.datetime\([^)]*\)", "None", match.group(1))
    return dict(ast.literal_eval(text))


def _crawl(api: Any, site: DemoSite, variant: str, interval: float, workdir: str) -> dict[str, Any]:
    store, dataset = api.create_store(), api.datasets.create()
    env = crawl_environment(
        workdir,
        pythonpath=[ROOT],
        **api.dataset_env(store, dataset),
        APIFY_PERSIST_STATE_INTERVAL_MILLIS=str(int(interval * 1000)),
    )
    before = len(api.log)
    args = ["links", "-a", f"start_url={site.url}/", "-s", f"ACTOR_EVENTS_DATASET={variant}",
            "-s", "CONCURRENT_REQUESTS=16", "-s", "LOG_LEVEL=INFO"]  # fmt: skip
    run = run_crawl(scrapy_command(*args), env=env, cwd=EXAMPLE_PROJECT, timeout=600)
    if run.returncode != 0:
        raise RuntimeError(f"the crawl failed ({run.returncode}): {run.stderr[-3000:]}")
    stats = _stats(run.stderr)
    requests = [e for e in api.log[before:] if e.store == dataset]
    items = api.datasets.items(dataset)
    urls = [item["url"] for item in items]
    return {
        "pages_per_second": stats["response_received_count"] / stats["elapsed_time_seconds"],
        "items": len(items),
        "duplicates": len(urls) - len(set(urls)),
        "scraped": stats.get("item_scraped_count", 0),
        "requests": len(requests),
        "pushes": sum(1 for e in requests if e.method == "POST"),
        "checkpoints": stats.get(stats_keys.CHECKPOINT_COUNT, 0),
    }


def _sdk_pipeline(api: Any, items: int) -> dict[str, Any]:
    store, dataset = api.create_store(), api.datasets.create()
    platform = ("APIFY_", "ACTOR_", "CRAWLEE_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(platform)}
    run_id = api.create_run("benchRun")
    env.update(api.dataset_env(store, dataset), ACTOR_RUN_ID=run_id, ACTOR_ID="benchActor")
    before = len(api.log)
    run = run_crawl([sys.executable, str(SDK_SCRIPT), str(items)], env=env, timeout=600)
    if run.returncode != 0:
        raise RuntimeError(f"the SDK pipeline failed: {run.stderr[-3000:]}")
    requests = [e for e in api.log[before:] if e.store == dataset]
    return {"items": len(api.datasets.items(dataset)), "requests": len(requests)}


def run(pages: int, rounds: int, interval: float) -> dict[str, Any]:
    from tests.servers.apify_api import ApifyApiServer

    results: dict[str, list[dict[str, Any]]] = {name: [] for name in VARIANTS}
    with ApifyApiServer(rate_limit=None) as api, DemoSite(pages=pages) as site:
        with tempfile.TemporaryDirectory(prefix="dataset-bench-") as workdir:
            for r in range(rounds):
                order = list(VARIANTS) if r % 2 == 0 else list(reversed(VARIANTS))
                for name in order:
                    results[name].append(_crawl(api, site, VARIANTS[name], interval, workdir))
        sdk = _sdk_pipeline(api, pages + 1)
    return {"pages": pages, "interval": interval, "rounds": results, "sdk": sdk}


def report(data: dict[str, Any], rounds: int) -> str:
    with_items, nowhere = data["rounds"]["dataset"], data["rounds"]["nowhere"]
    speed = median([r["pages_per_second"] for r in with_items])
    base = median([r["pages_per_second"] for r in nowhere])
    ratio = speed / base
    items = sum(r["items"] for r in with_items)
    requests = sum(r["requests"] for r in with_items)
    per_thousand = 1000 * requests / max(1, items)
    sdk = data["sdk"]
    sdk_per_thousand = 1000 * sdk["requests"] / max(1, sdk["items"])
    exact = all(r["items"] == r["scraped"] == data["pages"] + 1 and not r["duplicates"]
                for r in with_items)  # fmt: skip
    lines = [
        f"{data['pages']:,} pages (one item each, plus the start page), {rounds} rounds in turn;"
        f" checkpoints every {data['interval']:g} s to the platform store on the local API server.",
        "",
        "| | pages/s (median) | per round | dataset requests per 1,000 items |",
        "|---|---|---|---|",
        f"| items to the dataset | {speed:.1f} | {_speeds(with_items)} | {per_thousand:.2f} |",
        f"| items going nowhere | {base:.1f} | {_speeds(nowhere)} | - |",
        f"| Apify SDK `ActorDatasetPushPipeline` | - | - | {sdk_per_thousand:.0f} |",
        "",
        f"Throughput with items to the dataset: **{ratio:.3f}** of the same crawl with items going"
        f" nowhere (target >= {TARGET_RATIO}):"
        f" {verdict(ratio, TARGET_RATIO, [r['pages_per_second'] for r in nowhere])}."
        " Platform requests per 1,000 items:"
        f" **{per_thousand:.2f}** (target <= {TARGET_REQUESTS:g}), against"
        f" {sdk_per_thousand:.0f} for the SDK's pipeline ({sdk['items']:,} items,"
        f" {sdk['requests']:,} requests). Every round's dataset held one item per page:"
        f" {'yes' if exact else 'NO'}. Pushes per crawl:"
        f" {', '.join(str(r['pushes']) for r in with_items)}; checkpoints per crawl:"
        f" {', '.join(str(r['checkpoints']) for r in with_items)}. A crawl makes one read at"
        " start and one push per checkpoint (the close one included), so the figure falls with"
        " a longer persist interval (the platform's default is 60 s) and a longer crawl.",
    ]
    return "\n".join(lines)


def _speeds(rounds: list[dict[str, Any]]) -> str:
    return ", ".join(f"{r['pages_per_second']:.1f}" for r in rounds)
