"""What a checkpoint looks like in the key-value store, and how it is read back safely.

Under the state key there is one small JSON record, the *manifest*, that ``Actor.get_value(key)``
reads as a dict. It lists *segments* in order: a full *base* segment followed by *delta* segments
(what changed since). Each segment is MessagePack, compressed with zstd, cut into *chunk* records
``<key>.part-<generation>-<index>`` of at most ``ACTOR_EVENTS_CHUNK_BYTES`` each. Chunks are written
first and the manifest last, so the manifest always points at chunks that are complete; each chunk's
SHA-256 is in the manifest, and the manifest carries a checksum of itself.

Reading never runs code (no pickle), bounds decompression by the size the manifest declares, and
raises :class:`UnreadableCheckpoint` with the key and the reason for anything malformed.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import msgpack

from ..store.base import is_valid_key, safe_key
from .data import pack_data, unpack_data

if TYPE_CHECKING:
    from collections.abc import Iterator

if sys.version_info >= (3, 14):
    from compression import zstd
else:
    from backports import zstd

FORMAT = "scrapy-actor-events/checkpoint"
#: 2: request records carry their sequence number and are stored with their scheduler queue, and
#: seen fingerprints as a compact layout. Format 1 is still read (per segment: a resumed crawl's
#: next deltas follow its format-1 base).
VERSION = 2
READABLE_VERSIONS = (1, 2)


class SegmentKind(StrEnum):
    BASE = "base"  # the whole frontier
    DELTA = "delta"  # what changed since the segment before


#: A segment may not claim to decompress to more than this (a guard against crafted records).
MAX_SEGMENT_BYTES = 8 * 1024**3

#: Lists longer than this are packed a slice at a time. One MessagePack call holds the GIL from
#: start to end, even in a worker thread: a base of a million requests and two million
#: fingerprints in one call stalled the reactor for about half a second.
PACK_SLICE = 16_384

_PART_RE = re.compile(r"\.part-(\d+)-(\d+)$")
_HEADERS = msgpack.Packer()


class UnreadableCheckpoint(Exception):
    """A checkpoint record that is corrupt, truncated, of an unknown version, or not ours."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"checkpoint {key!r} is unreadable: {reason}")
        self.key = key
        self.reason = reason


#: Records of a checkpoint are named ``<key>.<suffix>``; the longest suffix is 26 characters
#: (``.unreadable-YYYYmmddHHMMSS``), so a state key leaves room for it within the store's 256.
MAX_STATE_KEY_LENGTH = 230
DEFAULT_KEY_PREFIX = "SCRAPY_STATE_"


def default_state_key(spider_name: str) -> str:
    """``SCRAPY_STATE_<spider name>``, with characters the store refuses replaced by ``-``."""
    return (DEFAULT_KEY_PREFIX + safe_key(spider_name or "spider"))[:MAX_STATE_KEY_LENGTH]


def validate_state_key(key: str, setting: str = "SPIDER_STATE_KEY") -> str:
    """Return ``key`` if the platform's store accepts it (with room for chunk suffixes)."""
    if not is_valid_key(key):
        raise ValueError(
            f"{setting}={key!r} is not a valid key-value store key: use 1-{MAX_STATE_KEY_LENGTH}"
            " characters from a-z, A-Z, 0-9 and !-_.'() (no '/', ':' or spaces)."
        )
    if len(key) > MAX_STATE_KEY_LENGTH:
        raise ValueError(
            f"{setting} is {len(key)} characters long; at most {MAX_STATE_KEY_LENGTH} are allowed"
            " so that its chunk records (<key>.part-<n>-<i>) stay within the store's 256."
        )
    return key


ASIDE_INFIX = ".unreadable-"


def aside_key(key: str, stamp: str) -> str:
    """Where an unreadable checkpoint's manifest is copied: ``<key>.unreadable-<stamp>``."""
    return f"{key}{ASIDE_INFIX}{stamp}"


def chunk_key(key: str, generation: int, index: int) -> str:
    return f"{key}.part-{generation}-{index}"


def chunk_prefix(key: str) -> str:
    return f"{key}.part-"


def chunk_owner(chunk: str) -> str | None:
    """The state key whose chunk record ``chunk`` is, or None if it is not a chunk key."""
    match = _PART_RE.search(chunk)
    return chunk[: match.start()] if match is not None and match.start() > 0 else None


def parse_chunk_key(key: str, chunk: str) -> tuple[int, int] | None:
    """(generation, index) if ``chunk`` is one of ``key``'s chunk records."""
    if not chunk.startswith(chunk_prefix(key)):
        return None
    match = _PART_RE.search(chunk)
    if match is None or match.start() != len(key):
        return None
    return int(match.group(1)), int(match.group(2))


@dataclass(frozen=True)
class ChunkRef:
    key: str
    size: int
    sha256: str


@dataclass(frozen=True)
class SegmentRef:
    generation: int
    kind: SegmentKind
    raw_size: int
    chunks: tuple[ChunkRef, ...]

    @property
    def stored_size(self) -> int:
        return sum(c.size for c in self.chunks)


@dataclass(frozen=True)
class Manifest:
    """The JSON record under the state key."""

    key: str
    spider: str
    generation: int
    created_at: str
    trigger: str
    close_reason: str | None
    segments: tuple[SegmentRef, ...]
    summary: dict[str, Any] = field(default_factory=dict)
    #: The store written to (its name, else its id): a copy in another store is refused.
    store: str | None = None
    format: str = FORMAT
    version: int = VERSION

    @property
    def stored_size(self) -> int:
        return sum(s.stored_size for s in self.segments)

    @property
    def chunk_keys(self) -> set[str]:
        return {c.key for s in self.segments for c in s.chunks}

    def to_bytes(self) -> bytes:
        doc = asdict(self)
        doc["checksum"] = _checksum(doc)
        return json.dumps(doc, indent=1, sort_keys=True).encode()

    @classmethod
    def from_bytes(cls, key: str, data: bytes) -> Manifest:
        try:
            doc = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UnreadableCheckpoint(key, f"the manifest is not JSON ({exc})") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise UnreadableCheckpoint(key, "the record is not a scrapy-actor-events checkpoint")
        if doc.get("version") not in READABLE_VERSIONS:
            raise UnreadableCheckpoint(
                key,
                f"format version {doc.get('version')!r} is not one this version reads"
                f" ({', '.join(map(str, READABLE_VERSIONS))}); it was written by a newer"
                " version of scrapy-actor-events",
            )
        expected = doc.pop("checksum", None)
        if expected != _checksum(doc):
            raise UnreadableCheckpoint(key, "the manifest checksum does not match its content")
        try:
            segments = tuple(
                SegmentRef(
                    generation=_int(s["generation"]),
                    kind=SegmentKind(_str(s["kind"])),
                    raw_size=_int(s["raw_size"]),
                    chunks=tuple(
                        ChunkRef(key=_str(c["key"]), size=_int(c["size"]), sha256=_str(c["sha256"]))
                        for c in s["chunks"]
                    ),
                )
                for s in doc["segments"]
            )
            manifest = cls(
                key=_str(doc["key"]),
                spider=_str(doc["spider"]),
                generation=_int(doc["generation"]),
                created_at=_str(doc["created_at"]),
                trigger=_str(doc["trigger"]),
                close_reason=None if doc["close_reason"] is None else _str(doc["close_reason"]),
                segments=segments,
                summary=dict(doc.get("summary") or {}),
                store=None if doc.get("store") is None else _str(doc["store"]),
                version=_int(doc["version"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise UnreadableCheckpoint(key, f"the manifest is malformed ({exc!r})") from None
        if manifest.key != key:
            raise UnreadableCheckpoint(key, f"the manifest belongs to key {manifest.key!r}")
        first, rest = segments[:1], segments[1:]
        if (
            not first
            or first[0].kind != SegmentKind.BASE
            or any(s.kind != SegmentKind.DELTA for s in rest)
        ):
            raise UnreadableCheckpoint(key, "the manifest does not list a base segment first")
        for segment in segments:
            for chunk in segment.chunks:
                parsed = parse_chunk_key(key, chunk.key)
                if parsed is None or parsed[0] != segment.generation:
                    raise UnreadableCheckpoint(
                        key, f"chunk {chunk.key!r} is not of this checkpoint"
                    )
            if not 0 <= segment.raw_size <= MAX_SEGMENT_BYTES:
                raise UnreadableCheckpoint(
                    key, f"segment {segment.generation} claims {segment.raw_size} bytes"
                )
        return manifest


def _checksum(doc: dict[str, Any]) -> str:
    canonical = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(canonical).hexdigest()


def _int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"expected a non-negative integer, got {value!r}")
    return value


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {value!r}")
    return value


# -- segments ---------------------------------------------------------------------------------


def encode_segment(payload: dict[str, Any], level: int) -> tuple[bytes, int]:
    """Compressed bytes of ``payload`` and its uncompressed size.

    The bytes are those of ``zstd(pack_data(payload))``, produced in slices: MessagePack and
    zstd hand the GIL back between two slices, so the reactor keeps turning while a big
    segment is encoded in a worker thread (zstd releases it while it compresses).
    """
    options: dict[int, int] = {
        zstd.CompressionParameter.compression_level: level,
        zstd.CompressionParameter.checksum_flag: 1,
    }
    compressor = zstd.ZstdCompressor(options=options)
    out: list[bytes] = []
    raw_size = 0
    for part in packed_parts(payload):
        raw_size += len(part)
        out.append(compressor.compress(part))
    out.append(compressor.flush())
    return b"".join(out), raw_size


def packed_parts(payload: dict[str, Any]) -> Iterator[bytes | memoryview]:
    """``pack_data(payload)`` in parts that join to the same bytes, long lists in slices."""
    yield _HEADERS.pack_map_header(len(payload))
    for key, value in payload.items():
        yield pack_data(key)
        if type(value) is not list or len(value) <= PACK_SLICE:
            yield pack_data(value)
            continue
        yield _HEADERS.pack_array_header(len(value))
        for start in range(0, len(value), PACK_SLICE):
            items = value[start : start + PACK_SLICE]
            # Each slice packs as an array: its items without the slice's own header.
            skip = len(_HEADERS.pack_array_header(len(items)))
            yield memoryview(pack_data(items))[skip:]


def split_chunks(data: bytes, chunk_bytes: int) -> list[bytes]:
    view = memoryview(data)
    return [bytes(view[i : i + chunk_bytes]) for i in range(0, max(len(data), 1), chunk_bytes)]


def chunk_refs(key: str, generation: int, chunks: list[bytes]) -> tuple[ChunkRef, ...]:
    return tuple(
        ChunkRef(chunk_key(key, generation, i), len(c), hashlib.sha256(c).hexdigest())
        for i, c in enumerate(chunks)
    )


def decode_segment(key: str, segment: SegmentRef, chunks: list[bytes | None]) -> dict[str, Any]:
    """The payload of a segment from its chunk records, checked against the manifest."""
    for ref, data in zip(segment.chunks, chunks, strict=True):
        if data is None:
            raise UnreadableCheckpoint(key, f"chunk {ref.key!r} is missing from the store")
        if len(data) != ref.size or hashlib.sha256(data).hexdigest() != ref.sha256:
            raise UnreadableCheckpoint(key, f"chunk {ref.key!r} does not match its checksum")
    compressed = b"".join(c for c in chunks if c is not None)
    try:
        decompressor = zstd.ZstdDecompressor()
        raw = decompressor.decompress(compressed, max_length=segment.raw_size + 1)
        complete = decompressor.eof and not decompressor.unused_data
    except zstd.ZstdError as exc:
        raise UnreadableCheckpoint(
            key, f"segment {segment.generation} does not decompress ({exc})"
        ) from None
    if len(raw) != segment.raw_size or not complete:
        raise UnreadableCheckpoint(key, f"segment {segment.generation} has the wrong size")
    try:
        payload = unpack_data(raw)
    except Exception as exc:
        raise UnreadableCheckpoint(
            key, f"segment {segment.generation} is not MessagePack ({exc})"
        ) from None
    if not isinstance(payload, dict) or payload.get("generation") != segment.generation:
        raise UnreadableCheckpoint(key, f"segment {segment.generation} does not match the manifest")
    return payload


__all__ = [
    "ChunkRef",
    "Manifest",
    "SegmentKind",
    "SegmentRef",
    "UnreadableCheckpoint",
    "chunk_key",
    "chunk_owner",
    "chunk_prefix",
    "chunk_refs",
    "decode_segment",
    "default_state_key",
    "encode_segment",
    "packed_parts",
    "parse_chunk_key",
    "split_chunks",
    "validate_state_key",
]
