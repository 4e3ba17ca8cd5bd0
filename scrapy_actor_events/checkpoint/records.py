"""A pending request as the scheduler's queues and the checkpoints hold it: one ``bytes`` object.

An *item* is the request's sequence number (5 bytes, big-endian) followed by the codec's record
of it. The number says where the request stands in its queue (numbers only grow, so sorting the
items of one queue gives their push order back); big-endian makes a plain ``sort()`` of items
sort them by number. The same object sits in the scheduler's queue, in the frontier's journal and
in the checkpoint payload: there is one copy of a pending request, not one per structure.

A request's *queue* (:data:`Where`) is where Scrapy's priority queues put it: its download slot
(``None`` under ``ScrapyPriorityQueue``, which has no slots), its priority key (``-priority``) and
whether it went to a start-request queue. Checkpoints store it beside each item, so that a
restore pushes the items back without rebuilding a single request. Checkpoints that lack it
(format 1) get it from the record (:class:`RecordPlacer`).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from .codec import UndecodableError, record_fields

if TYPE_CHECKING:
    from collections.abc import Callable

SEQ_BYTES = 5
#: Sequence numbers fit in SEQ_BYTES: a trillion requests.
MAX_SEQ = (1 << (8 * SEQ_BYTES)) - 1

Where = tuple[str | None, int, bool]

_ORIGIN = re.compile(r"[^:/?#]*://[^/?#]*")


def make_item(seq: int, record: bytes) -> bytes:
    return seq.to_bytes(SEQ_BYTES, "big") + record


def seq_of(item: bytes) -> int:
    return int.from_bytes(item[:SEQ_BYTES], "big")


def record_of(item: bytes) -> memoryview:
    """The codec record inside ``item``, without copying it."""
    return memoryview(item)[SEQ_BYTES:]


def prefixes(seqs: list[int]) -> set[bytes]:
    """The item prefixes of ``seqs``: membership tests on items without decoding numbers."""
    return {seq.to_bytes(SEQ_BYTES, "big") for seq in seqs}


def where_to_data(where: Where | None) -> list[Any] | None:
    return None if where is None else [where[0], where[1], where[2]]


def where_from_data(data: Any) -> Where | None:
    """A stored queue, checked: ``[slot or None, priority key, start flag]`` or None."""
    if data is None:
        return None
    slot, prio, start = data
    if slot is not None and not isinstance(slot, str):
        raise ValueError(f"bad download slot {slot!r}")
    if not isinstance(prio, int) or isinstance(prio, bool) or not isinstance(start, bool):
        raise ValueError(f"bad queue {data!r}")
    return (slot, prio, start)


class RecordPlacer:
    """The queue of an item read from its record alone (about 1.3 µs, no request rebuilt).

    ``slot_key`` is what ``Downloader.get_slot_key`` does, given the URL and the meta dict; None
    for ``ScrapyPriorityQueue``, which has no slots. Hostnames are parsed once per origin.
    """

    def __init__(self, slot_key: Callable[[str, dict[str, Any] | None], str] | None) -> None:
        self._slot_key = slot_key
        #: Whether the queues have download slots (DownloaderAwarePriorityQueue).
        self.slots = slot_key is not None

    def __call__(self, item: bytes) -> Where:
        try:
            url, meta, priority = record_fields(record_of(item))
        except UndecodableError:
            return (None, 0, False)  # decoding it later fails and is reported then
        start = bool(meta.get("is_start_request")) if meta else False
        slot = self._slot_key(url, meta) if self._slot_key is not None else None
        return (slot, -priority, start)


class HostSlots:
    """``Downloader.get_slot_key`` from a URL and meta: ``meta["download_slot"]``, else the
    URL's hostname (cached per ``scheme://netloc``)."""

    def __init__(self) -> None:
        self._hosts: dict[str, str] = {}

    def __call__(self, url: str, meta: dict[str, Any] | None) -> str:
        if meta:
            slot = meta.get("download_slot")
            if slot is not None:
                return slot  # type: ignore[no-any-return]
        match = _ORIGIN.match(url)
        origin = match.group() if match else url
        host = self._hosts.get(origin)
        if host is None:
            host = self._hosts[origin] = urlparse(url).hostname or ""
        return host
