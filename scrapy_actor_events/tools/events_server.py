"""A local Actor events server: what the platform's events socket does, on 127.0.0.1.

``scrapy-actor-events events`` serves it; point a crawl at it with
``ACTOR_EVENTS_WEBSOCKET_URL=ws://127.0.0.1:<port>`` and type events at the prompt, or give them
with times (``--at 30 "migrating 10"``). It speaks the platform's wire format (one JSON text frame
per event) and has a few extra commands to rehearse faults: dropping or refusing connections and
sending malformed frames. Every command and connection is reported on stdout, one line each.

Commands::

    persistState [true|false]     migrating [SECONDS]     aborting
    cpu on|off                    systemInfo [on|off]     (cpu on|off: systemInfo and cpuInfo
                                                           every --cpu-interval seconds)
    raw TEXT                      binary HEX              big BYTES
    close CODE [REASON]           reset                   refuse CODE|reset|off
    flood COUNT [EVENT]           freeze (stop answering pings and reading)
    status                        quit
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol

Output = Callable[[str], None]


def _print(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def platform_time() -> str:
    """Now, as the platform writes ``createdAt``: ISO 8601, milliseconds, ``Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def event_message(name: str, data: dict[str, Any] | None = None) -> bytes:
    doc: dict[str, Any] = {"name": name, "createdAt": platform_time()}
    if data is not None:
        doc["data"] = data
    return json.dumps(doc).encode()


def system_info(overloaded: bool) -> dict[str, Any]:
    """A ``systemInfo`` payload in the platform's full shape: the Apify SDK requires all eight
    fields and drops the event if one is missing. CPU usage is in percent, memory in bytes."""
    cpu = 100.0 if overloaded else 10.0
    return {
        "memAvgBytes": 190_000_000.0,
        "memCurrentBytes": 200_000_000,
        "memMaxBytes": 260_000_000,
        "cpuAvgUsage": cpu * 0.8,
        "cpuMaxUsage": max(cpu, 53.9),
        "cpuCurrentUsage": cpu,
        "isCpuOverloaded": overloaded,
        "createdAt": platform_time(),
    }


class _ServerProtocol(WebSocketServerProtocol):
    factory: _ServerFactory

    def onOpen(self) -> None:
        server = self.factory.server
        server.connection_count += 1
        self.number = server.connection_count
        if server.refuse is not None:
            # Refuse on the next turn: a close frame sent from onOpen itself can sit unsent.
            server.output(f"refused {self.number} with {server.refuse}")
            server.reactor.callLater(0, self._refuse, server.refuse)
            return
        server.clients.append(self)
        server.output(f"open {self.number} {self.peer}")
        if server.on_first_connection is not None:
            callback, server.on_first_connection = server.on_first_connection, None
            callback()

    def _refuse(self, how: str) -> None:
        if how == "reset":
            self.transport.abortConnection()  # type: ignore[union-attr]
        else:
            self.close_with(int(how), "refused by the events server")

    def close_with(self, code: int, reason: str) -> None:
        """Close with any code, as the platform does (1008 for too many connections, 1011).

        Autobahn's ``sendClose`` accepts only 1000 and 3000-4999 from applications; the frame
        itself is what a server sends.
        """
        if code == 1000 or 3000 <= code <= 4999:
            self.sendClose(code=code, reason=reason)
        else:
            self.sendCloseFrame(code=code, reasonUtf8=reason.encode(), isReply=False)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        server = self.factory.server
        if self in server.clients:
            server.clients.remove(self)
        server.output(f"closed {getattr(self, 'number', '?')} {code}")


class _ServerFactory(WebSocketServerFactory):
    protocol = _ServerProtocol  # type: ignore[assignment]

    def __init__(self, server: EventsServer, reactor: Any) -> None:
        super().__init__(reactor=reactor)
        self.server = server
        self.setProtocolOptions(maxMessagePayloadSize=64 * 1024 * 1024)


class EventsServer:
    """Serve the events socket on 127.0.0.1 and send events to every connected client."""

    def __init__(
        self, reactor: Any = None, output: Output = _print, cpu_interval: float = 1.0
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor as default_reactor

            reactor = default_reactor
        self.reactor = reactor
        self.output = output
        self.clients: list[_ServerProtocol] = []
        self.connection_count = 0
        self.refuse: str | None = None
        self.cpu_overloaded: bool | None = None
        self.cpu_interval = cpu_interval
        self.on_first_connection: Callable[[], None] | None = None
        self._port: Any = None
        self._cpu_loop: Any = None

    def listen(self, port: int = 0, interface: str = "127.0.0.1", tls: Any = None) -> int:
        factory = _ServerFactory(self, self.reactor)
        if tls is None:
            self._port = self.reactor.listenTCP(port, factory, interface=interface)
        else:
            self._port = self.reactor.listenSSL(port, factory, tls, interface=interface)
        scheme = "wss" if tls is not None else "ws"
        self.url = f"{scheme}://{interface}:{self._port.getHost().port}"
        self.output(f"listening {self.url}")
        return int(self._port.getHost().port)

    def stop(self) -> Any:
        if self._cpu_loop is not None and self._cpu_loop.running:
            self._cpu_loop.stop()
        for client in list(self.clients):
            client.dropConnection(abort=True)
        return self._port.stopListening() if self._port is not None else None

    # -- sending ------------------------------------------------------------------------------

    def broadcast(self, payload: bytes, binary: bool = False, label: str = "message") -> int:
        for client in list(self.clients):
            client.sendMessage(payload, isBinary=binary)
        self.output(f"sent {label} to {len(self.clients)}")
        return len(self.clients)

    def send(self, name: str, data: dict[str, Any] | None = None) -> int:
        return self.broadcast(event_message(name, data), label=name)

    def set_cpu(self, overloaded: bool) -> None:
        """Report the CPU as (not) overloaded every ``cpu_interval`` seconds, as the platform
        does: in a ``systemInfo`` (what the Python SDK reads) and a ``cpuInfo`` (the older form,
        which the JS SDK still passes on)."""
        from twisted.internet.task import LoopingCall

        self.cpu_overloaded = overloaded
        if self._cpu_loop is None:
            self._cpu_loop = LoopingCall(self._send_cpu)
            self._cpu_loop.clock = self.reactor
            self._cpu_loop.start(self.cpu_interval, now=True)
        else:
            self._send_cpu()

    def _send_cpu(self) -> None:
        if self.clients and self.cpu_overloaded is not None:
            self.send("systemInfo", system_info(self.cpu_overloaded))
            self.send("cpuInfo", {"isCpuOverloaded": self.cpu_overloaded})

    def close_all(self, code: int, reason: str = "closed by the events server") -> None:
        for client in list(self.clients):
            client.close_with(code, reason)
        self.output(f"closing {len(self.clients)} with {code}")

    def flood(self, count: int, name: str) -> None:
        """Send ``count`` events at once: a burst far above the platform's one a second."""
        data: dict[str, Any] = {}
        if name == "systemInfo":
            data = system_info(False)
        elif name == "cpuInfo":
            data = {"isCpuOverloaded": False}
        for client in list(self.clients):
            for _ in range(count):
                client.sendMessage(event_message(name, data))
        self.output(f"sent {count} {name} to {len(self.clients)}")

    def freeze_all(self) -> None:
        """Stop reading from every connection: pings go unanswered, like a hung server."""
        for client in list(self.clients):
            client.transport.pauseProducing()  # type: ignore[union-attr]
        self.output(f"froze {len(self.clients)}")

    def reset_all(self) -> None:
        """Drop every connection without a close frame, like a TCP reset."""
        for client in list(self.clients):
            client.transport.abortConnection()  # type: ignore[union-attr]
        self.output(f"reset {len(self.clients)}")

    # -- commands -----------------------------------------------------------------------------

    def command(self, line: str) -> bool:
        """Run one command line; returns False for ``quit``."""
        words = line.strip().split(maxsplit=1)
        if not words:
            return True
        verb, rest = words[0], (words[1] if len(words) > 1 else "")
        try:
            return self._command(verb, rest)
        except (ValueError, IndexError) as exc:
            self.output(f"error {verb}: {exc}")
            return True

    def _command(self, verb: str, rest: str) -> bool:
        if verb == "persistState":
            self.send("persistState", {"isMigrating": rest.lower() in {"true", "1", "yes"}})
        elif verb == "migrating":
            self.send("migrating", {"timeRemainingSecs": float(rest)} if rest else None)
        elif verb == "aborting":
            self.send("aborting")
        elif verb == "cpu":
            if rest not in {"on", "off"}:
                raise ValueError("say 'cpu on' or 'cpu off'")
            self.set_cpu(rest == "on")
        elif verb == "systemInfo":
            if rest not in {"", "on", "off"}:
                raise ValueError("say 'systemInfo', 'systemInfo on' or 'systemInfo off'")
            overloaded = rest == "on" if rest else bool(self.cpu_overloaded)
            self.send("systemInfo", system_info(overloaded))
        elif verb == "raw":
            self.broadcast(rest.encode(), label="raw")
        elif verb == "binary":
            self.broadcast(bytes.fromhex(rest), binary=True, label="binary")
        elif verb == "big":
            size = int(rest)
            body = json.dumps({"name": "persistState", "data": {"pad": "x" * size}}).encode()
            self.broadcast(body, label=f"big {len(body)}")
        elif verb == "close":
            code, _, reason = rest.partition(" ")
            self.close_all(int(code), reason or "closed by the events server")
        elif verb == "reset":
            self.reset_all()
        elif verb == "flood":
            count, _, name = rest.partition(" ")
            self.flood(int(count), name or "cpuInfo")
        elif verb == "freeze":
            self.freeze_all()
        elif verb == "refuse":
            if rest not in {"off", "reset"}:
                int(rest)  # a close code
            self.refuse = None if rest == "off" else rest
            self.output(f"refusing {rest}")
        elif verb == "status":
            self.output(f"status {len(self.clients)} open, {self.connection_count} in total")
        elif verb == "quit":
            return False
        else:
            raise ValueError(f"unknown command {verb!r}")
        return True


def tls_context(certificate: str, key: str) -> Any:
    """Server TLS from PEM files (for wss://)."""
    from twisted.internet import ssl

    with open(certificate, "rb") as cert_file, open(key, "rb") as key_file:
        pem = cert_file.read() + b"\n" + key_file.read()
    return ssl.PrivateCertificate.loadPEM(pem).options()


def serve(
    port: int,
    schedule: list[tuple[float, str]],
    cpu_interval: float,
    tls: Any = None,
) -> int:
    """Run the server with a prompt on stdin until ``quit`` or end of input."""
    from twisted.internet import reactor as installed
    from twisted.internet import stdio
    from twisted.protocols.basic import LineReceiver

    reactor: Any = installed  # typed as the interface of one method group only

    server = EventsServer(reactor, cpu_interval=cpu_interval)
    server.listen(port, tls=tls)
    interactive = sys.stdin.isatty()

    class Prompt(LineReceiver):
        delimiter = b"\n"

        def connectionMade(self) -> None:
            self._prompt()

        def lineReceived(self, line: bytes) -> None:
            if not server.command(line.decode(errors="replace")):
                reactor.stop()
                return
            self._prompt()

        def connectionLost(self, reason: Any = None) -> None:
            if reactor.running and not schedule:
                reactor.stop()

        def _prompt(self) -> None:
            if interactive:
                transport: Any = self.transport
                transport.write(b"events> ")

    def start_schedule() -> None:
        for delay, line in schedule:
            reactor.callLater(delay, server.command, line)

    if schedule:
        server.on_first_connection = start_schedule
    stdio.StandardIO(Prompt())
    reactor.run()
    return 0
