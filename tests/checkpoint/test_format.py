from __future__ import annotations

import json
import pickle

import pytest

from scrapy_actor_events.checkpoint.data import pack_data
from scrapy_actor_events.checkpoint.format import (
    PACK_SLICE,
    Manifest,
    SegmentKind,
    SegmentRef,
    UnreadableCheckpoint,
    chunk_key,
    chunk_refs,
    decode_segment,
    encode_segment,
    packed_parts,
    parse_chunk_key,
    split_chunks,
    zstd,
)
from scrapy_actor_events.config import MAX_CHUNK_BYTES

KEY = "SCRAPY_STATE_test"
BASE, DELTA = SegmentKind.BASE, SegmentKind.DELTA


def make_segment(payload: dict, generation: int, chunk_bytes: int = 1024, kind: str = BASE):
    data, raw_size = encode_segment({"generation": generation, **payload}, level=3)
    chunks = split_chunks(data, chunk_bytes)
    return SegmentRef(generation, kind, raw_size, chunk_refs(KEY, generation, chunks)), chunks


def make_manifest(*segments: SegmentRef, **overrides) -> Manifest:
    fields = {
        "key": KEY,
        "spider": "test",
        "generation": segments[-1].generation,
        "created_at": "2026-01-01T00:00:00+00:00",
        "trigger": "timer",
        "close_reason": None,
        "segments": segments,
        "summary": {"pending": 1},
    }
    fields.update(overrides)
    return Manifest(**fields)


def test_segment_round_trip_across_many_chunks() -> None:
    payload = {"records": [bytes([i % 256]) * 50 + i.to_bytes(4, "big") for i in range(20_000)]}
    segment, chunks = make_segment(payload, 4, chunk_bytes=2048)
    assert len(chunks) > 3
    assert all(len(c) <= 2048 for c in chunks)
    assert decode_segment(KEY, segment, chunks)["records"] == payload["records"]


@pytest.mark.parametrize("n", [0, 1, PACK_SLICE, PACK_SLICE + 1, 3 * PACK_SLICE + 7])
def test_sliced_packing_is_byte_for_byte_one_msgpack_call(n: int) -> None:
    payload = {
        "kind": BASE,
        "generation": 9,
        "seqs": list(range(n)),
        "records": [i.to_bytes(3, "big") * (i % 7) for i in range(n)],
        "fingerprints": [i.to_bytes(20, "big") for i in range(2 * n)],
        "removed": [],
        "next_seq": n,
        "crawl": b"state",
    }
    parts = list(packed_parts(payload))
    assert b"".join(parts) == pack_data(payload)
    if n > PACK_SLICE:
        assert len(parts) > len(payload) * 2 + 2  # the long lists went in slices
    data, raw_size = encode_segment(payload, level=3)
    assert zstd.decompress(data) == pack_data(payload)
    assert raw_size == len(pack_data(payload))


def test_chunks_never_exceed_the_limit() -> None:
    data = bytes(range(256)) * 100_000
    chunks = split_chunks(data, MAX_CHUNK_BYTES)
    assert [len(c) for c in chunks] == [
        MAX_CHUNK_BYTES,
        MAX_CHUNK_BYTES,
        len(data) - 2 * MAX_CHUNK_BYTES,
    ]
    assert b"".join(chunks) == data


def test_manifest_round_trip_is_plain_json() -> None:
    base, _ = make_segment({"a": 1}, 3)
    delta, _ = make_segment({"b": 2}, 5, kind=DELTA)
    manifest = make_manifest(base, delta)
    data = manifest.to_bytes()
    doc = json.loads(data)  # what Actor.get_value(key) returns: a dict
    assert doc["format"] == "scrapy-actor-events/checkpoint"
    assert doc["version"] == 2
    assert doc["segments"][1]["chunks"][0]["key"] == chunk_key(KEY, 5, 0)
    assert Manifest.from_bytes(KEY, data) == manifest


def corrupt(data: bytes, **changes) -> bytes:
    doc = json.loads(data)
    doc.update(changes)
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda d: d[:-10], "not JSON"),
        (lambda d: b"\x80" + d, "not JSON"),
        (lambda d: corrupt(d, version=3), "format version 3"),
        (lambda d: corrupt(d, format="other"), "not a scrapy-actor-events checkpoint"),
        (lambda d: corrupt(d, generation=99), "checksum does not match"),
        (lambda d: json.dumps([1, 2]).encode(), "not a scrapy-actor-events checkpoint"),
        (lambda d: pickle.dumps({"format": "x"}), "not JSON"),
    ],
)
def test_bad_manifests_are_unreadable(mutate, reason) -> None:
    segment, _ = make_segment({"a": 1}, 1)
    with pytest.raises(UnreadableCheckpoint, match=reason) as info:
        Manifest.from_bytes(KEY, mutate(make_manifest(segment).to_bytes()))
    assert info.value.key == KEY


def test_manifest_of_another_key_or_with_foreign_chunks_is_refused() -> None:
    segment, _ = make_segment({"a": 1}, 1)
    with pytest.raises(UnreadableCheckpoint, match="belongs to key"):
        Manifest.from_bytes("OTHER", make_manifest(segment).to_bytes())
    foreign = SegmentRef(
        1, BASE, segment.raw_size, (segment.chunks[0].__class__("OTHER.part-1-0", 1, "x"),)
    )
    with pytest.raises(UnreadableCheckpoint, match="is not of this checkpoint"):
        Manifest.from_bytes(KEY, make_manifest(foreign).to_bytes())
    wrong_generation, _ = make_segment({"a": 1}, 2)
    moved = SegmentRef(3, BASE, wrong_generation.raw_size, wrong_generation.chunks)
    with pytest.raises(UnreadableCheckpoint, match="is not of this checkpoint"):
        Manifest.from_bytes(KEY, make_manifest(moved).to_bytes())


def test_a_delta_first_is_refused() -> None:
    delta, _ = make_segment({"a": 1}, 1, kind=DELTA)
    with pytest.raises(UnreadableCheckpoint, match="base segment first"):
        Manifest.from_bytes(KEY, make_manifest(delta).to_bytes())


def test_damaged_chunks_are_detected() -> None:
    segment, chunks = make_segment(
        {"records": [b"x" * 100] * 500, "more": list(range(3000))}, 2, chunk_bytes=512
    )
    assert len(chunks) >= 3
    flipped = list(chunks)
    flipped[1] = bytes([flipped[1][0] ^ 0x01]) + flipped[1][1:]
    with pytest.raises(UnreadableCheckpoint, match="does not match its checksum"):
        decode_segment(KEY, segment, flipped)
    with pytest.raises(UnreadableCheckpoint, match="missing from the store"):
        decode_segment(KEY, segment, [chunks[0], None, *chunks[2:]])
    with pytest.raises(UnreadableCheckpoint, match="does not match its checksum"):
        decode_segment(KEY, segment, [chunks[0], chunks[1][:-1], *chunks[2:]])


def test_decompression_is_bounded_by_the_declared_size() -> None:
    segment, chunks = make_segment({"zeros": b"\x00" * 5_000_000}, 1, chunk_bytes=1_000_000)
    lying = SegmentRef(1, BASE, 100, segment.chunks)
    with pytest.raises(UnreadableCheckpoint, match="wrong size"):
        decode_segment(KEY, lying, chunks)


def test_segment_of_another_generation_is_refused() -> None:
    segment, chunks = make_segment({"a": 1}, 7)
    relabelled = SegmentRef(8, BASE, segment.raw_size, segment.chunks)
    with pytest.raises(UnreadableCheckpoint, match="does not match the manifest"):
        decode_segment(KEY, relabelled, chunks)


def test_chunk_keys_parse_back() -> None:
    assert parse_chunk_key(KEY, chunk_key(KEY, 12, 3)) == (12, 3)
    assert parse_chunk_key(KEY, f"{KEY}x.part-1-0") is None
    assert parse_chunk_key(KEY, f"{KEY}.part-1-0.part-2-0") is None
    assert parse_chunk_key(KEY, KEY) is None
