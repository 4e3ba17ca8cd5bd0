"""The example project is a Scrapy project that deploys as an Apify Actor."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from ..support.crawling import EXAMPLE_PROJECT, subprocess_env


def test_it_deploys_as_an_actor() -> None:
    actor = json.loads((EXAMPLE_PROJECT / ".actor" / "actor.json").read_text())
    assert actor["actorSpecification"] == 1
    assert re.fullmatch(r"[a-z0-9-]+", actor["name"])
    assert re.fullmatch(r"\d+\.\d+", actor["version"])
    dockerfile = (EXAMPLE_PROJECT / ".actor" / actor["dockerfile"]).resolve()
    text = dockerfile.read_text()
    assert re.search(r"^FROM apify/actor-python:3\.1\d", text, re.MULTILINE)
    # (tests/end_to_end/test_example_actor.py checks the rest of the image and `apify run`.)
    assert 'CMD ["python", "-m", "example"]' in text
    context = (EXAMPLE_PROJECT / ".actor" / actor["dockerContextDir"]).resolve()
    assert "**/storage" in (context / ".dockerignore").read_text().split()


def test_settings_need_one_line() -> None:
    settings = (EXAMPLE_PROJECT / "example" / "settings.py").read_text()
    assert 'EXTENSIONS = {"scrapy_actor_events.ActorEventsExtension": 100}' in settings
    assert "SPIDER_STATE_KEY = " in settings


def test_scrapy_finds_the_spider(tmp_path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "scrapy", "list"],
        cwd=EXAMPLE_PROJECT,
        env=subprocess_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["links"]
