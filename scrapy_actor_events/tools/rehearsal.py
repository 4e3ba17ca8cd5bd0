"""``scrapy-actor-events rehearse``: a platform migration (or abort, or CPU overload) on your desk.

It serves the Actor events socket on 127.0.0.1 (``scrapy-actor-events events`` in a child
process), runs the crawl command with ``ACTOR_EVENTS_WEBSOCKET_URL`` pointing at it, sends the
event after some seconds or pages, and then does what the platform does:

* ``migrate``: ``migrating`` with ``timeRemainingSecs``, then SIGKILL when the time is up; the
  crawl runs again on the same storage until it ends.
* ``abort``: ``aborting``; the crawl should stop and exit 0 (SIGKILL after the grace period the
  platform gives, 30 s); then it runs again (a resurrected run) until it ends.
* ``overload``: ``systemInfo`` events saying the CPU is overloaded, every second for a while, then
  saying it is not; one run, to its end.

Pages are counted from the crawl's download log (``ACTOR_EVENTS_DOWNLOAD_LOG``, see
:mod:`.download_log`), so any spider can be rehearsed, on any site. Checkpoints go to a local
storage directory of their own.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from ..download_log import FETCHED
from ..exit_codes import ExitCode
from .events_server import event_message, system_info
from .harness import EventsServerError, EventsServerProcess, crawl_environment, run_crawl

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable

logger = logging.getLogger(__name__)


class Mode(StrEnum):
    MIGRATE = "migrate"
    ABORT = "abort"
    OVERLOAD = "overload"


#: What the progress line says once the event is sent, per mode.
_COUNTDOWN = {
    Mode.MIGRATE: "migrating sent, SIGKILL",
    Mode.ABORT: "aborting sent, SIGKILL",
    Mode.OVERLOAD: "CPU overloaded, clears",
}


#: How often the rehearsal looks at the crawl (and rewrites the progress line).
_POLL_SECONDS = 0.05


class RehearsalError(Exception):
    """The rehearsal could not run as asked; the message says why and what to do."""


@dataclass
class RehearsalOptions:
    command: list[str]
    storage: Path
    mode: Mode = Mode.MIGRATE
    after_seconds: float | None = None
    after_pages: int | None = None
    time_remaining: float = 5.0
    abort_grace: float = 30.0
    overload_seconds: float = 10.0
    timeout: float = 600.0
    cwd: Path | None = None
    verbose: bool = False


@dataclass
class RunOutcome:
    """One process of the crawl, as the rehearsal saw it."""

    number: int
    returncode: int | None = None
    killed: bool = False
    seconds: float = 0.0
    event_sent: bool = False
    connected: bool = False
    log_path: Path | None = None
    timed_out: bool = False


@dataclass
class Rehearsal:
    options: RehearsalOptions
    runs: list[RunOutcome] = field(default_factory=list)
    download_log: Path | None = None
    overload_window: tuple[float, float] | None = None


class PageCounter:
    """Counts ``fetched`` lines of the download log as they are appended."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.pages = 0
        self._offset = 0

    def update(self) -> int:
        try:
            with self.path.open("rb") as handle:
                handle.seek(self._offset)
                data = handle.read()
        except FileNotFoundError:
            return self.pages
        end = data.rfind(b"\n") + 1  # a line still being written is read next time
        self._offset += end
        self.pages += data[:end].count(b'"event":"%s"' % FETCHED.encode())
        return self.pages


def _system_info(overloaded: bool) -> str:
    """A ``systemInfo`` event in the platform's full shape, as a ``raw`` command: any events
    server that speaks the commands of ``scrapy-actor-events events`` sends it as it is."""
    return "raw " + event_message("systemInfo", system_info(overloaded)).decode()


class Rehearser:
    """Runs the rehearsal; ``progress`` gets a status line about twice a second."""

    def __init__(self, options: RehearsalOptions, progress: Callable[[str], None]) -> None:
        if options.mode not in set(Mode):
            raise RehearsalError(f"mode must be one of {', '.join(Mode)}")
        if not options.command:
            raise RehearsalError("Give the crawl command after --, e.g. -- scrapy crawl myspider")
        if shutil.which(options.command[0]) is None and not os.path.exists(options.command[0]):
            raise RehearsalError(f"Command not found: {options.command[0]}")
        self.options = options
        self.progress = progress
        self.result = Rehearsal(options)

    def run(self) -> Rehearsal:
        options = self.options
        for kind in ("key_value_stores", "datasets"):
            stores = options.storage / kind
            if stores.exists() and any(stores.iterdir()):
                raise RehearsalError(
                    f"{options.storage} already holds {kind.replace('_', '-')}; a rehearsal"
                    " starts from an empty storage directory (its first run must not resume an"
                    " older checkpoint, and its dataset must hold only its items)."
                )
        options.storage.mkdir(parents=True, exist_ok=True)
        log = options.storage / "rehearsal-downloads.jsonl"
        log.unlink(missing_ok=True)
        self.result.download_log = log
        try:
            server = EventsServerProcess()
        except EventsServerError as exc:
            raise RehearsalError(str(exc)) from None
        try:
            env = crawl_environment(
                options.storage,
                ACTOR_EVENTS_WEBSOCKET_URL=server.url,
                ACTOR_EVENTS_DOWNLOAD_LOG=str(log),
            )
            counter = PageCounter(log)
            first = self._run(1, env, server, counter, send_event=True)
            if not first.event_sent:
                raise RehearsalError(
                    "The crawl ended before the rehearsal sent its event"
                    + ("" if first.connected else " (it never connected to the events socket:"
                       " is ActorEventsExtension in EXTENSIONS?)")
                    + f". Exit status {first.returncode}; its log: {first.log_path}."
                    " Try a smaller --after or --after-pages."
                )  # fmt: skip
            if options.mode != Mode.OVERLOAD:
                self._run(2, env, server, counter, send_event=False)
        finally:
            server.close()
        return self.result

    def _run(
        self,
        number: int,
        env: dict[str, str],
        server: EventsServerProcess,
        counter: PageCounter,
        send_event: bool,
    ) -> RunOutcome:
        options = self.options
        log_path = options.storage / f"rehearsal-run-{number}.log"
        outcome = RunOutcome(number, log_path=log_path)
        self.result.runs.append(outcome)
        connections_before = server.connections()
        pages_before = counter.update()
        started = time.monotonic()
        # Of the kill (migrate, abort) or of the overload's end, once the event is sent.
        deadline: float | None = None
        next_tick = 0.0

        def act() -> bool:
            """Every few ms while the crawl runs: send the event, time the kill, show progress."""
            nonlocal deadline, next_tick
            now = time.monotonic()
            pages = counter.update() - pages_before
            outcome.connected = outcome.connected or server.connections() > connections_before
            kill = False
            if send_event and not outcome.event_sent and outcome.connected:
                if self._due(now - started, pages):
                    deadline = self._send_event(server, now)
                    outcome.event_sent = True
                    next_tick = now
            elif deadline is not None and now >= deadline:
                if options.mode == Mode.OVERLOAD:
                    self._end_overload(now)
                    deadline = None
                else:
                    kill = True
            if now >= next_tick:
                if options.mode == Mode.OVERLOAD and outcome.event_sent:
                    # Every second, as the platform does: overloaded, then clear again.
                    server.send(_system_info(deadline is not None))
                next_tick = now + 1.0
            self.progress(self._status(outcome, pages, now - started, deadline, now))
            return kill

        run = run_crawl(
            options.command,
            env=env,
            cwd=options.cwd,
            kill_when=act,
            timeout=options.timeout,
            poll=_POLL_SECONDS,
            output=sys.stderr.fileno() if options.verbose else log_path,
        )
        outcome.returncode = run.returncode
        outcome.killed = run.killed
        outcome.timed_out = run.timed_out
        if deadline is not None and options.mode == Mode.OVERLOAD:
            self._end_overload(time.monotonic())
        outcome.seconds = run.seconds
        counter.update()
        self.progress("")
        return outcome

    def _due(self, seconds: float, pages: int) -> bool:
        o = self.options
        if o.after_pages is not None and pages >= o.after_pages:
            return True
        after = o.after_seconds if o.after_seconds is not None else 10.0
        return o.after_pages is None and seconds >= after

    def _send_event(self, server: EventsServerProcess, now: float) -> float:
        o = self.options
        if o.mode == Mode.MIGRATE:
            server.send(f"migrating {o.time_remaining:g}")
            return now + o.time_remaining
        if o.mode == Mode.ABORT:
            server.send("aborting")
            return now + o.abort_grace
        self.result.overload_window = (time.time(), time.time() + o.overload_seconds)
        return now + o.overload_seconds

    def _end_overload(self, now: float) -> None:
        window = self.result.overload_window
        if window is not None and window[1] > time.time():
            self.result.overload_window = (window[0], time.time())

    def _status(
        self, outcome: RunOutcome, pages: int, seconds: float, deadline: float | None, now: float
    ) -> str:
        line = f"run {outcome.number}: {pages:,} pages in {seconds:.0f} s"
        if not outcome.connected:
            return line + ", waiting for the crawl to connect to the events socket"
        if deadline is None:
            return line + (", event sent" if outcome.event_sent else "")
        left = max(0.0, deadline - now)
        return f"{line}, {_COUNTDOWN[self.options.mode]} in {left:.1f} s"


# -- the command ------------------------------------------------------------------------------


class _ProgressLine:
    """One status line on a terminal (rewritten in place); a line every 5 s otherwise."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self._width = 0
        self._last = 0.0

    def __call__(self, line: str) -> None:
        if self.tty:
            sys.stderr.write("\r" + line.ljust(self._width) + ("\n" if not line else ""))
            sys.stderr.flush()
            self._width = 0 if not line else max(self._width, len(line))
        elif line and time.monotonic() - self._last >= 5:
            self._last = time.monotonic()
            print(line, file=sys.stderr, flush=True)


def rehearse_command(args: argparse.Namespace) -> int:
    from .rehearsal_report import build_report, format_report

    command = list(args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    storage = Path(
        args.storage or tempfile.mkdtemp(prefix="scrapy-actor-events-rehearsal-")
    ).resolve()
    options = RehearsalOptions(
        command=command,
        storage=storage,
        mode=Mode(args.mode),
        after_seconds=args.after,
        after_pages=args.after_pages,
        time_remaining=args.time_remaining,
        abort_grace=args.abort_grace,
        overload_seconds=args.overload_seconds,
        timeout=args.timeout,
        verbose=args.verbose,
    )
    try:
        rehearser = Rehearser(options, _ProgressLine())
        if not args.json:
            print(f"Rehearsing {args.mode} on: {' '.join(command)}")
            print(f"  storage: {storage}")
        rehearsal = rehearser.run()
    except RehearsalError as exc:
        print(f"scrapy-actor-events: {exc}", file=sys.stderr)
        return ExitCode.CHECK_FAILED
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr)
        return ExitCode.CHECK_FAILED
    report = build_report(rehearsal)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print(format_report(report))
    return ExitCode.OK if report.ok else ExitCode.CHECK_FAILED
