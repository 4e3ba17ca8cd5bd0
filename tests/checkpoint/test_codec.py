from __future__ import annotations

import datetime as dt
import sys
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scrapy import Spider
from scrapy.http import FormRequest, JsonRequest, Request

from scrapy_actor_events.checkpoint.codec import RequestCodec, UndecodableError
from scrapy_actor_events.checkpoint.data import UnencodableError, pack_data, unpack_data


class CodecSpider(Spider):
    name = "codec"

    def parse_item(self, response):
        pass

    def on_error(self, failure):
        pass

    def __private(self, response):
        pass

    def private_ref(self):
        return self.__private


class OtherSpider(Spider):
    name = "other"

    def parse_item(self, response):
        pass


@pytest.fixture
def spider() -> CodecSpider:
    return CodecSpider()


@pytest.fixture
def codec(spider: CodecSpider) -> RequestCodec:
    return RequestCodec(spider)


def assert_same_request(a: Request, b: Request) -> None:
    assert type(a) is type(b)
    for attr in type(a).attributes:
        assert getattr(a, attr) == getattr(b, attr), attr


def test_full_request_round_trip(codec: RequestCodec, spider: CodecSpider) -> None:
    request = Request(
        "https://example.com/a?b=1#frag",
        callback=spider.parse_item,
        errback=spider.on_error,
        method="POST",
        headers={"X-One": "1", "Accept": ["a", "b"]},
        body=b"\x00\xffbinary",
        cookies={"session": "abc"},
        meta={"depth": 2, "nested": {"list": [1, 2.5, None, True], "bytes": b"\x01"}, "t": (1, 2)},
        encoding="latin-1",
        priority=-7,
        dont_filter=True,
        flags=["cached"],
        cb_kwargs={"page": 3, "tags": {"x", "y"}},
    )
    decoded = codec.decode(codec.encode(request))
    assert_same_request(request, decoded)
    assert decoded.callback == spider.parse_item
    assert decoded.errback == spider.on_error
    assert decoded.meta["t"] == (1, 2)
    assert decoded.headers.getlist("Accept") == [b"a", b"b"]


def test_defaults_are_compact(codec: RequestCodec) -> None:
    data = codec.encode(Request("http://127.0.0.1:8000/p/1"))
    assert len(data) < 40
    decoded = codec.decode(data)
    assert decoded.callback is None
    assert decoded.method == "GET"
    assert decoded.priority == 0


def test_form_and_json_requests(codec: RequestCodec, spider: CodecSpider) -> None:
    form = FormRequest(
        "https://example.com/login",
        formdata={"user": "me", "pass": "x"},
        callback=spider.parse_item,
    )
    assert_same_request(form, codec.decode(codec.encode(form)))
    json_request = JsonRequest(
        "https://example.com/api", data={"q": [1, 2]}, dumps_kwargs={"sort_keys": True}
    )
    decoded = codec.decode(codec.encode(json_request))
    assert_same_request(json_request, decoded)
    assert decoded.body == json_request.body
    assert decoded.replace(data={"b": 1, "a": 2}).body == b'{"a": 2, "b": 1}'


def test_private_method_callback(codec: RequestCodec, spider: CodecSpider) -> None:
    request = Request("https://example.com", callback=spider.private_ref())
    assert codec.decode(codec.encode(request)).callback == spider.private_ref()


@pytest.mark.parametrize(
    ("make", "cause"),
    [
        (
            lambda s: Request("https://e.com", callback=lambda r: None),
            "is not a method of the spider",
        ),
        (
            lambda s: Request("https://e.com", callback=OtherSpider().parse_item),
            "is not a method of the spider",
        ),
        (lambda s: Request("https://e.com", meta={"response": object()}), "meta['response']"),
        (lambda s: Request("https://e.com", cb_kwargs={"fn": print}), "cb_kwargs['fn']"),
    ],
)
def test_unencodable_requests_name_their_cause(
    codec: RequestCodec, spider: CodecSpider, make, cause
) -> None:
    with pytest.raises(UnencodableError) as info:
        codec.encode(make(spider))
    assert cause in info.value.cause


def test_decode_refuses_unknown_callbacks_and_classes(codec: RequestCodec) -> None:
    record = ["https://e.com", "no_such_method"]
    with pytest.raises(UndecodableError, match="no method 'no_such_method'"):
        codec.decode(msgpack.packb(record))
    with pytest.raises(UndecodableError, match="bad callback name"):
        codec.decode(msgpack.packb(["https://e.com", "__init__"]))
    not_imported = "antigravity:Something"
    assert "antigravity" not in sys.modules
    fields: list[Any] = [
        "https://e.com",
        None,
        None,
        0,
        False,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
    ]
    with pytest.raises(UndecodableError, match="not a Request subclass of an imported module"):
        codec.decode(msgpack.packb([*fields, not_imported]))
    assert "antigravity" not in sys.modules, "decoding must never import a module"
    with pytest.raises(UndecodableError, match="not a Request subclass"):
        codec.decode(msgpack.packb([*fields, "os:system"]))


@pytest.mark.parametrize(
    "data", [b"", b"\xc1", b"\x93\x01\x02\x03", msgpack.packb({"url": 1}), b"\xd4\x07\x00"]
)
def test_garbage_is_undecodable(codec: RequestCodec, data: bytes) -> None:
    with pytest.raises(UndecodableError):
        codec.decode(data)


def test_callback_name_lookup_is_cached_per_function(
    codec: RequestCodec, spider: CodecSpider
) -> None:
    request = Request("https://example.com", callback=spider.parse_item)
    codec.encode(request)
    assert codec._names == {CodecSpider.parse_item: "parse_item"}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False)
    | st.text() | st.binary(),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8), children, max_size=4)
    | st.tuples(children, children),
    max_leaves=20,
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(meta=st.dictionaries(st.text(max_size=10), json_values, max_size=5),
    cb_kwargs=st.dictionaries(st.from_regex(r"[a-z_]{1,8}", fullmatch=True), json_values,
        max_size=3),
    priority=st.integers(-1000, 1000), dont_filter=st.booleans(), body=st.binary(max_size=64),
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]), path=st.text(
        st.characters(codec="ascii", categories=["L", "N"]), max_size=20))  # fmt: skip
def test_round_trip_property(meta, cb_kwargs, priority, dont_filter, body, method, path) -> None:
    spider = CodecSpider()
    codec = RequestCodec(spider)
    request = Request(
        f"https://example.com/{path}",
        callback=spider.parse_item,
        meta=meta,
        cb_kwargs=cb_kwargs,
        priority=priority,
        dont_filter=dont_filter,
        body=body,
        method=method,
    )
    assert_same_request(request, codec.decode(codec.encode(request)))


def test_data_extension_types_round_trip() -> None:
    value = {
        "tuple": (1, (2, 3)),
        "set": {1, 2},
        "frozenset": frozenset({"a"}),
        "aware": dt.datetime(2024, 8, 9, 16, 4, 16, 161000, tzinfo=dt.UTC),
        "naive": dt.datetime(2024, 8, 9, 16, 4, 16),
        "int_keys": {1: "a"},
    }
    assert unpack_data(pack_data(value)) == value


def test_unknown_extension_type_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown extension type"):
        unpack_data(msgpack.packb(msgpack.ExtType(42, b"\x00")))
