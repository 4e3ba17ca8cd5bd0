"""What a checkpoint is, when it is taken and how a crawl resumes: the checkpoint option group."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Trigger(StrEnum):
    """Why a checkpoint is taken; a manifest records the triggers its checkpoint served."""

    MANUAL = "manual"  # ActorEventsExtension.request_checkpoint()
    TIMER = "timer"
    PERSIST_STATE = "persistState"
    MIGRATING = "migrating"
    ABORTING = "aborting"
    CLOSE = "close"
    ITEMS = "items"  # items buffered since the last one passed ACTOR_EVENTS_ITEMS_BUFFER_BYTES


#: Triggers with a deadline (a kill in seconds, a closing spider): their checkpoint writes what
#: changed and never folds the deltas into a new base, which costs the size of the whole crawl.
URGENT_TRIGGERS = frozenset({Trigger.MIGRATING, Trigger.ABORTING, Trigger.CLOSE})


class ResumeMode(StrEnum):
    """``ACTOR_EVENTS_RESUME``."""

    AUTO = "auto"  # resume unless the saved crawl finished
    ALWAYS = "always"
    NEVER = "never"


class UnreadableMode(StrEnum):
    """``ACTOR_EVENTS_ON_UNREADABLE``."""

    STOP = "stop"
    FRESH = "fresh"


@dataclass(frozen=True)
class CheckpointOptions:
    #: ``SPIDER_STATE_KEY``; None: ``SCRAPY_STATE_<spider name>``.
    state_key: str | None = None
    persist_interval: float = 60.0
    resume: ResumeMode = ResumeMode.AUTO
    on_unreadable: UnreadableMode = UnreadableMode.STOP
    chunk_bytes: int = 9_000_000
    compression_level: int = 3
    max_deltas: int = 20
    restore_batch: int = 5_000
    cut_timeout: float = 1.0
    #: Chunk records written, read or deleted at once.
    upload_concurrency: int = 8
    #: Pending requests held in the scheduler's queues as records, not Request objects.
    compact_queue: bool = True
    #: Seen fingerprints held in a CompactFingerprintSet, not a set of bytes.
    compact_fingerprints: bool = True
