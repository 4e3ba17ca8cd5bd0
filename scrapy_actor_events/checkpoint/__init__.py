"""Checkpoints: the frontier and the crawl state, cut consistently, written to a store and read
back.

The data path: :mod:`.frontier` follows the open requests (encoded by :mod:`.codec`),
:mod:`.crawl_state` the stats, ``spider.state`` and ``start()``; :mod:`.cut` takes both at one
instant between two callbacks; :mod:`.writer` turns a cut into records (:mod:`.format`) in a
key-value store; :mod:`.reader` reads the newest checkpoint back and :mod:`.resume` decides whether
and how the crawl continues from it.
"""

from __future__ import annotations

from .options import CheckpointOptions, ResumeMode, Trigger, UnreadableMode
from .writer import Checkpointer, CheckpointResult

__all__ = [
    "CheckpointOptions",
    "CheckpointResult",
    "Checkpointer",
    "ResumeMode",
    "Trigger",
    "UnreadableMode",
]
