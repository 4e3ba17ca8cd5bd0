"""A local stand-in for the Apify API's key-value store endpoints, for tests and benchmarks.

    with ApifyApiServer() as api:
        store_id = api.create_store()
        run_crawl(env=api.env(store_id))          # APIFY_API_BASE_URL, APIFY_TOKEN, store id
        api.read_checkpoint(store_id, KEY, "links")

It serves, on 127.0.0.1 and under ``/v2`` (Bearer auth: 401 without the token, 403 with one in
``forbidden_tokens``):

* ``GET|HEAD|PUT|DELETE /key-value-stores/{storeId}/records/{key}``: PUT answers 201, or 413 for a
  body over 9,437,184 bytes; bodies with ``Content-Encoding`` are stored as uploaded and served
  with the header; keys are 1-256 characters of ``a-zA-Z0-9!-_.'()``;
* ``GET /key-value-stores/{storeId}/keys?exclusiveStartKey=&limit=&prefix=``;
* ``POST /key-value-stores?name=`` (get or create a named store), ``GET /key-value-stores/{id}``
  (404 for a store that does not exist);
* the dataset endpoints, with their faults: see ``tests/servers/datasets.py`` (:attr:`datasets`);
* ``GET|PUT /actor-runs/{runId}`` of a run made with :meth:`ApifyApiServer.create_run`: the run
  object; a PUT records its ``statusMessage`` and ``isStatusMessageTerminal``
  (:meth:`ApifyApiServer.status_messages`); :attr:`run_faults` makes them fail or answer late.

With ``redirect_reads``, a record GET answers 302 to a signed URL that needs no token.

Store ids are ids or ``~name``. Record requests over ``rate_limit`` per second per store answer
429. Faults are set on :attr:`faults` (a seeded share of writes answering 500, latency, 429
bursts); :meth:`hold` stalls chosen requests until the client is killed. Every request is in
:attr:`log`. With ``verify_checkpoints``, each manifest PUT and chunk DELETE is followed, before
the answer, by a full read of the checkpoint with scrapy_actor_events' own reader.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import random
import re
import socket
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from .datasets import DatasetsApi
from .records import (
    Answer,
    Faults,
    Logged,
    Record,
    Run,
    RunFaults,
    Store,
    error,
    keys_page,
    now,
    ok,
    read_checkpoint,
    verify_after,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from scrapy_actor_events.checkpoint.reader import Restored

MAX_RECORD_BYTES = 9_437_184
_SIGNATURE = "signed-for-test"
KEY_RE = re.compile(r"^[a-zA-Z0-9!\-_.'()]{1,256}$")
DEFAULT_TOKEN = "apify_api_TEST-token-0123456789"


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (a timeout test) closes its end before the answer is written.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class ApifyApiServer:
    """The key-value store API on 127.0.0.1, in a thread; a context manager."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        seed: int = 0,
        rate_limit: int | None = 200,
        forbidden_tokens: tuple[str, ...] = (),
        verify_checkpoints: bool = False,
        echo_auth_in_errors: bool = False,
        page_limit: int = 1000,
        redirect_reads: bool = False,
    ) -> None:
        self.token = token
        self.forbidden_tokens = forbidden_tokens
        self.rate_limit = rate_limit
        self.verify_checkpoints = verify_checkpoints
        self.echo_auth_in_errors = echo_auth_in_errors  # a careless server, for leak tests
        self.page_limit = page_limit  # most keys per listing page
        self.redirect_reads = redirect_reads  # GET record: 302 to a signed URL (no token needed)
        self.faults = Faults()
        self.run_faults = RunFaults()
        self.runs: dict[str, Run] = {}
        self.in_flight = 0  # record requests being answered now...
        self.max_in_flight = 0  # ...and the most at once
        self.stores: dict[str, Store] = {}
        self.datasets = DatasetsApi(seed)
        self.log: list[Logged] = []
        self.verified = 0
        self.verification_errors: list[str] = []
        self.lock = threading.RLock()
        self.held = threading.Event()
        self._random = random.Random(seed)
        self._recent: dict[str, list[float]] = {}
        self._record_requests = 0
        self._burst_left = 0
        self._hold: tuple[Callable[[str, str], bool], int] | None = None
        self._release = threading.Event()
        self._connections: set[socket.socket] = set()
        self._http = _QuietServer(("127.0.0.1", 0), _Handler)
        self._http.daemon_threads = True
        self._http.api = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._http.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        """The base URL, as ``APIFY_API_BASE_URL`` takes it (the client appends ``/v2``)."""
        return f"http://127.0.0.1:{self._http.server_port}"

    def __enter__(self) -> ApifyApiServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self._http.shutdown()
        with self.lock:
            for conn in list(self._connections):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
        self._http.server_close()
        self._thread.join(5)

    # -- set-up and inspection ----------------------------------------------------------------

    def create_store(self, name: str | None = None, store_id: str | None = None) -> str:
        with self.lock:
            for store in self.stores.values():
                if name is not None and store.name == name:
                    return store.id
            sid = store_id or uuid.uuid4().hex[:17]
            self.stores[sid] = Store(sid, name, now())
            return sid

    def create_run(self, run_id: str = "testRun1") -> str:
        with self.lock:
            self.runs.setdefault(run_id, Run(run_id, now()))
        return run_id

    def status_messages(self, run_id: str) -> list[tuple[str | None, bool | None]]:
        with self.lock:
            return list(self.runs[run_id].messages)

    def env(self, store_id: str, **extra: str) -> dict[str, str]:
        """The platform's variables for a process that should use ``store_id``."""
        return {
            "APIFY_API_BASE_URL": self.url,
            "APIFY_TOKEN": self.token,
            "ACTOR_DEFAULT_KEY_VALUE_STORE_ID": store_id,
            "APIFY_IS_AT_HOME": "1",
            **extra,
        }

    def dataset_env(self, store_id: str, dataset_id: str, **extra: str) -> dict[str, str]:
        """:meth:`env`, with ``dataset_id`` as the run's default dataset."""
        return self.env(store_id, ACTOR_DEFAULT_DATASET_ID=dataset_id, **extra)

    def keys(self, store_id: str) -> list[str]:
        with self.lock:
            return sorted(self.stores[store_id].records)

    def record(self, store_id: str, key: str) -> Record | None:
        with self.lock:
            return self.stores[store_id].records.get(key)

    def value(self, store_id: str, key: str) -> bytes | None:
        """The record as the client reads it: decoded if it was uploaded compressed."""
        record = self.record(store_id, key)
        return None if record is None else record.decoded()

    def read_checkpoint(self, store_id: str, key: str, spider: str) -> Restored | None:
        with self.lock:
            records = dict(self.stores[store_id].records)
        return read_checkpoint(records, key, spider)

    def requests(self, method: str | None = None) -> list[Logged]:
        with self.lock:
            return [e for e in self.log if method is None or e.method == method]

    def burst_429(self, length: int) -> None:
        """The next ``length`` record requests answer 429."""
        with self.lock:
            self._burst_left += length

    def hold(self, match: Callable[[str, str], bool], after: int = 0) -> None:
        """Stall the record request ``match(method, key)`` picks (past the first ``after``) and
        set :attr:`held`: it never reaches the store, and its connection is closed on release."""
        self.held.clear()
        self._release.clear()
        self._hold = (match, after)

    def release(self) -> None:
        self._release.set()

    # -- used by the handler ------------------------------------------------------------------

    def _should_hold(self, method: str, key: str) -> bool:
        with self.lock:
            if self._hold is None or not self._hold[0](method, key):
                return False
            match, after = self._hold
            if after > 0:
                self._hold = (match, after - 1)
                return False
            self._hold = None
            return True

    def _record_fault(self, store_id: str, method: str) -> int | None:
        """429 or 500 for this record request, or None."""
        with self.lock:
            self._record_requests += 1
            f = self.faults
            if f.burst_every and self._record_requests % f.burst_every == 0:
                self._burst_left += f.burst_length
            if self._burst_left > 0:
                self._burst_left -= 1
                return 429
            if self.rate_limit is not None:
                now = time.monotonic()
                recent = [t for t in self._recent.get(store_id, []) if now - t < 1.0]
                recent.append(now)
                self._recent[store_id] = recent
                if len(recent) > self.rate_limit:
                    return 429
            if method in ("PUT", "DELETE") and self._random.random() < f.write_error_rate:
                return 500
        return None

    def _find(self, store_ref: str) -> Store | None:
        ref = unquote(store_ref)
        with self.lock:
            if "~" in ref:
                name = ref.split("~", 1)[1]
                return next((s for s in self.stores.values() if s.name == name), None)
            return self.stores.get(ref)

    def _verify(self, store: Store, key: str) -> None:
        with self.lock:
            records = dict(store.records)
        try:
            if verify_after(records, key):
                self.verified += 1
        except Exception as exc:
            self.verification_errors.append(f"{key}: {exc}")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ThreadingHTTPServer

    @property
    def api(self) -> ApifyApiServer:
        return self.server.api  # type: ignore[attr-defined,no-any-return]

    def setup(self) -> None:
        super().setup()
        with self.api.lock:
            self.api._connections.add(self.connection)

    def finish(self) -> None:
        with self.api.lock:
            self.api._connections.discard(self.connection)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        return None  # quiet: tests read `api.log`

    do_GET = do_HEAD = do_PUT = do_DELETE = do_POST = lambda self: self._serve()

    def _serve(self) -> None:
        body = self._read_body()
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        segments = parts.path.strip("/").split("/")
        key = unquote(segments[4]) if len(segments) == 5 and segments[3] == "records" else None
        store_ref = segments[2] if len(segments) > 2 else None
        if key is not None and self.api._should_hold(self.command, key):
            self.api.held.set()
            self.api._release.wait(120)
            self.close_connection = True
            self._log(store_ref, key, 0, len(body))
            return
        with self.api.lock:
            self.api.in_flight += 1
            self.api.max_in_flight = max(self.api.max_in_flight, self.api.in_flight)
        try:
            if self.api.faults.latency:
                time.sleep(self.api.faults.latency)
            status, headers, payload = self._route(segments, query, key, body)
        finally:
            with self.api.lock:
                self.api.in_flight -= 1
        self._log(store_ref, key, status, len(body))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _log(self, store: str | None, key: str | None, status: int, size: int) -> None:
        with self.api.lock:
            self.api.log.append(Logged(time.time(), self.command, store, key, status, size))

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(parts)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _route(
        self, segments: list[str], query: dict[str, str], key: str | None, body: bytes
    ) -> Answer:
        api = self.api
        auth = self.headers.get("Authorization", "")
        signed = self.command == "GET" and query.get("signature") == _SIGNATURE
        if auth != f"Bearer {api.token}" and not signed:
            forbidden = auth.removeprefix("Bearer ") in api.forbidden_tokens
            why = "insufficient permissions" if forbidden else "authentication token is not valid"
            if api.echo_auth_in_errors:
                why += f" (got {auth!r})"
            return error(403 if forbidden else 401, "token-not-valid", why)
        if segments[:2] == ["v2", "actor-runs"] and len(segments) == 3:
            return self._run(segments[2], body)
        if segments[:2] == ["v2", "datasets"]:
            encoding = (self.headers.get("Content-Encoding") or "").strip().lower() or None
            return api.datasets.route(self.command, segments, query, body, encoding)
        if segments[:2] != ["v2", "key-value-stores"]:
            return error(404, "page-not-found", "not found")
        if len(segments) == 2 and self.command == "POST":
            name = query.get("name") or None
            existed = name is not None and api._find(f"~{name}") is not None
            store = api._find(api.create_store(name))
            assert store is not None
            return ok(200 if existed else 201, {"data": store.resource()})
        store = api._find(segments[2]) if len(segments) > 2 else None
        if store is None:
            return error(404, "record-not-found", "Key-value store was not found")
        if len(segments) == 3 and self.command == "GET":
            return ok(200, {"data": store.resource()})
        if len(segments) == 4 and segments[3] == "keys" and self.command == "GET":
            base = f"{api.url}/v2/key-value-stores/{store.id}/records/"
            with api.lock:
                return ok(200, {"data": keys_page(store, query, api.page_limit, base)})
        if key is None:
            return error(404, "page-not-found", "not found")
        if not KEY_RE.match(key):
            return error(400, "invalid-parameters", "The key is not valid")
        fault = api._record_fault(store.id, self.command)
        if fault == 429:
            return error(429, "rate-limit-exceeded", "You have exceeded the rate limit")
        if fault == 500 and not api.faults.error_after_write:
            return error(500, "internal-error", "injected failure")
        if api.redirect_reads and self.command == "GET" and not signed:
            where = f"/v2/key-value-stores/{store.id}/records/{quote(key, safe='')}"
            return 302, {"Location": f"{where}?signature={_SIGNATURE}"}, b""
        result = self._record(store, key, body)
        return error(500, "internal-error", "injected failure") if fault == 500 else result

    def _run(self, run_id: str, body: bytes) -> Answer:
        api = self.api
        arrived = time.monotonic()
        if api.run_faults.latency:
            time.sleep(api.run_faults.latency)
        if api.run_faults.status is not None:
            return error(api.run_faults.status, "internal-error", "injected failure")
        with api.lock:
            run = api.runs.get(unquote(run_id))
            if run is None:
                return error(404, "record-not-found", "Actor run was not found")
            if self.command == "PUT":
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                doc = json.loads(body or b"{}")
                run.messages.append((doc.get("statusMessage"), doc.get("isStatusMessageTerminal")))
                run.arrived.append(arrived)
            elif self.command != "GET":
                return error(405, "method-not-allowed", "Method not allowed")
            return ok(200, {"data": run.resource()})

    def _record(self, store: Store, key: str, body: bytes) -> Answer:
        api = self.api
        if self.command in ("GET", "HEAD"):
            with api.lock:
                record = store.records.get(key)
            if record is None:
                return error(404, "record-not-found", "Record was not found")
            headers = {"Content-Type": record.content_type}
            if record.content_encoding:
                headers["Content-Encoding"] = record.content_encoding
            return 200, headers, record.value
        if self.command == "PUT":
            if len(body) > MAX_RECORD_BYTES:
                self.close_connection = True
                return error(413, "request-too-large", f"The record is over {MAX_RECORD_BYTES}")
            encoding = (self.headers.get("Content-Encoding") or "").strip().lower() or None
            if encoding not in (None, "identity", "gzip", "deflate", "br"):
                return error(400, "invalid-parameters", f"Unknown encoding {encoding!r}")
            content_type = self.headers.get("Content-Type") or "application/octet-stream"
            with api.lock:
                store.records[key] = Record(body, content_type, encoding)
            if api.verify_checkpoints:
                api._verify(store, key)
            return 201, {}, b""
        if self.command == "DELETE":
            with api.lock:
                if store.records.pop(key, None) is None:
                    return error(404, "record-not-found", "Record was not found")
            if api.verify_checkpoints:
                api._verify(store, key)
            return 204, {}, b""
        return error(405, "method-not-allowed", "Method not allowed")
