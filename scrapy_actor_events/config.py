"""Settings of the package: every default in one table, parsed once into a frozen :class:`Config`.

Each setting may also come from the platform's environment (see :mod:`.environment`); a value set in
Scrapy settings wins over the environment. Invalid values raise ``ValueError`` at start, naming the
setting and what it accepts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .environment import ActorEnvironment
from .throttle import ThrottleOptions

if TYPE_CHECKING:
    from scrapy.settings import BaseSettings

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
}

#: The platform's record-size limit is 9,437,184 bytes; chunks stay well below it.
MAX_CHUNK_BYTES = 9_000_000
MIN_CHUNK_BYTES = 1_024

MAX_UPLOAD_CONCURRENCY = 64
#: Named platform stores: 1-63 letters, digits and hyphens.
STORE_NAME_RE = re.compile(r"^[a-zA-Z0-9-]{1,63}$")

RESUME_MODES = ("auto", "always", "never")
UNREADABLE_MODES = ("stop", "fresh")

#: Key rules of the Apify key-value store: 1-256 characters of ``a-zA-Z0-9!-_.'()``.
KEY_CHARS = r"a-zA-Z0-9!\-_.'()"
KEY_RE = re.compile(rf"^[{KEY_CHARS}]{{1,256}}$")
#: Chunk and quarantine records are named ``<key>.<suffix>``; the longest suffix is 26 characters.
MAX_STATE_KEY_LENGTH = 230
DEFAULT_KEY_PREFIX = "SCRAPY_STATE_"


def default_state_key(spider_name: str) -> str:
    """``SCRAPY_STATE_<spider name>``, with characters the store refuses replaced by ``-``."""
    name = re.sub(rf"[^{KEY_CHARS}]", "-", spider_name or "spider")
    return (DEFAULT_KEY_PREFIX + name)[:MAX_STATE_KEY_LENGTH]


def validate_state_key(key: str, setting: str = "SPIDER_STATE_KEY") -> str:
    """Return ``key`` if the platform's store accepts it (with room for chunk suffixes)."""
    if not isinstance(key, str) or not KEY_RE.match(key):
        raise ValueError(
            f"{setting}={key!r} is not a valid key-value store key: use 1-{MAX_STATE_KEY_LENGTH}"
            " characters from a-z, A-Z, 0-9 and !-_.'() (no '/', ':' or spaces)."
        )
    if len(key) > MAX_STATE_KEY_LENGTH:
        raise ValueError(
            f"{setting} is {len(key)} characters long; at most {MAX_STATE_KEY_LENGTH} are allowed"
            " so that its chunk records (<key>.part-<n>-<i>) stay within the store's 256."
        )
    return key


def _choice(settings: BaseSettings, name: str, choices: tuple[str, ...]) -> str:
    value = str(settings.get(name, DEFAULTS[name])).strip().lower()
    if value not in choices:
        raise ValueError(f"{name}={value!r} is not one of {', '.join(choices)}.")
    return value


def _number(settings: BaseSettings, name: str, kind: type[int] | type[float]) -> Any:
    raw = settings.get(name, DEFAULTS[name])
    try:
        return kind(raw)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a {kind.__name__}, got {raw!r}.") from None


def _platform_store_options(settings: BaseSettings) -> dict[str, Any]:
    """Upload parallelism and the platform store's name, retries and timeout."""
    name = settings.get("ACTOR_EVENTS_STORE_NAME")
    store_name = None if name in (None, "") else str(name).strip()
    if store_name is not None and not STORE_NAME_RE.match(store_name):
        raise ValueError(
            f"ACTOR_EVENTS_STORE_NAME={store_name!r} is not a valid store name: use 1-63"
            " letters, digits and hyphens."
        )
    concurrency = _number(settings, "ACTOR_EVENTS_UPLOAD_CONCURRENCY", int)
    if not 1 <= concurrency <= MAX_UPLOAD_CONCURRENCY:
        raise ValueError(
            f"ACTOR_EVENTS_UPLOAD_CONCURRENCY must be 1-{MAX_UPLOAD_CONCURRENCY} (the platform"
            f" store allows 200 record requests per second), got {concurrency!r}."
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
    return {
        "store_name": store_name,
        "upload_concurrency": concurrency,
        "api_max_retries": retries,
        "api_min_retry_delay": delay,
        "api_timeout": timeout,
    }


@dataclass(frozen=True)
class Config:
    """The parsed settings of one crawler."""

    enabled: bool
    state_key: str | None
    persist_interval: float
    resume: str
    on_unreadable: str
    store: str
    storage_dir: str
    store_id: str
    store_name: str | None
    upload_concurrency: int
    api_max_retries: int
    api_min_retry_delay: float
    api_timeout: float
    chunk_bytes: int
    compression_level: int
    max_deltas: int
    restore_batch: int
    set_exit_code: bool
    cut_timeout: float
    websocket_url: str | None
    ca_file: str | None
    ping_interval: int
    ping_timeout: int
    reconnect_initial_delay: float
    reconnect_max_delay: float
    migration_default_seconds: float
    migration_resume_after: float
    throttle_enabled: bool
    throttle: ThrottleOptions
    download_log: str | None
    environment: ActorEnvironment

    @classmethod
    def from_settings(
        cls, settings: BaseSettings, environment: ActorEnvironment | None = None
    ) -> Config:
        env = environment if environment is not None else ActorEnvironment.from_environ()
        key = settings.get("SPIDER_STATE_KEY")
        state_key = validate_state_key(str(key)) if key not in (None, "") else None

        interval_raw = settings.get("ACTOR_EVENTS_PERSIST_INTERVAL")
        if interval_raw in (None, ""):
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
        migration_default = _number(settings, "ACTOR_EVENTS_MIGRATION_DEFAULT_SECONDS", float)
        resume_after = _number(settings, "ACTOR_EVENTS_MIGRATION_RESUME_AFTER", float)
        if migration_default <= 0 or resume_after < 0:
            raise ValueError(
                "ACTOR_EVENTS_MIGRATION_DEFAULT_SECONDS must be > 0 and"
                " ACTOR_EVENTS_MIGRATION_RESUME_AFTER >= 0 (0: wait for the kill forever)."
            )
        websocket_url = settings.get("ACTOR_EVENTS_WEBSOCKET_URL") or env.events_websocket_url
        if websocket_url and not str(websocket_url).startswith(("ws://", "wss://")):
            raise ValueError(
                "ACTOR_EVENTS_WEBSOCKET_URL (or ACTOR_EVENTS_WEBSOCKET_URL in the environment)"
                " must start with ws:// or wss://."
            )

        throttle = ThrottleOptions(
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

        download_log = settings.get("ACTOR_EVENTS_DOWNLOAD_LOG") or env.download_log
        store_id = settings.get("ACTOR_EVENTS_STORE_ID") or env.default_store_id
        storage_dir = settings.get("ACTOR_EVENTS_STORAGE_DIR") or env.local_storage_dir
        store = str(settings.get("ACTOR_EVENTS_STORE", DEFAULTS["ACTOR_EVENTS_STORE"])).strip()
        if not store:
            raise ValueError(
                "ACTOR_EVENTS_STORE must be 'auto', 'local', 'apify', or an import path."
            )
        return cls(
            enabled=settings.getbool("ACTOR_EVENTS_ENABLED", DEFAULTS["ACTOR_EVENTS_ENABLED"]),
            state_key=state_key,
            persist_interval=interval,
            resume=_choice(settings, "ACTOR_EVENTS_RESUME", RESUME_MODES),
            on_unreadable=_choice(settings, "ACTOR_EVENTS_ON_UNREADABLE", UNREADABLE_MODES),
            store=store,
            storage_dir=str(storage_dir),
            store_id=str(store_id),
            **_platform_store_options(settings),
            chunk_bytes=chunk,
            compression_level=level,
            max_deltas=max_deltas,
            restore_batch=batch,
            set_exit_code=settings.getbool(
                "ACTOR_EVENTS_SET_EXIT_CODE", DEFAULTS["ACTOR_EVENTS_SET_EXIT_CODE"]
            ),
            cut_timeout=cut_timeout,
            websocket_url=str(websocket_url) if websocket_url else None,
            ca_file=settings.get("ACTOR_EVENTS_CA_FILE") or None,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            reconnect_initial_delay=initial_delay,
            reconnect_max_delay=max_delay,
            migration_default_seconds=migration_default,
            migration_resume_after=resume_after,
            throttle_enabled=settings.getbool(
                "ACTOR_EVENTS_THROTTLE_ENABLED", DEFAULTS["ACTOR_EVENTS_THROTTLE_ENABLED"]
            ),
            throttle=throttle,
            download_log=str(download_log) if download_log else None,
            environment=env,
        )

    def key_for(self, spider_name: str) -> str:
        return self.state_key or default_state_key(spider_name)
