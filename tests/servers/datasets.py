"""The dataset endpoints of the local API server (``tests/servers/apify_api.py``), under ``/v2``:

* ``POST /datasets?name=`` (get or create a named dataset), ``GET /datasets/{id}``: the dataset,
  whose ``itemCount`` and ``cleanItemCount`` count only items stored ``count_lag`` seconds ago or
  earlier, as the platform's lag behind writes (documented: up to 5 seconds);
* ``POST /datasets/{id}/items``: a JSON object or array of objects, with ``Content-Encoding`` gzip,
  deflate or br; 201 with ``{}``. The whole request is validated first and refused on any fault:
  400 ``invalid-input`` for a body that is not objects, 400 ``schema-validation-error`` with
  ``data.invalidItems`` when ``validator`` names invalid items, 413 when the decompressed body is
  over ``max_request_bytes``;
* ``GET /datasets/{id}/items?offset=&limit=&desc=&clean=&skipEmpty=&skipHidden=``: a JSON array
  with the five ``X-Apify-Pagination-*`` headers apify-client reads (``Total`` lags like the count).

Faults (:class:`DatasetFaults`): a push may answer 500 without storing, store and then answer 500
(its answer is lost), or store and then stall past the client's timeout: the last two are what a
blind retry turns into duplicates.
"""

from __future__ import annotations

import gzip
import json
import random
import threading
import time
import uuid
import zlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .records import Answer, error, now, ok

if TYPE_CHECKING:
    from collections.abc import Callable

MAX_REQUEST_BYTES = 9_437_184


@dataclass
class DatasetFaults:
    """What goes wrong with pushes, changeable while the server runs."""

    #: Outcomes of the next pushes, taken in order: "500" (not stored), "store+500",
    #: "store+stall", "429", "ok".
    script: list[str] = field(default_factory=list)
    push_error_rate: float = 0.0  # a seeded share of pushes fails, as ``error_kind`` says...
    error_kind: str = "store+500"  # ...this way
    stall_seconds: float = 3.0  # how long "store+stall" holds the answer


@dataclass
class Dataset:
    id: str
    name: str | None
    created_at: str
    items: list[tuple[float, Any]] = field(default_factory=list)  # (stored at, item)

    def counted(self, lag: float) -> int:
        cutoff = time.monotonic() - lag
        return sum(1 for stored_at, _ in self.items if stored_at <= cutoff)

    def resource(self, lag: float) -> dict[str, Any]:
        count = self.counted(lag)
        return {
            "id": self.id,
            "name": self.name,
            "userId": "testUser",
            "createdAt": self.created_at,
            "modifiedAt": now(),
            "accessedAt": now(),
            "itemCount": count,
            "cleanItemCount": count,
            "consoleUrl": f"https://console.apify.com/storage/datasets/{self.id}",
        }


class DatasetsApi:
    """The datasets of one API server, and their faults."""

    def __init__(self, seed: int = 0) -> None:
        self.datasets: dict[str, Dataset] = {}
        self.faults = DatasetFaults()
        self.count_lag = 2.0
        self.max_request_bytes = MAX_REQUEST_BYTES
        #: Returns why an item is invalid, or None: a request with any invalid item is refused.
        self.validator: Callable[[Any], str | None] | None = None
        #: Whether a refusal lists the invalid items (``invalidItems``), as schema validation does.
        self.name_invalid_items = True
        self.lock = threading.RLock()
        self._random = random.Random(seed)

    def create(self, name: str | None = None, dataset_id: str | None = None) -> str:
        with self.lock:
            for dataset in self.datasets.values():
                if name is not None and dataset.name == name:
                    return dataset.id
            did = dataset_id or uuid.uuid4().hex[:17]
            self.datasets[did] = Dataset(did, name, now())
            return did

    def items(self, dataset_id: str) -> list[Any]:
        with self.lock:
            return [item for _, item in self.datasets[dataset_id].items]

    def _find(self, ref: str) -> Dataset | None:
        with self.lock:
            if "~" in ref:
                name = ref.split("~", 1)[1]
                return next((d for d in self.datasets.values() if d.name == name), None)
            return self.datasets.get(ref)

    def _outcome(self) -> str:
        with self.lock:
            if self.faults.script:
                return self.faults.script.pop(0)
            if self._random.random() < self.faults.push_error_rate:
                return self.faults.error_kind
            return "ok"

    # -- routing ------------------------------------------------------------------------------

    def route(
        self,
        method: str,
        segments: list[str],
        query: dict[str, str],
        body: bytes,
        encoding: str | None,
    ) -> Answer:
        """Answer a request under ``/v2/datasets``."""
        if len(segments) == 2 and method == "POST":
            name = query.get("name") or None
            existed = name is not None and self._find(f"~{name}") is not None
            dataset = self._find(self.create(name))
            assert dataset is not None
            return ok(200 if existed else 201, {"data": dataset.resource(self.count_lag)})
        dataset = self._find(segments[2]) if len(segments) > 2 else None
        if dataset is None:
            return error(404, "record-not-found", "Dataset was not found")
        if len(segments) == 3 and method == "GET":
            with self.lock:
                return ok(200, {"data": dataset.resource(self.count_lag)})
        if len(segments) == 4 and segments[3] == "items":
            if method == "GET":
                return self._list(dataset, query)
            if method == "POST":
                return self._push(dataset, body, encoding)
        return error(405, "method-not-allowed", "Method not allowed")

    def _list(self, dataset: Dataset, query: dict[str, str]) -> Answer:
        truthy = {"1", "true"}
        clean = query.get("clean", "").lower() in truthy
        skip_empty = clean or query.get("skipEmpty", "").lower() in truthy
        skip_hidden = clean or query.get("skipHidden", "").lower() in truthy
        desc = query.get("desc", "").lower() in truthy
        with self.lock:
            items = [item for _, item in dataset.items]
            total = dataset.counted(self.count_lag)
        if desc:
            items.reverse()
        offset = int(query.get("offset") or 0)
        limit = int(query["limit"]) if query.get("limit") else max(0, len(items) - offset)
        page = items[offset : offset + limit]
        out = []
        for item in page:
            if skip_hidden and isinstance(item, dict):
                item = {k: v for k, v in item.items() if not k.startswith("#")}
            if skip_empty and not item:
                continue
            out.append(item)
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "X-Apify-Pagination-Offset": str(offset),
            "X-Apify-Pagination-Limit": str(limit),
            "X-Apify-Pagination-Count": str(len(page)),
            "X-Apify-Pagination-Total": str(total),
            "X-Apify-Pagination-Desc": "true" if desc else "false",
        }
        return 200, headers, json.dumps(out, ensure_ascii=False).encode()

    def _push(self, dataset: Dataset, body: bytes, encoding: str | None) -> Answer:
        outcome = self._outcome()
        if outcome == "500":
            return error(500, "internal-error", "injected failure (nothing stored)")
        if outcome == "429":
            return error(429, "rate-limit-exceeded", "You have exceeded the rate limit")
        try:
            raw = _decode(body, encoding)
        except (ValueError, OSError) as exc:
            return error(400, "invalid-input", f"The body does not decompress: {exc}")
        # Whether the platform's limit applies before or after decompression is not documented:
        # after, the stricter reading.
        if len(raw) > self.max_request_bytes:
            return error(413, "request-too-large", f"The payload is over {self.max_request_bytes}")
        try:
            parsed = json.loads(raw)
        except ValueError as exc:
            return error(400, "invalid-input", f"The body is not JSON: {exc}")
        items = parsed if isinstance(parsed, list) else [parsed]
        if not all(isinstance(item, dict) for item in items):
            return error(400, "invalid-input", "Every item must be a JSON object")
        if self.validator is not None:
            invalid = [
                {"itemPosition": i, "validationErrors": [{"message": why}]}
                for i, item in enumerate(items)
                if (why := self.validator(item)) is not None
            ]
            if invalid:
                data = {"invalidItems": invalid} if self.name_invalid_items else {}
                doc = {"error": {"type": "schema-validation-error",
                                 "message": "Schema validation failed", "data": data}}  # fmt: skip
                return ok(400, doc)
        stored_at = time.monotonic()
        with self.lock:
            dataset.items.extend((stored_at, item) for item in items)
        if outcome == "store+500":
            return error(500, "internal-error", "injected failure (after storing)")
        if outcome == "store+stall":
            time.sleep(self.faults.stall_seconds)
        return ok(201, {})


def _decode(body: bytes, encoding: str | None) -> bytes:
    if encoding in (None, "", "identity"):
        return body
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    if encoding == "br":
        import brotli

        return bytes(brotli.decompress(body))
    raise ValueError(f"unknown Content-Encoding {encoding!r}")
