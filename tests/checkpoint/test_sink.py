"""The item sink in real in-process crawls of a local site: which crawls send items to a dataset,
items that cannot go, the checkpoint the item buffer asks for, and a crawl that starts anew from a
finished checkpoint whose items never reached the dataset."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

import pytest
from scrapy import Spider
from scrapy.settings import Settings
from scrapy.utils.defer import deferred_f_from_coro_f

from scrapy_actor_events import stats_keys
from scrapy_actor_events.dataset.base import DatasetChoice
from scrapy_actor_events.dataset.choice import decide
from scrapy_actor_events.environment import ActorEnvironment

from ..support.crawling import crawl, read_checkpoint
from ..support.spiders import PagesSpider

if TYPE_CHECKING:
    from pathlib import Path

    from scrapy_actor_events.tools.site import DemoSite


def dataset_items(storage: Path) -> list[dict]:
    folder = storage / "datasets" / "default"
    files = sorted(p for p in folder.glob("*.json") if p.stem.isdigit())
    return [json.loads(p.read_text()) for p in files]


@deferred_f_from_coro_f
async def test_an_actor_run_puts_one_item_per_page_in_the_dataset(
    storage: Path, site: DemoSite, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="scrapy_actor_events")
    crawler = await crawl(PagesSpider, crawl_kwargs={"url": f"{site.url}/"})
    items = dataset_items(storage)
    urls = [i["url"] for i in items]
    assert len(urls) == len(set(urls)) == 121
    assert crawler.stats.get_value(stats_keys.ITEMS_COMMITTED) == 121
    assert crawler.stats.get_value(stats_keys.ITEMS_JOURNALED) == 121
    assert "ACTOR_EVENTS_DATASET=auto in an Actor run (APIFY_LOCAL_STORAGE_DIR)" in caplog.text
    assert caplog.text.count("Items go to local dataset") == 1


@deferred_f_from_coro_f
async def test_a_bare_scrapy_crawl_sends_items_nowhere(
    storage: Path, site: DemoSite, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    caplog.set_level(logging.INFO, logger="scrapy_actor_events")
    monkeypatch.delenv("APIFY_LOCAL_STORAGE_DIR")
    crawler = await crawl(
        PagesSpider, crawl_kwargs={"url": f"{site.url}/"}, ACTOR_EVENTS_STORAGE_DIR=str(storage)
    )
    assert crawler.stats.get_value("item_scraped_count") == 121
    assert not (storage / "datasets").exists()
    assert "Items go to no dataset: ACTOR_EVENTS_DATASET=auto outside an Actor run" in caplog.text


class SdkLikePipeline:
    """Stands for a subclass of the SDK's pipeline (see the test below for the real one)."""


def test_auto_is_off_when_the_sdks_pipeline_pushes_items() -> None:
    from apify.scrapy.pipelines import ActorDatasetPushPipeline

    class Mine(ActorDatasetPushPipeline):
        pass

    env = ActorEnvironment.from_environ({"APIFY_IS_AT_HOME": "1"})
    auto = DatasetChoice.AUTO
    for pipeline in (
        "apify.scrapy.pipelines.ActorDatasetPushPipeline",
        "apify.scrapy.pipelines.actor_dataset_push.ActorDatasetPushPipeline",
        ActorDatasetPushPipeline,
        Mine,
    ):
        settings = Settings({"ITEM_PIPELINES": {pipeline: 1000}})
        enabled, reason = decide(auto, env, settings)
        assert not enabled
        assert "pushes items already" in reason
        enabled, reason = decide(DatasetChoice.TRUE, env, settings)
        assert enabled
        assert "twice" in reason
    sdk_path = "apify.scrapy.pipelines.ActorDatasetPushPipeline"
    disabled = Settings({"ITEM_PIPELINES": {sdk_path: None}})
    assert decide(auto, env, disabled)[0]
    other = Settings({"ITEM_PIPELINES": {f"{__name__}.SdkLikePipeline": 300}})
    assert decide(auto, env, other)[0]
    assert not decide(auto, ActorEnvironment.from_environ({}), Settings())[0]
    assert not decide(DatasetChoice.FALSE, env, Settings())[0]


class OddItemsSpider(Spider):
    name = "odd"

    def __init__(self, url: str = "", **kwargs):
        super().__init__(**kwargs)
        self.start_urls = [url]

    def parse(self, response):
        yield {"url": response.url}
        yield {"url": response.url, "nan": float("nan")}
        yield {"url": response.url, (1, 2): "a tuple key"}
        yield from response.follow_all(css="a::attr(href)", callback=self.parse)


@deferred_f_from_coro_f
async def test_items_that_cannot_go_are_counted_and_logged_once_per_cause(
    storage: Path, site: DemoSite, caplog
) -> None:
    crawler = await crawl(OddItemsSpider, crawl_kwargs={"url": f"{site.url}/"})
    stats = crawler.stats
    assert stats.get_value("finish_reason") == "finished"
    assert stats.get_value(stats_keys.ITEMS_UNSERIALIZABLE) == 2 * 121
    assert len(dataset_items(storage)) == 121
    assert caplog.text.count("An item cannot go to the dataset") == 2
    assert "NaN" in caplog.text


@deferred_f_from_coro_f
async def test_the_item_buffer_asks_for_checkpoints(storage: Path, site: DemoSite) -> None:
    crawler = await crawl(
        PagesSpider,
        crawl_kwargs={"url": f"{site.url}/"},
        ACTOR_EVENTS_PERSIST_INTERVAL=0,
        ACTOR_EVENTS_ITEMS_BUFFER_BYTES=1024,
    )
    count = crawler.stats.get_value(stats_keys.CHECKPOINT_COUNT)
    assert count >= 3, "each ~1 kB of items asked for a checkpoint (the timer is off)"
    assert len(dataset_items(storage)) == 121


@deferred_f_from_coro_f
async def test_a_finished_crawls_unpushed_items_are_pushed_before_a_new_crawl(
    storage: Path, site: DemoSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    from scrapy_actor_events.dataset.local import LocalDataset

    async def fail(self, items):
        from scrapy_actor_events.dataset.base import DatasetError

        raise DatasetError("the disk is gone", stored=False)

    with monkeypatch.context() as patch:
        patch.setattr(LocalDataset, "push", fail)
        first = await crawl(PagesSpider, crawl_kwargs={"url": f"{site.url}/"},
                            ACTOR_EVENTS_API_MAX_RETRIES=0)  # fmt: skip
    assert first.stats.get_value("finish_reason") == "finished"
    assert dataset_items(storage) == []
    saved = await read_checkpoint(storage, "SCRAPY_STATE_pages", "pages")
    assert saved.output is not None
    assert saved.output.end - saved.output.point.index == 121
    # The next run starts a new crawl (the last one finished): the old items go in first.
    second = await crawl(PagesSpider, crawl_kwargs={"url": f"{site.url}/"})
    urls = [i["url"] for i in dataset_items(storage)]
    assert len(urls) == 2 * 121
    assert set(urls[:121]) == set(urls[121:])
    assert second.stats.get_value(stats_keys.ITEMS_COMMITTED) == 2 * 121


@deferred_f_from_coro_f
async def test_a_crawl_resumed_into_another_dataset_sends_the_rest_there(
    storage: Path, site: DemoSite, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    from scrapy_actor_events.dataset.base import DatasetError
    from scrapy_actor_events.dataset.local import LocalDataset

    real_push = LocalDataset.push
    pushes = {"n": 0}

    async def push_twice(self, items):
        pushes["n"] += 1
        if pushes["n"] > 2:
            raise DatasetError("the disk is gone", stored=False)
        await real_push(self, items)

    with monkeypatch.context() as patch:
        patch.setattr(LocalDataset, "push", push_twice)
        await crawl(PagesSpider, crawl_kwargs={"url": f"{site.url}/"}, CLOSESPIDER_ITEMCOUNT=60,
                    ACTOR_EVENTS_PERSIST_INTERVAL=0.05, ACTOR_EVENTS_API_MAX_RETRIES=0)  # fmt: skip
    first = [i["url"] for i in dataset_items(storage)]
    saved = await read_checkpoint(storage, "SCRAPY_STATE_pages", "pages")
    assert saved.output is not None
    assert saved.output.dataset == "default"
    assert saved.output.end > saved.output.point.index, "some items were not pushed"
    second = await crawl(PagesSpider, crawl_kwargs={"url": f"{site.url}/"},
                         ACTOR_EVENTS_DATASET_NAME="other")  # fmt: skip
    assert second.stats.get_value("finish_reason") == "finished"
    assert [i["url"] for i in dataset_items(storage)] == first, "the old dataset is left alone"
    other = storage / "datasets" / "other"
    moved = [json.loads(p.read_text())["url"] for p in sorted(other.glob("0*.json"))]
    assert len(moved) == len(set(moved))
    assert len(first) + len(moved) == 121
    assert not set(first) & set(moved)
    assert (
        "The checkpoint's items went to dataset default; this run's is local dataset 'other'"
        in caplog.text
    )


@deferred_f_from_coro_f
async def test_a_dataset_that_cannot_be_opened_at_start_is_opened_later(
    storage: Path, site: DemoSite, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    from scrapy_actor_events.dataset.base import DatasetError
    from scrapy_actor_events.dataset.local import LocalDataset

    real_open = LocalDataset.open
    calls = {"n": 0}

    async def open_once_failing(self):
        calls["n"] += 1
        if calls["n"] == 1:
            raise DatasetError("the platform is down")
        await real_open(self)

    monkeypatch.setattr(LocalDataset, "open", open_once_failing)
    await crawl(PagesSpider, crawl_kwargs={"url": f"{site.url}/"})
    assert "the platform is down; items are kept in the checkpoints" in caplog.text
    assert calls["n"] == 2
    assert len({i["url"] for i in dataset_items(storage)}) == len(dataset_items(storage)) == 121
