"""The Actor platform's events: what one message on the events socket says.

The platform sends one JSON text frame per event:
``{"name": str, "createdAt": str, "data": {...}}``. Parsing is at least as lenient as the Apify
SDK's (``apify/events/_types.py``, pydantic in lax mode): a field may come in camelCase or
snake_case, a boolean as ``"false"``, ``0`` or ``1``, a number as a numeric string, ``createdAt``
as an epoch number, extra fields are ignored (:mod:`.lax`). Every message the SDK acts on is acted
on here with the same meaning (``tests/events/test_sdk_parity.py``).

Where the SDK drops a whole event for one bad field (or data that is not an object), this parser
keeps the event and reads the field as absent, with a warning: a ``migrating`` without a usable
time remaining is still a migration (the flush uses ``ACTOR_EVENTS_MIGRATION_DEFAULT_SECONDS``),
and an ``aborting`` is an abort whatever its data. Only a frame that is no event at all (not
JSON, no name, binary, over 1 MiB) is dropped. :func:`parse_message` logs why and returns None:
nothing a server sends can raise into the reactor.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from .lax import is_finite_between, lax_bool, lax_seconds

logger = logging.getLogger(__name__)

PERSIST_STATE = "persistState"
MIGRATING = "migrating"
ABORTING = "aborting"
CPU_INFO = "cpuInfo"
SYSTEM_INFO = "systemInfo"
KNOWN_EVENTS = frozenset({PERSIST_STATE, MIGRATING, ABORTING, CPU_INFO, SYSTEM_INFO})

#: Larger messages are ignored: no event the platform sends comes near it.
MAX_MESSAGE_BYTES = 1024 * 1024
#: A ``timeRemainingSecs`` above this (a day), below 0, or not finite is not usable.
MAX_TIME_REMAINING = 86_400.0

#: The fields the package reads, per event: (camelCase name, snake_case name) as the SDK accepts.
TIME_REMAINING = ("timeRemainingSecs", "time_remaining")
IS_MIGRATING = ("isMigrating", "is_migrating")
IS_CPU_OVERLOADED = ("isCpuOverloaded", "is_cpu_overloaded")
_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    PERSIST_STATE: (IS_MIGRATING,),
    MIGRATING: (TIME_REMAINING,),
    CPU_INFO: (IS_CPU_OVERLOADED,),
    SYSTEM_INFO: (IS_CPU_OVERLOADED,),
}


def _field(data: dict[str, Any], names: tuple[str, str]) -> tuple[bool, Any]:
    """(present, value) of a field; the camelCase name wins over the snake_case one, as in the
    SDK's models (pydantic reads the alias first)."""
    for name in names:
        if name in data:
            return True, data[name]
    return False, None


@dataclass(frozen=True)
class ActorEvent:
    """One event; its accessors read ``data`` the way the SDK does, None for what is unusable."""

    name: str
    data: dict[str, Any] = field(default_factory=dict)
    #: As sent (an ISO string, or an epoch number); the SDK does not read it either.
    created_at: Any = None

    @property
    def time_remaining(self) -> float | None:
        """Seconds to the kill (``migrating``); None when absent or unusable (use the default)."""
        seconds = lax_seconds(_field(self.data, TIME_REMAINING)[1])
        if seconds is None or not is_finite_between(seconds, -1.0, MAX_TIME_REMAINING):
            return None
        # Whole microseconds, as the SDK's timedelta has them: -1e-9 s is 0 s there.
        seconds = timedelta(seconds=seconds).total_seconds()
        return seconds if seconds >= 0 else None

    @property
    def is_migrating(self) -> bool | None:
        return lax_bool(_field(self.data, IS_MIGRATING)[1])

    @property
    def is_cpu_overloaded(self) -> bool | None:
        return lax_bool(_field(self.data, IS_CPU_OVERLOADED)[1])

    def unusable_fields(self) -> list[str]:
        """The fields this event's name defines that are present but cannot be used."""
        read = {
            TIME_REMAINING: self.time_remaining,
            IS_MIGRATING: self.is_migrating,
            IS_CPU_OVERLOADED: self.is_cpu_overloaded,
        }
        bad = []
        for names in _FIELDS.get(self.name, ()):
            present, value = _field(self.data, names)
            if present and value is not None and read[names] is None:
                bad.append(f"{self.name}.data.{names[0]}={_preview(value)}")
        return bad


def _preview(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class MalformedEvent(ValueError):
    """A frame that is not an event; the message says what is wrong with it."""


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
        logger.log(
            logging.WARNING if name in KNOWN_EVENTS else logging.DEBUG,
            "The %s event's data is a %s, not an object: read as no data.",
            name,
            type(data).__name__,
        )
        data = {}
    return ActorEvent(name=name, data=data, created_at=doc.get("createdAt"))


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
    bad = event.unusable_fields()
    if bad:
        logger.warning(
            "The %s event has fields it cannot use (%s): %s.",
            event.name,
            ", ".join(bad),
            _CONSEQUENCE.get(event.name, "read as absent"),
        )
    return event


_CONSEQUENCE = {
    MIGRATING: "the migration goes ahead with ACTOR_EVENTS_MIGRATION_DEFAULT_SECONDS",
    PERSIST_STATE: "the checkpoint is taken anyway",
    CPU_INFO: "no CPU sample is taken from it",
    SYSTEM_INFO: "no CPU sample is taken from it",
}
