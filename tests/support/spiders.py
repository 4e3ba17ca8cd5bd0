"""Spiders shared by the tests: those that crawl the demo site in-process, and one that crawls
nothing, for the checkpoint parts tested without a crawl."""

from __future__ import annotations

from scrapy import Spider


class PagesSpider(Spider):
    """Follows every link from ``url``; one item per page; counts pages in ``spider.state``."""

    name = "pages"

    def __init__(self, url: str = "", **kwargs):
        super().__init__(**kwargs)
        self.start_urls = [url]

    def parse(self, response):
        self.state["pages"] = self.state.get("pages", 0) + 1
        yield {"url": response.url}
        yield from response.follow_all(css="a::attr(href)", callback=self.parse)


class SlowSpider(Spider):
    """Follows every link from ``url`` until ``following`` is set to False; no items."""

    name = "slow"
    following = True

    def __init__(self, url: str = "", **kwargs):
        super().__init__(**kwargs)
        self.start_urls = [url]

    def parse(self, response):
        if self.following:
            yield from response.follow_all(css="a::attr(href)", callback=self.parse)


class UnitSpider(Spider):
    """Crawls nothing: the spider of checkpoint parts tested without a crawl."""

    name = "unit"

    def parse(self, response):
        pass
