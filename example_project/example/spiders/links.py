"""A spider worth copying: follows links, yields an item per page, counts in spider.state.

The start URL is the ``start_url`` spider argument (``scrapy crawl links -a start_url=...``), else
the ``START_URL`` environment variable (set it in the Actor's settings on the platform), else the
demo site that ``scrapy-actor-events site`` serves on 127.0.0.1.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import scrapy

if TYPE_CHECKING:
    from collections.abc import Iterator

    from scrapy.http import Response

DEFAULT_START_URL = "http://127.0.0.1:8765/p/0"


class LinksSpider(scrapy.Spider):
    name = "links"

    def __init__(self, start_url: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        url = start_url or os.environ.get("START_URL") or DEFAULT_START_URL
        self.start_urls = [url]
        # Stay on the start URL's site.
        self.allowed_domains = [urlsplit(url).hostname or ""]

    def parse(self, response: Response) -> Iterator[Any]:
        # spider.state survives kills and migrations with scrapy-actor-events: it is part of
        # every checkpoint. Keep plain data in it (dicts, lists, strings, numbers).
        self.state["pages"] = self.state.get("pages", 0) + 1
        yield {
            "url": response.url,
            "title": response.css("title::text").get(),
            "depth": response.meta.get("depth", 0),
        }
        # Callbacks must be methods of the spider (not lambdas) to be checkpointed.
        yield from response.follow_all(css="a::attr(href)", callback=self.parse)
