from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from scrapy.settings import Settings
from scrapy.utils.defer import deferred_f_from_coro_f

from scrapy_actor_events.config import Config
from scrapy_actor_events.store import JSON, LocalKeyValueStore, StoreError, build_store


@deferred_f_from_coro_f
async def test_layout_is_the_apify_local_one(tmp_path: Path) -> None:
    store = LocalKeyValueStore(tmp_path, "my-store")
    await store.put("STATE(1)", b'{"a": 1}', JSON)
    folder = tmp_path / "key_value_stores" / "my-store"
    assert (folder / "STATE%281%29").read_bytes() == b'{"a": 1}'
    sidecar = json.loads((folder / "STATE%281%29.__metadata__.json").read_text())
    assert sidecar == {"key": "STATE(1)", "content_type": JSON, "size": 8}
    metadata = json.loads((folder / "__metadata__.json").read_text())
    assert metadata["id"] == "my-store"
    assert metadata["name"] is None  # the run's default store is unnamed, so the SDK purges it
    assert {"created_at", "modified_at", "accessed_at"} <= set(metadata)
    assert await store.get("STATE(1)") == b'{"a": 1}'
    assert await store.get("missing") is None
    assert not [p for p in folder.iterdir() if p.name.startswith(".")], "no temporary files left"


@deferred_f_from_coro_f
async def test_list_delete_and_legacy_json_files(tmp_path: Path) -> None:
    store = LocalKeyValueStore(tmp_path)
    for key in ("A.part-1-0", "A.part-1-1", "A", "B"):
        await store.put(key, key.encode(), "application/octet-stream")
    assert await store.list_keys("A.part-") == ["A.part-1-0", "A.part-1-1"]
    await store.delete("A.part-1-0")
    await store.delete("never-existed")
    assert await store.list_keys("A") == ["A", "A.part-1-1"]
    (store.path / "OLD.json").write_bytes(b"{}")
    assert await store.get("OLD") == b"{}"


@deferred_f_from_coro_f
async def test_invalid_keys_are_refused(tmp_path: Path) -> None:
    store = LocalKeyValueStore(tmp_path)
    for key in ("a/b", "", "a b", "x" * 257, "a:b"):
        with pytest.raises(StoreError, match="invalid key"):
            await store.put(key, b"", JSON)


def test_a_kill_during_put_leaves_the_old_value(tmp_path: Path) -> None:
    """SIGKILL a process in the middle of writing a 50 MB value: the old value stays whole."""
    store = LocalKeyValueStore(tmp_path)
    old = b"old" * 1000
    store._put("KEY", old, JSON)
    script = textwrap.dedent(
        f"""
        import os, signal
        from scrapy_actor_events.store.local import LocalKeyValueStore
        store = LocalKeyValueStore({str(tmp_path)!r})
        real_fsync = os.fsync
        def fsync_then_die(fd):
            real_fsync(fd)
            os.kill(os.getpid(), signal.SIGKILL)
        os.fsync = fsync_then_die
        store._put("KEY", b"new" * 16_000_000, "application/json")
        """
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": str(root)}, check=False
    )
    assert result.returncode == -9
    assert store._get("KEY") == old
    leftovers = [p.name for p in store.path.iterdir() if p.name.startswith(".")]
    assert leftovers, "the killed write leaves its temporary file, never a half-written value"


def test_build_store_by_name_or_path(tmp_path: Path) -> None:
    config = Config.from_settings(Settings({"ACTOR_EVENTS_STORAGE_DIR": str(tmp_path)}))
    assert isinstance(build_store(config.store), LocalKeyValueStore)
    custom = Config.from_settings(
        Settings(
            {
                "ACTOR_EVENTS_STORE": "tests.support.stores.PausingStore",
                "ACTOR_EVENTS_STORAGE_DIR": str(tmp_path),
            }
        )
    )
    assert type(build_store(custom.store)).__name__ == "PausingStore"
    broken = Config.from_settings(Settings({"ACTOR_EVENTS_STORE": "no.such.Store"}))
    with pytest.raises(ValueError, match=r"ACTOR_EVENTS_STORE='no\.such\.Store'"):
        build_store(broken.store)
    not_a_store = Config.from_settings(Settings({"ACTOR_EVENTS_STORE": "collections.OrderedDict"}))
    with pytest.raises(ValueError, match="does not implement the KeyValueStore protocol"):
        build_store(not_a_store.store)
