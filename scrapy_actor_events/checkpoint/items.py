"""The item journal: the crawl's items, numbered, from the moment they are scraped until the
dataset holds them.

An item joins the journal when the callback that yielded it has finished (the frontier's
``on_finished``, after its item pipelines): until then it is *staged* under its request. A cut
then takes exactly the items of the callbacks it counts as done, the same instant as the frontier
(items of a callback still running belong to a request the checkpoint keeps open, which is fetched
again after a kill and yields them again). Items of requests the frontier does not follow (from
``start()``, or when Scrapy's scheduler is not in use) join at once.

Each checkpoint carries the items not yet committed: a base all of them, a delta those since the
checkpoint before. After its manifest has landed, the items it holds are pushed, and the commit
point moves on; the next checkpoint records it and leaves those items out.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..dataset.commit import CommitPoint

if TYPE_CHECKING:
    from collections.abc import Callable

    from scrapy import Request


@dataclass
class ItemsCapture:
    """The journal at one cut: the items a segment holds and the commit point."""

    journal: str
    first: int
    records: list[bytes]
    end: int
    point: CommitPoint
    dataset: str

    @property
    def uncommitted(self) -> int:
        return self.end - self.point.index

    def payload(self) -> dict[str, Any]:
        """The segment's keys: ``items`` (the journal's numbers) and ``item_records`` (a list at
        the top, which the writer packs a slice at a time, like the frontier's records)."""
        meta = {
            "journal": self.journal,
            "first": self.first,
            "end": self.end,
            "committed": self.point.index,
            "offset": self.point.offset,
            "dataset": self.dataset,
        }
        return {"items": meta, "item_records": self.records}


@dataclass
class RestoredItems:
    """What a checkpoint says of its items: those not committed (from ``point.index`` to ``end``),
    and where the dataset stood."""

    journal: str
    point: CommitPoint
    end: int
    records: list[bytes]
    dataset: str


def merge_items(payloads: list[dict[str, Any]]) -> RestoredItems | None:
    """The items a base and its deltas add up to; raises ``ValueError`` if some are missing.

    Only segments of the last segment's journal count: a crawl resumed with the dataset turned off
    and on again starts a new journal, whose numbers say nothing of the old one's.
    """
    last = payloads[-1].get("items")
    if last is None:
        return None
    journal = str(last["journal"])
    committed, end, offset = _count(last["committed"]), _count(last["end"]), _count(last["offset"])
    if committed > end:
        raise ValueError("items: committed past the end")
    found: dict[int, bytes] = {}
    for payload in payloads:
        part = payload.get("items")
        if part is None or part["journal"] != journal:
            continue
        first = _count(part["first"])
        for i, record in enumerate(payload["item_records"]):
            if committed <= first + i < end:
                if type(record) is not bytes:
                    raise TypeError("item records must be bytes")
                found[first + i] = record
    if len(found) != end - committed:
        raise ValueError(f"items: {end - committed - len(found)} of the uncommitted are missing")
    return RestoredItems(
        journal=journal,
        point=CommitPoint(committed, offset),
        end=end,
        records=[found[k] for k in range(committed, end)],
        dataset=str(last["dataset"]),
    )


def _count(value: Any) -> int:
    if type(value) is not int or value < 0:
        raise ValueError(f"expected a non-negative integer, got {value!r}")
    return value


class ItemJournal:
    """The crawl's serialized items, from the last commit point on; all on the reactor thread."""

    def __init__(self, dataset: str, tracked: Callable[[Request], bool] | None = None) -> None:
        self.dataset = dataset
        self.journal = uuid.uuid4().hex
        self.point = CommitPoint(0, 0)
        #: Whether the frontier follows a request (its items wait until it is finished).
        self.tracked = tracked
        self._first = 0  # the number of _records[0]
        self._records: list[bytes] = []
        self._saved_end = 0  # items below this number are in a checkpoint in the store
        self._staged: dict[Request, list[bytes]] = {}
        #: Bytes of items that joined since the last cut.
        self.bytes_since_cut = 0

    @property
    def end(self) -> int:
        """The number the next item gets."""
        return self._first + len(self._records)

    @property
    def saved_end(self) -> int:
        return self._saved_end

    @property
    def staged(self) -> int:
        return sum(len(items) for items in self._staged.values())

    # -- the crawl ----------------------------------------------------------------------------

    def add(self, record: bytes, request: Request | None) -> None:
        """An item scraped from ``request``'s response (None: not from a response)."""
        if request is not None and self.tracked is not None and self.tracked(request):
            self._staged.setdefault(request, []).append(record)
            return
        self._append(record)

    def request_finished(self, request: Request) -> None:
        """The engine is done with ``request``: the items its callback yielded join."""
        for record in self._staged.pop(request, ()):
            self._append(record)

    def _append(self, record: bytes) -> None:
        self._records.append(record)
        self.bytes_since_cut += len(record)

    # -- checkpoints --------------------------------------------------------------------------

    def capture(self, base: bool) -> ItemsCapture:
        """The items for a segment: all uncommitted ones (a base), else those since the last
        checkpoint that reached the store."""
        self.bytes_since_cut = 0
        first = self.point.index if base else self._saved_end
        return ItemsCapture(
            journal=self.journal,
            first=first,
            records=self._records[first - self._first :],
            end=self.end,
            point=self.point,
            dataset=self.dataset,
        )

    def saved(self, capture: ItemsCapture) -> None:
        """The checkpoint holding ``capture`` is in the store: its items may be pushed."""
        self._saved_end = max(self._saved_end, capture.end)

    def to_commit(self) -> tuple[CommitPoint, list[bytes]]:
        """The commit point and the items a checkpoint holds that the dataset may not."""
        point = self.point
        return point, self._records[point.index - self._first : self._saved_end - self._first]

    def committed(self, point: CommitPoint) -> None:
        """The dataset holds the items below ``point.index``: they leave memory."""
        if point.index < self.point.index:
            return
        self.point = point
        drop = point.index - self._first
        if drop > 0:
            del self._records[:drop]
            self._first = point.index

    # -- restore ------------------------------------------------------------------------------

    def restore(self, restored: RestoredItems) -> None:
        """Continue the journal of a checkpoint: its uncommitted items are in the store."""
        self.journal = restored.journal
        self.dataset = restored.dataset
        self.point = restored.point
        self._first = restored.point.index
        self._records = list(restored.records)
        self._saved_end = restored.end

    def rebase(self, offset: int, dataset: str) -> None:
        """Items from the commit point on go to ``dataset``, none of them is there yet, and it
        holds at least ``offset`` items (a new crawl, or a dataset other than the checkpoint's)."""
        self.point = CommitPoint(self.point.index, offset)
        self.dataset = dataset
