"""The peak resident memory of this process's own image.

``getrusage(RUSAGE_SELF).ru_maxrss`` is not that: Linux carries it across ``execve`` from the
process image that called it, so a child started by a big bench process (``fork`` + ``exec``)
reports the parent's size if it stays smaller (every contender read 146.1 MB when ``codec`` ran
before ``peers``). ``VmHWM`` in ``/proc/self/status`` belongs to the current image and starts
from zero at ``exec``: every crawl measured in a freshly started process reports its own peak.
"""

from __future__ import annotations

import resource
from pathlib import Path


def peak_rss() -> int:
    """Bytes: the high-water mark of this process image's resident set."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # not Linux: best effort
