"""A local store with faults a test switches on while a crawl runs (``ACTOR_EVENTS_STORE`` path).

The test writes a JSON control file, named by ``FAULTY_STORE_CONTROL``, at any moment:

    {"fail_ratio": 0.3, "seed": 1}      this share of writes fails with an error 500-like OSError
    {"hang": 30}                         every write hangs that many seconds first
    {"enospc": true}                     every write fails with OSError(ENOSPC), a full disk
    {"pause_after_chunks": 2}            after that many chunks of one write, pause (to be killed)
                                         and create the file named by "marker"

Every fault is counted in the file named by ``FAULTY_STORE_LOG`` (one line per fault).
"""

from __future__ import annotations

import errno
import json
import os
import random
from pathlib import Path
from typing import Any

from scrapy_actor_events._async import sleep
from scrapy_actor_events.store.base import StoreError
from scrapy_actor_events.store.local import LocalKeyValueStore


class FaultyStore(LocalKeyValueStore):
    _rng: random.Random | None = None
    _chunks_in_write = 0

    def _control(self) -> dict[str, Any]:
        path = os.environ.get("FAULTY_STORE_CONTROL")
        if not path or not Path(path).exists():
            return {}
        try:
            return json.loads(Path(path).read_text() or "{}")
        except ValueError:
            return {}

    def _log(self, line: str) -> None:
        path = os.environ.get("FAULTY_STORE_LOG")
        if path:
            with open(path, "a") as handle:
                handle.write(line + "\n")

    async def put(self, key: str, value: bytes, content_type: str) -> None:
        control = self._control()
        is_chunk = ".part-" in key
        if control.get("hang"):
            self._log(f"hang {key}")
            await sleep(float(control["hang"]))
        if control.get("enospc"):
            self._log(f"enospc {key}")
            raise OSError(errno.ENOSPC, "No space left on device", key)
        ratio = float(control.get("fail_ratio", 0))
        if ratio:
            if FaultyStore._rng is None:
                FaultyStore._rng = random.Random(control.get("seed", 0))
            if FaultyStore._rng.random() < ratio:
                self._log(f"fail {key}")
                raise StoreError(f"injected failure writing {key}")
        pause_after = control.get("pause_after_chunks")
        if pause_after is not None:
            if is_chunk:
                FaultyStore._chunks_in_write += 1
                if FaultyStore._chunks_in_write > int(pause_after):
                    Path(control["marker"]).write_text(key)
                    self._log(f"pause {key}")
                    await sleep(60)
            else:
                FaultyStore._chunks_in_write = 0
        await super().put(key, value, content_type)
