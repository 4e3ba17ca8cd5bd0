"""The package reads platform events at least as the Apify SDK does, with the same meaning.

Generated messages go through the SDK's own adapter (``apify.events._apify_event_manager``, apify
4.x) and through ``parse_message``. Whenever the SDK would emit an event, the package acts on it
too, with equal values. Where the SDK drops an event for one bad field, the package still acts on a
``migrating`` (with the default time remaining) or an ``aborting``.
"""

from __future__ import annotations

import json
import math
import time
from datetime import UTC, timedelta
from typing import Any

import pytest
from apify.events._apify_event_manager import event_data_adapter
from apify.events._types import DeprecatedEvent, SystemInfoEventData, UnknownEvent
from hypothesis import example, given, settings
from hypothesis import strategies as st
from scrapy.statscollectors import MemoryStatsCollector
from scrapy.utils.test import get_crawler
from twisted.internet.defer import succeed

from scrapy_actor_events.checkpoint.writer import CheckpointResult
from scrapy_actor_events.events.messages import MAX_TIME_REMAINING, parse_message
from scrapy_actor_events.events.migration import Migration
from scrapy_actor_events.events.reactions import EventReactions

# -- what the SDK does with a message -----------------------------------------------------------


def sdk_reading(raw: bytes) -> tuple[str, Any] | None:
    """(name, data) if ``ApifyEventManager`` would emit an event for ``raw``, else None."""
    try:
        event = event_data_adapter.validate_json(raw)
        if isinstance(event, DeprecatedEvent | UnknownEvent):
            return None
        data = event.data
        if isinstance(data, SystemInfoEventData):
            data.to_crawlee_format(1)  # it raises for some values: the SDK drops the event then
        return str(getattr(event.name, "value", event.name)), data
    except Exception:  # the SDK logs "Cannot parse Actor event" and drops it
        return None


def assert_same_meaning(raw: bytes) -> None:
    sdk = sdk_reading(raw)
    ours = parse_message(raw, False)
    if sdk is None:
        return
    name, data = sdk
    assert ours is not None, f"the SDK emits {name} for {raw!r}; the package dropped it"
    assert ours.name == name
    if name == "persistState":
        assert bool(ours.is_migrating) is data.is_migrating, raw
    elif name == "migrating":
        sdk_seconds = None if data.time_remaining is None else data.time_remaining.total_seconds()
        if sdk_seconds is None or not 0 <= sdk_seconds <= MAX_TIME_REMAINING:
            # Absent, negative, over a day or Infinity: the package uses its default.
            assert ours.time_remaining is None, raw
        else:
            assert ours.time_remaining == pytest.approx(sdk_seconds, abs=2e-6), raw
    elif name == "systemInfo":
        assert ours.is_cpu_overloaded is data.is_cpu_overloaded, raw


# -- generated messages ---------------------------------------------------------------------------

NUMBERS = (
    st.integers(-(10**6), 10**6)
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.floats(0, 100_000)
)
NUMERIC_STRINGS = NUMBERS.map(str) | st.tuples(
    st.sampled_from(["", " ", "\t"]), st.floats(0, 1e5), st.sampled_from(["", " ", "\n"])
).map(lambda t: f"{t[0]}{t[1]}{t[2]}")


def _iso_duration(parts: tuple[int, int, int, float, bool]) -> str:
    days, hours, minutes, seconds, negative = parts
    text = "P" + (f"{days}D" if days else "") + f"T{hours}H{minutes}M{seconds:g}S"
    return ("-" if negative else "") + text


def _clock(parts: tuple[int, int, int, int, int | None]) -> str:
    days, hours, minutes, seconds, micro = parts
    text = f"{hours:02d}:{minutes:02d}:{seconds:02d}" + (f".{micro}" if micro is not None else "")
    return f"{days} days, {text}" if days else text


DURATION_STRINGS = (
    st.tuples(
        st.integers(0, 2), st.integers(0, 30), st.integers(0, 70), st.floats(0, 90), st.booleans()
    ).map(_iso_duration)
    | st.tuples(
        st.integers(0, 2),
        st.integers(0, 30),
        st.integers(0, 70),
        st.integers(0, 70),
        st.none() | st.integers(0, 99_999_999),
    ).map(_clock)
    | st.sampled_from(["P1D", "PT30S", "PT0.5S", "P1W", "1d", "0 days", "1 day, 00:00:30", "00:00"])
)
LAX_BOOL_STRINGS = st.sampled_from(
    ["0", "off", "f", "false", "n", "no", "1", "on", "t", "true", "y", "yes", "maybe", " true"]
).flatmap(lambda s: st.sampled_from([s, s.upper(), s.capitalize()]))
BOOLS = (
    st.booleans()
    | st.sampled_from([0, 1, 2, -1, 0.0, 1.0, 0.5])
    | LAX_BOOL_STRINGS
    | st.none()
    | st.text(max_size=4)
)
SECONDS = (
    NUMBERS
    | NUMERIC_STRINGS
    | DURATION_STRINGS
    | st.booleans()
    | st.none()
    | st.text(max_size=8)
    | st.lists(st.integers(), max_size=1)
)
CREATED_AT = (
    st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat())
    | st.integers(0, 2_000_000_000_000)
    | st.floats(0, 2e9)
    | st.integers(0, 2_000_000_000_000).map(str)
    | st.sampled_from(["2024-08-09", "2024-08-09T16:04:16.161Z", "garbage", ""])
    | st.none()
    | st.lists(st.integers(), max_size=1)
)
USAGE = (
    st.floats(0, 1e10) | st.integers(0, 10**10) | st.integers(0, 10**10).map(str) | st.booleans()
)


def _named(camel: str, snake: str, values: st.SearchStrategy[Any]) -> st.SearchStrategy[dict]:
    """A field under its camelCase name, its snake_case name, both, or none."""
    as_camel = values.map(lambda v: {camel: v})
    return st.one_of(
        as_camel,
        as_camel,
        as_camel,
        st.just({}),
        values.map(lambda v: {snake: v}),
        st.tuples(values, values).map(lambda vs: {camel: vs[0], snake: vs[1]}),
    )


def _merged(*parts: st.SearchStrategy[dict]) -> st.SearchStrategy[dict]:
    return st.tuples(*parts).map(lambda ds: {k: v for d in ds for k, v in d.items()})


EXTRA = st.dictionaries(st.sampled_from(["extra", "x", "pad"]), st.integers(), max_size=1)
SYSTEM_INFO = _merged(
    *(
        _named(camel, snake, USAGE)
        for camel, snake in [
            ("memAvgBytes", "mem_avg_bytes"),
            ("memCurrentBytes", "mem_current_bytes"),
            ("memMaxBytes", "mem_max_bytes"),
            ("cpuAvgUsage", "cpu_avg_usage"),
            ("cpuMaxUsage", "cpu_max_usage"),
            ("cpuCurrentUsage", "cpu_current_usage"),
        ]
    ),
    _named("isCpuOverloaded", "is_cpu_overloaded", BOOLS),
    _named("createdAt", "created_at", CREATED_AT),
    EXTRA,
)
DATA = {
    "persistState": _merged(_named("isMigrating", "is_migrating", BOOLS), EXTRA),
    "migrating": _merged(_named("timeRemainingSecs", "time_remaining", SECONDS), EXTRA),
    "aborting": EXTRA,
    "exit": EXTRA,
    "cpuInfo": _named("isCpuOverloaded", "is_cpu_overloaded", BOOLS),
    "systemInfo": SYSTEM_INFO,
    "sessionRetired": EXTRA,
}
ODD_DATA = st.none() | st.lists(st.integers(), max_size=2) | st.text(max_size=3)


@st.composite
def messages(draw: st.DrawFn) -> bytes:
    known = st.sampled_from([*DATA, "Migrating", "fooBar"])
    name = draw(st.text(max_size=6) if draw(st.integers(0, 9)) == 0 else known)
    doc: dict[str, Any] = {"name": name}
    if draw(st.booleans()):
        doc["createdAt"] = draw(CREATED_AT)
    if draw(st.integers(0, 9)) > 0:
        doc["data"] = draw(DATA.get(name, EXTRA) if draw(st.integers(0, 9)) else ODD_DATA)
    return json.dumps(doc).encode()


def frame(name: str, data: Any = ..., **top: Any) -> bytes:
    doc: dict[str, Any] = {"name": name, **top}
    if data is not ...:
        doc["data"] = data
    return json.dumps(doc).encode()


SAMPLE = {
    "memAvgBytes": 19328860.3, "memCurrentBytes": 65171456, "memMaxBytes": 65171456,
    "cpuAvgUsage": 2.07, "cpuMaxUsage": 53.9, "cpuCurrentUsage": 8.45,
    "isCpuOverloaded": False, "createdAt": "2024-08-09T16:04:16.161Z",
}  # fmt: skip


@settings(max_examples=1500, deadline=None)
@given(messages())
# The forms the issue lists: each was dropped whole before.
@example(frame("migrating", {"timeRemainingSecs": "30"}))
@example(frame("migrating", {"timeRemainingSecs": -1}))
@example(frame("migrating", {"timeRemainingSecs": 86400}))
@example(frame("migrating", {"timeRemainingSecs": math.inf}))
@example(frame("persistState", {"isMigrating": "false"}))
@example(frame("persistState", {"isMigrating": 0}))
@example(frame("persistState", {"isMigrating": 1}))
@example(frame("systemInfo", {**SAMPLE, "memCurrentBytes": "65171456", "isCpuOverloaded": "no"}))
@example(frame("systemInfo", {**SAMPLE, "createdAt": 1723219456161}))
@example(frame("migrating", {"timeRemainingSecs": 30}, createdAt=1723219456161))
@example(frame("aborting", {"extra": 1}, createdAt=[1]))
def test_every_event_the_sdk_emits_means_the_same_here(raw: bytes) -> None:
    assert_same_meaning(raw)


def test_the_sdk_accepts_what_the_listed_examples_send() -> None:
    """The examples above are accepted by the SDK itself: the comparison is not vacuous."""
    for raw in (
        frame("migrating", {"timeRemainingSecs": "30"}),
        frame("persistState", {"isMigrating": "false"}),
        frame("systemInfo", {**SAMPLE, "createdAt": 1723219456161}),
        frame("migrating", {"timeRemainingSecs": 30}, createdAt=1723219456161),
    ):
        assert sdk_reading(raw) is not None, raw
        assert parse_message(raw, False) is not None


# -- where the package is more lenient than the SDK -----------------------------------------------

BAD_OPTIONAL = [
    {"timeRemainingSecs": "soon"},
    {"timeRemainingSecs": ""},
    {"timeRemainingSecs": {}},
    {"timeRemainingSecs": [30]},
    {"timeRemainingSecs": math.nan},
    {"timeRemainingSecs": -math.inf},
    {"timeRemainingSecs": "Infinity"},
    {"timeRemainingSecs": 1e30},
    {"timeRemainingSecs": 10**400},
    None,
    [],
    "now",
    7,
]


@pytest.mark.parametrize("name", ["migrating", "aborting"])
@pytest.mark.parametrize("data", BAD_OPTIONAL, ids=repr)
@pytest.mark.parametrize("created_at", ["2024-08-09T16:04:16.161Z", 1723219456161, "junk", [1]])
def test_a_bad_optional_field_never_drops_a_migrating_or_an_aborting(
    name: str, data: Any, created_at: Any
) -> None:
    event = parse_message(frame(name, data, createdAt=created_at), False)
    assert event is not None
    assert event.name == name
    assert event.time_remaining is None


class _Hold:
    def hold(self, reason: str) -> None:
        pass

    def release(self, reason: str) -> None:
        pass


class _Crawler:
    def __init__(self) -> None:
        self.stats = MemoryStatsCollector(get_crawler())
        self.engine = None


@pytest.mark.parametrize(
    "seconds",
    [-1, -0.001, math.nan, math.inf, -math.inf, 86_401, 1e9, 1e14, "-5", "1e400", "P2D", "-PT5S"],
    ids=repr,
)
def test_an_out_of_range_time_remaining_falls_back_to_the_default(seconds: Any) -> None:
    """The flush's deadline is ACTOR_EVENTS_MIGRATION_DEFAULT_SECONDS away, not the sent value."""
    migration = Migration(
        _Hold(),  # type: ignore[arg-type]
        lambda trigger: succeed(CheckpointResult(saved=True)),
        in_flight=lambda: 0,
        stop_timer=lambda: None,
        start_timer=lambda: None,
        default_time_remaining=7.0,
        resume_after=0.0,
    )
    reactions = EventReactions(_Crawler(), migration.checkpoint, migration)  # type: ignore[arg-type]
    event = parse_message(frame("migrating", {"timeRemainingSecs": seconds}), False)
    assert event is not None
    reactions(event)
    assert migration.active
    left = migration.deadline - time.monotonic()
    assert 6.0 < left <= 7.0, (seconds, left)
    migration.end()


@pytest.mark.parametrize(
    ("sent", "expected"),
    [(30, 30.0), ("30", 30.0), ("30.5", 30.5), (0, 0.0), (86_400, 86_400.0), ("PT45S", 45.0)],
)
def test_a_usable_time_remaining_is_used(sent: Any, expected: float) -> None:
    event = parse_message(frame("migrating", {"timeRemainingSecs": sent}), False)
    assert event is not None
    assert event.time_remaining == expected
    assert timedelta(seconds=expected) == timedelta(seconds=event.time_remaining)
