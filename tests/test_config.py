from __future__ import annotations

import pytest
from scrapy.settings import Settings

from scrapy_actor_events.checkpoint.format import (
    MAX_STATE_KEY_LENGTH,
    default_state_key,
    validate_state_key,
)
from scrapy_actor_events.config import DEFAULTS, Config
from scrapy_actor_events.environment import ActorEnvironment


def config(env: dict[str, str] | None = None, **settings) -> Config:
    return Config.from_settings(Settings(settings), ActorEnvironment.from_environ(env or {}))


def test_defaults_need_no_setting() -> None:
    c = config()
    assert c.enabled
    assert c.checkpoint.state_key is None
    assert c.checkpoint.persist_interval == 60.0
    assert (c.checkpoint.resume, c.checkpoint.on_unreadable) == ("auto", "stop")
    assert (c.store.choice, c.store.storage_dir, c.store.store_id) == (
        "auto",
        "./storage",
        "default",
    )
    assert c.checkpoint.chunk_bytes == 9_000_000
    assert c.key_for("books") == "SCRAPY_STATE_books"
    assert (c.store.store_name, c.checkpoint.upload_concurrency) == (None, 8)
    store = c.store
    assert (store.api_max_retries, store.api_min_retry_delay, store.api_timeout) == (4, 0.5, 60.0)
    assert c.socket.url is None
    assert (c.migration.default_time_remaining, c.migration.resume_after) == (5.0, 120.0)
    assert c.throttle.enabled


def test_every_setting_has_a_default_and_a_row_in_the_readme() -> None:
    import dataclasses
    import re
    from pathlib import Path

    # One setting per option of every group, but for what comes from the environment only.
    from_environment = {"store_id_configured", "token", "api_url", "is_at_home"}
    groups = {"checkpoint", "store", "socket", "migration", "throttle", "environment"}
    fields = {f.name for f in dataclasses.fields(Config)} - groups
    c = config()
    for group in groups - {"environment"}:
        fields |= {f"{group}.{f.name}" for f in dataclasses.fields(getattr(c, group))} - {
            f"store.{name}" for name in from_environment
        }
    assert len(fields) == len(DEFAULTS)
    root = Path(__file__).resolve().parents[1]
    documented = set()
    # The README's table, and the settings tables of features documented in docs/ of their own.
    for doc in [root / "README.md", *sorted((root / "docs").glob("*.md"))]:
        text = doc.read_text()
        if "## Settings" in text:
            table = text.split("## Settings", 1)[1].split("\n## ", 1)[0]
            documented |= set(re.findall(r"`((?:ACTOR_EVENTS|SPIDER_STATE)_[A-Z_]+)`", table))
    assert documented == set(DEFAULTS)


def test_environment_sets_interval_store_and_storage() -> None:
    env = {
        "APIFY_PERSIST_STATE_INTERVAL_MILLIS": "2500",
        "ACTOR_DEFAULT_KEY_VALUE_STORE_ID": "abc123",
        "APIFY_LOCAL_STORAGE_DIR": "/data",
    }
    c = config(env)
    assert (c.checkpoint.persist_interval, c.store.store_id, c.store.storage_dir) == (
        2.5,
        "abc123",
        "/data",
    )
    crawlee_interval = config({"CRAWLEE_PERSIST_STATE_INTERVAL_MILLIS": "100"})
    assert crawlee_interval.checkpoint.persist_interval == 0.1
    assert config({"CRAWLEE_STORAGE_DIR": "/c"}).store.storage_dir == "/c"
    both = {
        "APIFY_PERSIST_STATE_INTERVAL_MILLIS": "1000",
        "CRAWLEE_PERSIST_STATE_INTERVAL_MILLIS": "5000",
    }
    assert config(both).checkpoint.persist_interval == 1.0


def test_settings_win_over_the_environment() -> None:
    c = config(
        {"APIFY_PERSIST_STATE_INTERVAL_MILLIS": "2500"},
        ACTOR_EVENTS_PERSIST_INTERVAL=7,
        ACTOR_EVENTS_STORE_ID="s",
    )
    assert (c.checkpoint.persist_interval, c.store.store_id) == (7.0, "s")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"SPIDER_STATE_KEY": "a/b"}, "SPIDER_STATE_KEY='a/b' is not a valid key-value store key"),
        ({"SPIDER_STATE_KEY": "x" * 231}, "at most 230 are allowed"),
        (
            {"ACTOR_EVENTS_RESUME": "sometimes"},
            "ACTOR_EVENTS_RESUME='sometimes' is not one of auto, always, never",
        ),
        ({"ACTOR_EVENTS_ON_UNREADABLE": "delete"}, "ACTOR_EVENTS_ON_UNREADABLE='delete'"),
        ({"ACTOR_EVENTS_CHUNK_BYTES": 10_000_000}, "ACTOR_EVENTS_CHUNK_BYTES must be between"),
        ({"ACTOR_EVENTS_PERSIST_INTERVAL": -1}, "ACTOR_EVENTS_PERSIST_INTERVAL must be >= 0"),
        (
            {"ACTOR_EVENTS_PERSIST_INTERVAL": "soon"},
            "ACTOR_EVENTS_PERSIST_INTERVAL must be a float",
        ),
        ({"ACTOR_EVENTS_COMPRESSION_LEVEL": 30}, "ACTOR_EVENTS_COMPRESSION_LEVEL must be 1-22"),
        ({"ACTOR_EVENTS_UPLOAD_CONCURRENCY": 0}, "ACTOR_EVENTS_UPLOAD_CONCURRENCY must be 1-64"),
        ({"ACTOR_EVENTS_UPLOAD_CONCURRENCY": 65}, "ACTOR_EVENTS_UPLOAD_CONCURRENCY must be 1-64"),
        ({"ACTOR_EVENTS_API_MAX_RETRIES": -1}, "ACTOR_EVENTS_API_MAX_RETRIES must be >= 0"),
        ({"ACTOR_EVENTS_API_MIN_RETRY_DELAY": -1}, "ACTOR_EVENTS_API_MIN_RETRY_DELAY must be >="),
        ({"ACTOR_EVENTS_API_TIMEOUT": 0}, "ACTOR_EVENTS_API_TIMEOUT must be > 0 seconds"),
        ({"ACTOR_EVENTS_STORE_NAME": "my store"}, "ACTOR_EVENTS_STORE_NAME='my store' is not"),
        ({"ACTOR_EVENTS_STORE_NAME": "x" * 64}, "use 1-63 letters, digits and hyphens"),
    ],
)
def test_bad_values_name_the_setting(settings, message) -> None:
    with pytest.raises(ValueError) as info:
        config(**settings)
    assert message in str(info.value)


def test_bad_environment_interval_is_an_error() -> None:
    with pytest.raises(ValueError, match="APIFY_PERSIST_STATE_INTERVAL_MILLIS must be a number"):
        config({"APIFY_PERSIST_STATE_INTERVAL_MILLIS": "1m"})


def test_state_keys() -> None:
    assert validate_state_key("ok_KEY-1.(x)'!") == "ok_KEY-1.(x)'!"
    assert default_state_key("my spider/v2") == "SCRAPY_STATE_my-spider-v2"
    assert len(default_state_key("s" * 500)) == MAX_STATE_KEY_LENGTH
    for bad in ("", "a b", "ключ", "a:b"):
        with pytest.raises(ValueError):
            validate_state_key(bad)


def test_environment_reads_legacy_names_and_never_shows_the_token() -> None:
    env = ActorEnvironment.from_environ(
        {
            "APIFY_ACTOR_EVENTS_WS_URL": "ws://legacy",
            "APIFY_DEFAULT_KEY_VALUE_STORE_ID": "legacy-store",
            "APIFY_TOKEN": "secret-token-value",
            "APIFY_IS_AT_HOME": "1",
        }
    )
    assert env.events_websocket_url == "ws://legacy"
    assert env.default_store_id == "legacy-store"
    assert env.store_id_configured
    assert env.is_at_home
    assert "secret-token-value" not in repr(env)
    new_wins = {
        "ACTOR_EVENTS_WEBSOCKET_URL": "ws://new",
        "APIFY_ACTOR_EVENTS_WS_URL": "ws://legacy",
    }
    assert ActorEnvironment.from_environ(new_wins).events_websocket_url == "ws://new"
