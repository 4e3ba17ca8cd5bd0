"""Run a Dockerfile's COPY and RUN steps in a clean virtual environment, then check the image's CMD.

Docker is not available in CI; this is the next best thing: the build context's files are copied
as the Dockerfile says (``.dockerignore`` honoured) into a scratch root, its RUN lines run there
with a fresh venv's ``pip`` and ``python`` first on the PATH, and the CMD is run against the demo
site. What the base image brings (its Python, the apify SDK) is not reproduced: a RUN step that
relies on it fails here, which is the point.

    python3 .ci/dockerfile_steps.py example_project/Dockerfile --context . --check "scrapy list"
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

#: The working directory of apify/actor-python images.
BASE_WORKDIR = "/usr/src/app"


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of each step, continuation lines joined, comments dropped."""
    steps: list[tuple[str, str]] = []
    pending = ""
    for raw in dockerfile.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        word, _, rest = line.partition(" ")
        steps.append((word.upper(), rest.strip()))
    return steps


def ignore_patterns(context: Path) -> list[str]:
    path = context / ".dockerignore"
    if not path.is_file():
        return []
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line.rstrip("/") for line in lines if line and not line.startswith("#")]


def ignored(relative: str, patterns: list[str]) -> bool:
    for pattern in patterns:
        if fnmatch.fnmatch(relative, pattern):
            return True
        if pattern.startswith("**/") and any(
            fnmatch.fnmatch(part, pattern[3:]) for part in relative.split("/")
        ):
            return True
    return False


class Build:
    def __init__(self, context: Path, scratch: Path) -> None:
        self.context = context.resolve()
        self.root = scratch / "root"
        self.venv = scratch / "venv"
        self.workdir = BASE_WORKDIR
        self.cmd: list[str] = []
        self.env: dict[str, str] = {}
        self.patterns = ignore_patterns(self.context)
        subprocess.run([sys.executable, "-m", "venv", str(self.venv)], check=True)
        self.here().mkdir(parents=True)

    def here(self) -> Path:
        return self.root / self.workdir.lstrip("/")

    def target(self, path: str) -> Path:
        return self.root / path.lstrip("/") if path.startswith("/") else self.here() / path

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
        env["PATH"] = f"{self.venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
        env.update(VIRTUAL_ENV=str(self.venv), PIP_DISABLE_PIP_VERSION_CHECK="1", **self.env)
        return env

    def step(self, word: str, args: str) -> None:
        print(f"+ {word} {args}", flush=True)
        if word == "FROM":
            return  # the base image is not reproduced: a fresh venv stands in for its Python
        if word == "WORKDIR":
            self.workdir = args if args.startswith("/") else f"{self.workdir}/{args}"
            self.here().mkdir(parents=True, exist_ok=True)
        elif word == "ENV":
            for pair in shlex.split(args):
                name, _, value = pair.partition("=")
                self.env[name] = value
        elif word == "COPY":
            self.copy([a for a in shlex.split(args) if not a.startswith("--")])
        elif word == "RUN":
            if args.startswith("["):
                raise SystemExit("RUN in exec form is not supported here")
            subprocess.run(["bash", "-euo", "pipefail", "-c", args], cwd=self.here(),
                           env=self.environment(), check=True)  # fmt: skip
        elif word == "CMD":
            self.cmd = json.loads(args)
        else:
            raise SystemExit(f"{word} is not supported here: extend .ci/dockerfile_steps.py")

    def copy(self, words: list[str]) -> None:
        *sources, dest = words
        into_dir = dest.endswith("/") or len(sources) > 1
        target = self.target(dest)
        for source in sources:
            origin = (self.context / source).resolve()
            if not origin.is_relative_to(self.context) or not origin.exists():
                raise SystemExit(f"COPY {source}: not in the build context {self.context}")
            if origin.is_dir():
                self.copy_tree(origin, target)
            elif not ignored(origin.relative_to(self.context).as_posix(), self.patterns):
                final = target / origin.name if into_dir else target
                final.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, final)

    def copy_tree(self, origin: Path, target: Path) -> None:
        for path in sorted(origin.rglob("*")):
            relative = path.relative_to(self.context).as_posix()
            if ignored(relative, self.patterns) or not path.is_file():
                continue
            final = target / path.relative_to(origin)
            final.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, final)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def crawl_demo_site(build: Build) -> None:
    """Run the image's CMD against the demo site: it must crawl every page and exit 0."""
    port = free_port()
    pages = 30
    site = subprocess.Popen(
        [str(build.venv / "bin" / "scrapy-actor-events"), "site", "--pages", str(pages),
         "--port", str(port)],
        env=build.environment(),
    )  # fmt: skip
    try:
        url = f"http://127.0.0.1:{port}/p/0"
        for _ in range(100):
            try:
                urllib.request.urlopen(url, timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        storage = build.root / "storage-check"
        env = {**build.environment(), "START_URL": url, "APIFY_LOCAL_STORAGE_DIR": str(storage)}
        print(f"+ {' '.join(build.cmd)}  (START_URL={url})", flush=True)
        run = subprocess.run(build.cmd, cwd=build.here(), env=env, capture_output=True,
                             text=True, timeout=300)  # fmt: skip
    finally:
        site.terminate()
        site.wait(10)
    sys.stderr.write(run.stderr[-4000:])
    items = re.search(r"'item_scraped_count': (\d+)", run.stderr)
    if run.returncode != 0 or items is None or int(items.group(1)) < pages:
        raise SystemExit(f"The image's CMD did not crawl the {pages} pages (exit {run.returncode})")
    manifest_path = storage / "key_value_stores" / "default" / "SCRAPY_STATE_links"
    manifest = json.loads(manifest_path.read_text())
    if manifest["close_reason"] != "finished":
        raise SystemExit(f"The last checkpoint says {manifest['close_reason']!r}, not 'finished'")
    print(f"The image's CMD crawled {pages} pages and left its checkpoint in the local store.")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dockerfile", type=Path)
    parser.add_argument("--context", type=Path, default=Path("."))
    parser.add_argument(
        "--check",
        action="append",
        default=[],
        help="a shell command to run in the image's working directory afterwards",
    )
    parser.add_argument(
        "--crawl-demo",
        action="store_true",
        help="run the CMD against the demo site (the image must install scrapy-actor-events)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dockerfile-steps-") as scratch:
        build = Build(args.context, Path(scratch))
        for word, rest in instructions(args.dockerfile):
            build.step(word, rest)
        for check in args.check:
            print(f"+ (check) {check}", flush=True)
            subprocess.run(["bash", "-euo", "pipefail", "-c", check], cwd=build.here(),
                           env=build.environment(), check=True)  # fmt: skip
        if args.crawl_demo:
            crawl_demo_site(build)
    return 0


if __name__ == "__main__":
    sys.exit(main())
