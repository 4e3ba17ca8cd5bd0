"""The benchmarks measure each crawl's own peak memory, not the size of the process that
started it."""

from __future__ import annotations

import json
import subprocess
import sys

from bench.common import ROOT

CHILD = "import json; from bench.rss import peak_rss; print(json.dumps(peak_rss()))"


def test_a_child_started_by_a_big_process_reports_its_own_peak() -> None:
    big = bytearray(300 * 1024 * 1024)
    big[::4096] = b"\x01" * len(range(0, len(big), 4096))  # resident, not just reserved
    done = subprocess.run(
        [sys.executable, "-c", CHILD], cwd=ROOT, capture_output=True, text=True, check=True
    )
    peak = json.loads(done.stdout)
    del big
    # ru_maxrss would read the parent's 300+ MB here (Linux carries it across exec).
    assert 5e6 < peak < 150e6
