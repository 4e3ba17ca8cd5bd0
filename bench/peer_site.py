"""A fast site on 127.0.0.1 for the peer benchmarks, in a process of its own; it counts every hit.

Two shapes, both deterministic:

* ``graph``: pages ``/p/<n>``, ``n < pages``. Page ``n`` links to ``n+1`` (every page is reachable
  from ``/p/0``) and to ``links`` pseudo-random pages. For throughput and for what a kill loses.
* ``fan``: pages ``/p/<n>`` link to ``/p/<n+1>`` and to ``links`` leaves ``/l/<n>-<j>`` that link
  nowhere, answered after 1 s (a slow site: the frontier grows much faster than it drains). Each
  page crawled adds ``links`` requests to the frontier: for frontier memory and size.

``GET /__hits`` answers ``{"path": count, ...}`` for every path served since the last
``GET /__reset``; ``GET /__count`` answers the number of page hits. The server is a bare asyncio
protocol (keep-alive, no header parsing), so it answers far faster than Scrapy asks, and being in
another process it takes no GIL from the crawl.

    python -m bench.peer_site graph 20000 8   # prints the URL; stops when stdin closes
"""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys
from collections import Counter
from contextlib import contextmanager
from typing import TYPE_CHECKING

from .common import ROOT

if TYPE_CHECKING:
    from collections.abc import Iterator


LEAF_DELAY = 1.0


class Site:
    def __init__(self, shape: str, pages: int, links: int) -> None:
        self.shape, self.pages, self.links = shape, pages, links
        self.hits: Counter[str] = Counter()
        self.page_hits = 0

    def links_of(self, path: str) -> list[str]:
        kind, _, tail = path[1:].partition("/")
        if kind != "p" or not tail.isdigit() or int(tail) >= self.pages:
            return []
        n = int(tail)
        out = [f"/p/{n + 1}"] if n + 1 < self.pages else []
        if self.shape == "fan":
            return out + [f"/l/{n}-{j}" for j in range(self.links)]
        rng = random.Random(n)
        return out + [f"/p/{rng.randrange(self.pages)}" for _ in range(self.links)]

    def respond(self, path: str) -> bytes:
        if path == "/__count":
            return _response(str(self.page_hits).encode(), "text/plain")
        if path == "/__hits":
            return _response(json.dumps(self.hits).encode(), "application/json")
        if path == "/__reset":
            self.hits.clear()
            self.page_hits = 0
            return _response(b"ok", "text/plain")
        self.hits[path] += 1
        self.page_hits += 1
        anchors = "".join(f'<a href="{href}">{href}</a>\n' for href in self.links_of(path))
        body = f"<html><head><title>{path}</title></head><body>{anchors}</body></html>"
        return _response(body.encode(), "text/html; charset=utf-8")


def _response(body: bytes, content_type: str) -> bytes:
    head = (
        f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        "Connection: keep-alive\r\n\r\n"
    )
    return head.encode() + body


class _Protocol(asyncio.Protocol):
    def __init__(self, site: Site) -> None:
        self.site = site
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while b"\r\n\r\n" in self.buffer and self.transport is not None:
            head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
            path = head.split(b" ", 2)[1].decode("latin-1")
            answer = self.site.respond(path)
            if path.startswith("/l/"):
                asyncio.get_running_loop().call_later(LEAF_DELAY, self._write, answer)
            else:
                self.transport.write(answer)

    def _write(self, answer: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(answer)


async def _serve(shape: str, pages: int, links: int) -> None:
    loop = asyncio.get_running_loop()
    site = Site(shape, pages, links)
    server = await loop.create_server(lambda: _Protocol(site), "127.0.0.1", 0, backlog=1024)
    port = server.sockets[0].getsockname()[1]
    print(f"http://127.0.0.1:{port}", flush=True)
    await loop.run_in_executor(None, sys.stdin.read)  # until the parent closes our stdin
    server.close()


@contextmanager
def serve_site(shape: str, pages: int, links: int) -> Iterator[str]:
    """Run the site in a child process; yield its base URL."""
    cmd = [sys.executable, "-m", "bench.peer_site", shape, str(pages), str(links)]
    with subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        assert proc.stdin is not None
        url = proc.stdout.readline().decode().strip()
        try:
            yield url
        finally:
            proc.stdin.close()
            proc.wait(10)


def get(url: str) -> bytes:
    from urllib.request import urlopen

    with urlopen(url, timeout=30) as answer:
        return bytes(answer.read())


if __name__ == "__main__":
    asyncio.run(_serve(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
