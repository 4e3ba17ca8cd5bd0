"""Exit codes and close reasons: one table for the crawl and the command line (``docs/CLI.md``).

The platform reads a crawl's exit code to decide a run's fate: a process that exits 0 during a
migration ends the run as SUCCEEDED and it is not restarted. No number means two things here.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """How ``scrapy crawl`` (with the extension) and ``scrapy-actor-events`` end."""

    #: Success.
    OK = 0
    #: Command line: the command ran and its check failed (the demo or a rehearsal lost pages,
    #: or a rehearsal could not run as asked).
    CHECK_FAILED = 1
    #: Command line: bad arguments, or ``clear`` without ``--yes`` and no terminal to ask on.
    USAGE = 2
    #: Crawl and command line: the checkpoint is unreadable (corrupt, truncated, of an unknown
    #: version, of another spider or store). The crawl stops rather than overwrite it.
    UNREADABLE = 3
    #: Crawl: the spider closed while the run was being migrated; non-zero so that the platform
    #: restarts the run, which resumes from the checkpoint.
    STOPPED_DURING_MIGRATION = 4
    #: Crawl and command line: the store could not be reached or is misconfigured (no token, no
    #: such store, a network error).
    STORE_UNAVAILABLE = 5
    #: Command line: no checkpoint under the key, or none in the store.
    NO_CHECKPOINT = 6


#: The spider closed because the platform sent ``aborting`` (the process exits 0: ABORTED).
CLOSE_ABORTED = "aborted"
#: The crawl stopped at start: its checkpoint is unreadable.
CLOSE_UNREADABLE = "actor_events_unreadable_checkpoint"
#: The crawl stopped at start: the store could not be read.
CLOSE_STORE_UNAVAILABLE = "actor_events_store_unavailable"
#: The close reasons this package gives, with the exit code of the process.
CLOSE_REASONS = {
    CLOSE_ABORTED: ExitCode.OK,
    CLOSE_UNREADABLE: ExitCode.UNREADABLE,
    CLOSE_STORE_UNAVAILABLE: ExitCode.STORE_UNAVAILABLE,
}
#: Close reasons after which the next run starts a new crawl (``ACTOR_EVENTS_RESUME=auto``).
FINISHED_REASONS = frozenset({"finished"})
