"""A crawl checkpointed by the previous version (checkpoint format 1) resumes with this one.

The fixture (``fixtures/v1``, see its README) is a checkpoint written by the format-1 code: a base
and two deltas of 250 open requests (start requests, others, a form, a custom download slot), and
the order in which that code gave them back to the scheduler when it resumed them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from scrapy import FormRequest, Request
from scrapy.utils.defer import deferred_f_from_coro_f, maybe_deferred_to_future

from scrapy_actor_events import ActorEventsExtension
from scrapy_actor_events.checkpoint.format import VERSION

from ..support.crawling import read_checkpoint
from ..support.probe import paused_crawl, pop_all

if TYPE_CHECKING:
    from scrapy import Spider

FIXTURE = Path(__file__).parent / "fixtures" / "v1"
KEY = "SCRAPY_STATE_list"
HOSTS = ["http://a.example", "http://b.example:8080", "https://c.example"]


def start_requests(spider: Spider) -> list[Request]:
    """What the spider's start() yielded when the fixture was written (it is read past)."""
    return [
        Request(
            f"{HOSTS[n % 3]}/s/{n}",
            callback=[spider.parse, spider.parse_other, None][n % 3],  # type: ignore[attr-defined]
            priority=[0, 0, 1, -2][n % 4],
            meta={"n": n},
        )
        for n in range(60)
    ]


@deferred_f_from_coro_f
async def test_a_format_1_checkpoint_resumes_in_the_order_the_old_version_restored(
    storage: Path,
) -> None:
    shutil.copytree(FIXTURE / "default", storage / "key_value_stores" / "default")
    expected = json.loads((FIXTURE / "expected.json").read_text())

    async def resume(crawler):
        order = pop_all(crawler)
        frontier = crawler.get_extension(ActorEventsExtension).frontier
        taken = {r.url: r for r in list(frontier._in_flight)}
        # Fifty finish, five new ones come: the next checkpoint, of format 2, follows the
        # format-1 base and deltas.
        for url in order[:50]:
            frontier.on_finished(taken[url])
        for n in range(5):
            crawler.engine.crawl(
                FormRequest(f"{HOSTS[n % 3]}/new/{n}", formdata={"n": str(n)}, dont_filter=True)
            )
        result = await maybe_deferred_to_future(
            crawler.get_extension(ActorEventsExtension).request_checkpoint("timer")
        )
        return order, result

    crawler, (order, result) = await paused_crawl(
        start_requests, resume, ACTOR_EVENTS_RESUME="always"
    )
    assert order == expected["order"]
    assert crawler.stats.get_value("actor_events/restore/requests") == expected["restored"]
    assert crawler.stats.get_value("actor_events/restore/undecodable") is None
    assert result.saved
    assert result.kind == "delta"
    assert (result.pending, result.in_flight) == (5, 200)

    restored = await read_checkpoint(storage, KEY, "list")
    assert restored.manifest.version == VERSION == 2
    kinds = [s.kind for s in restored.manifest.segments]
    assert kinds == ["base", "delta", "delta", "delta", "delta"]  # 3 of format 1, 2 of format 2
    urls = {r.url for r in map(crawler.get_extension(ActorEventsExtension).frontier.codec.decode,
                               restored.records)}  # fmt: skip
    assert urls == {*expected["order"][50:], *(f"{HOSTS[n % 3]}/new/{n}" for n in range(5))}
    assert restored.seen_count == expected["second"]["seen"]

    async def pop(crawler):
        return pop_all(crawler)

    _, again = await paused_crawl(start_requests, pop, ACTOR_EVENTS_RESUME="always")
    assert sorted(again) == sorted(urls)
