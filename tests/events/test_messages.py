from __future__ import annotations

import json
import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scrapy_actor_events.events.messages import (
    MAX_MESSAGE_BYTES,
    ActorEvent,
    MalformedEvent,
    decode,
    parse_message,
)


def frame(doc) -> bytes:
    return json.dumps(doc).encode()


def test_platform_messages() -> None:
    sample = {
        "memAvgBytes": 19328860.3, "memCurrentBytes": 65171456, "memMaxBytes": 65171456,
        "cpuAvgUsage": 2.07, "cpuMaxUsage": 53.9, "cpuCurrentUsage": 8.45,
        "isCpuOverloaded": False, "createdAt": "2024-08-09T16:04:16.161Z",
    }  # fmt: skip
    event = decode(
        frame({"name": "systemInfo", "createdAt": "2024-08-09T16:04:16.161Z", "data": sample}),
        False,
    )
    assert event.name == "systemInfo"
    assert event.is_cpu_overloaded is False
    assert (
        decode(
            frame({"name": "migrating", "data": {"timeRemainingSecs": 12.5}}), False
        ).time_remaining
        == 12.5
    )
    assert decode(frame({"name": "persistState", "data": {"isMigrating": True}}), False).data == {
        "isMigrating": True
    }


def test_missing_data_gets_defaults() -> None:
    event = decode(frame({"name": "migrating"}), False)
    assert event == ActorEvent("migrating", {}, None)
    assert event.time_remaining is None
    assert event.is_cpu_overloaded is None
    assert decode(frame({"name": "persistState", "data": None}), False).data == {}


@pytest.mark.parametrize(
    ("payload", "binary", "reason"),
    [
        (b"\x00\x01", True, "binary frame"),
        (b"{not json", False, "not JSON"),
        (b"\xff\xfe", False, "not JSON"),
        (frame([1]), False, "not an object"),
        (frame({"name": 5}), False, "no event name"),
        (frame({"name": "", "data": {}}), False, "no event name"),
        (b" " * (MAX_MESSAGE_BYTES + 1), False, "over the 1 MiB limit"),
    ],
)
def test_malformed_frames_name_their_fault(
    payload: bytes, binary: bool, reason: str, caplog
) -> None:
    with pytest.raises(MalformedEvent, match=reason):
        decode(payload, binary)
    assert parse_message(payload, binary) is None
    assert reason.split()[0] in caplog.text


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        (
            {"name": "migrating", "data": {"timeRemainingSecs": 1e9}},
            "timeRemainingSecs=1000000000.0",
        ),
        ({"name": "migrating", "data": {"timeRemainingSecs": "soon"}}, "timeRemainingSecs='soon'"),
        ({"name": "persistState", "data": {"isMigrating": "maybe"}}, "isMigrating='maybe'"),
        ({"name": "cpuInfo", "data": {"isCpuOverloaded": 2}}, "isCpuOverloaded=2"),
    ],
)
def test_unusable_fields_are_named_and_the_event_kept(doc, field: str, caplog) -> None:
    event = parse_message(frame(doc), False)
    assert event is not None
    assert event.name == doc["name"]
    assert field in caplog.text


def test_unknown_events_are_returned_and_logged_at_debug(caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="scrapy_actor_events")
    event = parse_message(frame({"name": "somethingNew", "data": {"a": 1}}), False)
    assert event is not None
    assert event.name == "somethingNew"
    assert "Ignored the unknown event 'somethingNew'" in caplog.text


NAMES = ["persistState", "migrating", "aborting", "cpuInfo", "systemInfo"]
FIELDS = ["isMigrating", "timeRemainingSecs", "isCpuOverloaded", "cpuCurrentUsage"]
VALUES = st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=5)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=300),
        st.recursive(
            st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=20),
            lambda c: st.lists(c, max_size=3)
            | st.dictionaries(st.text(max_size=15), c, max_size=4),
            max_leaves=15,
        ).map(lambda d: json.dumps(d).encode()),
        st.fixed_dictionaries(
            {"name": st.sampled_from(NAMES)},
            optional={"data": st.dictionaries(st.sampled_from(FIELDS), VALUES, max_size=3)},
        ).map(lambda d: json.dumps(d).encode()),
    ),
    st.booleans(),
)  # fmt: skip
def test_parsing_never_raises(payload: bytes, binary: bool) -> None:
    event = parse_message(payload, binary)
    if event is not None:
        assert isinstance(event.name, str)
        assert isinstance(event.data, dict)
        assert event.time_remaining is None or event.time_remaining >= 0
