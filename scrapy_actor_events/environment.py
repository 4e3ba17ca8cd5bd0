"""The Apify platform's environment variables, read in one place.

The platform configures a run only through the environment. Everything else in the package asks
:class:`ActorEnvironment` instead of ``os.environ``, so the list of variables we honour is this file
(and the settings table in ``docs/SETTINGS.md``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

DEFAULT_PERSIST_INTERVAL_SECONDS = 60.0
DEFAULT_API_BASE_URL = "https://api.apify.com"
DEFAULT_STORE_ID = "default"
DEFAULT_STORAGE_DIR = "./storage"
#: Variables whose presence says the process runs as an Actor, on the platform or under
#: ``apify run`` (which sets the storage directory): ``ACTOR_EVENTS_DATASET=auto`` turns on then.
ACTOR_RUN_MARKERS = (
    "APIFY_IS_AT_HOME",
    "ACTOR_DEFAULT_DATASET_ID",
    "APIFY_LOCAL_STORAGE_DIR",
    "CRAWLEE_STORAGE_DIR",
)


def _first(env: Mapping[str, str], *names: str) -> str | None:
    """The value of the first variable in ``names`` that is set and not blank."""
    for name in names:
        value = env.get(name, "").strip()
        if value:
            return value
    return None


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class ActorEnvironment:
    """What the platform (or a local ``apify run``) tells the process about itself."""

    events_websocket_url: str | None = None
    token: str | None = field(default=None, repr=False)
    api_base_url: str = DEFAULT_API_BASE_URL
    is_at_home: bool = False
    default_store_id: str = DEFAULT_STORE_ID
    store_id_configured: bool = False
    local_storage_dir: str = DEFAULT_STORAGE_DIR
    persist_interval_seconds: float = DEFAULT_PERSIST_INTERVAL_SECONDS
    #: ``ACTOR_RUN_ID``: the platform's run (also set by the CLI's ``apify call``), else None.
    run_id: str | None = None
    #: The run's default dataset on the platform; None off it.
    default_dataset_id: str | None = None
    #: Which of :data:`ACTOR_RUN_MARKERS` are set (empty for a bare ``scrapy crawl``).
    actor_markers: tuple[str, ...] = ()
    #: Not the platform's: set by ``scrapy-actor-events rehearse`` for the crawls it runs.
    download_log: str | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> ActorEnvironment:
        env = os.environ if environ is None else environ
        interval_ms = _first(
            env, "APIFY_PERSIST_STATE_INTERVAL_MILLIS", "CRAWLEE_PERSIST_STATE_INTERVAL_MILLIS"
        )
        interval = DEFAULT_PERSIST_INTERVAL_SECONDS
        if interval_ms is not None:
            try:
                interval = float(interval_ms) / 1000.0
            except ValueError:
                raise ValueError(
                    "APIFY_PERSIST_STATE_INTERVAL_MILLIS must be a number of milliseconds,"
                    f" got {interval_ms!r}"
                ) from None
        store_id = _first(
            env, "ACTOR_DEFAULT_KEY_VALUE_STORE_ID", "APIFY_DEFAULT_KEY_VALUE_STORE_ID"
        )
        return cls(
            events_websocket_url=_first(
                env, "ACTOR_EVENTS_WEBSOCKET_URL", "APIFY_ACTOR_EVENTS_WS_URL"
            ),
            token=_first(env, "APIFY_TOKEN"),
            api_base_url=_first(env, "APIFY_API_BASE_URL") or DEFAULT_API_BASE_URL,
            is_at_home=_truthy(_first(env, "APIFY_IS_AT_HOME")),
            default_store_id=store_id or DEFAULT_STORE_ID,
            store_id_configured=store_id is not None,
            local_storage_dir=_first(env, "APIFY_LOCAL_STORAGE_DIR", "CRAWLEE_STORAGE_DIR")
            or DEFAULT_STORAGE_DIR,
            persist_interval_seconds=interval,
            run_id=_first(env, "ACTOR_RUN_ID", "APIFY_ACTOR_RUN_ID", "APIFY_ACT_RUN_ID"),
            default_dataset_id=_first(env, "ACTOR_DEFAULT_DATASET_ID", "APIFY_DEFAULT_DATASET_ID"),
            actor_markers=tuple(
                name
                for name in ACTOR_RUN_MARKERS
                if (_truthy(_first(env, name)) if name == "APIFY_IS_AT_HOME" else _first(env, name))
            ),
            download_log=_first(env, "ACTOR_EVENTS_DOWNLOAD_LOG"),
        )
