"""The key-value store interface that checkpoints are written through, and the platform's key rules.

Everything in ``store/`` stands on its own: it imports nothing of the package but its leaf
modules (``stats``), so a store can be used, and tested, without a crawl.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol, runtime_checkable

JSON = "application/json; charset=utf-8"
BINARY = "application/octet-stream"

#: The platform refuses records over this many bytes (413).
MAX_RECORD_BYTES = 9_437_184
#: Key rules of the Apify key-value store: 1-256 characters of ``a-zA-Z0-9!-_.'()``.
KEY_CHARS = r"a-zA-Z0-9!\-_.'()"
MAX_KEY_LENGTH = 256
KEY_RE = re.compile(rf"^[{KEY_CHARS}]{{1,{MAX_KEY_LENGTH}}}$")
KEY_RULE = "1-256 characters of a-zA-Z0-9!-_.'() (no '/', ':' or spaces)"
#: Named platform stores: 1-63 letters, digits and hyphens, a hyphen never first or last (the
#: platform refuses such names).
STORE_NAME_RE = re.compile(r"^[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$")
STORE_NAME_RULE = "1-63 letters, digits and hyphens, a hyphen never first or last"


def is_valid_key(key: object) -> bool:
    return isinstance(key, str) and KEY_RE.match(key) is not None


def check_key(key: str) -> None:
    """Raise :class:`StoreError` unless the platform accepts ``key``."""
    if not is_valid_key(key):
        raise StoreError(f"invalid key {key!r}: the store accepts {KEY_RULE}")


def safe_key(text: str) -> str:
    """``text`` with every character the store refuses replaced by ``-``."""
    return re.sub(rf"[^{KEY_CHARS}]", "-", text)


class StoreChoice(StrEnum):
    """``ACTOR_EVENTS_STORE``, when it does not name a class."""

    AUTO = "auto"  # the platform's store on the platform, else the local one
    LOCAL = "local"
    APIFY = "apify"


class StoreError(Exception):
    """A store operation failed; the message says which and why (never with a token)."""


class StoreMissing(StoreError):
    """The store itself does not exist (a platform store id that is unknown or has expired)."""


@dataclass(frozen=True)
class StoreOptions:
    """Which store checkpoints go to and how it is reached (``ACTOR_EVENTS_STORE*``, the
    platform's environment)."""

    #: ``auto``, ``local``, ``apify``, or the import path of a :class:`KeyValueStore` class.
    choice: str = "auto"
    storage_dir: str = "./storage"
    store_id: str = "default"
    #: A store id was given (in the environment or the settings), not the ``default`` fallback.
    store_id_configured: bool = False
    #: The local store's directory under ``key_value_stores/``: ``default``, where crawlee and the
    #: Apify SDK keep the run's default store whatever ``ACTOR_DEFAULT_KEY_VALUE_STORE_ID`` says,
    #: unless ``ACTOR_EVENTS_STORE_ID`` names another.
    local_store_id: str = "default"
    store_name: str | None = None
    token: str | None = field(default=None, repr=False)
    api_url: str = "https://api.apify.com"
    is_at_home: bool = False
    api_max_retries: int = 4
    api_min_retry_delay: float = 0.5
    api_timeout: float = 60.0

    @property
    def on_platform(self) -> bool:
        """Whether ``auto`` picks the platform store.

        On the platform (``APIFY_IS_AT_HOME=1``), or off it with a token and a platform store
        named: a store id in the environment or ``ACTOR_EVENTS_STORE_NAME``.
        """
        return self.is_at_home or (
            self.token is not None and (self.store_id_configured or self.store_name is not None)
        )


@runtime_checkable
class KeyValueStore(Protocol):
    """A key-value store of byte records, like the Apify platform's.

    Implementations must make ``put`` atomic for readers: a reader sees the old value or the new
    one, never a mix. Errors are raised as :class:`StoreError` (or ``OSError``).
    """

    @property
    def ref(self) -> str:
        """Which store this is (a name, else an id): written into manifests, checked on read."""
        ...

    def describe(self) -> str:
        """Where records go, for one log line: a path or a store id, never a secret."""
        ...

    async def get(self, key: str) -> bytes | None:
        """The record's bytes, or None if there is no such key."""
        ...

    async def put(self, key: str, value: bytes, content_type: str) -> None:
        """Create or replace the record."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the record; no error if it does not exist."""
        ...

    async def list_keys(self, prefix: str) -> list[str]:
        """All keys starting with ``prefix``, sorted."""
        ...

    async def close(self) -> None:
        """Release connections and threads."""
        ...
