"""Committing a crawl's items to a dataset exactly once: push, and after any doubt, read first.

The crawl numbers its items 0, 1, 2... and is the dataset's only writer, so item k lands at a
known place. A :class:`CommitPoint` says how far the dataset is known to hold them: every item
below ``index`` is in it (or was refused by it), and no item from ``index`` on is in it below
``offset``. Pushing more keeps a point true, so a point may be recorded in a checkpoint at any
moment, and a later run starts from it.

A push that failed without an answer (a 5xx, a timeout, a dropped connection) may have been stored
anyway. Before the items are pushed again, the dataset is read from the point's offset (never
trusting the platform's ``itemCount``, which lags) and only the items it does not hold are pushed.
Items are compared as JSON values; a dataset item that matches none of ours is another writer's
and is passed over. A request the dataset refuses whole (HTTP 400 or 413) is split until the
items it refuses alone are known: those are left out and counted, the rest go in.
"""

from __future__ import annotations

import logging
from collections import defaultdict, deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

from scrapy.utils.asyncio import sleep

from .. import stats_keys
from .base import DatasetError, ItemsRefused
from .encoding import canonical, decode_item, split_requests

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from scrapy.statscollectors import StatsCollector

    from .base import Dataset

logger = logging.getLogger(__name__)

#: Most bytes one page of a read of the dataset should hold (an estimate from our items' size).
READ_PAGE_BYTES = 8_000_000
MAX_READ_PAGE = 1000
MAX_RETRY_DELAY = 30.0


@dataclass(frozen=True)
class CommitPoint:
    """How far a crawl's items are known to be in the dataset (see the module's docstring)."""

    index: int
    offset: int


class _Round:
    """The items of one commit and what is known of each: at which offset it lies (at least), or
    that the dataset refused it."""

    def __init__(self, start: CommitPoint, end: int) -> None:
        self.start = start
        self.end = end
        self.known_end = start.offset  # the dataset holds at least this many items
        self.placed: dict[int, int | None] = {}  # item -> its offset (lower bound); None: refused
        self.shrunk_seen = False  # a check found the dataset shorter than the point's offset
        self._first_open = start.index

    def point(self) -> CommitPoint:
        k = self._first_open
        while k < self.end and k in self.placed:
            k += 1
        self._first_open = k
        later = [p for item, p in self.placed.items() if item > k and p is not None]
        return CommitPoint(k, min(later) if later else self.known_end)

    def open_items(self) -> list[int]:
        return [k for k in range(self.start.index, self.end) if k not in self.placed]


class Committer:
    """Commits items to one dataset, in order, one request at a time."""

    def __init__(
        self,
        dataset: Dataset,
        stats: StatsCollector,
        *,
        attempts: int = 5,
        min_delay: float = 0.5,
    ) -> None:
        self.dataset = dataset
        self.stats = stats
        self.attempts = max(1, attempts)
        self.min_delay = min_delay
        self._causes_logged: set[str] = set()
        self._foreign_logged = False

    async def commit(
        self,
        start: CommitPoint,
        items: Sequence[bytes],
        *,
        check_first: bool,
        progress: Callable[[CommitPoint], None],
    ) -> CommitPoint:
        """Put ``items`` (the crawl's items ``start.index`` on) into the dataset; the new point.

        ``progress`` hears every new point as pushes land. Raises :class:`DatasetError` once
        ``attempts`` tries failed; the last point ``progress`` heard stays true, and the caller
        commits from it later, with ``check_first`` unless the error says nothing was stored.
        """
        work = _Round(start, start.index + len(items))
        check, attempt = check_first, 0
        while True:
            try:
                if check:
                    await self._check(work, items)
                    check = False
                    progress(work.point())
                await self._push(work, items, work.open_items(), progress)
                point = work.point()
                progress(point)
                return point
            except DatasetError as exc:
                attempt += 1
                self.stats.inc_value(stats_keys.DATASET_FAILED)
                if attempt >= self.attempts:
                    raise
                check = check or exc.stored is not False
                delay = min(self.min_delay * 2 ** (attempt - 1), MAX_RETRY_DELAY)
                logger.warning(
                    "%s; checking the dataset and trying again in %.1f s (attempt %d of %d).",
                    exc, delay, attempt + 1, self.attempts,
                )  # fmt: skip
                await sleep(delay)

    # -- reading what is there ----------------------------------------------------------------

    async def _check(self, work: _Round, items: Sequence[bytes]) -> None:
        """Read the dataset from the round's point on and mark the items it holds already."""
        self.stats.inc_value(stats_keys.DATASET_CHECKS)
        point = work.point()
        base = work.start.index
        # Ours from the point on: not pushed yet, or pushed in this round (not refused ones).
        ours = [k for k in range(point.index, work.end) if work.placed.get(k, 0) is not None]
        open_before = set(work.open_items())
        wanted: dict[str, deque[int]] = defaultdict(deque)
        for k in ours:
            wanted[canonical(decode_item(items[k - base]))].append(k)
        average = sum(len(items[k - base]) for k in ours) // max(1, len(ours))
        page = max(1, min(MAX_READ_PAGE, READ_PAGE_BYTES // max(1, average)))
        offset, found, foreign = point.offset, 0, 0
        while True:
            values = await self.dataset.read(offset, page)
            for value in values:
                matches = wanted.get(canonical(value))
                if matches:
                    k = matches.popleft()
                    work.placed[k] = offset
                    found += k in open_before
                else:
                    foreign += 1
                offset += 1
            if len(values) < page:
                break
        if offset == point.offset and offset > 0 and not await self.dataset.read(offset - 1, 1):
            # The dataset holds fewer items than this crawl put there. On the platform that may
            # be a read that does not see the newest writes yet: look once more, later.
            if not work.shrunk_seen:
                work.shrunk_seen = True
                raise DatasetError(
                    f"{self.dataset.describe()} shows fewer than the {offset:,} items this crawl"
                    " committed", stored=None,
                )  # fmt: skip
            length = await self.dataset.length_lower_bound()
            logger.warning(
                "%s holds %s items, fewer than the %s this crawl committed: it was emptied or"
                " replaced. Items from #%s on are appended at its end.",
                self.dataset.describe(), f"{length:,}", f"{offset:,}", f"{point.index:,}",
            )  # fmt: skip
            work.known_end = length
            for k in ours:  # whatever this round pushed went with the rest
                work.placed.pop(k, None)
        else:
            work.known_end = max(work.known_end, offset)
        if found:
            self.stats.inc_value(stats_keys.ITEMS_ALREADY_THERE, found)
            logger.info(
                "%d of the %d items to push were in %s already: they are not pushed again.",
                found, len(open_before), self.dataset.describe(),
            )  # fmt: skip
        if foreign and not self._foreign_logged:
            self._foreign_logged = True
            logger.warning(
                "%s holds %d items from offset %s on that this crawl did not write: another"
                " writer uses the dataset. They are left alone, and exactly-once holds only for"
                " items that differ from theirs (see docs/DATASET.md).",
                self.dataset.describe(), foreign, f"{point.offset:,}",
            )  # fmt: skip

    # -- pushing what is not --------------------------------------------------------------------

    async def _push(
        self,
        work: _Round,
        items: Sequence[bytes],
        keys: list[int],
        progress: Callable[[CommitPoint], None],
    ) -> None:
        base = work.start.index
        data = [items[k - base] for k in keys]
        for start, end in split_requests(data, self.dataset.max_request_bytes):
            await self._push_request(work, items, keys[start:end], progress)

    async def _push_request(
        self,
        work: _Round,
        items: Sequence[bytes],
        keys: list[int],
        progress: Callable[[CommitPoint], None],
    ) -> None:
        base = work.start.index
        try:
            await self.dataset.push([items[k - base] for k in keys])
        except ItemsRefused as exc:
            positions = [p for p in exc.positions or () if p < len(keys)]
            if positions and len(positions) < len(keys):
                refused = {keys[p] for p in positions}
                for k in sorted(refused):
                    self._refuse(work, k, str(exc))
                rest = [k for k in keys if k not in refused]
                await self._push_request(work, items, rest, progress)
            elif len(keys) > 1:
                # Which items were refused is not said: halves, until each refused one is alone.
                half = len(keys) // 2
                await self._push_request(work, items, keys[:half], progress)
                await self._push_request(work, items, keys[half:], progress)
            else:
                self._refuse(work, keys[0], str(exc))
            progress(work.point())
            return
        self.stats.inc_value(stats_keys.DATASET_PUSHES)
        self.stats.inc_value(stats_keys.ITEMS_PUSHED, len(keys))
        for i, k in enumerate(keys):
            work.placed[k] = work.known_end + i
        work.known_end += len(keys)
        progress(work.point())

    def _refuse(self, work: _Round, item: int, reason: str) -> None:
        if item in work.placed:
            return
        work.placed[item] = None
        self.stats.inc_value(stats_keys.ITEMS_REFUSED)
        cause = reason.split(": ", 1)[-1][:200]
        if cause not in self._causes_logged:
            self._causes_logged.add(cause)
            logger.error(
                "%s refused item #%d and it is left out: %s. Further items refused for this"
                " reason are only counted in %s.",
                self.dataset.describe(), item, reason, stats_keys.ITEMS_REFUSED,
            )  # fmt: skip
