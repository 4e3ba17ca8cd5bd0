"""Helpers shared by the benchmarks: interleaved rounds, medians, the machine, the report file."""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "docs" / "BENCHMARKS.md"


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores{mem}; {platform.system()} {platform.release()};"
        f" Python {platform.python_version()}"
    )


def versions() -> str:
    import scrapy

    return f"Scrapy {scrapy.__version__}"


def git_revision() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def interleaved(cases: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """Run every case once per round, in turn, so that machine noise hits all of them alike."""
    results: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, case in cases.items():
            results[name].append(case())
    return results


def median(values: list[float]) -> float:
    return statistics.median(values)


def verdict(value: float, target: float, baseline: list[float], *, at_most: bool = False) -> str:
    """Whether ``value`` (a ratio to the baseline's median) meets ``target``, as the run can tell.

    A target counts as met, or missed, only where the baseline's own rounds spread (max - min,
    over their median) less than the margin between the value and the target; otherwise the run
    cannot tell, and says so. One round has no spread: it cannot tell either.
    """
    ok = value <= target if at_most else value >= target
    margin = abs(value - target)
    if len(baseline) < 2:
        return f"**cannot tell** (one round: no spread to set the margin of {margin:.2f} against)"
    spread = (max(baseline) - min(baseline)) / statistics.median(baseline)
    if spread >= margin:
        return (
            f"**cannot tell** (margin {margin:.1%}, spread of the baseline's rounds {spread:.1%})"
        )
    return (
        f"**{'met' if ok else 'missed'}** (margin {margin:.1%}, spread of the baseline's rounds"
        f" {spread:.1%})"
    )


def timed(func: Callable[[], object]) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def command_line() -> str:
    return "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]).replace(
        str(ROOT) + "/", ""
    )
