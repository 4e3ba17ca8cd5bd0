"""The events socket: one Autobahn WebSocket client per process, on the reactor Scrapy installed.

Every crawler of the process that listens shares one connection (the platform allows at most 10
per run and refuses more with close code 1008). The connection reconnects after a drop through
Twisted's ``ReconnectingClientFactory`` (growing delays with jitter; the delay starts over after a
connection that lived a while), never after the close codes that say "do not come back", and
closes with 1000 when the last crawler stops listening, so the process can exit at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from autobahn.twisted.websocket import (
    WebSocketClientFactory,
    WebSocketClientProtocol,
    connectWS,
)
from twisted.internet.protocol import ReconnectingClientFactory

from .messages import ActorEvent, parse_message

if TYPE_CHECKING:
    from .options import SocketOptions

logger = logging.getLogger(__name__)

#: Close codes after which a client must not reconnect (protocol error, unsupported data,
#: invalid payload, policy violation such as too many connections, missing extension).
NEVER_RECONNECT = frozenset({1002, 1003, 1007, 1008, 1010})
#: A connection that lived this long resets the reconnect delay (as the Apify SDK does).
STABLE_AFTER_SECONDS = 1.0
#: Autobahn refuses (and drops the connection on) messages over this; our parser ignores > 1 MiB.
MAX_PAYLOAD_BYTES = 16 * 1024 * 1024

Listener = Callable[[ActorEvent], None]


def tls_options(host: str, ca_file: str | None) -> Any:
    """Client TLS that verifies the server's certificate (Autobahn's default does not)."""
    from twisted.internet import ssl

    if ca_file is None:
        return ssl.optionsForClientTLS(host)
    with open(ca_file, "rb"):
        pass  # fail at start, naming the path, if the file cannot be read

    class SystemAndFileTrust(ssl.OpenSSLDefaultPaths):
        """The system's CA certificates plus those in ``ca_file``.

        Twisted has no public way to add a CA to the platform's; ``trustRoot=Certificate``
        would replace them, so extend the default trust root's one hook instead.
        """

        def _addCACertsToContext(self, context: Any) -> None:
            super()._addCACertsToContext(context)
            context.load_verify_locations(ca_file)

    return ssl.optionsForClientTLS(host, trustRoot=SystemAndFileTrust())  # type: ignore[arg-type]


class _Protocol(WebSocketClientProtocol):
    factory: _Factory

    def onOpen(self) -> None:
        self._opened_at = time.monotonic()
        self.factory.connection._opened(self)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        event = parse_message(payload, isBinary)
        if event is not None:
            self.factory.connection._dispatch(event)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        lived = time.monotonic() - getattr(self, "_opened_at", time.monotonic())
        self.factory.connection._closed(self, code, reason, lived)


class _Factory(WebSocketClientFactory, ReconnectingClientFactory):
    protocol = _Protocol  # type: ignore[assignment]

    def __init__(self, connection: EventsConnection, options: SocketOptions) -> None:
        WebSocketClientFactory.__init__(self, options.url)
        self.connection = connection
        self.initialDelay = options.initial_delay
        self.delay = options.initial_delay
        self.maxDelay = options.max_delay  # type: ignore[assignment]
        self.setProtocolOptions(
            autoPingInterval=options.ping_interval,
            autoPingTimeout=options.ping_timeout,
            maxMessagePayloadSize=MAX_PAYLOAD_BYTES,
            maxFramePayloadSize=MAX_PAYLOAD_BYTES,
        )

    def clientConnectionFailed(self, connector: Any, reason: Any) -> None:
        self.connection._failed(reason)
        self.retry(connector)

    def clientConnectionLost(self, connector: Any, reason: Any) -> None:
        self.retry(connector)

    def retry(self, connector: Any = None) -> None:
        if not self.continueTrying:
            return
        ReconnectingClientFactory.retry(self, connector)
        self.connection._retrying(self.delay)

    def resetDelay(self) -> None:
        """Start the delays over, without undoing a ``stopTrying()``.

        Twisted's ``resetDelay`` also sets ``continueTrying``: called when a socket the crawl
        itself closed goes down, it would open the socket again.
        """
        trying = self.continueTrying
        ReconnectingClientFactory.resetDelay(self)
        self.continueTrying = trying


class EventsConnection:
    """The process's events socket and the crawlers listening to it."""

    _by_url: ClassVar[dict[str, EventsConnection]] = {}

    def __init__(self, options: SocketOptions) -> None:
        self.options = options
        self.listeners: list[Listener] = []
        self.open_protocol: _Protocol | None = None
        self._factory: _Factory | None = None
        self._connector: Any = None
        self._refused_logged = False

    @classmethod
    def listen(cls, options: SocketOptions, listener: Listener) -> EventsConnection:
        """Add ``listener`` to the process's connection to ``options.url``, opening it if needed."""
        if not options.url:
            raise ValueError("the events socket needs a URL (ACTOR_EVENTS_WEBSOCKET_URL)")
        connection = cls._by_url.get(options.url)
        if connection is None:
            connection = cls(options)
            cls._by_url[options.url] = connection
            connection._connect()
        connection.listeners.append(listener)
        return connection

    def stop_listening(self, listener: Listener) -> None:
        """Remove ``listener``; the last one out closes the socket with code 1000."""
        if listener in self.listeners:
            self.listeners.remove(listener)
        if not self.listeners:
            self.close()

    def close(self) -> None:
        url = self.options.url or ""
        if EventsConnection._by_url.get(url) is self:
            del EventsConnection._by_url[url]
        if self._factory is not None:
            self._factory.stopTrying()
        if self.open_protocol is not None:
            self.open_protocol.sendClose(code=1000, reason="the crawl ended")
        elif self._connector is not None:
            self._connector.disconnect()

    # -- from the protocol and the factory ----------------------------------------------------

    def _connect(self) -> None:
        self._factory = _Factory(self, self.options)
        context = None
        if self._factory.isSecure:
            context = tls_options(self._factory.host, self.options.ca_file)
        logger.info("Connecting to the Actor events socket at %s", self.options.describe())
        self._connector = connectWS(self._factory, contextFactory=context)

    def _opened(self, protocol: _Protocol) -> None:
        self.open_protocol = protocol
        logger.info("Listening to Actor events on %s", self.options.describe())

    def _closed(
        self, protocol: _Protocol, code: int | None, reason: str | None, lived: float
    ) -> None:
        if self.open_protocol is protocol:
            self.open_protocol = None
        assert self._factory is not None
        if not self._factory.continueTrying:
            return  # closed on purpose: by close(), or after a code that said not to come back
        if lived >= STABLE_AFTER_SECONDS:
            # Only while trying: resetDelay() also sets continueTrying, which would reopen a
            # socket that close() has just closed.
            self._factory.resetDelay()
        if code in NEVER_RECONNECT:
            self._factory.stopTrying()
            if not self._refused_logged:
                self._refused_logged = True
                logger.error(
                    "The events socket was closed with code %s (%s) and will not be reopened;"
                    " checkpoints go on on the local timer.",
                    code,
                    reason or "no reason given",
                )
            return
        logger.warning(
            "The events socket closed (code %s, %s); reconnecting.", code, reason or "no reason"
        )

    def _failed(self, reason: Any) -> None:
        logger.warning(
            "Could not connect to the events socket at %s: %s",
            self.options.describe(),
            reason.getErrorMessage() if hasattr(reason, "getErrorMessage") else reason,
        )

    def _retrying(self, delay: float) -> None:
        logger.debug("Reconnecting to the events socket in %.1f s", delay)

    def _dispatch(self, event: ActorEvent) -> None:
        for listener in list(self.listeners):
            try:
                listener(event)
            except Exception:
                logger.exception("Error while handling the %s event", event.name)
