"""The stores a `scrapy crawl` subprocess can checkpoint to, seen from the test: the local store
on disk, or the platform store on the local API server. Each can stop a crawl right before it
writes a manifest (its chunks already written), for a kill in the middle of a checkpoint."""

from __future__ import annotations

from typing import TYPE_CHECKING

from scrapy_actor_events.checkpoint.format import Manifest, parse_chunk_key

from .crawling import read_checkpoint, run_sync, subprocess_env

if TYPE_CHECKING:
    from pathlib import Path

    from scrapy_actor_events.checkpoint.reader import Restored

    from ..servers.apify_api import ApifyApiServer


class LocalBackend:
    name = "local"

    def __init__(self, storage: Path, tmp_path: Path) -> None:
        self.storage = storage
        self.folder = storage / "key_value_stores" / "default"
        self.marker = tmp_path / "writing-manifest"

    def env(self, **extra: str) -> dict[str, str]:
        return subprocess_env(self.storage, **extra)

    def pause_before_manifest(
        self, args: list[str], env: dict[str, str], key: str, after: int
    ) -> tuple[list[str], dict[str, str]]:
        """``args`` and ``env`` of a run that stops before its ``after + 1``-th manifest."""
        env = {**env, "PAUSING_STORE_MARKER": str(self.marker), "PAUSING_STORE_AFTER": str(after)}
        return [*args, "-s", "ACTOR_EVENTS_STORE=tests.support.stores.PausingStore"], env

    def paused(self) -> bool:
        return self.marker.exists()

    def after_kill(self) -> None:
        return None

    def value(self, key: str) -> bytes | None:
        path = self.folder / key
        return path.read_bytes() if path.exists() else None

    def chunk_keys(self, key: str) -> set[str]:
        if not self.folder.exists():
            return set()
        return {p.name for p in self.folder.iterdir() if parse_chunk_key(key, p.name) is not None}

    def read(self, key: str, spider: str) -> Restored | None:
        return run_sync(read_checkpoint(self.storage, key, spider))  # type: ignore[no-any-return]

    def manifest(self, key: str) -> Manifest:
        data = self.value(key)
        assert data is not None, f"no manifest under {key}"
        return Manifest.from_bytes(key, data)


class ApifyBackend(LocalBackend):
    name = "apify"

    def __init__(self, storage: Path, tmp_path: Path, api: ApifyApiServer) -> None:
        super().__init__(storage, tmp_path)
        self.api = api
        self.store_id = api.create_store()
        self.dataset_id = api.datasets.create()

    def env(self, **extra: str) -> dict[str, str]:
        env = self.api.dataset_env(self.store_id, self.dataset_id, **extra)
        return subprocess_env(self.storage, **env)

    def pause_before_manifest(
        self, args: list[str], env: dict[str, str], key: str, after: int
    ) -> tuple[list[str], dict[str, str]]:
        self.api.hold(lambda method, k: method == "PUT" and k == key, after=after)
        return args, env

    def paused(self) -> bool:
        return self.api.held.is_set()

    def after_kill(self) -> None:
        self.api.release()

    def value(self, key: str) -> bytes | None:
        return self.api.value(self.store_id, key)

    def chunk_keys(self, key: str) -> set[str]:
        return {k for k in self.api.keys(self.store_id) if parse_chunk_key(key, k) is not None}

    def read(self, key: str, spider: str) -> Restored | None:
        return self.api.read_checkpoint(self.store_id, key, spider)
