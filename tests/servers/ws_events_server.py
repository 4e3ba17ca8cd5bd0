"""An Actor events server written with `websockets` (not Autobahn), run as a subprocess.

It reads the same commands on stdin as `scrapy-actor-events events` and reports on stdout the same
way, so that the client is tested against a second, independent WebSocket implementation.

    python -m tests.servers.ws_events_server [PORT]
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime
from typing import Any

from websockets.asyncio.server import ServerConnection, serve

from scrapy_actor_events.tools.events_server import system_info


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class Server:
    def __init__(self) -> None:
        self.clients: dict[ServerConnection, int] = {}
        self.count = 0
        self.refuse: str | None = None
        self.cpu: bool | None = None
        self.cpu_task: asyncio.Task[None] | None = None

    async def handler(self, ws: ServerConnection) -> None:
        self.count += 1
        number = self.count
        if self.refuse == "reset":
            say(f"refused {number} with reset")
            ws.transport.abort()
            return
        if self.refuse is not None:
            say(f"refused {number} with {self.refuse}")
            await ws.close(int(self.refuse), "refused by the events server")
            return
        self.clients[ws] = number
        say(f"open {number} {ws.remote_address}")
        try:
            async for _ in ws:
                pass
        except Exception:
            pass
        finally:
            self.clients.pop(ws, None)
            say(f"closed {number} {ws.close_code}")

    async def broadcast(self, payload: str | bytes, label: str) -> None:
        for ws in list(self.clients):
            try:
                await ws.send(payload)
            except Exception:
                continue
        say(f"sent {label} to {len(self.clients)}")

    async def send(self, name: str, data: dict[str, Any] | None = None) -> None:
        doc: dict[str, Any] = {"name": name, "createdAt": datetime.now(UTC).isoformat()}
        if data is not None:
            doc["data"] = data
        await self.broadcast(json.dumps(doc), name)

    async def cpu_loop(self) -> None:
        while True:
            if self.clients and self.cpu is not None:
                await self.send("cpuInfo", {"isCpuOverloaded": self.cpu})
            await asyncio.sleep(1.0)

    async def command(self, line: str) -> bool:
        verb, _, rest = line.strip().partition(" ")
        if verb == "persistState":
            await self.send("persistState", {"isMigrating": rest == "true"})
        elif verb == "migrating":
            await self.send("migrating", {"timeRemainingSecs": float(rest)} if rest else None)
        elif verb == "aborting":
            await self.send("aborting")
        elif verb == "cpu":
            self.cpu = rest == "on"
            if self.cpu_task is None:
                self.cpu_task = asyncio.create_task(self.cpu_loop())
        elif verb == "systemInfo":
            await self.send("systemInfo", system_info(rest == "on" if rest else bool(self.cpu)))
        elif verb == "raw":
            await self.broadcast(rest, "raw")
        elif verb == "binary":
            await self.broadcast(bytes.fromhex(rest), "binary")
        elif verb == "big":
            await self.broadcast(
                json.dumps({"name": "persistState", "data": {"pad": "x" * int(rest)}}), "big"
            )
        elif verb == "close":
            code = int(rest.split()[0])
            for ws in list(self.clients):
                await ws.close(code, "closed by the events server")
            say(f"closing with {code}")
        elif verb == "flood":
            count, _, name = rest.partition(" ")
            name = name or "cpuInfo"
            data = {"isCpuOverloaded": False} if name in {"cpuInfo", "systemInfo"} else {}
            message = json.dumps(
                {"name": name, "createdAt": datetime.now(UTC).isoformat(), "data": data}
            )
            for ws in list(self.clients):
                for _ in range(int(count)):
                    await ws.send(message)
            say(f"sent {count} {name} to {len(self.clients)}")
        elif verb == "freeze":
            for ws in list(self.clients):
                ws.transport.pause_reading()
            say(f"froze {len(self.clients)}")
        elif verb == "reset":
            for ws in list(self.clients):
                ws.transport.abort()
            say("reset")
        elif verb == "refuse":
            self.refuse = None if rest == "off" else rest
            say(f"refusing {rest}")
        elif verb == "status":
            say(f"status {len(self.clients)} open, {self.count} in total")
        elif verb == "quit":
            return False
        elif verb:
            say(f"error {verb}: unknown command")
        return True


async def main(port: int) -> None:
    server = Server()
    async with serve(
        server.handler, "127.0.0.1", port, max_size=None, ping_interval=None
    ) as ws_server:
        bound = next(iter(ws_server.sockets)).getsockname()[1]
        say(f"listening ws://127.0.0.1:{bound}")
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        while line := await reader.readline():
            if not await server.command(line.decode()):
                break


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 0))
