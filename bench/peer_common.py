"""What the peer benchmarks share: the contenders, one crawl in a subprocess, a redis-server."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .common import ROOT

if TYPE_CHECKING:
    from collections.abc import Iterator

LABELS = {
    "plain": "plain Scrapy",
    "extension": "scrapy-actor-events, checkpoint every 5 s",
    "objects": "scrapy-actor-events, Request objects in the queues (compact off)",
    "jobdir": "Scrapy JOBDIR",
    "redis": "scrapy-redis, SCHEDULER_PERSIST",
    "apify": "Apify SDK ApifyScheduler (local storage)",
}


def peer_versions() -> str:
    redis = redis_binary()
    redis_version = "not installed"
    if redis:
        out = subprocess.run([redis, "--version"], capture_output=True, text=True).stdout
        redis_version = next((w[2:] for w in out.split() if w.startswith("v=")), "?")
    return (
        f"scrapy-redis {version('scrapy-redis')} with redis-server {redis_version} on 127.0.0.1;"
        f" apify {version('apify')} (crawlee {version('crawlee')})"
    )


def _env() -> dict[str, str]:
    # The crawl runs in its work dir (its ./storage, its JOBDIR); bench/ is found through the path.
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def crawl(
    contender: str,
    url: str,
    workdir: str,
    *,
    redis_url: str | None = None,
    settings: dict[str, Any] | None = None,
    **options: Any,
) -> dict[str, Any]:
    """One crawl in its own process, to the end; the child's JSON result."""
    args: dict[str, Any] = {"contender": contender, "url": url, "workdir": workdir}
    args["redis_url"] = redis_url
    args.update(options, settings=settings or {})
    with tempfile.TemporaryFile("w+") as err:
        done = subprocess.run(
            [sys.executable, "-m", "bench.peer_crawl", json.dumps(args)],
            cwd=workdir,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            check=False,
        )
        lines = done.stdout.strip().splitlines()
        if done.returncode or not lines:
            err.seek(0)
            tail = err.read()[-3000:]
            raise RuntimeError(f"{contender} crawl failed ({done.returncode}):\n{tail}")
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def start_crawl(
    contender: str,
    url: str,
    workdir: str,
    log: Path,
    *,
    redis_url: str | None = None,
    **options: Any,
) -> subprocess.Popen[bytes]:
    """A crawl to be killed: started, not waited for."""
    args: dict[str, Any] = {"contender": contender, "url": url, "workdir": workdir}
    args["redis_url"] = redis_url
    args.update(options)
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "bench.peer_crawl", json.dumps(args)],
            cwd=workdir,
            env=_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def tree_bytes(path: Path) -> int:
    """Bytes in the files under ``path`` (or of the file), 0 if missing."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def redis_binary() -> str | None:
    return shutil.which("redis-server")


def ensure_redis() -> str:
    """The path of redis-server; installed with apt-get (Debian's package) when missing."""
    found = redis_binary()
    if found:
        return found
    if not shutil.which("apt-get") or os.geteuid() != 0:
        raise RuntimeError("redis-server is missing: install it (apt-get install redis-server)")
    print("redis-server is missing: installing Debian's package with apt-get...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "redis-server"]
    if subprocess.run(install, env=env, capture_output=True, check=False).returncode:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, check=True)
        subprocess.run(install, env=env, capture_output=True, check=True)
    found = redis_binary()
    if not found:
        raise RuntimeError("apt-get installed redis-server, but it is not on PATH")
    return found


@contextmanager
def redis_server() -> Iterator[tuple[str, int]]:
    """A fresh redis-server on 127.0.0.1 (no snapshots); yield its URL and pid."""
    import redis

    binary = ensure_redis()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", tmp]
        cmd += ["--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"]
        with subprocess.Popen(cmd, stdout=subprocess.DEVNULL) as proc:
            url = f"redis://127.0.0.1:{port}/0"
            client = redis.Redis.from_url(url)
            for _ in range(200):
                try:
                    client.ping()
                    break
                except redis.ConnectionError:
                    time.sleep(0.05)
            try:
                yield url, proc.pid
            finally:
                client.close()
                proc.terminate()
                proc.wait(10)


def redis_memory(url: str, pid: int) -> dict[str, int]:
    """Redis's own peak dataset memory, and the server process's peak RSS (VmHWM)."""
    import redis

    client = redis.Redis.from_url(url)
    info = client.info("memory")
    client.close()
    hwm = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            hwm = int(line.split()[1]) * 1024
    return {"used_memory_peak": int(info["used_memory_peak"]), "rss_peak": hwm}


def mb(value: float) -> str:
    return f"{value / 1e6:,.1f} MB"
