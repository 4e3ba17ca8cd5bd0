"""``python -m example``: the crawl as an Actor runs it (``apify run``, and the image's CMD).

It runs the ``links`` spider with the project's settings. The start URL is the Actor input's
``startUrl`` (``apify run -i '{"startUrl": "https://..."}'``, or the Console's input), else the
``START_URL`` environment variable, else the demo site that ``scrapy-actor-events site`` serves.

The process exits with the crawl's exit code, as ``scrapy crawl`` would: scrapy-actor-events makes
it 4 when the spider closes during a migration (so that the platform restarts the run), 3 when the
checkpoint is unreadable and 5 when its store cannot be used (see the package's docs/CLI.md).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from scrapy.crawler import CrawlerProcess
from scrapy.utils.project import get_project_settings


def actor_input() -> dict[str, Any]:
    """The run's input (an object), or an empty dict when there is none."""
    key = os.environ.get("ACTOR_INPUT_KEY") or os.environ.get("APIFY_INPUT_KEY") or "INPUT"
    token = os.environ.get("APIFY_TOKEN")
    value: Any = None
    if os.environ.get("APIFY_IS_AT_HOME") == "1" and token:
        from apify_client import ApifyClient  # installed with scrapy-actor-events

        api_url = os.environ.get("APIFY_API_BASE_URL") or "https://api.apify.com"
        store = os.environ.get("ACTOR_DEFAULT_KEY_VALUE_STORE_ID") or "default"
        record = ApifyClient(token, api_url=api_url).key_value_store(store).get_record(key)
        value = record["value"] if record else None
    else:
        # Locally (`apify run`), the input is a file of the default store, with or without .json.
        storage = os.environ.get("APIFY_LOCAL_STORAGE_DIR") or os.environ.get(
            "CRAWLEE_STORAGE_DIR", "storage"
        )
        folder = Path(storage, "key_value_stores", "default")
        for path in (folder / key, folder / f"{key}.json"):
            if path.is_file():
                value = json.loads(path.read_text(encoding="utf-8") or "null")
                break
    return value if isinstance(value, dict) else {}


def main() -> int:
    os.environ.setdefault("SCRAPY_SETTINGS_MODULE", "example.settings")
    start_url = actor_input().get("startUrl") or os.environ.get("START_URL") or None
    process = CrawlerProcess(get_project_settings())
    process.crawl("links", start_url=start_url)
    # The extension's own exit code (4, 3, 5) ends the process once the reactor has stopped;
    # reaching the next line means the crawl ended without one.
    process.start()
    return 1 if process.bootstrap_failed else 0


if __name__ == "__main__":
    sys.exit(main())
