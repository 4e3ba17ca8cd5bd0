"""``scrapy-actor-events inspect`` and ``clear``: look into a store's checkpoints, delete one.

The store is chosen as the extension chooses it: from the platform's environment variables
(``APIFY_TOKEN``, ``APIFY_IS_AT_HOME``, ``ACTOR_DEFAULT_KEY_VALUE_STORE_ID``,
``APIFY_LOCAL_STORAGE_DIR``...) and, when run inside a Scrapy project, its settings; options and
``-s NAME=VALUE`` override them.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any

from scrapy.settings import Settings

from ..checkpoint.format import UnreadableCheckpoint
from ..config import Config
from ..exit_codes import FINISHED_REASONS, ExitCode
from ..store import build_store
from ..store.base import KEY_RULE, StoreError, is_valid_key
from .inspection import delete_checkpoint, list_checkpoints, read_report, records_of

if TYPE_CHECKING:
    import argparse
    from collections.abc import Awaitable, Callable

    from ..store.base import KeyValueStore
    from .inspection import CheckpointReport, ListedCheckpoint

logger = logging.getLogger(__name__)


class CommandError(Exception):
    """Ends a command with a message on stderr and an exit code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


# -- the store --------------------------------------------------------------------------------


def load_settings(args: argparse.Namespace) -> Settings:
    """The Scrapy project's settings (if run inside one), then the command's options."""
    from scrapy.utils.conf import closest_scrapy_cfg

    settings = Settings()
    if closest_scrapy_cfg():
        from scrapy.utils.project import get_project_settings

        try:
            settings = get_project_settings()
        except Exception as exc:
            raise CommandError(
                ExitCode.USAGE, f"Cannot load the Scrapy project's settings: {exc}"
            ) from None
    for item in getattr(args, "set", None) or []:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise CommandError(ExitCode.USAGE, f"-s takes NAME=VALUE, got {item!r}")
        settings.set(name, value, priority="cmdline")
    for option, setting in (
        ("storage_dir", "ACTOR_EVENTS_STORAGE_DIR"),
        ("store_id", "ACTOR_EVENTS_STORE_ID"),
        ("store", "ACTOR_EVENTS_STORE"),
    ):
        value = getattr(args, option, None)
        if value:
            settings.set(setting, value, priority="cmdline")
    return settings


def open_store(args: argparse.Namespace) -> tuple[KeyValueStore, Config]:
    try:
        config = Config.from_settings(load_settings(args))
        return build_store(config.store), config
    except ValueError as exc:
        raise CommandError(ExitCode.STORE_UNAVAILABLE, str(exc)) from None


def run_with_store(
    args: argparse.Namespace, command: Callable[[KeyValueStore, Config], Awaitable[int]]
) -> int:
    """Open the store, run ``command`` on an asyncio loop, close the store; map errors to codes."""

    key = getattr(args, "key", None)
    if key is not None and not is_valid_key(key):
        print(
            f"scrapy-actor-events: {key!r} is not a key-value store key ({KEY_RULE})",
            file=sys.stderr,
        )
        return ExitCode.USAGE

    async def run() -> int:
        store, config = open_store(args)
        failure: CommandError | None = None
        code = int(ExitCode.OK)
        # Failures are raised after the except blocks: an exception raised inside one would keep
        # the store's exception, its traceback and through it the HTTP client alive until the
        # interpreter exits, and impit's client aborts the process if it is freed that late.
        try:
            code = await command(store, config)
        except UnreadableCheckpoint as exc:
            failure = CommandError(
                ExitCode.UNREADABLE,
                f"Checkpoint {exc.key} in {store.describe()} is unreadable: {exc.reason}."
                f" A crawl will not resume from it; delete it with"
                f" `scrapy-actor-events clear {exc.key}`.",
            )
        except (StoreError, OSError) as exc:
            failure = CommandError(
                ExitCode.STORE_UNAVAILABLE, f"Cannot use {store.describe()}: {exc}"
            )
        finally:
            await store.close()
            del store
            gc.collect()
        if failure is not None:
            raise failure
        return code

    try:
        return asyncio.run(run())
    except CommandError as exc:
        print(f"scrapy-actor-events: {exc}", file=sys.stderr)
        return exc.code


# -- inspect ----------------------------------------------------------------------------------


def inspect_command(args: argparse.Namespace) -> int:
    async def command(store: KeyValueStore, config: Config) -> int:
        key = args.key
        if key is None:
            listed = await list_checkpoints(store)
            if len(listed) != 1:
                return _print_listing(store, listed, args.json)
            key = listed[0].key
        report = await read_report(store, key, config.checkpoint.upload_concurrency)
        if report is None:
            raise CommandError(ExitCode.NO_CHECKPOINT, await _missing(store, key))
        if args.json:
            print(json.dumps({"store": store.describe(), **report.to_json()}, indent=2))
        else:
            print(format_report(report, store.describe()))
        return ExitCode.OK

    return run_with_store(args, command)


async def _missing(store: KeyValueStore, key: str) -> str:
    others = [c.key for c in await list_checkpoints(store)]
    found = f" Checkpoints there: {', '.join(others)}." if others else " It holds no checkpoint."
    return f"No checkpoint under {key} in {store.describe()}.{found}"


def _print_listing(store: KeyValueStore, listed: list[ListedCheckpoint], as_json: bool) -> int:
    if as_json:
        rows = [_listing_json(c) for c in listed]
        print(json.dumps({"store": store.describe(), "checkpoints": rows}, indent=2))
    elif listed:
        print(f"Checkpoints in {store.describe()}:")
        print(f"  {'key':<32} {'spider':<16} {'gen':>5}  {'saved':<19}  {'size':>9}  stopped")
        for c in listed:
            m = c.manifest
            if m is None:
                print(f"  {c.key:<32} unreadable: {c.error}")
                continue
            print(
                f"  {c.key:<32} {m.spider:<16} {m.generation:>5}  {_when(m.created_at):<19}"
                f"  {_size(m.stored_size):>9}  {m.close_reason or '(running or killed)'}"
            )
        print("Look inside one with `scrapy-actor-events inspect KEY`.")
    if not listed:
        if not as_json:
            print(f"No checkpoints in {store.describe()}.", file=sys.stderr)
        return ExitCode.NO_CHECKPOINT
    return ExitCode.OK


def _listing_json(c: ListedCheckpoint) -> dict[str, Any]:
    m = c.manifest
    if m is None:
        return {"key": c.key, "readable": False, "error": c.error}
    return {
        "key": c.key,
        "readable": True,
        "spider": m.spider,
        "generation": m.generation,
        "created_at": m.created_at,
        "close_reason": m.close_reason,
        "stored_bytes": m.stored_size,
        "summary": m.summary,
    }


def _when(iso: str) -> str:
    try:
        return datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return iso


def _size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def _stopped(report: CheckpointReport) -> str:
    reason = report.close_reason
    if reason is None:
        return (
            f"not closed: taken while the crawl ran ({report.trigger}); it was killed, or runs"
            " still. The next run resumes from it."
        )
    if reason in FINISHED_REASONS:
        return "closed (finished). The next run starts a new crawl (ACTOR_EVENTS_RESUME=auto)."
    return f"closed ({reason}). The next run resumes from it."


def format_report(report: CheckpointReport, where: str) -> str:
    r = report
    lines = [
        f"Checkpoint {r.key} in {where}",
        f"  spider          {r.spider}",
        f"  saved           {_when(r.created_at)} UTC, generation {r.generation} ({r.trigger})",
        f"  crawl stopped   {_stopped(r)}",
        f"  requests        {r.requests:,} ({r.pending:,} pending, {r.in_flight:,} in flight)",
        f"  seen            {r.seen:,} request fingerprints",
        f"  size            {_size(r.stored_bytes)} in {_n(r.chunks, 'chunk record')}"
        f" ({_n(r.segments, 'segment')}), manifest {_size(r.manifest_bytes)}",
        f"  start()         {_n(r.start_requests_read, 'start request')} read"
        + (", all of them" if r.start_done else ""),
        f"  elapsed         {r.elapsed_seconds:,.1f} s over all runs",
        f"  items           {_items(r)}",
    ]
    if r.top_domains:
        lines.append("  top domains")
        lines += [f"    {d:<40} {n:>9,}" for d, n in r.top_domains]
    if r.top_priorities:
        lines.append("  priorities")
        lines += [f"    {p:<40} {n:>9,}" for p, n in r.top_priorities]
    if r.main_stats:
        lines.append("  stats")
        lines += [f"    {k:<40} {_value(v)}" for k, v in r.main_stats.items()]
    lines.append(f"  spider.state    {_n(len(r.spider_state), 'key')}")
    lines += [f"    {k!s:<40} {_value(v)}" for k, v in sorted(r.spider_state.items(), key=str)]
    return "\n".join(lines)


def _items(r: CheckpointReport) -> str:
    if r.items_dataset is None:
        return "not kept: no item journal (items went to no dataset when it was written)"
    return (
        f"{_n(r.items_buffered, 'item')} buffered in the checkpoint (pushed once it landed);"
        f" {r.items_committed:,} committed to dataset {r.items_dataset}"
        f" (the next ones from offset {r.items_offset:,} on)"
    )


def _n(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def _value(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    text = repr(value)
    return text if len(text) <= 60 else f"{type(value).__name__} ({len(text):,} characters)"


# -- clear ------------------------------------------------------------------------------------


def clear_command(args: argparse.Namespace) -> int:
    async def command(store: KeyValueStore, config: Config) -> int:
        key = args.key
        has_manifest, chunks, aside = await records_of(store, key)
        if not has_manifest and not chunks:
            raise CommandError(ExitCode.NO_CHECKPOINT, await _missing(store, key))
        what = f"checkpoint {key} ({len(chunks)} chunk records) from {store.describe()}"
        if not args.yes:
            if not sys.stdin.isatty():
                raise CommandError(
                    ExitCode.USAGE, f"Not deleting {what}: add --yes to delete without asking."
                )
            answer = input(f"Delete {what}? [y/N] ").strip().lower()
            if answer not in {"y", "yes"}:
                print("Nothing deleted.")
                return ExitCode.OK
        await delete_checkpoint(store, key, chunks, config.checkpoint.upload_concurrency)
        print(f"Deleted {what}.")
        if aside:
            print(f"Kept {len(aside)} copies set aside as unreadable: {', '.join(aside)}.")
        return ExitCode.OK

    return run_with_store(args, command)
