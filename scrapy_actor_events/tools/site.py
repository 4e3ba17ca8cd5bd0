"""A website on 127.0.0.1 to crawl offline: a generated link graph with redirects and duplicates.

Pages are ``/p/<n>`` for ``n`` in ``0..pages-1``. Page ``n`` links to ``n+1`` (so every page is
reachable from ``/p/0``), to a few pseudo-random pages (one of them through ``/r/<m>``, a 302 to
``/p/<m>``) and twice to the same page. The graph depends only on the seed. Every hit is recorded
with its time, so a test or a rehearsal can count pages fetched twice.

Used by the demo, the rehearsal, the tests and the benchmarks;
``python -m scrapy_actor_events site`` serves it from the command line.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class SiteLog:
    """Every request the site answered: (monotonic-free wall time, path)."""

    hits: list[tuple[float, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: Hits on ``/p/`` pages so far: ``sum(counts().values())`` without walking every hit (a
    #: harness asks for it every few milliseconds while a crawl runs).
    pages: int = 0

    def add(self, path: str) -> None:
        with self.lock:
            self.hits.append((time.time(), path))
            if path.startswith("/p/"):
                self.pages += 1

    def counts(self, prefix: str = "/p/") -> Counter[str]:
        with self.lock:
            return Counter(p for _, p in self.hits if p.startswith(prefix))

    def __len__(self) -> int:
        with self.lock:
            return len(self.hits)


class LinkGraph:
    """The pages and their links, from a seed."""

    def __init__(self, pages: int, seed: int = 7, links: int = 4) -> None:
        self.pages = pages
        self.seed = seed
        self.links = links

    def links_of(self, n: int) -> list[str]:
        rng = random.Random(self.seed * 1_000_003 + n)
        out = []
        if n + 1 < self.pages:
            out += [f"/p/{n + 1}", f"/p/{n + 1}"]  # a duplicate link
        for i in range(self.links):
            target = rng.randrange(self.pages)
            out.append(f"/r/{target}" if i == 0 else f"/p/{target}")
        return out

    def page(self, n: int) -> bytes:
        anchors = "".join(f'<li><a href="{href}">{href}</a></li>' for href in self.links_of(n))
        return (
            f"<!doctype html><html><head><title>Page {n}</title></head>"
            f"<body><h1>Page {n}</h1><ul>{anchors}</ul></body></html>"
        ).encode()


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A crawler killed mid-response leaves broken pipes behind: expected, not worth a traceback.
        return


class DemoSite:
    """Serve a :class:`LinkGraph` on 127.0.0.1 in a background thread."""

    def __init__(
        self, pages: int = 300, *, seed: int = 7, delay: float = 0.0, port: int = 0, links: int = 4
    ) -> None:
        self.graph = LinkGraph(pages, seed, links)
        self.delay = delay
        self.log = SiteLog()
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                site.log.add(self.path)
                if site.delay:
                    time.sleep(site.delay)
                status, headers, body = site.respond(self.path)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = _QuietServer(("127.0.0.1", port), Handler)
        self._thread: threading.Thread | None = None

    def respond(self, path: str) -> tuple[int, dict[str, str], bytes]:
        html = {"Content-Type": "text/html; charset=utf-8"}
        parts = path.split("?")[0].strip("/").split("/")
        if parts == [""]:
            return 200, html, b'<html><body><a href="/p/0">start</a></body></html>'
        if len(parts) == 2 and parts[1].isdigit() and int(parts[1]) < self.graph.pages:
            n = int(parts[1])
            if parts[0] == "p":
                return 200, html, self.graph.page(n)
            if parts[0] == "r":
                return 302, {"Location": f"/p/{n}"}, b""
        return 404, html, b"<html><body>not found</body></html>"

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> DemoSite:
        self._thread = threading.Thread(
            target=self.server.serve_forever, name="demo-site", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> DemoSite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
