"""A spider worth copying: follows links, yields an item per page, counts in spider.state."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import scrapy

if TYPE_CHECKING:
    from collections.abc import Iterator

    from scrapy.http import Response

DEFAULT_START_URL = "http://127.0.0.1:8765/p/0"


class LinksSpider(scrapy.Spider):
    name = "links"

    def __init__(self, start_url: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.start_urls = [start_url or os.environ.get("DEMO_SITE_URL") or DEFAULT_START_URL]
        self.allowed_domains = [self.start_urls[0].split("/")[2].split(":")[0]]

    def parse(self, response: Response) -> Iterator[Any]:
        # spider.state survives kills and migrations with scrapy-actor-events.
        self.state["pages"] = self.state.get("pages", 0) + 1
        yield {
            "url": response.url,
            "title": response.css("title::text").get(),
            "depth": response.meta.get("depth", 0),
        }
        yield from response.follow_all(css="a::attr(href)", callback=self.parse)
