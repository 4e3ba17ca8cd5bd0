"""What goes over the wire to the platform store, as docs/APIFY.md says: apify-client gzips a
record body of 1,024 bytes or more unless a Content-Encoding is given. The manifest (JSON) is
therefore gzipped only from 1 KiB on; the chunks, zstd already, always go as they are."""

from __future__ import annotations

from typing import TYPE_CHECKING

from scrapy.utils.defer import deferred_f_from_coro_f

from scrapy_actor_events.store.apify import ApifyKeyValueStore
from scrapy_actor_events.store.base import BINARY, JSON

if TYPE_CHECKING:
    from ..servers.apify_api import ApifyApiServer


@deferred_f_from_coro_f
async def test_the_manifest_is_gzipped_from_1_kib_and_chunks_never(
    apify_api: ApifyApiServer,
) -> None:
    sid = apify_api.create_store()
    store = ApifyKeyValueStore(apify_api.token, api_url=apify_api.url, store_id=sid)
    small, large = b'{"m": "' + b"s" * 1000 + b'"}', b'{"m": "' + b"l" * 1020 + b'"}'
    assert len(small) < 1024 <= len(large)
    await store.put("SMALL", small, JSON)
    await store.put("LARGE", large, JSON)
    await store.put("CHUNK", b"z" * 100_000, BINARY)
    await store.close()
    assert apify_api.record(sid, "SMALL").content_encoding is None
    assert apify_api.record(sid, "SMALL").value == small
    assert apify_api.record(sid, "LARGE").content_encoding == "gzip"
    assert apify_api.record(sid, "CHUNK").content_encoding == "identity"
    assert apify_api.record(sid, "CHUNK").value == b"z" * 100_000
