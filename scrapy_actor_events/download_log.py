"""The download log: a JSON-lines file of what a crawl accepted, fetched and finished.

Set ``ACTOR_EVENTS_DOWNLOAD_LOG`` (or the environment variable of the same name) to a path, and
every process of the crawl appends to it, one JSON object a line:

* ``{"event": "opened", "spider": ..., "pid": ..., "time": ...}`` when the spider opens;
* ``{"event": "accepted", "url": ...}`` for each request the scheduler accepted;
* ``{"event": "fetched", "url": ..., "status": ...}`` for each response received;
* ``{"event": "finished", "url": ...}`` when the engine is done with a request (its callback,
  items and child requests handled);
* ``{"event": "closed", "reason": ...}`` when the spider closes.

Every line also carries ``pid`` and ``time``. Scrapy's own requests without a callback
(robots.txt, media) are left out. Lines are written one at a time, unbuffered, so a SIGKILL loses
at most the line being written; readers skip a torn last line.

``scrapy-actor-events rehearse`` reads it (``tools/download_log_reader.py``) to count pages fetched
in each run, fetched twice, and *lost*: accepted by some run but finished by none. Accepted and
finished lines need Scrapy's own scheduler (the one whose frontier the extension checkpoints).
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from scrapy.http.request import NO_CALLBACK

if TYPE_CHECKING:
    from collections.abc import Callable

    from scrapy import Request, Spider
    from scrapy.http import Response

logger = logging.getLogger(__name__)

OPENED, ACCEPTED, FETCHED, FINISHED, CLOSED = "opened", "accepted", "fetched", "finished", "closed"


class DownloadLog:
    """Appends the crawl's requests and responses to a JSON-lines file."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._file: IO[str] | None = None
        self._pid = os.getpid()

    def open(self, spider: Spider) -> None:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Line-buffered: each line reaches the kernel at once and survives a SIGKILL.
            self._file = self.path.open("a", encoding="utf-8", buffering=1)
            logger.info("Writing the download log to %s", self.path)
        self._write({"event": OPENED, "spider": spider.name})

    def close(self, reason: str) -> None:
        if self._file is not None:
            self._write({"event": CLOSED, "reason": reason})
            self._file.close()
            self._file = None

    def _write(self, entry: dict[str, Any]) -> None:
        if self._file is None:
            return
        entry["pid"] = self._pid
        entry["time"] = round(time.time(), 3)
        try:
            self._file.write(json.dumps(entry, separators=(",", ":")) + "\n")
        except OSError as exc:
            logger.error("Cannot write the download log %s (%s); it stops here.", self.path, exc)
            self._file = None

    # -- hooks --------------------------------------------------------------------------------

    def response_received(self, response: Response, request: Request, spider: Spider) -> None:
        if request.callback is not NO_CALLBACK:
            self._write({"event": FETCHED, "url": request.url, "status": response.status})

    def wrap(
        self, on_enqueued: Callable[[Request], None] | None, on_finished: Callable[[Request], None]
    ) -> tuple[Callable[[Request], None], Callable[[Request], None]]:
        """The frontier's two hooks (no enqueue hook: None), also writing ``accepted`` and
        ``finished`` lines."""

        def enqueued(request: Request) -> None:
            if on_enqueued is not None:
                on_enqueued(request)
            if request.callback is not NO_CALLBACK:
                self._write({"event": ACCEPTED, "url": request.url})

        def finished(request: Request) -> None:
            on_finished(request)
            if request.callback is not NO_CALLBACK:
                self._write({"event": FINISHED, "url": request.url})

        return enqueued, finished
