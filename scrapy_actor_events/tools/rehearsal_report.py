"""What a rehearsal shows: pages per run, requests restored, pages fetched twice, pages lost.

Computed from the crawl's download log (see :mod:`.download_log`), from the checkpoint the last
run left in the rehearsal's storage, and from its dataset. A page is *lost* when some run accepted
its request and no run finished it; *fetched twice* when responses for its URL arrived more than
once. An item is in the dataset *twice* when two items have the same ``url`` (or, without one, the
same content): a problem, since items are committed exactly once.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from .. import stats_keys
from ..checkpoint.options import CheckpointOptions
from ..exit_codes import CLOSE_ABORTED, FINISHED_REASONS, ExitCode
from ..store.local import LocalKeyValueStore
from .dataset_tally import tally
from .download_log_reader import RunLog, read_download_log
from .inspection import list_checkpoints, read_report
from .rehearsal import Mode

if TYPE_CHECKING:
    from pathlib import Path

    from .rehearsal import Rehearsal, RunOutcome

_EVENT = {
    Mode.MIGRATE: "migrating",
    Mode.ABORT: "aborting",
    Mode.OVERLOAD: "CPU overload (systemInfo)",
}


@dataclass
class RunSummary:
    pages: int
    exit: str
    closed_as: str | None


@dataclass
class RehearsalReport:
    mode: str
    trigger: str
    runs: list[RunSummary]
    requests_restored: int | None
    fetched_twice: int
    lost: list[str]
    checkpoints: int | None
    stats: dict[str, Any] = field(default_factory=dict)
    pages_per_second: dict[str, float] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    storage: str = ""
    distinct_pages: int = 0
    #: The dataset's items, distinct ones and those there twice (None: no dataset was written).
    dataset_items: int | None = None
    dataset_distinct: int | None = None
    dataset_duplicates: int | None = None

    @property
    def ok(self) -> bool:
        return not self.lost and not self.problems

    @property
    def verdict(self) -> str:
        if self.ok:
            return "OK: 0 lost"
        lost = f"{len(self.lost):,} lost" if self.lost else "0 lost"
        return f"FAILED: {lost}" + "".join(f"; {p}" for p in self.problems)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok, "verdict": self.verdict}


def _exit(outcome: RunOutcome) -> str:
    if outcome.timed_out:
        return "SIGKILL (timeout)"
    if outcome.killed:
        return "SIGKILL"
    return str(outcome.returncode)


async def _final_checkpoint(storage: Path) -> dict[str, Any] | None:
    store = LocalKeyValueStore(storage)
    try:
        listed = await list_checkpoints(store)
        if len(listed) != 1:
            return None
        report = await read_report(store, listed[0].key, CheckpointOptions().upload_concurrency)
        return None if report is None else report.stats
    except Exception:
        return None
    finally:
        await store.close()


def _rates(log: RunLog, window: tuple[float, float]) -> dict[str, float]:
    start, end = window
    times = log.fetched_at
    first = times[0] if times else start
    before = sum(1 for t in times if t < start)
    during = sum(1 for t in times if start <= t < end)
    return {
        "before": round(before / max(start - first, 0.001), 2),
        "during": round(during / max(end - start, 0.001), 2),
    }


def build_report(rehearsal: Rehearsal) -> RehearsalReport:
    options = rehearsal.options
    logs = read_download_log(rehearsal.download_log) if rehearsal.download_log else []
    outcomes = rehearsal.runs
    # One log per process; the rehearsal runs one process at a time, in order.
    per_run: list[RunLog] = [logs[i] if i < len(logs) else RunLog(0) for i in range(len(outcomes))]
    fetches: Counter[str] = Counter(url for log in logs for url in log.fetched)
    accepted = set().union(*(log.accepted for log in logs)) if logs else set()
    finished = set().union(*(log.finished for log in logs)) if logs else set()
    stats = asyncio.run(_final_checkpoint(options.storage)) or {}
    if options.after_pages is not None:
        trigger = f"after {options.after_pages:,} pages"
    else:
        trigger = f"after {options.after_seconds if options.after_seconds is not None else 10:g} s"
    report = RehearsalReport(
        mode=options.mode,
        trigger=f"{_EVENT[options.mode]} {trigger}",
        runs=[
            RunSummary(len(log.fetched), _exit(o), log.close_reason)
            for o, log in zip(outcomes, per_run, strict=True)
        ],
        requests_restored=stats.get(stats_keys.RESTORE_REQUESTS, 0 if stats else None),
        fetched_twice=sum(1 for n in fetches.values() if n > 1),
        lost=sorted(accepted - finished),
        checkpoints=stats.get(stats_keys.CHECKPOINT_COUNT),
        stats={k: v for k, v in stats.items() if k.startswith(stats_keys.THROTTLE_PREFIX)},
        storage=str(options.storage),
        distinct_pages=len(fetches),
    )
    if (options.storage / "datasets" / "default").is_dir():
        items = tally(options.storage)
        report.dataset_items, report.dataset_distinct = items.items, items.distinct
        report.dataset_duplicates = items.duplicates
    if rehearsal.overload_window is not None and per_run:
        report.pages_per_second = _rates(per_run[0], rehearsal.overload_window)
    report.problems = _problems(rehearsal, report)
    return report


def _problems(rehearsal: Rehearsal, report: RehearsalReport) -> list[str]:
    mode, runs, outcomes = rehearsal.options.mode, report.runs, rehearsal.runs
    problems = [f"run {o.number} hit the --timeout" for o in outcomes if o.timed_out]
    first = outcomes[0]
    if mode == Mode.MIGRATE and not first.killed:
        if first.returncode == 0:
            problems.append(
                "run 1 exited 0 during the migration: on the platform the run would end as"
                " SUCCEEDED and never be restarted"
            )
        elif first.returncode != ExitCode.STOPPED_DURING_MIGRATION:
            problems.append(f"run 1 exited {first.returncode} during the migration")
    if mode == Mode.ABORT:
        if first.killed:
            problems.append("run 1 did not stop within the abort grace period")
        elif runs[0].closed_as != CLOSE_ABORTED or first.returncode != ExitCode.OK:
            problems.append(f"run 1 closed as {runs[0].closed_as} ({first.returncode})")
    last, last_outcome = runs[-1], outcomes[-1]
    finished = last.closed_as in FINISHED_REASONS and last_outcome.returncode == ExitCode.OK
    if not last_outcome.killed and not finished:
        problems.append(
            f"the last run closed as {last.closed_as} with exit status {last_outcome.returncode}"
        )
    if report.dataset_duplicates:
        problems.append(f"{report.dataset_duplicates:,} items are in the dataset twice")
    if mode == Mode.OVERLOAD and not report.stats.get(stats_keys.THROTTLE_EPISODES):
        problems.append("the crawl did not slow down (actor_events/throttle/episodes is 0)")
    return problems


def format_report(report: RehearsalReport) -> str:
    width = 22
    cols = [f"run {n}" for n in range(1, len(report.runs) + 1)]

    def row(label: str, *values: object) -> str:
        return f"  {label:<{width}}" + "".join(f"{v!s:>12}" for v in values)

    lines = [f"Rehearsal: {report.trigger}", row("", *cols)]
    lines.append(row("pages fetched", *(f"{r.pages:,}" for r in report.runs)))
    lines.append(row("exit", *(r.exit for r in report.runs)))
    lines.append(row("closed as", *(r.closed_as or "-" for r in report.runs)))
    restored = "-" if report.requests_restored is None else f"{report.requests_restored:,}"
    if len(report.runs) > 1:
        lines.append(row("requests restored", *([""] * (len(report.runs) - 1)), restored))
    if report.pages_per_second:
        rates = report.pages_per_second
        lines.append(row("pages/s before/during", f"{rates['before']:g}/{rates['during']:g}"))
    for key, value in sorted(report.stats.items()):
        lines.append(row(key.removeprefix(stats_keys.PREFIX), value))
    if report.checkpoints is not None:
        lines.append(row("checkpoints written", report.checkpoints))
    lines.append(row("pages fetched twice", f"{report.fetched_twice:,}"))
    lines.append(row("pages lost", f"{len(report.lost):,}"))
    lines.append(row("distinct pages fetched", f"{report.distinct_pages:,}"))
    if report.dataset_items is None:
        lines.append(row("items in the dataset", "- (none written)"))
    else:
        lines.append(row("items in the dataset", f"{report.dataset_items:,}"))
        lines.append(row("items there twice", f"{report.dataset_duplicates:,}"))
    lines.append(f"  {'verdict':<{width}}  {report.verdict}")
    for url in report.lost[:10]:
        lines.append(f"    lost: {url}")
    if len(report.lost) > 10:
        lines.append(f"    ... and {len(report.lost) - 10:,} more")
    lines.append(f"  storage, logs and the download log: {report.storage}")
    return "\n".join(lines)
