"""Request encode/decode cost: this package's codec against Request.to_dict / request_from_dict."""

from __future__ import annotations

import random
from typing import Any

from scrapy import Spider
from scrapy.http import FormRequest, JsonRequest, Request
from scrapy.utils.request import request_from_dict

from scrapy_actor_events.checkpoint.codec import RequestCodec

from .common import interleaved, median, timed

IN_FLIGHT_HEADERS = {
    b"Accept": [b"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"],
    b"Accept-Language": [b"en"],
    b"User-Agent": [b"Scrapy/2.19.0 (+https://scrapy.org)"],
    b"Accept-Encoding": [b"gzip, deflate, br, zstd"],
}


class BenchSpider(Spider):
    name = "bench"

    def parse(self, response: Any) -> None:
        return None

    def parse_product(self, response: Any) -> None:
        return None

    def parse_search(self, response: Any) -> None:
        return None


def request_mix(spider: BenchSpider, n: int, seed: int = 1, start: int = 0) -> list[Request]:
    """70% followed links, 20% in-flight requests with default headers, 10% forms and JSON.

    URLs are numbered from ``start``, so that mixes with different starts do not overlap.
    """
    rng = random.Random(seed)
    out: list[Request] = []
    for i in range(start, start + n):
        roll = rng.random()
        shop, category, page = rng.randrange(20), rng.randrange(500), rng.randrange(50)
        url = f"https://shop{shop}.example.com/category/{category}/item-{i}?page={page}"
        if roll < 0.7:
            out.append(
                Request(url, callback=spider.parse_product, meta={"depth": rng.randrange(8)})
            )
        elif roll < 0.9:
            meta = {"depth": 3, "download_slot": "shop1.example.com", "download_latency": 0.2}
            out.append(Request(url, callback=spider.parse, headers=IN_FLIGHT_HEADERS, meta=meta))
        elif roll < 0.95:
            form = {"q": f"term {i}", "page": "2"}
            out.append(
                FormRequest(
                    url,
                    formdata=form,
                    callback=spider.parse_search,
                    cb_kwargs={"term": f"term {i}"},
                    priority=5,
                )
            )
        else:
            out.append(JsonRequest(url, data={"ids": [i, i + 1]}, callback=spider.parse_product))
    return out


def run(n: int = 20_000, rounds: int = 7) -> list[dict[str, Any]]:
    spider = BenchSpider()
    requests = request_mix(spider, n)
    codec = RequestCodec(spider)
    encoded = [codec.encode(r) for r in requests]
    dicts = [r.to_dict(spider=spider) for r in requests]

    cases = {
        "codec encode": lambda: timed(lambda: [codec.encode(r) for r in requests]),
        "Request.to_dict": lambda: timed(lambda: [r.to_dict(spider=spider) for r in requests]),
        "codec decode": lambda: timed(lambda: [codec.decode(b) for b in encoded]),
        "request_from_dict": lambda: timed(
            lambda: [request_from_dict(d, spider=spider) for d in dicts]
        ),
    }
    results = interleaved(cases, rounds)
    per_request = {name: median(values) / n * 1e6 for name, values in results.items()}
    size = sum(map(len, encoded)) / n
    return [
        {
            "what": "encode",
            "ours_us": per_request["codec encode"],
            "stock_us": per_request["Request.to_dict"],
        },
        {
            "what": "decode",
            "ours_us": per_request["codec decode"],
            "stock_us": per_request["request_from_dict"],
        },
        {"what": "bytes per request (encoded, before compression)", "value": size},
    ]


def report(rows: list[dict[str, Any]], n: int, rounds: int) -> str:
    lines = [
        f"Request mix: {n:,} requests (70% followed links, 20% in-flight with default headers,"
        f" 10% FormRequest/JsonRequest); median of {rounds} interleaved rounds.",
        "",
        "| operation | scrapy-actor-events codec | stock Scrapy | ratio |",
        "|---|---:|---:|---:|",
    ]
    for row in rows[:2]:
        stock = "Request.to_dict" if row["what"] == "encode" else "request_from_dict"
        lines.append(
            f"| {row['what']} | {row['ours_us']:.1f} µs/request | {row['stock_us']:.1f} µs/request"
            f" ({stock}) | {row['stock_us'] / row['ours_us']:.1f}x faster |"
        )
    lines += ["", f"Encoded size: {rows[2]['value']:.0f} bytes per request before zstd."]
    return "\n".join(lines)
