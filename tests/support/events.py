"""Events servers for tests, as subprocesses: the package's (Autobahn) or the `websockets` one."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SERVERS = {
    "autobahn": [sys.executable, "-m", "scrapy_actor_events", "events", "--port", "0"],
    "websockets": [sys.executable, "-m", "tests.servers.ws_events_server", "0"],
}


class EventsServerProcess:
    """Start an events server, send it commands, read what it reports (with arrival times)."""

    def __init__(self, kind: str = "autobahn", extra_args: list[str] | None = None) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [*SERVERS[kind], *(extra_args or [])],
            cwd=ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()
        self.url = self.wait_for(r"listening (\S+)").group(1)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._lock:
                self.lines.append((time.monotonic(), line.rstrip("\n")))

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def wait_for(self, pattern: str, timeout: float = 20.0, after: int = 0) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while time.monotonic() < deadline:
            with self._lock:
                for _, line in self.lines[after:]:
                    if match := regex.search(line):
                        return match
            if self.proc.poll() is not None:
                break
            time.sleep(0.01)
        stderr = (
            self.proc.stderr.read() if self.proc.poll() is not None and self.proc.stderr else ""
        )
        raise AssertionError(f"no line matching {pattern!r} in {self.text()!r} {stderr}")

    def matching(self, pattern: str) -> list[tuple[float, str]]:
        regex = re.compile(pattern)
        with self._lock:
            return [(t, line) for t, line in self.lines if regex.search(line)]

    def text(self) -> str:
        with self._lock:
            return "\n".join(line for _, line in self.lines)

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.send("quit")
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
        self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> EventsServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
