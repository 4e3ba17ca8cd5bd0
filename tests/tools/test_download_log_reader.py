"""Reading a download log back: one run per process, torn and foreign lines skipped."""

from __future__ import annotations

from typing import TYPE_CHECKING

from scrapy_actor_events.tools.download_log_reader import read_download_log

if TYPE_CHECKING:
    from pathlib import Path


def test_torn_and_foreign_lines_are_skipped(tmp_path: Path) -> None:
    log = tmp_path / "downloads.jsonl"
    log.write_text(
        '{"event":"opened","spider":"s","pid":1,"time":1}\n'
        '{"event":"accepted","url":"http://a/","pid":1,"time":1}\n'
        "not json\n"
        '{"event":"opened","spider":"s","pid":2,"time":2}\n'
        '{"event":"fetched","url":"http://a/","status":200,"pid":2,"time":2}\n'
        '{"event":"finished","url":"http://a/","pid":2,"ti'
    )
    first, second = read_download_log(log)
    assert first.accepted == {"http://a/"}
    assert not first.finished
    assert second.fetched == ["http://a/"]
    assert not second.finished
    assert read_download_log(tmp_path / "missing") == []
