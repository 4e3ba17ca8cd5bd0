"""Every stats key this package writes, in one place (the list in ``docs/STATS.md`` follows it).

Keys live under ``actor_events/``. Scrapy's own keys that the package reads or adjusts on a
resume are named here too, so that a rename in Scrapy has one place to be fixed.
"""

from __future__ import annotations

PREFIX = "actor_events/"

# -- checkpoints ---------------------------------------------------------------------------------
CHECKPOINT_COUNT = "actor_events/checkpoint/count"
CHECKPOINT_FAILED = "actor_events/checkpoint/failed"
CHECKPOINT_BYTES = "actor_events/checkpoint/bytes"
CHECKPOINT_LAST_BYTES = "actor_events/checkpoint/last_bytes"
CHECKPOINT_LAST_MS = "actor_events/checkpoint/last_duration_ms"

# -- requests and the restore -------------------------------------------------------------------
REQUESTS_UNSERIALIZABLE = "actor_events/requests/unserializable"
RESTORE_REQUESTS = "actor_events/restore/requests"
RESTORE_UNDECODABLE = "actor_events/restore/undecodable"
#: Keys under this prefix describe one process's restore and start from zero in every process.
RESTORE_PREFIX = "actor_events/restore/"

# -- events and the overload throttle -----------------------------------------------------------
#: One counter per event name: ``actor_events/events/<name>`` (``unknown`` for the rest).
EVENTS_PREFIX = "actor_events/events/"
#: Migrations the crawl went through (repeated ``migrating`` events of one count once).
MIGRATIONS = "actor_events/migrations"
#: 1 from a ``migrating`` until the migration is called off: in a checkpoint, the next process
#: is the restart after that migration.
MIGRATION_UNDER_WAY = "actor_events/migration/under_way"
CPU_OVERLOADED_SAMPLES = "actor_events/cpu/overloaded_samples"
THROTTLE_PREFIX = "actor_events/throttle/"
THROTTLE_EPISODES = "actor_events/throttle/episodes"
THROTTLE_SECONDS = "actor_events/throttle/seconds"
THROTTLE_MAX_DELAY = "actor_events/throttle/max_delay"
THROTTLE_PAUSED_SECONDS = "actor_events/throttle/paused_seconds"

# -- the platform store -------------------------------------------------------------------------
STORE_REQUESTS = "actor_events/store/requests"
STORE_RATE_LIMITED = "actor_events/store/rate_limited"
STORE_SERVER_ERRORS = "actor_events/store/server_errors"
STORE_NETWORK_ERRORS = "actor_events/store/network_errors"
STORE_FAILED = "actor_events/store/failed"

# -- the run's status message on the platform ---------------------------------------------------
STATUS_UPDATES = "actor_events/status/updates"
STATUS_FAILED = "actor_events/status/failed"
# -- items and the dataset they go to ----------------------------------------------------------
#: Items accepted for the dataset (serialized and journaled), over all runs of the crawl.
ITEMS_JOURNALED = "actor_events/items/journaled"
#: Items of the crawl known to be in the dataset (or refused by it): the committed offset.
ITEMS_COMMITTED = "actor_events/items/committed"
#: Items written to the dataset by this package (pushes that succeeded).
ITEMS_PUSHED = "actor_events/items/pushed"
#: Items a check of the dataset found already there: pushes that a blind retry would repeat.
ITEMS_ALREADY_THERE = "actor_events/items/already_in_dataset"
ITEMS_UNSERIALIZABLE = "actor_events/items/unserializable"
ITEMS_TOO_LARGE = "actor_events/items/too_large"
#: Items the dataset refused (HTTP 400 or 413 for the item alone): left out, counted here.
ITEMS_REFUSED = "actor_events/items/refused"
DATASET_PUSHES = "actor_events/dataset/pushes"
DATASET_CHECKS = "actor_events/dataset/checks"
DATASET_FAILED = "actor_events/dataset/failed"
DATASET_REQUESTS = "actor_events/dataset/requests"
DATASET_RATE_LIMITED = "actor_events/dataset/rate_limited"
DATASET_SERVER_ERRORS = "actor_events/dataset/server_errors"
DATASET_NETWORK_ERRORS = "actor_events/dataset/network_errors"

# -- Scrapy's own keys that the package reads or adjusts -----------------------------------------
ITEMS = "item_scraped_count"
RESPONSES = "response_received_count"
DOWNLOADS = "downloader/request_count"
DEPTH_MAX = "request_depth_max"
START_TIME = "start_time"
ELAPSED = "elapsed_time_seconds"
ENQUEUED = ("scheduler/enqueued", "scheduler/enqueued/memory")
DEQUEUED = ("scheduler/dequeued", "scheduler/dequeued/memory")
#: Keys of this process only: they start from zero in every process of a resumed crawl.
PER_PROCESS_PREFIXES = ("log_count/", "memusage/", RESTORE_PREFIX)
#: Keys CoreStats sets when the spider closes; a resumed run sets its own.
CLOSE_KEYS = frozenset({"finish_time", "finish_reason", ELAPSED})
#: The stats a manifest summarizes (``Actor.get_value(key)`` shows them without decoding).
SUMMARY = (ITEMS, RESPONSES, DEPTH_MAX, ENQUEUED[0])


def event_key(name: str) -> str:
    return EVENTS_PREFIX + name


def is_per_process(key: str) -> bool:
    return key in CLOSE_KEYS or key.startswith(PER_PROCESS_PREFIXES)
