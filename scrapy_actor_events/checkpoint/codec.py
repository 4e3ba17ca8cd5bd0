"""Encode a spider's requests to compact bytes and back, without pickle.

Request callbacks are stored as names of the spider's own methods, and request classes are looked
up among modules already imported, never imported by name: loading a checkpoint never runs code.
The values inside a request (meta, headers, cb_kwargs) go through :mod:`.data`.

:class:`RequestCodec` is the fast path that replaces ``Request.to_dict`` / ``request_from_dict``:
the callback-name lookup is cached per function instead of scanning the spider with
``inspect.getmembers`` on every request.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from scrapy.http import Request

from .._scrapy_internals import build_request, request_fields
from .data import UnencodableError, describe_unencodable, pack_data, unpack_data

if TYPE_CHECKING:
    from collections.abc import Callable

    from scrapy import Spider

_BASE_ATTRIBUTES = frozenset(Request.attributes)


class UndecodableError(ValueError):
    """Bytes that do not decode to a request of this spider."""


# Field order puts the values that are usually set first, so that trailing defaults can be cut.
_URL, _CALLBACK, _META, _PRIORITY, _DONT_FILTER, _METHOD, _HEADERS, _BODY = range(8)
_COOKIES, _ENCODING, _ERRBACK, _FLAGS, _CB_KWARGS, _CLASS, _EXTRA = range(8, 15)
_FIELD_COUNT = 15


def url_and_priority(data: bytes | memoryview) -> tuple[str, int]:
    """The URL and priority of an encoded request, without rebuilding it (for tools)."""
    try:
        record = unpack_data(data)
        return str(record[_URL]), int((record[_PRIORITY] if len(record) > _PRIORITY else 0) or 0)
    except Exception as exc:
        raise UndecodableError(f"not a request record: {exc}") from None


def record_fields(data: bytes | memoryview) -> tuple[str, dict[str, Any] | None, int]:
    """The URL, meta and priority of an encoded request, without rebuilding it (for placing it
    in its queue): about 1 µs."""
    try:
        record = unpack_data(data)
        url = record[_URL]
        meta = record[_META] if len(record) > _META else None
        priority = (record[_PRIORITY] if len(record) > _PRIORITY else 0) or 0
    except Exception as exc:
        raise UndecodableError(f"not a request record: {exc}") from None
    if not isinstance(url, str) or not isinstance(priority, int):
        raise UndecodableError("not a request record")
    return url, meta if isinstance(meta, dict) else None, priority


class RequestCodec:
    """Turns a spider's requests into compact bytes and back."""

    def __init__(self, spider: Spider) -> None:
        self.spider = spider
        self._names: dict[Any, str] = {}
        self._classes: dict[type, str] = {}

    # -- encoding -------------------------------------------------------------------------------

    def encode(self, request: Request) -> bytes:
        """Bytes for ``request``; raises :class:`UnencodableError` naming the cause."""
        fields = request_fields(request)
        cls = type(request)
        record: list[Any] = [
            fields.url,
            self._callback_name(fields.callback, "callback"),
            fields.meta or None,
            fields.priority,
            fields.dont_filter,
            None if fields.method == "GET" else fields.method,
            dict(fields.headers) if fields.headers else None,
            fields.body or None,
            fields.cookies or None,
            None if fields.encoding == "utf-8" else fields.encoding,
            self._callback_name(fields.errback, "errback"),
            fields.flags or None,
            fields.cb_kwargs or None,
            None,
            None,
        ]
        if cls is not Request:
            record[_CLASS] = self._class_name(cls)
            extra = {a: getattr(request, a) for a in cls.attributes if a not in _BASE_ATTRIBUTES}
            record[_EXTRA] = extra or None
        while record and not record[-1]:
            record.pop()
        try:
            return pack_data(record)
        except UnencodableError:
            raise UnencodableError(self._explain(request, fields)) from None

    def _explain(self, request: Request, fields: Any) -> str:
        for where, value in (("meta", fields.meta), ("cb_kwargs", fields.cb_kwargs)):
            if value:
                try:
                    pack_data(value)
                except UnencodableError:
                    return describe_unencodable(value, where)
        if fields.cookies:
            return "cookies: not plain data"
        return f"{type(request).__name__} attributes: not plain data"

    def _callback_name(self, func: Callable[..., Any] | None, what: str) -> str | None:
        if func is None:
            return None
        target = getattr(func, "__func__", func)
        try:
            return self._names[target]
        except (KeyError, TypeError):
            pass
        if getattr(func, "__self__", None) is not self.spider:
            label = getattr(func, "__qualname__", None) or repr(func)
            raise UnencodableError(f"{what} {label} is not a method of the spider")
        name = func.__name__
        candidates = [name]
        if name.startswith("__") and not name.endswith("__"):
            # A private method is stored on the class under its mangled name.
            candidates += [f"_{c.__name__.lstrip('_')}{name}" for c in type(self.spider).__mro__]
        for candidate in candidates:
            bound = getattr(self.spider, candidate, None)
            if getattr(bound, "__func__", None) is target:
                self._names[target] = candidate
                return candidate
        raise UnencodableError(f"{what} {name} is not an attribute of the spider")

    def _class_name(self, cls: type) -> str:
        try:
            return self._classes[cls]
        except KeyError:
            name = f"{cls.__module__}:{cls.__qualname__}"
            self._classes[cls] = name
            return name

    # -- decoding -------------------------------------------------------------------------------

    def decode(self, data: bytes | memoryview) -> Request:
        """A request equal to the one encoded; raises :class:`UndecodableError`."""
        try:
            record = unpack_data(data)
        except Exception as exc:
            raise UndecodableError(f"not a request record: {exc}") from None
        if not isinstance(record, list) or not record or not isinstance(record[0], str):
            raise UndecodableError("not a request record")
        record.extend([None] * (_FIELD_COUNT - len(record)))
        try:
            cls = self._resolve_class(record[_CLASS])
            callback = self._resolve_callback(record[_CALLBACK])
            errback = self._resolve_callback(record[_ERRBACK])
            kwargs: dict[str, Any] = {
                "url": record[_URL],
                "callback": callback,
                "method": record[_METHOD] or "GET",
                "headers": record[_HEADERS],
                "body": record[_BODY],
                "cookies": record[_COOKIES],
                "meta": record[_META],
                "encoding": record[_ENCODING] or "utf-8",
                "priority": record[_PRIORITY] or 0,
                "dont_filter": bool(record[_DONT_FILTER]),
                "errback": errback,
                "flags": record[_FLAGS],
                "cb_kwargs": record[_CB_KWARGS],
            }
            extra = record[_EXTRA]
            if extra:
                allowed = set(cls.attributes) - _BASE_ATTRIBUTES
                if not isinstance(extra, dict) or not set(extra) <= allowed:
                    raise UndecodableError(f"{cls.__name__} takes no attributes {extra!r}")
                kwargs.update(extra)
            return build_request(cls, kwargs)
        except UndecodableError:
            raise
        except Exception as exc:
            raise UndecodableError(f"cannot rebuild request {record[_URL]}: {exc}") from None

    def _resolve_callback(self, name: Any) -> Callable[..., Any] | None:
        if name is None:
            return None
        if not isinstance(name, str) or name.startswith("__"):
            raise UndecodableError(f"bad callback name {name!r}")
        func = getattr(self.spider, name, None)
        if not callable(func) or getattr(func, "__self__", None) is not self.spider:
            raise UndecodableError(
                f"the spider has no method {name!r} (was it renamed since the checkpoint?)"
            )
        return func  # type: ignore[no-any-return]

    @staticmethod
    def _resolve_class(name: Any) -> type[Request]:
        if name is None:
            return Request
        if not isinstance(name, str) or ":" not in name:
            raise UndecodableError(f"bad request class {name!r}")
        module_name, _, qualname = name.partition(":")
        # Only classes of modules already imported: a checkpoint must not make us import code.
        obj: Any = sys.modules.get(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part, None)
        if not (isinstance(obj, type) and issubclass(obj, Request)):
            raise UndecodableError(
                f"request class {name} is not a Request subclass of an imported module"
            )
        return obj
