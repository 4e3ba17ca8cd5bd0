"""Reading a crawl's download log (written by :mod:`scrapy_actor_events.download_log`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from ..download_log import ACCEPTED, CLOSED, FETCHED, FINISHED, OPENED

if TYPE_CHECKING:
    import os


@dataclass
class RunLog:
    """What one process of the crawl wrote."""

    pid: int
    fetched: list[str] = field(default_factory=list)
    fetched_at: list[float] = field(default_factory=list)
    accepted: set[str] = field(default_factory=set)
    finished: set[str] = field(default_factory=set)
    close_reason: str | None = None


def read_download_log(path: str | os.PathLike[str]) -> list[RunLog]:
    """The runs in the log, in the order they opened; torn or foreign lines are skipped."""
    runs: list[RunLog] = []
    by_pid: dict[int, RunLog] = {}
    try:
        lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except FileNotFoundError:
        return []
    for line in lines:
        try:
            entry = json.loads(line)
            event, pid = entry["event"], int(entry["pid"])
        except (ValueError, KeyError, TypeError):
            continue
        run = by_pid.get(pid)
        if event == OPENED or run is None:
            run = by_pid[pid] = RunLog(pid)
            runs.append(run)
        url = entry.get("url")
        if event == FETCHED and isinstance(url, str):
            run.fetched.append(url)
            run.fetched_at.append(float(entry.get("time") or 0.0))
        elif event == ACCEPTED and isinstance(url, str):
            run.accepted.add(url)
        elif event == FINISHED and isinstance(url, str):
            run.finished.add(url)
        elif event == CLOSED:
            run.close_reason = str(entry.get("reason"))
    return runs
