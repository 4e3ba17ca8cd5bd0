"""The Actor platform's events: what one message on the events socket says.

The platform sends one JSON text frame per event:
``{"name": str, "createdAt": str, "data": {...}}``.
:func:`parse_message` turns a frame into an :class:`ActorEvent` or, for anything malformed, logs why
and returns None: nothing a server sends can raise into the reactor.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)

PERSIST_STATE = "persistState"
MIGRATING = "migrating"
ABORTING = "aborting"
CPU_INFO = "cpuInfo"
SYSTEM_INFO = "systemInfo"
KNOWN_EVENTS = frozenset({PERSIST_STATE, MIGRATING, ABORTING, CPU_INFO, SYSTEM_INFO})

#: Larger messages are ignored: no event the platform sends comes near it.
MAX_MESSAGE_BYTES = 1024 * 1024

#: The type each known field must have, per event; a field of another type makes the event invalid.
_FIELD_TYPES: dict[str, dict[str, tuple[type, ...]]] = {
    PERSIST_STATE: {"isMigrating": (bool,)},
    MIGRATING: {"timeRemainingSecs": (int, float)},
    ABORTING: {},
    CPU_INFO: {"isCpuOverloaded": (bool,)},
    SYSTEM_INFO: {
        "isCpuOverloaded": (bool,),
        "memAvgBytes": (int, float),
        "memCurrentBytes": (int, float),
        "memMaxBytes": (int, float),
        "cpuAvgUsage": (int, float),
        "cpuMaxUsage": (int, float),
        "cpuCurrentUsage": (int, float),
        "createdAt": (str,),
    },
}


@dataclass(frozen=True)
class ActorEvent:
    """One event, with ``data`` checked against the fields its name defines."""

    name: str
    data: dict[str, Any] = field(default_factory=dict)
    created_at: str | None = None

    # The accessors read only what decode() checked for this event's name; for other events
    # (or an ActorEvent built by hand) a field of the wrong type reads as absent.

    @property
    def time_remaining(self) -> float | None:
        value = self.data.get("timeRemainingSecs")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            return None
        return float(value)

    @property
    def is_cpu_overloaded(self) -> bool | None:
        value = self.data.get("isCpuOverloaded")
        return value if isinstance(value, bool) else None


class MalformedEvent(ValueError):
    """A frame that is not an event; the message says what is wrong with it."""


def _check_fields(name: str, data: dict[str, Any]) -> None:
    for key, types in _FIELD_TYPES.get(name, {}).items():
        value = data.get(key)
        if value is None:
            continue
        if isinstance(value, bool) and bool not in types:
            raise MalformedEvent(f"{name}.data.{key} must be a number, got {value!r}")
        if not isinstance(value, types):
            expected = " or ".join(t.__name__ for t in types)
            raise MalformedEvent(
                f"{name}.data.{key} must be {expected}, got {type(value).__name__}"
            )
    remaining = data.get("timeRemainingSecs")
    if name == MIGRATING and isinstance(remaining, (int, float)) and not 0 <= remaining < 86_400:
        raise MalformedEvent(f"migrating.data.timeRemainingSecs is out of range: {remaining!r}")


def decode(payload: bytes, is_binary: bool) -> ActorEvent:
    """The event in a frame; raises :class:`MalformedEvent` with the reason."""
    if is_binary:
        raise MalformedEvent(f"a binary frame of {len(payload)} bytes (events are JSON text)")
    if len(payload) > MAX_MESSAGE_BYTES:
        raise MalformedEvent(f"a message of {len(payload):,} bytes, over the 1 MiB limit")
    try:
        doc = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedEvent(f"not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise MalformedEvent(f"a JSON {type(doc).__name__}, not an object")
    name = doc.get("name")
    if not isinstance(name, str) or not name:
        raise MalformedEvent("no event name")
    data = doc.get("data")
    if data is None:
        data = {}
    elif not isinstance(data, dict):
        raise MalformedEvent(f"{name}.data is a {type(data).__name__}, not an object")
    created_at = doc.get("createdAt")
    if created_at is not None and not isinstance(created_at, str):
        raise MalformedEvent(f"{name}.createdAt is not a string")
    _check_fields(name, data)
    return ActorEvent(name=name, data=data, created_at=created_at)


def parse_message(payload: bytes, is_binary: bool) -> ActorEvent | None:
    """The event in a frame, or None (logged) when the frame is malformed or unknown."""
    try:
        event = decode(payload, is_binary)
    except MalformedEvent as exc:
        preview = payload[:80] if not is_binary else b""
        logger.warning("Ignored a malformed message on the events socket: %s %r", exc, preview)
        return None
    except Exception:  # a parser bug must not reach the reactor either
        logger.exception("Ignored a message on the events socket that could not be parsed")
        return None
    if event.name not in KNOWN_EVENTS:
        logger.debug("Ignored the unknown event %r", event.name)
    return event
