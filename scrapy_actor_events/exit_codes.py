"""Exit codes of the ``scrapy-actor-events`` command line (listed in the README)."""

from __future__ import annotations

OK = 0
#: The command ran and its check failed: the demo or a rehearsal lost pages, or could not run.
CHECK_FAILED = 1
#: A usage error: bad arguments, or ``clear`` without ``--yes`` and no terminal to ask on.
USAGE = 2
#: No checkpoint under the key (or none at all in the store).
NO_CHECKPOINT = 3
#: The checkpoint is unreadable: corrupt, truncated, of an unknown version.
UNREADABLE = 4
#: The store could not be reached or is misconfigured (no token, no such store, network error).
STORE_UNAVAILABLE = 5
