"""The example project as an Actor: ``python -m example`` (what ``apify run`` and the image run),
its ``actor.json`` and its image, which installs this package from the repository it sits in."""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import sys
import time
from typing import TYPE_CHECKING

from scrapy_actor_events.exit_codes import ExitCode
from scrapy_actor_events.tools.harness import run_crawl
from scrapy_actor_events.tools.site import DemoSite

from ..support.crawling import EXAMPLE_PROJECT, ROOT, subprocess_env
from ..support.events import start_events_server

if TYPE_CHECKING:
    from pathlib import Path

EXAMPLE = [sys.executable, "-m", "example"]
KEY = "SCRAPY_STATE_links"


def actor_json() -> dict:
    return json.loads((EXAMPLE_PROJECT / ".actor" / "actor.json").read_text())


def test_the_shell_sets_the_start_url_and_the_image_builds_from_the_repository() -> None:
    actor = actor_json()
    # actor.json's environmentVariables override the shell's under `apify run`.
    assert "START_URL" not in actor.get("environmentVariables", {})
    context = (EXAMPLE_PROJECT / ".actor" / actor["dockerContextDir"]).resolve()
    assert context == ROOT, "the build context holds the package's source"
    dockerfile = (EXAMPLE_PROJECT / ".actor" / actor["dockerfile"]).resolve()
    assert dockerfile == EXAMPLE_PROJECT / "Dockerfile"
    copied = []
    for line in dockerfile.read_text().splitlines():
        if line.startswith("COPY "):
            copied += [w for w in shlex.split(line)[1:-1] if not w.startswith("--")]
    assert copied, "the Dockerfile copies the package and the project"
    for source in copied:
        assert (context / source).exists(), f"COPY {source}: not in the build context"
    assert any(source.rstrip("/") == "scrapy_actor_events" for source in copied)
    requirements = (EXAMPLE_PROJECT / "requirements.txt").read_text().splitlines()
    assert not [r for r in requirements if r.startswith("scrapy-actor-events")], (
        "no release is on a registry: the image installs the package from the repository"
    )
    assert 'CMD ["python", "-m", "example"]' in dockerfile.read_text()


def test_python_m_example_crawls_the_start_url_from_the_environment(storage: Path) -> None:
    with DemoSite(pages=20) as site:
        env = subprocess_env(storage, START_URL=f"{site.url}/p/0")
        run = run_crawl(EXAMPLE, env=env, cwd=EXAMPLE_PROJECT, timeout=120)
        fetched = set(site.log.counts())
    assert run.returncode == 0, run.stderr[-3000:]
    assert fetched == {f"/p/{n}" for n in range(20)}
    manifest = json.loads((storage / "key_value_stores" / "default" / KEY).read_text())
    assert manifest["close_reason"] == "finished"


def test_python_m_example_reads_the_start_url_from_the_actor_input(storage: Path) -> None:
    with DemoSite(pages=5) as site, DemoSite(pages=5) as elsewhere:
        inputs = storage / "key_value_stores" / "default"
        inputs.mkdir(parents=True)
        (inputs / "INPUT.json").write_text(json.dumps({"startUrl": f"{site.url}/p/0"}))
        env = subprocess_env(storage, START_URL=f"{elsewhere.url}/p/0")
        run = run_crawl(EXAMPLE, env=env, cwd=EXAMPLE_PROJECT, timeout=120)
        assert run.returncode == 0, run.stderr[-3000:]
        assert set(site.log.counts()) == {f"/p/{n}" for n in range(5)}
        assert not elsewhere.log.counts(), "the input wins over START_URL"


def test_python_m_example_exits_with_the_crawl_s_exit_code(storage: Path) -> None:
    folder = storage / "key_value_stores" / "default"
    folder.mkdir(parents=True)
    (folder / KEY).write_bytes(b"{not a checkpoint")
    env = subprocess_env(storage, START_URL="http://127.0.0.1:9/")
    run = run_crawl(EXAMPLE, env=env, cwd=EXAMPLE_PROJECT, timeout=120)
    assert run.returncode == ExitCode.UNREADABLE, run.stderr[-3000:]
    assert "is unreadable" in run.stderr


def test_a_sigterm_during_a_migration_exits_4_under_python_m_example(storage: Path) -> None:
    with DemoSite(pages=300, delay=0.05) as site, start_events_server() as server:
        env = subprocess_env(
            storage, START_URL=f"{site.url}/p/0", ACTOR_EVENTS_WEBSOCKET_URL=server.url
        )
        sent: list[float] = []

        def migrate_then_terminate() -> bool:
            if not sent and len(site.log) >= 20:
                server.send("migrating 30")
                sent.append(time.monotonic())
            elif sent and time.monotonic() - sent[0] > 1.0:
                return True
            return False

        # The harness SIGKILLs; a SIGTERM (what the platform and `apify run` send) is wanted here.
        proc = subprocess.Popen(
            EXAMPLE, cwd=EXAMPLE_PROJECT, env=env, stderr=subprocess.PIPE, text=True
        )
        server.wait_for(r"^open 1 ")
        deadline = time.monotonic() + 60
        while not migrate_then_terminate() and time.monotonic() < deadline:
            time.sleep(0.01)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == ExitCode.STOPPED_DURING_MIGRATION, stderr[-3000:]
    assert "during a migration: exiting with code 4" in stderr
