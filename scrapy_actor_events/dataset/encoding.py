"""Items as the dataset stores them: converted by ``ItemAdapter``, serialized to JSON once, the way
the Apify SDK does; and pushes split into requests the way the SDK splits them.

An item is serialized when it is scraped, and those bytes are what the checkpoint keeps, the
platform receives and a check of the dataset compares against, so every copy is the same.
``default=str`` turns what JSON has no type for (datetimes, decimals, sets, bytes) into text, as
the SDK does. One difference: NaN and infinities make an item unserializable here (the SDK sends
the bare ``NaN`` token, which is not JSON, and apify-client refuses it too).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .base import PAYLOAD_LIMIT

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence


class UnacceptableItem(ValueError):
    """An item the dataset cannot take; ``cause`` is one short phrase, the same for alike items."""

    def __init__(self, cause: str, *, too_large: bool = False) -> None:
        super().__init__(cause)
        self.cause = cause
        self.too_large = too_large


def encode_item(item: Any, limit: int = PAYLOAD_LIMIT) -> bytes:
    """The item as compact JSON (UTF-8); raises :class:`UnacceptableItem`."""
    # Imported on the first item: itemadapter imports pydantic where it is installed (apify-client
    # needs it), and a crawl that sends no items to a dataset need not carry its modules.
    from itemadapter import ItemAdapter

    try:
        data = ItemAdapter(item).asdict()
    except RecursionError as exc:
        raise UnacceptableItem(_cause(exc)) from None
    except TypeError as exc:
        raise UnacceptableItem(f"not an item ({exc})") from None
    try:
        text = json.dumps(
            data, ensure_ascii=False, separators=(",", ":"), default=str, allow_nan=False
        )
    except (TypeError, ValueError, RecursionError) as exc:
        raise UnacceptableItem(_cause(exc)) from None
    encoded = text.encode("utf-8")
    if len(encoded) > limit:
        raise UnacceptableItem(
            f"larger than the platform's limit of {limit:,} bytes", too_large=True
        )
    return encoded


def _cause(exc: BaseException) -> str:
    # Messages that name values ("keys must be str, ... not tuple") are kept short and general,
    # so that alike items are logged once.
    text = str(exc)
    if isinstance(exc, RecursionError) or "Circular reference" in text:
        return "it contains itself (a circular reference)"
    if "Out of range float" in text:
        return "it holds NaN or an infinity, which JSON cannot carry"
    if "keys must be" in text:
        return "a dict key is not a string, number, boolean or None"
    return f"{type(exc).__name__}: {text[:200]}"


def decode_item(data: bytes) -> Any:
    return json.loads(data)


def canonical(value: Any) -> str:
    """One text per JSON value whatever its key order: to compare what a dataset holds."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def json_array(items: Sequence[bytes]) -> bytes:
    return b"[" + b",".join(items) + b"]"


def split_requests(items: Sequence[bytes], limit: int) -> Iterator[tuple[int, int]]:
    """``(start, end)`` ranges of ``items`` whose JSON arrays stay within ``limit`` bytes.

    The same cut as the SDK's: an array counts 2 bytes for its brackets and each item its size
    plus one for a comma; a range always holds at least one item.
    """
    start, size = 0, 2
    for index, item in enumerate(items):
        if index > start and size + len(item) > limit:
            yield start, index
            start, size = index, 2
        size += len(item) + 1
    if start < len(items):
        yield start, len(items)
