"""``apify run`` (the real Apify CLI 1.10) runs the example project; what it does to checkpoints.

The CLI runs ``python -m example`` with the project's interpreter (``$VIRTUAL_ENV``). The example's
image has no crawlee (its requirements are Scrapy and this package), and then ``apify run`` purges
the default stores itself, checkpoints included, unless given ``--no-purge`` or ``--resurrect``.
With crawlee importable, the CLI only passes ``CRAWLEE_PURGE_ON_START=1`` for the SDK to act on,
and a project without the SDK keeps its checkpoint.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from typing import TYPE_CHECKING

import pytest

from scrapy_actor_events.exit_codes import ExitCode
from scrapy_actor_events.tools.harness import PLATFORM_PREFIXES
from scrapy_actor_events.tools.site import DemoSite

from ..support.apify_cli import apify_cli
from ..support.crawling import EXAMPLE_PROJECT

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.long

KEY = "SCRAPY_STATE_links"
PAGES = 120


@pytest.fixture(scope="module")
def cli() -> Path:
    binary, why = apify_cli()
    if binary is None:
        if "node and npm" in why:
            pytest.skip(why)
        pytest.fail(why)
    return binary


def project_interpreter(tmp_path: Path, with_crawlee: bool) -> Path:
    """A virtual environment's directory for ``$VIRTUAL_ENV``: this test's Python, with crawlee
    hidden unless ``with_crawlee`` (the example's image does not install it)."""
    venv = tmp_path / ("venv-crawlee" if with_crawlee else "venv")
    (venv / "bin").mkdir(parents=True, exist_ok=True)
    path = ""
    if not with_crawlee:
        stub = venv / "hide" / "crawlee"
        stub.mkdir(parents=True, exist_ok=True)
        (stub / "__init__.py").write_text(
            "raise ModuleNotFoundError(\"No module named 'crawlee'\", name='crawlee')\n"
        )
        path = f'PYTHONPATH="{venv / "hide"}${{PYTHONPATH:+:$PYTHONPATH}}" '
    python = venv / "bin" / "python3"
    python.write_text(f'#!/bin/sh\n{path}exec "{sys.executable}" "$@"\n')
    python.chmod(0o755)
    return venv


def _default_sigint() -> None:
    # A process started in the background of a non-interactive shell inherits SIGINT ignored;
    # a terminal's Ctrl+C reaches processes that have it at its default.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class ApifyRun:
    """``apify run`` in a copy of the example project."""

    def __init__(self, cli: Path, tmp_path: Path, site: DemoSite) -> None:
        self.cli = cli
        self.site = site
        self.project = tmp_path / "project"
        shutil.copytree(EXAMPLE_PROJECT, self.project, ignore=shutil.ignore_patterns("storage"))
        home = tmp_path / "home"
        home.mkdir()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(PLATFORM_PREFIXES)}
        self.env.update(
            HOME=str(home),
            APIFY_CLI_DISABLE_TELEMETRY="1",
            APIFY_CLI_SKIP_UPDATE_CHECK="1",
            PYTHONUNBUFFERED="1",
            START_URL=f"{site.url}/p/0",
        )
        self.env.pop("PYTHONPATH", None)
        self.tmp_path = tmp_path

    @property
    def store(self) -> Path:
        return self.project / "storage" / "key_value_stores" / "default"

    def manifest(self) -> dict | None:
        path = self.store / KEY
        return json.loads(path.read_text()) if path.exists() else None

    def __call__(
        self, *flags: str, terminate_after: int | None = None, with_crawlee: bool = False
    ) -> tuple[int, str]:
        """Run ``apify run FLAGS``; press Ctrl+C once the site served ``terminate_after`` more
        pages: SIGINT to the whole process group, as a terminal sends it. Scrapy stops
        gracefully and the checkpoint stays."""
        env = {**self.env, "VIRTUAL_ENV": str(project_interpreter(self.tmp_path, with_crawlee))}
        served = len(self.site.log)
        proc = subprocess.Popen(
            [str(self.cli), "run", *flags],
            cwd=self.project,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,  # its own group, as in a terminal; nothing outlives the test
            preexec_fn=_default_sigint,
        )
        try:
            if terminate_after is not None:
                deadline = time.monotonic() + 60
                while len(self.site.log) - served < terminate_after and proc.poll() is None:
                    assert time.monotonic() < deadline, "the crawl did not start"
                    time.sleep(0.01)
                os.killpg(proc.pid, signal.SIGINT)
            output, _ = proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        return proc.returncode, output


def assert_stopped_by_ctrl_c(code: int, out: str) -> None:
    """The crawl stopped gracefully and saved its checkpoint; the CLI, whose shell between it and
    Python died of the SIGINT, says so and exits 1."""
    assert "Received SIGINT, shutting down gracefully" in out, out[-3000:]
    assert "Spider closed (shutdown)" in out
    assert "exited due to signal SIGINT" in out
    assert code == 1


def test_apify_run_runs_the_example_and_resurrect_keeps_the_checkpoint(
    cli: Path, tmp_path: Path
) -> None:
    with DemoSite(pages=PAGES, delay=0.05) as site:
        apify_run = ApifyRun(cli, tmp_path, site)

        code, out = apify_run(terminate_after=15)
        assert_stopped_by_ctrl_c(code, out)
        assert "-m example" in out
        assert "No checkpoint under SCRAPY_STATE_links: starting a new crawl." in out
        first = apify_run.manifest()
        assert first is not None
        assert first["close_reason"] == "shutdown"

        # Plain `apify run`: without crawlee in the project, the CLI purges the default stores.
        since_purge = len(site.log.hits)
        code, out = apify_run(terminate_after=15)
        assert_stopped_by_ctrl_c(code, out)
        assert "All default local stores were purged" in out
        assert "No checkpoint under SCRAPY_STATE_links: starting a new crawl." in out
        second = apify_run.manifest()
        assert second is not None
        assert second["close_reason"] == "shutdown"
        pages_before = len(site.log.counts())

        # --resurrect (like --no-purge, without its warning) continues the crawl to its end.
        code, out = apify_run("--resurrect")
        assert code == 0, out[-3000:]
        assert "All default local stores were purged" not in out
        assert "Resuming from checkpoint" in out
        final = apify_run.manifest()
        assert final is not None
        assert final["close_reason"] == "finished"
        with site.log.lock:
            fetched = Counter(p for _, p in site.log.hits[since_purge:] if p.startswith("/p/"))
    assert 0 < pages_before < PAGES
    # Since the purge, every page once (the start page twice: start requests are never filtered
    # as duplicates), across the interrupted run and the resurrected one.
    assert set(fetched) == {f"/p/{n}" for n in range(PAGES)}
    assert sum(fetched.values()) == PAGES + 1, fetched.most_common(3)
    assert final["summary"]["stats"]["item_scraped_count"] == PAGES + 1


def test_apify_run_keeps_the_checkpoint_when_crawlee_is_installed(
    cli: Path, tmp_path: Path
) -> None:
    with DemoSite(pages=PAGES, delay=0.05) as site:
        apify_run = ApifyRun(cli, tmp_path, site)
        code, out = apify_run(terminate_after=15, with_crawlee=True)
        assert_stopped_by_ctrl_c(code, out)
        # With crawlee importable the CLI leaves purging to the SDK, which this project lacks.
        code, out = apify_run(terminate_after=5, with_crawlee=True)
        assert_stopped_by_ctrl_c(code, out)
        assert "All default local stores were purged" not in out
        assert "Resuming from checkpoint" in out


def test_the_crawl_s_exit_code_is_the_cli_s(cli: Path, tmp_path: Path) -> None:
    with DemoSite(pages=5) as site:
        apify_run = ApifyRun(cli, tmp_path, site)
        apify_run.store.mkdir(parents=True)
        (apify_run.store / KEY).write_bytes(b"{damaged")
        (apify_run.store / f"{KEY}.__metadata__.json").write_text(
            json.dumps({"key": KEY, "content_type": "application/json", "size": 8})
        )
        code, out = apify_run("--no-purge")
    assert "the Actor will continue where it left off" in out
    assert "is unreadable" in out
    assert code == ExitCode.UNREADABLE, out[-3000:]
