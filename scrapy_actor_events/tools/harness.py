"""Run a crawl in a process of its own, kill it the way the platform does, run it again.

The one harness behind ``demo``, ``rehearse``, the tests and the chaos runs: an
environment without the platform's variables (a crawl under test must checkpoint where it is told,
not to a store a developer's shell points at), a process that is SIGKILLed the moment a condition
holds, with its output kept, and the local events server in a process of its own to drive it.
(The site it crawls is :class:`~.site.DemoSite`.)
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

#: Variables of the platform (and of this package) that a crawl under test must not inherit.
PLATFORM_PREFIXES = ("APIFY_", "ACTOR_", "CRAWLEE_")
#: Platform variables a caller's shell may set on purpose for the crawls it starts.
PASSED_ON = ("APIFY_PERSIST_STATE_INTERVAL_MILLIS", "CRAWLEE_PERSIST_STATE_INTERVAL_MILLIS")
POLL_SECONDS = 0.005


def crawl_environment(
    storage: str | os.PathLike[str],
    *,
    pythonpath: Sequence[str | os.PathLike[str]] = (),
    base: Mapping[str, str] | None = None,
    **extra: str,
) -> dict[str, str]:
    """``base`` (the process's environment) without the platform's variables, checkpointing to
    the local storage ``storage``, with ``pythonpath`` first on the path and ``extra`` on top."""
    source = os.environ if base is None else base
    env = {k: v for k, v in source.items() if not k.startswith(PLATFORM_PREFIXES)}
    env.update({k: source[k] for k in PASSED_ON if k in source})
    paths = [str(p) for p in pythonpath] + (
        [source["PYTHONPATH"]] if "PYTHONPATH" in source else []
    )
    if paths:
        env["PYTHONPATH"] = os.pathsep.join(paths)
    env.update(APIFY_LOCAL_STORAGE_DIR=str(storage), PYTHONUNBUFFERED="1")
    env.update(extra)
    return env


def scrapy_command(*args: str) -> list[str]:
    """``scrapy crawl ARGS`` with this interpreter."""
    return [sys.executable, "-m", "scrapy", "crawl", *args]


@dataclass
class CrawlRun:
    """One process of a crawl, as the harness saw it."""

    returncode: int
    killed: bool
    timed_out: bool
    seconds: float
    stdout: str = ""
    stderr: str = ""


class _Reader(threading.Thread):
    """Collects a pipe's lines (and hands each to ``on_line``) until it closes."""

    def __init__(self, stream: IO[str], on_line: Callable[[str], None] | None) -> None:
        super().__init__(daemon=True)
        self.stream = stream
        self.on_line = on_line
        self.lines: list[str] = []

    def run(self) -> None:
        for line in self.stream:
            self.lines.append(line)
            if self.on_line is not None:
                self.on_line(line)


def run_crawl(
    command: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: str | os.PathLike[str] | None = None,
    kill_when: Callable[[], bool] | None = None,
    timeout: float = 600.0,
    output: str | os.PathLike[str] | int | None = None,
    on_line: Callable[[str], None] | None = None,
    poll: float = POLL_SECONDS,
) -> CrawlRun:
    """Run ``command``; SIGKILL it as soon as ``kill_when()`` is true, or after ``timeout``.

    ``kill_when`` is called every ``poll`` seconds while the process runs (it may act too: send an
    event, count pages). Output: with ``output=None`` stdout and stderr are captured (stderr
    line by line, each line also to ``on_line``); a path or a file descriptor takes both instead.
    """
    started = time.monotonic()
    readers: list[_Reader] = []
    killed = timed_out = False
    with contextlib.ExitStack() as stack:
        if output is None:
            streams: dict[str, Any] = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE}
        else:
            target = (
                output if isinstance(output, int) else stack.enter_context(Path(output).open("wb"))
            )
            streams = {"stdout": target, "stderr": subprocess.STDOUT}
        proc = stack.enter_context(
            subprocess.Popen(list(command), cwd=cwd, env=dict(env), text=output is None, **streams)
        )
        if output is None:
            assert proc.stderr is not None
            assert proc.stdout is not None
            readers = [_Reader(proc.stderr, on_line), _Reader(proc.stdout, None)]
            for reader in readers:
                reader.start()
        while proc.poll() is None:
            if time.monotonic() - started > timeout:
                timed_out = True
            elif kill_when is None or not kill_when():
                time.sleep(poll)
                continue
            proc.send_signal(signal.SIGKILL)
            killed = True
            break
        returncode = proc.wait()
        for reader in readers:
            reader.join(timeout=10)
    err, out = (readers[0].lines, readers[1].lines) if readers else ([], [])
    return CrawlRun(
        returncode=returncode,
        killed=killed,
        timed_out=timed_out,
        seconds=time.monotonic() - started,
        stdout="".join(out),
        stderr="".join(err),
    )


# -- the events server, in a process of its own --------------------------------------------


class EventsServerError(RuntimeError):
    """The events server child process could not start or is gone."""


#: ``scrapy-actor-events events`` on any free port.
SERVER_COMMAND = (sys.executable, "-m", "scrapy_actor_events", "events", "--port", "0")


class EventsServerProcess:
    """An events server in a child process, driven through its stdin, its report lines read with
    their arrival times: for ``rehearse`` and the tests (the crawl they drive runs Twisted's
    reactor, they do not). Any server that speaks the commands and reports of
    ``scrapy-actor-events events`` will do (``command``)."""

    def __init__(
        self,
        command: Sequence[str] = SERVER_COMMAND,
        *,
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float = 20.0,
    ) -> None:
        self.proc = subprocess.Popen(
            list(command),
            cwd=cwd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**(os.environ if env is None else env), "PYTHONUNBUFFERED": "1"},
        )
        self.lines: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()
        try:
            self.url = self.wait_for(r"^listening (\S+)", timeout).group(1)
        except EventsServerError:
            self.close()
            raise

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._lock:
                self.lines.append((time.monotonic(), line.rstrip("\n")))

    def wait_for(self, pattern: str, timeout: float = 20.0, after: int = 0) -> re.Match[str]:
        """The first report line from the ``after``-th on that matches ``pattern``."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                for _, line in self.lines[after:]:
                    if match := regex.search(line):
                        return match
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise EventsServerError(
                    f"The local events server said no line matching {pattern!r}: {self.text()!r}"
                )
            time.sleep(0.01)

    def matching(self, pattern: str) -> list[tuple[float, str]]:
        regex = re.compile(pattern)
        with self._lock:
            return [(t, line) for t, line in self.lines if regex.search(line)]

    def connections(self) -> int:
        """How many connections the server has accepted so far."""
        return len(self.matching(r"^open "))

    def text(self) -> str:
        with self._lock:
            return "\n".join(line for _, line in self.lines)

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
        except OSError as exc:
            raise EventsServerError(f"The local events server is gone ({exc})") from None

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send("quit")
                self.proc.wait(timeout=5)
            except (EventsServerError, subprocess.TimeoutExpired):
                self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()

    def __enter__(self) -> EventsServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
