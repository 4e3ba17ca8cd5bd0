"""A project in the shape of the Apify SDK's Scrapy template, with this package's extension added.

The template (``apify/actor-templates``, ``templates/python-scrapy``) is a package whose
``__main__`` calls ``run_scrapy_actor(main())``; ``main()`` enters ``async with Actor``, builds the
settings with ``apply_apify_settings()`` (ApifyScheduler, the dataset pipeline, the graceful-stop
extension) and crawls with ``AsyncCrawlerRunner``. Written out here so that the tests run it as a
user would, in a process of its own, offline, with local storage.

Environment read by the generated ``main()``:

* ``TEMPLATE_SCHEDULER=scrapy``: Scrapy's own scheduler instead of the SDK's ``ApifyScheduler``;
* ``TEMPLATE_PLATFORM_EVENTS=1``: the SDK listens to ``ACTOR_EVENTS_WEBSOCKET_URL`` as on the
  platform (its ``ApifyEventManager``, put into crawlee's service locator before the Actor starts:
  off the platform the SDK opens no events socket);
* ``START_URL``: where to start.
"""

from __future__ import annotations

import json
from pathlib import Path

PACKAGE = "tmplactor"

MAIN = """\
import os

os.environ["SCRAPY_SETTINGS_MODULE"] = "tmplactor.settings"

from apify.scrapy import initialize_logging, run_scrapy_actor

from .main import main

if __name__ == "__main__":
    initialize_logging()
    run_scrapy_actor(main())
"""

MAIN_PY = """\
import os

from apify import Actor, Configuration
from apify.events import ApifyEventManager
from apify.scrapy import apply_apify_settings
from crawlee import service_locator
from scrapy.crawler import AsyncCrawlerRunner

from .spiders.pages import PagesSpider


def listen_as_on_the_platform() -> None:
    configuration = Configuration()
    service_locator.set_configuration(configuration)
    service_locator.set_event_manager(
        ApifyEventManager(
            configuration=configuration,
            persist_state_interval=configuration.persist_state_interval,
        )
    )


async def main() -> None:
    if os.environ.get("TEMPLATE_PLATFORM_EVENTS") == "1":
        listen_as_on_the_platform()
    async with Actor:
        actor_input = await Actor.get_input() or {}
        start_url = actor_input.get("startUrl") or os.environ["START_URL"]
        settings = apply_apify_settings()
        settings["EXTENSIONS"]["scrapy_actor_events.ActorEventsExtension"] = 100
        if os.environ.get("TEMPLATE_SCHEDULER") == "scrapy":
            settings["SCHEDULER"] = "scrapy.core.scheduler.Scheduler"
        crawler_runner = AsyncCrawlerRunner(settings)
        await crawler_runner.crawl(PagesSpider, start_urls=[start_url])
"""

SETTINGS = """\
BOT_NAME = "tmplactor"
SPIDER_MODULES = ["tmplactor.spiders"]
NEWSPIDER_MODULE = "tmplactor.spiders"
TWISTED_REACTOR = "twisted.internet.asyncioreactor.AsyncioSelectorReactor"
ROBOTSTXT_OBEY = False
TELNETCONSOLE_ENABLED = False
REMOTE_CONTROL_ENABLED = False
CONCURRENT_REQUESTS = 8
LOG_LEVEL = "INFO"
# As in the template: apply_apify_settings() keeps the cache in a key-value store.
HTTPCACHE_ENABLED = True
"""

SPIDER = """\
from scrapy import Spider


class PagesSpider(Spider):
    name = "pages"

    def parse(self, response):
        self.state["pages"] = self.state.get("pages", 0) + 1
        yield {"url": response.url}
        yield from response.follow_all(css="a::attr(href)", callback=self.parse)
"""


def write_template_project(root: Path) -> Path:
    """The project under ``root``; run it with ``python -m tmplactor`` from ``root``."""
    package = root / PACKAGE
    (package / "spiders").mkdir(parents=True)
    files = {
        "__init__.py": "",
        "__main__.py": MAIN,
        "main.py": MAIN_PY,
        "settings.py": SETTINGS,
        "spiders/__init__.py": "",
        "spiders/pages.py": SPIDER,
    }
    for name, text in files.items():
        (package / name).write_text(text)
    return root


def dataset_items(storage: Path) -> list[dict]:
    """The items the SDK's pipeline pushed to the local default dataset, in order."""
    folder = storage / "datasets" / "default"
    files = sorted(p for p in folder.glob("*.json") if p.name != "__metadata__.json")
    return [json.loads(p.read_text()) for p in files]
