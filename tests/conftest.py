"""Shared fixtures: a real website and the platform's store API on 127.0.0.1, and a clean storage
directory per test."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

from scrapy_actor_events.tools.site import DemoSite

from .servers.apify_api import ApifyApiServer
from .support.backends import ApifyBackend, LocalBackend

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """``-n auto``: two workers per CPU. Most tests spend their time waiting (for a crawl in a
    subprocess, a socket, a site's delay), not computing."""
    return 2 * (os.cpu_count() or 1)


#: The folders whose tests run `scrapy crawl` and the command line in subprocesses, seconds each,
#: the slowest first (tools/test_checkpoint_commands.py runs the most processes).
SLOW_FIRST = ("tools", "end_to_end")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slow tests go first, so that with workers taking one test at a time none of them starts
    last and runs alone."""
    rank = {folder: i for i, folder in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.parent.name, len(rank)))


@pytest.fixture
def site() -> Iterator[DemoSite]:
    with DemoSite(pages=120, delay=0.002) as demo:
        yield demo


@pytest.fixture
def endless_site() -> Iterator[DemoSite]:
    """A site a crawl never finishes by itself: page n links to n + 1 only, so at most a page
    waits in the scheduler, and a crawl told to stop following links (``support.events.finish``)
    ends within a page. For tests whose crawl lasts as long as what they check takes."""
    with DemoSite(pages=10**6, delay=0.02, links=0) as demo:
        yield demo


@pytest.fixture
def storage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A storage directory, and an environment with no platform variables leaking in."""
    for name in (
        "ACTOR_EVENTS_WEBSOCKET_URL", "APIFY_ACTOR_EVENTS_WS_URL", "APIFY_TOKEN",
        "APIFY_IS_AT_HOME",
        "ACTOR_DEFAULT_KEY_VALUE_STORE_ID", "APIFY_DEFAULT_KEY_VALUE_STORE_ID",
        "APIFY_PERSIST_STATE_INTERVAL_MILLIS", "CRAWLEE_PERSIST_STATE_INTERVAL_MILLIS",
        "CRAWLEE_STORAGE_DIR", "APIFY_API_BASE_URL",
    ):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    path = tmp_path / "storage"
    monkeypatch.setenv("APIFY_LOCAL_STORAGE_DIR", str(path))
    return path


@pytest.fixture
def apify_api() -> Iterator[ApifyApiServer]:
    """The platform's key-value store API; every checkpoint written to it is read back whole."""
    with ApifyApiServer(verify_checkpoints=True) as api:
        yield api
    assert api.verification_errors == [], "a checkpoint in the store was not readable"


@pytest.fixture(params=["local", "apify"])
def backend(
    request: pytest.FixtureRequest, storage: Path, tmp_path: Path
) -> Iterator[LocalBackend]:
    """The local store, then the platform store on the local API server (every checkpoint
    written to it is read back whole)."""
    if request.param == "local":
        yield LocalBackend(storage, tmp_path)
        return
    with ApifyApiServer(verify_checkpoints=True) as api:
        yield ApifyBackend(storage, tmp_path, api)
        assert api.verification_errors == []
        assert api.verified > 0
