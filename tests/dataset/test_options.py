"""The dataset's settings: parsed once, wrong values named at start, the choice of auto, and the
dataset built where the checkpoints go."""

from __future__ import annotations

import pytest
from scrapy.settings import Settings

from scrapy_actor_events.config import Config
from scrapy_actor_events.dataset import build_dataset
from scrapy_actor_events.dataset.apify import ApifyDataset
from scrapy_actor_events.dataset.local import LocalDataset
from scrapy_actor_events.environment import ActorEnvironment

PLATFORM = {
    "APIFY_IS_AT_HOME": "1",
    "APIFY_TOKEN": "apify_api_SECRET",
    "ACTOR_DEFAULT_KEY_VALUE_STORE_ID": "kv",
    "ACTOR_DEFAULT_DATASET_ID": "ds123",
}


def config(env: dict[str, str] | None = None, **settings) -> Config:
    return Config.from_settings(Settings(settings), ActorEnvironment.from_environ(env or {}))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"ACTOR_EVENTS_DATASET": "maybe"}, "ACTOR_EVENTS_DATASET='maybe' is not one of auto,"),
        ({"ACTOR_EVENTS_DATASET_NAME": "my data"}, "ACTOR_EVENTS_DATASET_NAME='my data' is not"),
        ({"ACTOR_EVENTS_DATASET_ID": "a/b"}, "ACTOR_EVENTS_DATASET_ID='a/b' is not a dataset id"),
        (
            {"ACTOR_EVENTS_DATASET_ID": "a", "ACTOR_EVENTS_DATASET_NAME": "b"},
            "Set ACTOR_EVENTS_DATASET_ID or ACTOR_EVENTS_DATASET_NAME, not both",
        ),
        ({"ACTOR_EVENTS_ITEMS_BUFFER_BYTES": 10}, "ACTOR_EVENTS_ITEMS_BUFFER_BYTES must be >="),
    ],
)
def test_bad_values_name_the_setting(settings, message) -> None:
    with pytest.raises(ValueError) as info:
        config(**settings)
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("value", "enabled"),
    [(True, True), (False, False), ("1", True), ("no", False), ("TRUE", True), ("auto", False)],
)
def test_the_setting_takes_booleans_as_scrapy_settings_hold_them(value, enabled) -> None:
    assert config(ACTOR_EVENTS_DATASET=value).dataset.enabled is enabled


def test_auto_follows_the_actor_environment() -> None:
    assert not config().dataset.enabled
    assert not config({"APIFY_IS_AT_HOME": "0"}).dataset.enabled
    for name in ("APIFY_LOCAL_STORAGE_DIR", "CRAWLEE_STORAGE_DIR", "ACTOR_DEFAULT_DATASET_ID"):
        options = config({name: "x"}).dataset
        assert options.enabled
        assert name in options.reason
    on_platform = config(PLATFORM).dataset
    assert on_platform.enabled
    assert on_platform.on_platform
    assert "APIFY_IS_AT_HOME, ACTOR_DEFAULT_DATASET_ID" in on_platform.reason


def test_the_dataset_goes_where_the_checkpoints_go(tmp_path) -> None:
    local = build_dataset(config({"APIFY_LOCAL_STORAGE_DIR": str(tmp_path)}).dataset)
    assert isinstance(local, LocalDataset)
    assert local.path == tmp_path / "datasets" / "default"
    named = build_dataset(config({"APIFY_LOCAL_STORAGE_DIR": str(tmp_path)},
                                 ACTOR_EVENTS_DATASET_NAME="pages").dataset)  # fmt: skip
    assert isinstance(named, LocalDataset)
    assert named.path.name == "pages"
    platform = build_dataset(config(PLATFORM).dataset)
    assert isinstance(platform, ApifyDataset)
    assert (platform.dataset_id, platform.ref) == ("ds123", "ds123")
    other = build_dataset(config(PLATFORM, ACTOR_EVENTS_DATASET_ID="other").dataset)
    assert isinstance(other, ApifyDataset)
    assert other.dataset_id == "other"
    assert "platform dataset other" in other.describe()
    assert "SECRET" not in other.describe()


def test_the_platform_without_a_dataset_id_is_off_with_auto_and_an_error_with_true() -> None:
    env = {k: v for k, v in PLATFORM.items() if k != "ACTOR_DEFAULT_DATASET_ID"}
    options = config(env).dataset
    assert not options.enabled
    assert "no dataset is named there" in options.reason
    forced = config(env, ACTOR_EVENTS_DATASET="true").dataset
    assert forced.enabled
    with pytest.raises(ValueError, match="no dataset is named"):
        build_dataset(forced)
    named = config(env, ACTOR_EVENTS_DATASET_NAME="pages").dataset
    assert named.enabled
    dataset = build_dataset(named)
    assert isinstance(dataset, ApifyDataset)
    assert dataset.ref == "pages"


def test_the_platform_dataset_needs_a_token() -> None:
    env = {**PLATFORM, "APIFY_TOKEN": ""}
    options = config(env, ACTOR_EVENTS_STORE="apify", ACTOR_EVENTS_DATASET="true").dataset
    with pytest.raises(ValueError, match="APIFY_TOKEN is not set"):
        build_dataset(options)
