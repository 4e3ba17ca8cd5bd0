"""The tools show the items: `demo` the items in the dataset against the pages. (`rehearse` too,
and the example Actor fills its dataset with what its view shows: tools/test_rehearsal.py, on the
rehearsed migration; `inspect` shows the items a checkpoint holds and the commit point:
tools/test_checkpoint_commands.py, on a killed crawl's checkpoint in both stores.)"""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


def test_the_demo_reports_one_item_per_page(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "scrapy_actor_events", "demo", "--pages", "120",
         "--kill-after", "60", "--storage", str(tmp_path / "storage")],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "items in the dataset:        121 for 121 distinct pages" in result.stdout
    assert "items in the dataset twice:  0" in result.stdout
