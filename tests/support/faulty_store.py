"""Stores with faults a test switches on while a crawl runs (``ACTOR_EVENTS_STORE`` paths): the
local store (``FaultyStore``) and the platform store (``FaultyApifyStore``).

The test writes a JSON control file, named by ``FAULTY_STORE_CONTROL``, at any moment:

    {"fail_ratio": 0.3, "seed": 1}      this share of writes fails
    {"hang": 30}                         every write hangs that many seconds first
    {"enospc": true}                     every write fails with OSError(ENOSPC), a full disk
    {"pause_after_chunks": 2,            after that many chunks of one write, pause (to be killed)
     "marker": PATH}                     and create the file PATH

Every fault is counted in the file named by ``FAULTY_STORE_LOG`` (one line per fault).
"""

from __future__ import annotations

import errno
import json
import os
import random
from pathlib import Path
from typing import Any

from scrapy.utils.asyncio import sleep

from scrapy_actor_events.store.apify import ApifyKeyValueStore
from scrapy_actor_events.store.base import StoreError
from scrapy_actor_events.store.local import LocalKeyValueStore


class FaultMixin:
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
        if control.get("hang"):
            self._log(f"hang {key}")
            await sleep(float(control["hang"]))
        if control.get("enospc"):
            self._log(f"enospc {key}")
            raise OSError(errno.ENOSPC, "No space left on device", key)
        ratio = float(control.get("fail_ratio", 0))
        if ratio:
            if FaultMixin._rng is None:
                FaultMixin._rng = random.Random(control.get("seed", 0))
            if FaultMixin._rng.random() < ratio:
                self._log(f"fail {key}")
                raise StoreError(f"injected failure writing {key}")
        pause_after = control.get("pause_after_chunks")
        if pause_after is not None:
            if ".part-" in key:
                FaultMixin._chunks_in_write += 1
                if FaultMixin._chunks_in_write > int(pause_after):
                    marker = Path(control["marker"])
                    marker.with_suffix(".tmp").write_text(key)
                    marker.with_suffix(".tmp").replace(marker)  # whole, for the test to read
                    self._log(f"pause {key}")
                    await sleep(60)
            else:
                FaultMixin._chunks_in_write = 0
        await super().put(key, value, content_type)  # type: ignore[misc]


class FaultyStore(FaultMixin, LocalKeyValueStore):
    pass


class FaultyApifyStore(FaultMixin, ApifyKeyValueStore):
    pass
