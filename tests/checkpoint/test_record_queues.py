"""The scheduler's queues holding records: Scrapy's order kept, restored without decoding."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scrapy import Request
from scrapy.http.request import NO_CALLBACK

from scrapy_actor_events.checkpoint.codec import RequestCodec
from scrapy_actor_events.checkpoint.data import pack_data, unpack_data
from scrapy_actor_events.checkpoint.format import SegmentKind
from scrapy_actor_events.checkpoint.reader import merge_segments
from scrapy_actor_events.checkpoint.records import record_of
from scrapy_actor_events.stats_keys import REQUESTS_UNSERIALIZABLE, RESTORE_UNDECODABLE

from ..support.schedulers import (
    DAPQ,
    FIFO,
    LIFO,
    LIST,
    SPQ,
    crawler_for,
    idle,
    plain_scheduler,
    record_scheduler,
    set_busy,
)

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

    from scrapy_actor_events.checkpoint.frontier import FrontierCapture
    from scrapy_actor_events.checkpoint.reader import Restored

QUEUES = [(DAPQ, LIFO), (DAPQ, FIFO), (SPQ, LIFO), (SPQ, FIFO), (DAPQ, LIST)]

push = st.tuples(
    st.just("push"),
    st.integers(0, 2),  # host
    st.integers(-1, 1),  # priority
    st.booleans(),  # a start request
    st.integers(0, 9),  # 0: unencodable, 1: shared download slot, 2: other callback, 3: none
)
ops = st.lists(
    st.one_of(push, push, st.just(("pop",)), st.tuples(st.just("busy"), st.integers(0, 2))),
    max_size=120,
)


def make(crawler: Crawler, n: int, host: int, priority: int, start: bool, kind: int) -> Request:
    spider = crawler.spider
    meta: dict[str, Any] = {"n": n}
    if start:
        meta["is_start_request"] = True
    if kind == 0:
        meta["live"] = object()  # cannot be encoded: stays a Request in the queue
    if kind == 1:
        meta["download_slot"] = "shared"
    callback = spider.parse_other if kind == 2 else NO_CALLBACK if kind == 3 else spider.parse
    return Request(
        f"http://h{host}.example/{n}", callback=callback, priority=priority, meta=meta,
        dont_filter=True,
    )  # fmt: skip


def out(request: Request | None) -> tuple[Any, ...] | None:
    if request is None:
        return None
    return (request.url, request.priority, request.meta.get("n"), request.callback)


def restored_from(capture: FrontierCapture) -> Restored:
    payload = {**capture.payload(), "crawl": b"", "generation": 1}
    return merge_segments(None, [payload])  # type: ignore[arg-type]


# pytest-twisted runs each test on the reactor's greenlet: hypothesis runs inside the test.
EXAMPLES = settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.mark.parametrize(("pq", "mq"), QUEUES, ids=lambda v: v.rsplit(".", 1)[1])
def test_requests_come_out_in_scrapys_order(pq: str, mq: str) -> None:
    crawler = crawler_for(pq, mq)

    @EXAMPLES
    @given(steps=ops)
    def check(steps: list[tuple]) -> None:
        idle(crawler)
        plain = plain_scheduler(crawler)
        records, frontier = record_scheduler(crawler)
        for n, step in enumerate(steps):
            if step[0] == "push":
                assert plain.enqueue_request(make(crawler, n, *step[1:]))
                assert records.enqueue_request(make(crawler, n, *step[1:]))
            elif step[0] == "pop":
                assert out(records.next_request()) == out(plain.next_request())
            else:
                set_busy(crawler, f"h{step[1]}.example", n % 3)
            assert len(records) == len(plain)
        # Every encodable request with a callback is a record: counted, and nothing else is.
        assert frontier.pending == sum(
            len(items) for items in frontier.open_items().values()
        ) - len(frontier._in_flight)
        while (expected := out(plain.next_request())) is not None:
            assert out(records.next_request()) == expected
        assert records.next_request() is None
        idle(crawler)

    check()


@pytest.mark.parametrize(("pq", "mq"), QUEUES, ids=lambda v: v.rsplit(".", 1)[1])
def test_a_restore_puts_the_queues_back_as_scrapy_would_rebuild_them(pq: str, mq: str) -> None:
    """Pushing stored records straight into the queues gives the order Scrapy gives when the
    same requests are enqueued again in the order they were first scheduled."""
    crawler = crawler_for(pq, mq)

    @EXAMPLES
    @given(steps=ops)
    def check(steps: list[tuple]) -> None:
        idle(crawler)
        records, frontier = record_scheduler(crawler)
        for n, step in enumerate(steps):
            if step[0] == "push":
                records.enqueue_request(make(crawler, n, *step[1:]))
            elif step[0] == "pop":
                records.next_request()  # in flight: a capture keeps it
        restored = restored_from(frontier.capture(full=True))
        again, second = record_scheduler(crawler)
        assert second.restore(restored) == restored.count
        reference = plain_scheduler(crawler)
        codec = RequestCodec(crawler.spider)
        for item in restored.items:
            reference.enqueue_request(codec.decode(record_of(item)))
        assert len(again) == len(reference) == restored.count
        while (expected := out(reference.next_request())) is not None:
            assert out(again.next_request()) == expected
        assert again.next_request() is None

    check()


class CountingCodec(RequestCodec):
    decoded = 0

    def decode(self, data):
        CountingCodec.decoded += 1
        return super().decode(data)


@pytest.mark.parametrize("stored_queues", [True, False], ids=["format 2", "format 1"])
def test_a_restore_decodes_nothing(stored_queues: bool) -> None:
    crawler = crawler_for(DAPQ, LIFO)
    records, frontier = record_scheduler(crawler)
    for n in range(500):
        records.enqueue_request(make(crawler, n, n % 4, n % 3 - 1, n % 5 == 0, 4 + n % 6))
    capture = frontier.capture(full=True)
    if not stored_queues:  # as format 1 stored them: no queues, found from each record
        capture.groups, capture.runs = [None], None
    restored = restored_from(capture)
    CountingCodec.decoded = 0
    again, second = record_scheduler(crawler, codec=CountingCodec(crawler.spider))
    second.restore(restored)
    assert CountingCodec.decoded == 0
    assert len(again) == 500
    for _ in range(10):
        assert again.next_request() is not None
    assert CountingCodec.decoded == 10


def test_a_record_that_no_longer_decodes_is_skipped_counted_and_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    crawler = crawler_for(SPQ, FIFO)
    records, frontier = record_scheduler(crawler)
    for n in range(6):
        records.enqueue_request(make(crawler, n, 0, 0, False, 4))
    capture = frontier.capture(full=True)
    # Two records name a callback the spider no longer has (renamed since the checkpoint).
    for index in (0, 3):
        item = capture.records[index]
        fields = unpack_data(record_of(item))
        fields[1] = "parse_renamed"
        capture.records[index] = item[:5] + pack_data(fields)
    before = crawler.stats.get_value(RESTORE_UNDECODABLE, 0)
    again, second = record_scheduler(crawler)
    second.restore(restored_from(capture))
    caplog.set_level(logging.ERROR, logger="scrapy_actor_events")
    urls = []
    while (request := again.next_request()) is not None:
        urls.append(request.url)
    assert urls == [f"http://h0.example/{n}" for n in (1, 2, 4, 5)]
    assert crawler.stats.get_value(RESTORE_UNDECODABLE) - before == 2
    assert len([r for r in caplog.records if "parse_renamed" in r.getMessage()]) == 1
    # Kept for the next checkpoints: a spider that has the callback again restores them.
    kept = second.capture(full=True)
    assert sorted(kept.seqs) == [1, 2, 3, 4, 5, 6]
    assert kept.pending == 2
    assert kept.in_flight == 4


def test_unencodable_requests_and_classes_stay_objects() -> None:
    crawler = crawler_for(DAPQ, LIFO)
    before = crawler.stats.get_value(REQUESTS_UNSERIALIZABLE, 0)
    records, frontier = record_scheduler(crawler)

    class Picky(Request):
        def __init__(self, url: str, token: str, **kwargs: Any) -> None:  # not an attribute
            super().__init__(url, **kwargs)
            self.token = token

    live = make(crawler, 1, 0, 0, False, 0)
    picky = Picky("http://h0.example/p", "t", callback=crawler.spider.parse, dont_filter=True)
    fine = make(crawler, 2, 0, 0, False, 4)
    for request in (live, picky, fine):
        records.enqueue_request(request)
    assert crawler.stats.get_value(REQUESTS_UNSERIALIZABLE) - before == 2
    assert frontier.pending == 1
    popped = [records.next_request() for _ in range(3)]
    assert popped[0] is not fine  # a copy, from its record
    assert popped[0].url == fine.url
    assert popped[1] is picky  # the very objects: LIFO
    assert popped[2] is live


def test_peek_decodes_without_taking() -> None:
    crawler = crawler_for(SPQ, FIFO)
    records, frontier = record_scheduler(crawler)
    records.enqueue_request(make(crawler, 1, 0, 0, False, 4))
    assert records.mqs.peek().url == "http://h0.example/1"
    assert frontier.pending == 1
    assert records.next_request().url == "http://h0.example/1"
    assert frontier.pending == 0


def test_a_delta_lists_what_changed_and_a_finished_request_is_removed() -> None:
    crawler = crawler_for(SPQ, FIFO)
    records, frontier = record_scheduler(crawler)
    for n in range(5):
        records.enqueue_request(make(crawler, n, 0, 0, False, 4))
    base = frontier.capture()
    assert base.kind == SegmentKind.BASE
    assert base.pending == 5
    first = records.next_request()
    records.enqueue_request(make(crawler, 10, 0, 0, False, 4))
    records.enqueue_request(make(crawler, 11, 0, 0, False, 4))
    assert frontier.capture().in_flight == 1  # an empty-ish delta: two added
    frontier.on_finished(first)
    records.enqueue_request(make(crawler, 12, 0, 0, False, 4))
    gone = [records.next_request() for _ in range(7)][-1]  # 12, added since the last capture
    frontier.on_finished(gone)
    delta = frontier.capture()
    assert delta.kind == SegmentKind.DELTA
    assert delta.removed == [1]
    assert delta.records == []  # request 12 came and went between two captures
    assert delta.pending == 0
    assert delta.in_flight == 6


@pytest.mark.parametrize("pq", [DAPQ, SPQ], ids=lambda v: v.rsplit(".", 1)[1])
def test_a_queue_emptied_after_the_base_is_not_restored_empty(pq: str) -> None:
    """Every request of one priority finished between the base and a delta: the restore makes
    no empty queue for it. Scrapy's priority queue answers None once for an empty queue at its
    current priority, and the engine then waits for its 5-second heartbeat to ask again."""
    crawler = crawler_for(pq, FIFO)
    records, frontier = record_scheduler(crawler)
    for n in range(3):
        records.enqueue_request(make(crawler, n, 0, 1, False, 4))  # served first
    for n in range(3, 6):
        records.enqueue_request(make(crawler, n, 0, 0, False, 4))
    base = frontier.capture(full=True)
    for _ in range(3):
        frontier.on_finished(records.next_request())
    delta = frontier.capture()
    assert delta.removed == [1, 2, 3]
    payloads = [{**c.payload(), "crawl": b"", "generation": g} for g, c in ((1, base), (2, delta))]
    restored = merge_segments(None, payloads)  # type: ignore[arg-type]
    assert restored.count == 3
    again, second = record_scheduler(crawler)
    second.restore(restored)
    urls = [request.url for request in iter(again.next_request, None)]
    assert urls == [f"http://h0.example/{n}" for n in range(3, 6)]
