"""The local events server and ``rehearse`` send events the Apify SDK itself accepts, so that they
can drive an SDK-based Actor too (its ``systemInfo`` model requires all eight fields)."""

from __future__ import annotations

import json

from apify.events._apify_event_manager import event_data_adapter
from apify.events._types import SystemInfoEvent, SystemInfoEventData
from websockets.sync.client import connect

from scrapy_actor_events.tools import rehearsal

from ..support.events import start_events_server


def sdk_system_info(frame: str | bytes) -> SystemInfoEventData:
    event = event_data_adapter.validate_json(frame)
    assert isinstance(event, SystemInfoEvent), f"the SDK does not take it as systemInfo: {frame!r}"
    event.data.to_crawlee_format(1)  # what the SDK's event manager does with it; raises if bad
    return event.data


def test_the_events_server_sends_system_info_in_the_platform_shape() -> None:
    with start_events_server() as server, connect(server.url, open_timeout=10) as client:
        server.wait_for(r"^open 1 ")
        for command in ("systemInfo on", "systemInfo off", "flood 2 systemInfo", "cpu on"):
            server.send(command)
        frames = [client.recv(timeout=10) for _ in range(1 + 1 + 2 + 2)]
    names = [json.loads(f)["name"] for f in frames]
    assert names == ["systemInfo"] * 5 + ["cpuInfo"], names
    readings = [sdk_system_info(f) for f in frames[:5]]
    assert [r.is_cpu_overloaded for r in readings] == [True, False, False, False, True]
    assert readings[0].cpu_current_usage == 100.0
    assert all(r.created_at.tzinfo is not None for r in readings)
    for frame in frames[:5]:
        data = json.loads(frame)["data"]
        assert set(data) == {
            "memAvgBytes", "memCurrentBytes", "memMaxBytes", "cpuAvgUsage", "cpuMaxUsage",
            "cpuCurrentUsage", "isCpuOverloaded", "createdAt",
        }  # fmt: skip


def test_rehearse_sends_system_info_in_the_platform_shape() -> None:
    for overloaded in (True, False):
        command = rehearsal._system_info(overloaded)
        verb, _, frame = command.partition(" ")
        assert verb == "raw"
        assert sdk_system_info(frame).is_cpu_overloaded is overloaded
