"""The real Apify CLI (``apify-cli`` from npm), for tests that run ``apify run``.

It is installed once into ``.cache/apify-cli`` of this checkout (``.ci/run`` does it when npm is
there); ``APIFY_CLI_BIN`` may point at another ``apify`` binary.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from .crawling import ROOT

CLI_PACKAGE = "apify-cli@1.10"
CACHE = ROOT / ".cache" / "apify-cli"


def apify_cli() -> tuple[Path | None, str]:
    """The ``apify`` binary, installing it if npm is there; else (None, why)."""
    given = os.environ.get("APIFY_CLI_BIN")
    if given:
        return Path(given), ""
    binary = CACHE / "node_modules" / ".bin" / "apify"
    if binary.exists():
        return binary, ""
    if shutil.which("node") is None or shutil.which("npm") is None:
        return None, "node and npm are not installed: the Apify CLI cannot run here"
    install = subprocess.run(
        ["npm", "install", "--prefix", str(CACHE), CLI_PACKAGE, "--no-audit", "--no-fund"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if install.returncode != 0 or not binary.exists():
        return None, f"npm install {CLI_PACKAGE} failed: {install.stderr[-1000:]}"
    return binary, ""
