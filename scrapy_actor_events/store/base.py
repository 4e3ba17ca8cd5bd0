"""The key-value store interface that checkpoints are written through."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ..config import KEY_RE

JSON = "application/json; charset=utf-8"
BINARY = "application/octet-stream"


class StoreError(Exception):
    """A store operation failed; the message says which and why (never with a token)."""


def check_key(key: str) -> None:
    """Raise :class:`StoreError` unless the platform accepts ``key``."""
    if not KEY_RE.match(key):
        raise StoreError(
            f"invalid key {key!r}: the store accepts 1-256 characters of a-zA-Z0-9!-_.'()"
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
