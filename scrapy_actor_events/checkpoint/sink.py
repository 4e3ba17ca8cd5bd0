"""The item sink: the crawl's items go into the checkpoints, then into the dataset, exactly once.

As a two-phase-commit sink does in a stream processor: items are *pre-committed* by the cut (the
checkpoint holds them beside the frontier, see :mod:`.items`), and *committed* once the
checkpoint's manifest has landed (:mod:`..dataset.commit` pushes them). A crawl that starts from a
checkpoint commits its items again first, which pushes only what the dataset lacks: that is the
recovery, whether the crawl then resumes or starts anew.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from scrapy.utils.defer import maybe_deferred_to_future
from twisted.internet.defer import Deferred

from .. import stats_keys
from .._async import start_task
from ..dataset.base import DatasetError
from ..dataset.commit import Committer
from ..dataset.encoding import UnacceptableItem, encode_item
from .items import ItemJournal
from .options import Trigger

if TYPE_CHECKING:
    from collections.abc import Callable

    from scrapy import Request
    from scrapy.statscollectors import StatsCollector

    from ..dataset.base import Dataset
    from ..dataset.commit import CommitPoint
    from .frontier import FrontierCapture
    from .reader import Restored

logger = logging.getLogger(__name__)


class DatasetSink:
    """Journals the crawl's items and commits them to ``dataset`` after each checkpoint."""

    def __init__(
        self,
        dataset: Dataset,
        stats: StatsCollector,
        request_checkpoint: Callable[[Trigger], Any],
        *,
        buffer_bytes: int,
        tracked: Callable[[Request], bool] | None = None,
        attempts: int = 5,
        min_delay: float = 0.5,
    ) -> None:
        self.dataset = dataset
        self.stats = stats
        self.request_checkpoint = request_checkpoint
        self.buffer_bytes = buffer_bytes
        self.journal = ItemJournal(dataset.ref, tracked)
        self.committer = Committer(dataset, stats, attempts=attempts, min_delay=min_delay)
        self._restored: Restored | None = None
        self._asked = False
        self._running = False
        self._opened = False
        self._check_first = False
        self._idle: list[Deferred[None]] = []
        self._causes_logged: set[str] = set()

    # -- the crawl ----------------------------------------------------------------------------

    def item_scraped(self, item: Any, response: Any) -> None:
        """An item passed the item pipelines (``item_scraped``)."""
        try:
            record = encode_item(item)
        except UnacceptableItem as exc:
            self._unacceptable(exc)
            return
        self.stats.inc_value(stats_keys.ITEMS_JOURNALED)
        self.journal.add(record, getattr(response, "request", None))
        self._maybe_ask()

    def request_finished(self, request: Request) -> None:
        self.journal.request_finished(request)
        self._maybe_ask()

    def _maybe_ask(self) -> None:
        if self.journal.bytes_since_cut <= self.buffer_bytes:
            self._asked = False
        elif not self._asked:
            # Memory stays bounded: the items go into a checkpoint and on to the dataset.
            self._asked = True
            self.request_checkpoint(Trigger.ITEMS)

    def _unacceptable(self, exc: UnacceptableItem) -> None:
        key = stats_keys.ITEMS_TOO_LARGE if exc.too_large else stats_keys.ITEMS_UNSERIALIZABLE
        self.stats.inc_value(key)
        if exc.cause not in self._causes_logged:
            self._causes_logged.add(exc.cause)
            logger.error(
                "An item cannot go to the dataset and is left out of it: %s. Further items"
                " failing for this reason are only counted in %s.",
                exc.cause,
                key,
            )

    # -- opening ------------------------------------------------------------------------------

    def adopt(self, restored: Restored) -> None:
        """A checkpoint was read (``read_checkpoint``'s ``on_read``): its items are recovered."""
        self._restored = restored

    async def open(self) -> None:
        """Open the dataset, continue the checkpoint's journal, push what the dataset lacks."""
        await self._open_dataset()
        self.journal.dataset = self.dataset.ref  # a platform dataset's name is resolved now
        items = self._restored.output if self._restored is not None else None
        self._restored = None
        if items is not None:
            self.journal.restore(items)
            if items.dataset == self.dataset.ref:
                # Which of the checkpoint's items landed is unknown: read before pushing.
                self._check_first = items.end > items.point.index
                self._schedule()
                return
            if items.end > items.point.index:
                logger.warning(
                    "The checkpoint's items went to dataset %s; this run's is %s. Items from #%s"
                    " on go there, appended at its end.",
                    items.dataset, self.dataset.describe(), f"{items.point.index:,}",
                )  # fmt: skip
        try:
            offset = await self.dataset.length_lower_bound()
        except DatasetError as exc:
            logger.warning("%s; items will be appended after offset 0 is checked.", exc)
            offset = 0
        # None of this crawl's uncommitted items is in this dataset: they go after what it holds.
        self.journal.rebase(offset, self.dataset.ref)
        self._schedule()

    async def _open_dataset(self) -> bool:
        if not self._opened:
            try:
                await self.dataset.open()
            except DatasetError as exc:
                logger.error("%s; items are kept in the checkpoints until it works.", exc)
                return False
            self._opened = True
        return True

    # -- committing ---------------------------------------------------------------------------

    def saved(self, capture: FrontierCapture) -> None:
        """The checkpoint holding ``capture`` is in the store (the writer's ``on_landed``)."""
        if capture.items is None:
            return
        self.journal.saved(capture.items)
        self._schedule()

    def _schedule(self) -> None:
        if not self._running:
            self._running = True
            start_task(self._commit())

    async def _commit(self) -> None:
        try:
            while True:
                point, records = self.journal.to_commit()
                if not records or not await self._open_dataset():
                    return
                try:
                    await self.committer.commit(
                        point, records, check_first=self._check_first, progress=self._progress
                    )
                    self._check_first = False
                except DatasetError as exc:
                    # Whatever the last try did, the next one reads the dataset first.
                    self._check_first = True
                    left = self.journal.saved_end - self.journal.point.index
                    logger.error(
                        "%s. %s items wait in the checkpoint; the next checkpoint pushes them.",
                        exc,
                        f"{left:,}",
                    )
                    return
                except Exception:
                    self._check_first = True
                    logger.exception("Pushing items to %s failed", self.dataset.describe())
                    return
        finally:
            self._running = False
            idle, self._idle = self._idle, []
            for d in idle:
                d.callback(None)

    def _progress(self, point: CommitPoint) -> None:
        self.journal.committed(point)
        self.stats.set_value(stats_keys.ITEMS_COMMITTED, point.index)

    async def flush(self) -> None:
        """Wait until the items of every saved checkpoint are pushed, or have failed to be."""
        if self._running:
            d: Deferred[None] = Deferred()
            self._idle.append(d)
            await maybe_deferred_to_future(d)
        left = self.journal.saved_end - self.journal.point.index
        if left:
            logger.warning(
                "%s items of the last checkpoint are not in %s yet; the next run pushes them.",
                f"{left:,}",
                self.dataset.describe(),
            )

    async def close(self) -> None:
        await self.dataset.close()


def warn_uncommitted(restored: Restored) -> None:
    """A checkpoint's items will not be pushed: items go to no dataset in this run."""
    items = restored.output
    if items is not None and items.end > items.point.index:
        logger.warning(
            "The checkpoint holds %s items not committed to dataset %s, and items go to no"
            " dataset in this run (ACTOR_EVENTS_DATASET): they are dropped.",
            f"{items.end - items.point.index:,}",
            items.dataset,
        )
