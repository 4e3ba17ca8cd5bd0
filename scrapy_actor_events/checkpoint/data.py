"""Plain data to bytes and back, without pickle: MessagePack with a few extension types.

A checkpoint may sit in a store other people can write to, so loading one must never run code.
Values are MessagePack; tuples, sets, frozensets and naive datetimes travel as extension types so
that they come back with their type. Anything else that is not plain data raises
:class:`UnencodableError`, naming it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import msgpack

_EXT_TUPLE = 1
_EXT_SET = 2
_EXT_FROZENSET = 3
_EXT_NAIVE_DATETIME = 4


class UnencodableError(TypeError):
    """A value, or a part of a request, that is not plain data."""

    def __init__(self, cause: str) -> None:
        super().__init__(cause)
        self.cause = cause


def _default(obj: Any) -> Any:
    # strict_types sends tuples and subclasses of builtins here, so that what comes back out has
    # the same type (a tuple stays a tuple) or the plain base type (an OrderedDict becomes a dict).
    if isinstance(obj, tuple):
        return msgpack.ExtType(_EXT_TUPLE, pack_data(list(obj)))
    if isinstance(obj, frozenset):
        return msgpack.ExtType(_EXT_FROZENSET, pack_data(list(obj)))
    if isinstance(obj, set):
        return msgpack.ExtType(_EXT_SET, pack_data(list(obj)))
    if isinstance(obj, dt.datetime):
        if obj.tzinfo is None:
            return msgpack.ExtType(_EXT_NAIVE_DATETIME, obj.isoformat().encode())
        return msgpack.Timestamp.from_datetime(obj)
    for base in (dict, list, str, bytes, int, float):
        if isinstance(obj, base):
            return base(obj)  # type: ignore[arg-type]
    if isinstance(obj, Mapping):
        return dict(obj)
    raise UnencodableError(f"{type(obj).__module__}.{type(obj).__qualname__} is not plain data")


def _ext_hook(code: int, data: bytes) -> Any:
    if code == _EXT_TUPLE:
        return tuple(unpack_data(data))
    if code == _EXT_SET:
        return set(unpack_data(data))
    if code == _EXT_FROZENSET:
        return frozenset(unpack_data(data))
    if code == _EXT_NAIVE_DATETIME:
        return dt.datetime.fromisoformat(data.decode())
    raise ValueError(f"unknown extension type {code}")


def pack_data(obj: Any) -> bytes:
    """MessagePack ``obj``; raise :class:`UnencodableError` for anything but plain data."""
    try:
        packed: bytes = msgpack.packb(
            obj, use_bin_type=True, strict_types=True, datetime=False, default=_default
        )
        return packed
    except UnencodableError:
        raise
    except (TypeError, ValueError, OverflowError) as exc:
        raise UnencodableError(str(exc)) from None


def unpack_data(data: bytes | memoryview) -> Any:
    """The inverse of :func:`pack_data`; never runs code."""
    return msgpack.unpackb(
        data, raw=False, strict_map_key=False, ext_hook=_ext_hook, timestamp=3, use_list=True
    )


def describe_unencodable(value: Mapping[str, Any], where: str) -> str:
    """Name the first entry of ``value`` that is not data, for a log line a person can act on."""
    for key, item in value.items():
        try:
            pack_data(item)
        except UnencodableError as exc:
            return f"{where}[{key!r}]: {exc.cause}"
    return f"{where}: not plain data"
