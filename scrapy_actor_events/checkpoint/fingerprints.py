"""Seen fingerprints in about a third of the memory of a ``set[bytes]``, and their checkpoint form.

Scrapy's dupefilter keeps every fingerprint it has seen as a ``bytes`` object in a ``set``: about
98 bytes each for a 20-byte SHA-1 (the object's header, its hash slot, the set's spare room). A
crawl that has seen ten million URLs holds a gigabyte of them. :class:`CompactFingerprintSet`
keeps the digests side by side in ``bytearray`` buckets instead, about 30 bytes each, and finds
one with ``bytearray.find`` (a C loop over a bucket of a few dozen digests): about 1 µs a lookup.

* The bucket of a digest is chosen from its CRC-32, not from its first bytes: a custom request
  fingerprinter need not produce uniform bytes, and CRC-32 is the same in every process (unlike
  ``hash()``), so the checkpointed bucket layout is valid in the next one.
* 256 tables (the CRC's low byte) of 2**bits buckets (its top bits); a table whose buckets
  average more than :data:`MAX_AVERAGE` digests doubles its buckets. Only that table (1/256 of
  the set) is rehashed: a stall of a few milliseconds at ten million, never a full rehash.
* All digests have the width of the first one added (20 bytes with Scrapy's fingerprinter).
  Anything else (another width, or not ``bytes``) goes to an ordinary ``set`` beside them.

A checkpoint base stores the set as its layout (each table's size and each bucket's length) and
one blob of every digest: restoring two million fingerprints is slicing that blob, in tens of ms,
not two million ``add`` calls. Deltas list the new fingerprints.
"""

from __future__ import annotations

import sys
import zlib
from array import array
from collections.abc import Iterable, Iterator, MutableSet
from typing import Any

#: Digests per bucket, on average, before a table doubles its buckets: fewer means faster misses
#: and more bucket headers (a ``bytearray`` costs 57 bytes).
MAX_AVERAGE = 48
START_BITS = 2
#: The CRC's top bits pick a bucket, its low byte the table: at most 24 bits for buckets.
MAX_BITS = 24
TABLES = 256
#: Bumped if the bucket of a digest is ever computed differently (a stored layout then reloads
#: digest by digest).
LAYOUT_SCHEME = 1


class _Table:
    __slots__ = ("bits", "buckets", "count", "shift")

    def __init__(self, bits: int, buckets: list[bytearray] | None = None) -> None:
        self.bits = bits
        self.shift = 32 - bits
        self.buckets = buckets if buckets is not None else [bytearray() for _ in range(1 << bits)]
        self.count = 0


class CompactFingerprintSet(MutableSet[bytes]):
    """A set of equal-width ``bytes`` digests (other values too, kept apart), held compactly."""

    def __init__(self, items: Iterable[bytes] = ()) -> None:
        self._tables = [_Table(START_BITS) for _ in range(TABLES)]
        self._width = 0
        self._len = 0
        self._other: set[Any] = set()
        # The bucket of the last miss: ``request_seen`` asks ``fp in s`` then ``s.add(fp)``.
        self._miss: tuple[bytes, bytearray] | None = None
        self.update(items)

    @property
    def width(self) -> int:
        return self._width

    def _find(self, fp: bytes) -> tuple[bool, bytearray]:
        h = zlib.crc32(fp)
        table = self._tables[h & 0xFF]
        bucket = table.buckets[h >> table.shift]
        width = self._width
        at = bucket.find(fp)
        while at > 0 and at % width:  # a match across two digests: look further
            at = bucket.find(fp, at + 1)
        return at >= 0, bucket

    def __contains__(self, fp: object) -> bool:
        if fp.__class__ is not bytes or len(fp) != self._width:
            return fp in self._other
        found, bucket = self._find(fp)
        if not found:
            self._miss = (fp, bucket)
        return found

    def add(self, fp: bytes) -> None:
        miss = self._miss
        self._miss = None
        if miss is not None and miss[0] is fp:
            bucket = miss[1]
        else:
            if fp.__class__ is not bytes or (self._width and len(fp) != self._width) or not fp:
                if fp not in self._other:
                    self._other.add(fp)
                    self._len += 1
                return
            if not self._width:
                self._width = len(fp)
            found, bucket = self._find(fp)
            if found:
                return
        bucket += fp
        self._len += 1
        table = self._tables[zlib.crc32(fp) & 0xFF]
        table.count += 1
        if table.count > MAX_AVERAGE << table.bits and table.bits < MAX_BITS:
            self._grow(table)

    def discard(self, fp: bytes) -> None:
        self._miss = None
        if fp.__class__ is not bytes or len(fp) != self._width:
            if fp in self._other:
                self._other.discard(fp)
                self._len -= 1
            return
        h = zlib.crc32(fp)
        table = self._tables[h & 0xFF]
        bucket = table.buckets[h >> table.shift]
        width = self._width
        at = bucket.find(fp)
        while at > 0 and at % width:
            at = bucket.find(fp, at + 1)
        if at < 0:
            return
        bucket[at : at + width] = bucket[-width:]  # the last digest takes its place
        del bucket[-width:]
        table.count -= 1
        self._len -= 1

    def update(self, items: Iterable[bytes]) -> None:
        for fp in items:
            self.add(fp)

    def clear(self) -> None:
        self.__init__()  # type: ignore[misc]

    def copy(self) -> CompactFingerprintSet:
        return CompactFingerprintSet.from_layout(self.layout())

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[bytes]:
        width = self._width
        for table in self._tables:
            for bucket in table.buckets:
                data = bytes(bucket)
                for at in range(0, len(data), width):
                    yield data[at : at + width]
        yield from list(self._other)

    def __repr__(self) -> str:
        return f"<CompactFingerprintSet of {self._len:,} fingerprints>"

    def _grow(self, table: _Table) -> None:
        self._miss = None
        width = self._width
        bits = table.bits + 1
        buckets = [bytearray() for _ in range(1 << bits)]
        shift = 32 - bits
        crc32 = zlib.crc32
        for old in table.buckets:
            data = bytes(old)
            for at in range(0, len(data), width):
                fp = data[at : at + width]
                buckets[crc32(fp) >> shift] += fp
        table.bits, table.shift, table.buckets = bits, 32 - bits, buckets

    # -- the checkpoint form ------------------------------------------------------------------

    def layout(self) -> dict[str, Any]:
        """Everything in a form that loads without hashing: table sizes, bucket lengths, blob."""
        tables = self._tables
        lengths = array("I", (len(b) for t in tables for b in t.buckets))
        if sys.byteorder != "little":
            lengths.byteswap()
        return {
            "scheme": LAYOUT_SCHEME,
            "width": self._width,
            "bits": bytes(t.bits for t in tables),
            "lengths": lengths.tobytes(),
            "blob": b"".join(b for t in tables for b in t.buckets),
            "other": list(self._other),
        }

    @classmethod
    def from_layout(cls, layout: dict[str, Any]) -> CompactFingerprintSet:
        """The set :meth:`layout` described; raises ``ValueError`` if it is inconsistent."""
        new = cls()
        new.load_layout(layout)
        return new

    def load_layout(self, layout: dict[str, Any]) -> None:
        """Add a stored layout's digests: sliced straight into the buckets when this set is empty
        and the layout is of this scheme and consistent; one by one otherwise."""
        width, bits, blob = int(layout["width"]), bytes(layout["bits"]), bytes(layout["blob"])
        other = list(layout.get("other") or ())
        lengths = array("I")
        lengths.frombytes(bytes(layout["lengths"])[: len(layout["lengths"]) // 4 * 4])
        if sys.byteorder != "little":
            lengths.byteswap()
        if (
            self._len
            or layout.get("scheme") != LAYOUT_SCHEME
            or width <= 0
            or len(bits) != TABLES
            or max(bits) > MAX_BITS
            or len(lengths) != sum(1 << b for b in bits)
            or sum(lengths) != len(blob)
            or any(n % width for n in lengths)
        ):
            if width > 0:
                self.update(iter_digests(blob, width))
            self.update(other)
            return
        view = memoryview(blob)
        at = index = 0
        tables = []
        for table_bits in bits:
            buckets = []
            for n in lengths[index : index + (1 << table_bits)]:
                buckets.append(bytearray(view[at : at + n]))
                at += n
            index += 1 << table_bits
            table = _Table(table_bits, buckets)
            table.count = sum(len(b) for b in buckets) // width
            tables.append(table)
        self._tables = tables
        self._width = width
        self._len = len(blob) // width
        self._miss = None
        self.update(other)


def iter_digests(blob: bytes, width: int) -> Iterator[bytes]:
    """The ``width``-byte digests concatenated in ``blob``."""
    for at in range(0, len(blob), width):
        yield blob[at : at + width]


def snapshot(seen: Any) -> Any:
    """What a checkpoint base stores of the seen set: a layout, or a list of fingerprints."""
    if isinstance(seen, CompactFingerprintSet):
        return seen.layout()
    return list(seen)


def count_in(dump: Any) -> int:
    """How many fingerprints a stored base or delta holds."""
    if isinstance(dump, dict):
        width = int(dump.get("width") or 0)
        return (len(dump.get("blob") or b"") // width if width else 0) + len(
            dump.get("other") or ()
        )
    return len(dump) if dump else 0


def restore_into(seen: Any, layouts: list[dict[str, Any]], listed: list[bytes]) -> None:
    """Add stored fingerprints (base layouts and listed ones) to the dupefilter's set."""
    for layout in layouts:
        if isinstance(seen, CompactFingerprintSet):
            seen.load_layout(layout)
        else:
            seen.update(iter_digests(bytes(layout["blob"]), int(layout["width"])))
            seen.update(layout.get("other") or ())
    seen.update(listed)


def check_layout(layout: dict[str, Any]) -> None:
    """Raise ``ValueError`` (or ``TypeError``) unless ``layout`` is a well-formed stored layout."""
    width, bits, lengths, blob = (
        layout["width"], layout["bits"], layout["lengths"], layout["blob"]
    )  # fmt: skip
    if not isinstance(width, int) or width < 0:
        raise ValueError(f"bad fingerprint width {width!r}")
    if not all(isinstance(v, bytes) for v in (bits, lengths, blob)):
        raise TypeError("a fingerprint layout's tables must be bytes")
    if width and len(blob) % width:
        raise ValueError("a fingerprint blob that is not whole fingerprints")
    if not isinstance(layout.get("other") or [], list):
        raise TypeError("a fingerprint layout's other fingerprints must be a list")
