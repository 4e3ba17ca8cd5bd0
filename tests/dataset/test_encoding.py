"""Items serialized as the Apify SDK serializes them, and pushes split where the SDK splits them
(compared with the SDK's own code)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import json

import pytest
import scrapy
from apify.storage_clients._apify._dataset_client import ApifyDatasetClient

from scrapy_actor_events.dataset.base import PAYLOAD_LIMIT
from scrapy_actor_events.dataset.encoding import (
    UnacceptableItem,
    canonical,
    encode_item,
    json_array,
    split_requests,
)


class Product(scrapy.Item):
    name = scrapy.Field()
    inner = scrapy.Field()
    unset = scrapy.Field()


@dataclasses.dataclass
class Inner:
    x: int
    when: dt.datetime


def test_the_limit_is_the_sdks() -> None:
    assert PAYLOAD_LIMIT == ApifyDatasetClient._EFFECTIVE_LIMIT_SIZE.bytes == 9_436_241


def test_items_serialize_byte_for_byte_as_the_sdk_serializes_them() -> None:
    from itemadapter import ItemAdapter

    when = dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    items = [
        Product(name="é ü", inner=Inner(1, when)),
        {"dt": when, "date": when.date(), "dec": decimal.Decimal("1.10"), "set": {1},
         "tuple": (1, 2), "bytes": b"ab", "int_key": {1: "a"}, "none": None},
        Inner(2, when),
    ]  # fmt: skip
    ours = [encode_item(item) for item in items]
    sdk, _ = ApifyDatasetClient._serialize_chunk([ItemAdapter(i).asdict() for i in items], 0)
    assert json_array(ours).decode() == sdk
    assert json.loads(ours[0]) == {"name": "é ü", "inner": {"x": 1, "when": str(when)}}


@pytest.mark.parametrize(
    ("item", "cause"),
    [
        ({"nan": float("nan")}, "NaN"),
        ({"inf": float("inf")}, "NaN or an infinity"),
        ({(1, 2): "tuple key"}, "dict key"),
        ("not an item", "not an item"),
    ],
)
def test_what_json_cannot_carry_is_refused_with_a_short_cause(item, cause) -> None:
    with pytest.raises(UnacceptableItem) as info:
        encode_item(item)
    assert cause in info.value.cause
    assert not info.value.too_large


def test_a_circular_item_is_refused() -> None:
    loop: dict = {}
    loop["self"] = loop
    with pytest.raises(UnacceptableItem, match="circular"):
        encode_item(loop)


def test_an_item_over_the_limit_is_refused_as_too_large() -> None:
    encode_item({"x": "a" * 80}, limit=100)
    with pytest.raises(UnacceptableItem) as info:
        encode_item({"x": "a" * 100}, limit=100)
    assert info.value.too_large


def test_requests_split_where_the_sdk_splits_them() -> None:
    sizes = [4_000_000, 4_000_000, 2_000_000, 10, 9_000_000, 5, 5]
    items = [{"p": "x" * n} for n in sizes]
    ours = [encode_item(i) for i in items]
    expected, offset = [], 0
    while offset < len(items):
        _, end = ApifyDatasetClient._serialize_chunk(items, offset)
        expected.append((offset, end))
        offset = end
    assert list(split_requests(ours, PAYLOAD_LIMIT)) == expected
    assert len(expected) == 3
    for start, end in split_requests(ours, PAYLOAD_LIMIT):
        assert len(json_array(ours[start:end])) <= PAYLOAD_LIMIT


def test_comparison_ignores_key_order_only() -> None:
    assert canonical({"a": 1, "b": [1, {"c": 2, "d": 3}]}) == canonical(
        {"b": [1, {"d": 3, "c": 2}], "a": 1}
    )
    assert canonical({"a": 1}) != canonical({"a": 1.5})
    assert canonical({"a": "é"}) != canonical({"a": "e"})
