"""Settings of the package: every default in one table, parsed once into a frozen :class:`Config`.

A :class:`Config` is made of option groups, each defined beside the part it configures and parsed
here by a function of its own: the checkpoint (:class:`~.checkpoint.options.CheckpointOptions`),
the store (:class:`~.store.base.StoreOptions`), the dataset items go to
(:class:`~.dataset.base.DatasetOptions`), the events socket
(:class:`~.events.options.SocketOptions`), the migration
(:class:`~.events.migration.MigrationOptions`), the overload throttle
(:class:`~.events.throttle.ThrottleOptions`) and the run's status message
(:class:`~.status.StatusOptions`).

Each setting may also come from the platform's environment (see :mod:`.environment`); a value set in
Scrapy settings wins over the environment. Invalid values raise ``ValueError`` at start, naming the
setting and what it accepts. ``docs/SETTINGS.md`` documents every row of :data:`DEFAULTS`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar

from .checkpoint.format import default_state_key, validate_state_key
from .checkpoint.options import CheckpointOptions, ResumeMode, UnreadableMode
from .dataset.base import DatasetChoice, DatasetOptions
from .dataset.choice import decide
from .environment import DEFAULT_STORE_ID, ActorEnvironment
from .events.migration import MigrationOptions
from .events.options import SocketOptions
from .events.throttle import ThrottleOptions
from .status import StatusOptions
from .store.base import STORE_NAME_RE, STORE_NAME_RULE, StoreOptions

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

E = TypeVar("E", bound=StrEnum)

#: Every setting this package reads, with its default. ``None`` means "from the environment".
DEFAULTS: dict[str, Any] = {
    "ACTOR_EVENTS_ENABLED": True,
    "SPIDER_STATE_KEY": None,
    "ACTOR_EVENTS_PERSIST_INTERVAL": None,
    "ACTOR_EVENTS_RESUME": "auto",
    "ACTOR_EVENTS_ON_UNREADABLE": "stop",
    "ACTOR_EVENTS_STORE": "auto",
    "ACTOR_EVENTS_STORAGE_DIR": None,
    "ACTOR_EVENTS_STORE_ID": None,
    "ACTOR_EVENTS_STORE_NAME": None,
    "ACTOR_EVENTS_UPLOAD_CONCURRENCY": 8,
    "ACTOR_EVENTS_API_MAX_RETRIES": 4,
    "ACTOR_EVENTS_API_MIN_RETRY_DELAY": 0.5,
    "ACTOR_EVENTS_API_TIMEOUT": 60.0,
    "ACTOR_EVENTS_CHUNK_BYTES": 9_000_000,
    "ACTOR_EVENTS_COMPRESSION_LEVEL": 3,
    "ACTOR_EVENTS_MAX_DELTAS": 20,
    "ACTOR_EVENTS_RESTORE_BATCH": 5_000,
    "ACTOR_EVENTS_COMPACT_QUEUE": True,
    "ACTOR_EVENTS_COMPACT_FINGERPRINTS": True,
    "ACTOR_EVENTS_SET_EXIT_CODE": True,
    "ACTOR_EVENTS_CUT_TIMEOUT": 1.0,
    "ACTOR_EVENTS_WEBSOCKET_URL": None,
    "ACTOR_EVENTS_CA_FILE": None,
    "ACTOR_EVENTS_PING_INTERVAL": 10,
    "ACTOR_EVENTS_PING_TIMEOUT": 5,
    "ACTOR_EVENTS_RECONNECT_INITIAL_DELAY": 1.0,
    "ACTOR_EVENTS_RECONNECT_MAX_DELAY": 90.0,
    "ACTOR_EVENTS_MIGRATION_DEFAULT_SECONDS": 5.0,
    "ACTOR_EVENTS_MIGRATION_RESUME_AFTER": 120.0,
    "ACTOR_EVENTS_THROTTLE_ENABLED": True,
    "ACTOR_EVENTS_OVERLOAD_WINDOW": 5.0,
    "ACTOR_EVENTS_OVERLOAD_RATIO": 0.4,
    "ACTOR_EVENTS_OVERLOAD_CLEAR_RATIO": 0.2,
    "ACTOR_EVENTS_THROTTLE_START_DELAY": 0.5,
    "ACTOR_EVENTS_THROTTLE_PAUSE_AFTER": 30.0,
    "ACTOR_EVENTS_DOWNLOAD_LOG": None,
    "ACTOR_EVENTS_STATUS_MESSAGE": True,
    "ACTOR_EVENTS_STATUS_INTERVAL": 5.0,
    "ACTOR_EVENTS_DATASET": "auto",
    "ACTOR_EVENTS_DATASET_ID": None,
    "ACTOR_EVENTS_DATASET_NAME": None,
    "ACTOR_EVENTS_ITEMS_BUFFER_BYTES": 4_000_000,
}

#: The platform's record-size limit is 9,437,184 bytes; chunks stay well below it.
MAX_CHUNK_BYTES = 9_000_000
MIN_CHUNK_BYTES = 1_024
MAX_UPLOAD_CONCURRENCY = 64
MIN_ITEMS_BUFFER_BYTES = 1_024
#: A dataset id, or ``username~dataset-name`` as the API takes it.
DATASET_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,100}(~[A-Za-z0-9_-]{1,100})?$")


# -- reading one setting ----------------------------------------------------------------------


def _get(settings: BaseSettings, name: str) -> Any:
    return settings.get(name, DEFAULTS[name])


def _text(settings: BaseSettings, name: str) -> str | None:
    """The setting as a string, None when unset or empty."""
    value = settings.get(name)
    return None if value in (None, "") else str(value).strip()


def _bool(settings: BaseSettings, name: str) -> bool:
    return settings.getbool(name, DEFAULTS[name])


def _choice(settings: BaseSettings, name: str, choices: type[E]) -> E:
    value = str(_get(settings, name)).strip().lower()
    try:
        return choices(value)
    except ValueError:
        allowed = ", ".join(c.value for c in choices)
        raise ValueError(f"{name}={value!r} is not one of {allowed}.") from None


def _number(settings: BaseSettings, name: str, kind: type[int] | type[float]) -> Any:
    raw = _get(settings, name)
    try:
        return kind(raw)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a {kind.__name__}, got {raw!r}.") from None


# -- the option groups ------------------------------------------------------------------------


def checkpoint_options(settings: BaseSettings, env: ActorEnvironment) -> CheckpointOptions:
    key = _text(settings, "SPIDER_STATE_KEY")
    if settings.get("ACTOR_EVENTS_PERSIST_INTERVAL") in (None, ""):
        interval = env.persist_interval_seconds
    else:
        interval = _number(settings, "ACTOR_EVENTS_PERSIST_INTERVAL", float)
    if interval < 0:
        raise ValueError(
            f"ACTOR_EVENTS_PERSIST_INTERVAL must be >= 0 seconds (0 turns the timer off),"
            f" got {interval!r}."
        )
    chunk = _number(settings, "ACTOR_EVENTS_CHUNK_BYTES", int)
    if not MIN_CHUNK_BYTES <= chunk <= MAX_CHUNK_BYTES:
        raise ValueError(
            f"ACTOR_EVENTS_CHUNK_BYTES must be between {MIN_CHUNK_BYTES:,} and"
            f" {MAX_CHUNK_BYTES:,} (the platform refuses records over 9,437,184 bytes),"
            f" got {chunk!r}."
        )
    level = _number(settings, "ACTOR_EVENTS_COMPRESSION_LEVEL", int)
    if not 1 <= level <= 22:
        raise ValueError(f"ACTOR_EVENTS_COMPRESSION_LEVEL must be 1-22 (zstd), got {level!r}.")
    max_deltas = _number(settings, "ACTOR_EVENTS_MAX_DELTAS", int)
    if max_deltas < 0:
        raise ValueError(f"ACTOR_EVENTS_MAX_DELTAS must be >= 0, got {max_deltas!r}.")
    batch = _number(settings, "ACTOR_EVENTS_RESTORE_BATCH", int)
    if batch < 1:
        raise ValueError(f"ACTOR_EVENTS_RESTORE_BATCH must be >= 1, got {batch!r}.")
    cut_timeout = _number(settings, "ACTOR_EVENTS_CUT_TIMEOUT", float)
    if cut_timeout < 0:
        raise ValueError(f"ACTOR_EVENTS_CUT_TIMEOUT must be >= 0 seconds, got {cut_timeout!r}.")
    concurrency = _number(settings, "ACTOR_EVENTS_UPLOAD_CONCURRENCY", int)
    if not 1 <= concurrency <= MAX_UPLOAD_CONCURRENCY:
        raise ValueError(
            f"ACTOR_EVENTS_UPLOAD_CONCURRENCY must be 1-{MAX_UPLOAD_CONCURRENCY} (the platform"
            f" store allows 200 record requests per second), got {concurrency!r}."
        )
    return CheckpointOptions(
        state_key=validate_state_key(key) if key is not None else None,
        persist_interval=interval,
        resume=_choice(settings, "ACTOR_EVENTS_RESUME", ResumeMode),
        on_unreadable=_choice(settings, "ACTOR_EVENTS_ON_UNREADABLE", UnreadableMode),
        chunk_bytes=chunk,
        compression_level=level,
        max_deltas=max_deltas,
        restore_batch=batch,
        cut_timeout=cut_timeout,
        upload_concurrency=concurrency,
        compact_queue=_bool(settings, "ACTOR_EVENTS_COMPACT_QUEUE"),
        compact_fingerprints=_bool(settings, "ACTOR_EVENTS_COMPACT_FINGERPRINTS"),
    )


def store_options(settings: BaseSettings, env: ActorEnvironment) -> StoreOptions:
    choice = str(_get(settings, "ACTOR_EVENTS_STORE")).strip()
    if not choice:
        raise ValueError("ACTOR_EVENTS_STORE must be 'auto', 'local', 'apify', or an import path.")
    store_name = _text(settings, "ACTOR_EVENTS_STORE_NAME")
    if store_name is not None and not STORE_NAME_RE.match(store_name):
        raise ValueError(
            f"ACTOR_EVENTS_STORE_NAME={store_name!r} is not a valid store name: use"
            f" {STORE_NAME_RULE}."
        )
    retries = _number(settings, "ACTOR_EVENTS_API_MAX_RETRIES", int)
    if retries < 0:
        raise ValueError(f"ACTOR_EVENTS_API_MAX_RETRIES must be >= 0, got {retries!r}.")
    delay = _number(settings, "ACTOR_EVENTS_API_MIN_RETRY_DELAY", float)
    if delay < 0:
        raise ValueError(f"ACTOR_EVENTS_API_MIN_RETRY_DELAY must be >= 0 seconds, got {delay!r}.")
    timeout = _number(settings, "ACTOR_EVENTS_API_TIMEOUT", float)
    if timeout <= 0:
        raise ValueError(f"ACTOR_EVENTS_API_TIMEOUT must be > 0 seconds, got {timeout!r}.")
    return StoreOptions(
        choice=choice,
        storage_dir=_text(settings, "ACTOR_EVENTS_STORAGE_DIR") or env.local_storage_dir,
        store_id=_text(settings, "ACTOR_EVENTS_STORE_ID") or env.default_store_id,
        store_id_configured=env.store_id_configured,
        # Locally, ACTOR_DEFAULT_KEY_VALUE_STORE_ID is not a directory: crawlee's file-system
        # client keeps the default store in key_value_stores/default/ whatever it says.
        local_store_id=_text(settings, "ACTOR_EVENTS_STORE_ID") or DEFAULT_STORE_ID,
        store_name=store_name,
        token=env.token,
        api_url=env.api_base_url,
        is_at_home=env.is_at_home,
        api_max_retries=retries,
        api_min_retry_delay=delay,
        api_timeout=timeout,
    )


def dataset_options(
    settings: BaseSettings, env: ActorEnvironment, store: StoreOptions
) -> DatasetOptions:
    raw = _get(settings, "ACTOR_EVENTS_DATASET")
    text = str(raw).strip().lower()
    # Scrapy settings may hold a real boolean, or 1/0, yes/no from the command line.
    text = {
        "1": "true",
        "yes": "true",
        "on": "true",
        "0": "false",
        "no": "false",
        "off": "false",
    }.get(text, text)
    try:
        choice = DatasetChoice(text)
    except ValueError:
        raise ValueError(f"ACTOR_EVENTS_DATASET={raw!r} is not one of auto, true, false.") from None
    name = _text(settings, "ACTOR_EVENTS_DATASET_NAME")
    if name is not None and not STORE_NAME_RE.match(name):
        raise ValueError(
            f"ACTOR_EVENTS_DATASET_NAME={name!r} is not a valid dataset name: use"
            f" {STORE_NAME_RULE}."
        )
    dataset_id = _text(settings, "ACTOR_EVENTS_DATASET_ID")
    if name is not None and dataset_id is not None:
        raise ValueError("Set ACTOR_EVENTS_DATASET_ID or ACTOR_EVENTS_DATASET_NAME, not both.")
    if dataset_id is not None and not DATASET_ID_RE.match(dataset_id):
        raise ValueError(
            f"ACTOR_EVENTS_DATASET_ID={dataset_id!r} is not a dataset id (letters, digits, '-' and"
            " '_', or username~dataset-name)."
        )
    buffer = _number(settings, "ACTOR_EVENTS_ITEMS_BUFFER_BYTES", int)
    if buffer < MIN_ITEMS_BUFFER_BYTES:
        raise ValueError(
            f"ACTOR_EVENTS_ITEMS_BUFFER_BYTES must be >= {MIN_ITEMS_BUFFER_BYTES:,},"
            f" got {buffer!r}."
        )
    options = DatasetOptions(
        choice=choice,
        dataset_id=dataset_id,
        dataset_name=name,
        buffer_bytes=buffer,
        default_dataset_id=env.default_dataset_id,
        store=store,
    )
    enabled, reason = decide(choice, env, settings)
    unnamed = options.on_platform and not (dataset_id or name or env.default_dataset_id)
    if enabled and unnamed and choice == DatasetChoice.AUTO:
        enabled, reason = (
            False,
            (
                "ACTOR_EVENTS_DATASET=auto, the checkpoints go to the platform and no dataset is"
                " named there (ACTOR_DEFAULT_DATASET_ID, ACTOR_EVENTS_DATASET_ID or _NAME)"
            ),
        )
    return replace(options, enabled=enabled, reason=reason)


def socket_options(settings: BaseSettings, env: ActorEnvironment) -> SocketOptions:
    url = _text(settings, "ACTOR_EVENTS_WEBSOCKET_URL") or env.events_websocket_url
    if url and not url.startswith(("ws://", "wss://")):
        raise ValueError(
            "ACTOR_EVENTS_WEBSOCKET_URL (or ACTOR_EVENTS_WEBSOCKET_URL in the environment)"
            " must start with ws:// or wss://."
        )
    ping_interval = _number(settings, "ACTOR_EVENTS_PING_INTERVAL", int)
    ping_timeout = _number(settings, "ACTOR_EVENTS_PING_TIMEOUT", int)
    if ping_interval < 0 or ping_timeout < 2:
        # Autobahn rounds its ping timers to whole seconds; a shorter timeout drops the
        # connection at the first ping.
        raise ValueError(
            "ACTOR_EVENTS_PING_INTERVAL must be >= 0 (0: no pings) and"
            f" ACTOR_EVENTS_PING_TIMEOUT >= 2 whole seconds, got {ping_interval!r} and"
            f" {ping_timeout!r}."
        )
    initial_delay = _number(settings, "ACTOR_EVENTS_RECONNECT_INITIAL_DELAY", float)
    max_delay = _number(settings, "ACTOR_EVENTS_RECONNECT_MAX_DELAY", float)
    if not 0 < initial_delay <= max_delay:
        raise ValueError(
            "ACTOR_EVENTS_RECONNECT_INITIAL_DELAY must be > 0 and at most"
            f" ACTOR_EVENTS_RECONNECT_MAX_DELAY, got {initial_delay!r} and {max_delay!r}."
        )
    return SocketOptions(
        url=url or None,
        ca_file=_text(settings, "ACTOR_EVENTS_CA_FILE"),
        ping_interval=ping_interval,
        ping_timeout=ping_timeout,
        initial_delay=initial_delay,
        max_delay=max_delay,
    )


def migration_options(settings: BaseSettings) -> MigrationOptions:
    default_seconds = _number(settings, "ACTOR_EVENTS_MIGRATION_DEFAULT_SECONDS", float)
    resume_after = _number(settings, "ACTOR_EVENTS_MIGRATION_RESUME_AFTER", float)
    if default_seconds <= 0 or resume_after < 0:
        raise ValueError(
            "ACTOR_EVENTS_MIGRATION_DEFAULT_SECONDS must be > 0 and"
            " ACTOR_EVENTS_MIGRATION_RESUME_AFTER >= 0 (0: wait for the kill forever)."
        )
    return MigrationOptions(default_time_remaining=default_seconds, resume_after=resume_after)


def throttle_options(settings: BaseSettings) -> ThrottleOptions:
    throttle = ThrottleOptions(
        enabled=_bool(settings, "ACTOR_EVENTS_THROTTLE_ENABLED"),
        window=_number(settings, "ACTOR_EVENTS_OVERLOAD_WINDOW", float),
        ratio=_number(settings, "ACTOR_EVENTS_OVERLOAD_RATIO", float),
        clear_ratio=_number(settings, "ACTOR_EVENTS_OVERLOAD_CLEAR_RATIO", float),
        start_delay=_number(settings, "ACTOR_EVENTS_THROTTLE_START_DELAY", float),
        pause_after=_number(settings, "ACTOR_EVENTS_THROTTLE_PAUSE_AFTER", float),
    )
    if not (
        throttle.window > 0
        and 0 <= throttle.clear_ratio <= throttle.ratio < 1
        and throttle.start_delay > 0
        and throttle.pause_after >= 0
    ):
        raise ValueError(
            "The overload throttle needs ACTOR_EVENTS_OVERLOAD_WINDOW > 0, 0 <="
            " ACTOR_EVENTS_OVERLOAD_CLEAR_RATIO <= ACTOR_EVENTS_OVERLOAD_RATIO < 1,"
            " ACTOR_EVENTS_THROTTLE_START_DELAY > 0 and ACTOR_EVENTS_THROTTLE_PAUSE_AFTER >= 0"
            f" (0: never pause); got {throttle}."
        )
    return throttle


def status_options(settings: BaseSettings) -> StatusOptions:
    interval = _number(settings, "ACTOR_EVENTS_STATUS_INTERVAL", float)
    if not interval > 0:
        raise ValueError(f"ACTOR_EVENTS_STATUS_INTERVAL must be > 0 seconds, got {interval!r}.")
    return StatusOptions(enabled=_bool(settings, "ACTOR_EVENTS_STATUS_MESSAGE"), interval=interval)


@dataclass(frozen=True)
class Config:
    """The parsed settings of one crawler."""

    enabled: bool
    set_exit_code: bool
    download_log: str | None
    checkpoint: CheckpointOptions
    store: StoreOptions
    dataset: DatasetOptions
    socket: SocketOptions
    migration: MigrationOptions
    throttle: ThrottleOptions
    status: StatusOptions
    environment: ActorEnvironment

    @classmethod
    def from_settings(
        cls, settings: BaseSettings, environment: ActorEnvironment | None = None
    ) -> Config:
        env = environment if environment is not None else ActorEnvironment.from_environ()
        store = store_options(settings, env)
        return cls(
            enabled=_bool(settings, "ACTOR_EVENTS_ENABLED"),
            set_exit_code=_bool(settings, "ACTOR_EVENTS_SET_EXIT_CODE"),
            download_log=_text(settings, "ACTOR_EVENTS_DOWNLOAD_LOG") or env.download_log,
            checkpoint=checkpoint_options(settings, env),
            store=store,
            dataset=dataset_options(settings, env, store),
            socket=socket_options(settings, env),
            migration=migration_options(settings),
            throttle=throttle_options(settings),
            status=status_options(settings),
            environment=env,
        )

    def key_for(self, spider_name: str) -> str:
        return self.checkpoint.state_key or default_state_key(spider_name)
