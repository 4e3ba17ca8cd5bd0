"""Named platform stores: letters, digits and hyphens, a hyphen never first or last (the platform
refuses such names), at most 63 characters."""

from __future__ import annotations

import pytest
from scrapy.settings import Settings

from scrapy_actor_events.config import Config
from scrapy_actor_events.environment import ActorEnvironment
from scrapy_actor_events.store.base import STORE_NAME_RE


@pytest.mark.parametrize("name", ["a", "my-store", "A1-b2-C3", "x" * 63, "1-2"])
def test_names_the_platform_accepts(name: str) -> None:
    assert STORE_NAME_RE.match(name)
    config = Config.from_settings(Settings({"ACTOR_EVENTS_STORE_NAME": name}), ActorEnvironment())
    assert config.store.store_name == name


@pytest.mark.parametrize(
    "name", ["-store", "store-", "-", "my_store", "a.b", "x" * 64, "my store", "caf\u00e9"]
)
def test_names_the_platform_refuses_stop_at_start(name: str) -> None:
    assert not STORE_NAME_RE.match(name)
    with pytest.raises(ValueError, match="a hyphen never first or last") as raised:
        Config.from_settings(Settings({"ACTOR_EVENTS_STORE_NAME": name}), ActorEnvironment())
    assert "ACTOR_EVENTS_STORE_NAME" in str(raised.value)
