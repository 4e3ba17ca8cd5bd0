"""The dataset interface items are committed through, its errors, and its option group.

A dataset is an append-only list of JSON objects, read back by offset: the run's default dataset on
the platform, or the directory that crawlee and the Apify SDK read locally. Everything in
``dataset/`` imports nothing of the package but the leaves and ``store/`` (whose connection
settings and choice of platform or local it shares), so it can be used, and tested, without a
crawl.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from ..store.base import StoreChoice, StoreOptions

#: The platform's request limit as the Apify SDK applies it: 9 MiB less 0.01% (9,436,241 bytes),
#: for one push and for one item. The API reference says 5 MB; see docs/DATASET.md.
MAX_PAYLOAD_BYTES = 9 * 1024 * 1024
PAYLOAD_LIMIT = MAX_PAYLOAD_BYTES - int(MAX_PAYLOAD_BYTES * 0.0001)


class DatasetChoice(StrEnum):
    """``ACTOR_EVENTS_DATASET``."""

    AUTO = "auto"  # on in an Actor run, unless another pipeline pushes items already
    TRUE = "true"
    FALSE = "false"


class DatasetError(Exception):
    """A dataset operation failed; the message says which and why (never with a token).

    ``stored`` says what became of the items of a failed push: ``False`` when the dataset surely
    did not store them (a 429), ``None`` when nobody knows (a 5xx, a timeout, a dropped
    connection, a local write cut short): the dataset must be read before pushing them again.
    """

    def __init__(self, message: str, *, stored: bool | None = None) -> None:
        super().__init__(message)
        self.stored = stored


class ItemsRefused(DatasetError):
    """The dataset refused the whole request and stored none of it (HTTP 400 or 413).

    ``positions`` lists the items of the request it named as invalid (the platform's
    ``invalidItems``), when it did.
    """

    def __init__(self, message: str, positions: list[int] | None = None) -> None:
        super().__init__(message, stored=False)
        self.positions = positions


@dataclass(frozen=True)
class DatasetOptions:
    """Where items go (``ACTOR_EVENTS_DATASET*``, the platform's environment)."""

    #: ``ACTOR_EVENTS_DATASET`` as given: auto, true or false.
    choice: DatasetChoice = DatasetChoice.AUTO
    #: ``ACTOR_EVENTS_DATASET_ID``: another dataset than the run's default one.
    dataset_id: str | None = None
    #: ``ACTOR_EVENTS_DATASET_NAME``: a named dataset instead of the run's default one.
    dataset_name: str | None = None
    #: Items buffered since the last checkpoint past this many bytes ask for a checkpoint.
    buffer_bytes: int = 4_000_000
    #: The run's default dataset on the platform (``ACTOR_DEFAULT_DATASET_ID``).
    default_dataset_id: str | None = None
    #: What ``choice`` came to, and why (one log line).
    enabled: bool = False
    reason: str = ""
    #: How the store is reached, shared: the dataset goes where the checkpoints go.
    store: StoreOptions = field(default_factory=StoreOptions)

    @property
    def on_platform(self) -> bool:
        """The platform's dataset when the checkpoints go to the platform's store."""
        choice = self.store.choice.lower()
        if choice == StoreChoice.APIFY:
            return True
        if choice == StoreChoice.LOCAL:
            return False
        return self.store.on_platform


@runtime_checkable
class Dataset(Protocol):
    """An append-only dataset of JSON objects, read back by offset (like the platform's).

    ``push`` appends the items in order at the end, all of them or none (it raises
    :class:`ItemsRefused` when the dataset refused them, :class:`DatasetError` otherwise: then
    some, all or none may have landed). ``read`` sees what earlier pushes stored.
    """

    #: The largest request ``push`` takes, in bytes of a JSON array.
    max_request_bytes: int

    @property
    def ref(self) -> str:
        """Which dataset this is (its id, else its name): recorded in checkpoints."""
        ...

    def describe(self) -> str:
        """Where items go, for one log line: a path or a dataset id, never a secret."""
        ...

    async def open(self) -> None:
        """Find or create the dataset; raises :class:`DatasetError`."""
        ...

    async def length_lower_bound(self) -> int:
        """A number of items the dataset holds at least (the platform's count lags behind)."""
        ...

    async def read(self, offset: int, limit: int) -> list[Any]:
        """The items at ``offset`` and after, at most ``limit``, parsed from JSON."""
        ...

    async def push(self, items: list[bytes]) -> None:
        """Append ``items`` (each one compact JSON object) at the end, in order."""
        ...

    async def close(self) -> None:
        """Release connections and threads."""
        ...
