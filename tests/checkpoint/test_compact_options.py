"""The two settings of the compact frontier."""

from __future__ import annotations

import pytest
from scrapy.settings import Settings

from scrapy_actor_events.config import Config
from scrapy_actor_events.environment import ActorEnvironment


def options(**settings):
    return Config.from_settings(Settings(settings), ActorEnvironment.from_environ({})).checkpoint


def test_on_by_default_and_off_with_a_setting() -> None:
    assert options().compact_queue
    assert options().compact_fingerprints
    off = options(ACTOR_EVENTS_COMPACT_QUEUE="False", ACTOR_EVENTS_COMPACT_FINGERPRINTS=0)
    assert (off.compact_queue, off.compact_fingerprints) == (False, False)


def test_a_value_that_is_not_a_boolean_is_refused() -> None:
    with pytest.raises(ValueError, match="boolean"):
        options(ACTOR_EVENTS_COMPACT_QUEUE="maybe")
