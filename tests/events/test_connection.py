"""The events socket client against real servers (Autobahn and `websockets`), in real crawls."""

from __future__ import annotations

import datetime as dt
import ipaddress
import itertools
import logging
import math
from typing import TYPE_CHECKING

import pytest
from scrapy.utils.asyncio import sleep
from scrapy.utils.defer import deferred_f_from_coro_f

from scrapy_actor_events.events.connection import STABLE_AFTER_SECONDS, EventsConnection

from ..support.events import (
    RECONNECT_INITIAL_DELAY,
    events_settings,
    eventually,
    finish,
    start,
    start_events_server,
    wait_for_lines,
)

if TYPE_CHECKING:
    from pathlib import Path

    from scrapy_actor_events.tools.site import DemoSite


@pytest.mark.parametrize("server_kind", ["autobahn", "websockets"])
@pytest.mark.parametrize("refusal", ["1011", "reset"])
@deferred_f_from_coro_f
async def test_dropped_connections_are_retried_with_growing_delays(
    server_kind: str, refusal: str, storage: Path, endless_site: DemoSite
) -> None:
    with start_events_server(server_kind) as server:
        server.send(f"refuse {refusal}")
        server.wait_for("refusing")
        crawler, done = start(endless_site, **events_settings(server.url))
        await wait_for_lines(server, r"^refused ", 4)
        await finish(crawler, done)
        attempts = [t for t, _ in server.matching(r"^refused ")]
    assert crawler.stats.get_value("finish_reason") == "finished", "the crawl goes on"
    gaps = [b - a for a, b in itertools.pairwise(attempts)][:3]
    # Delays grow by e (x2.7) each time, with up to 12% jitter either way.
    assert all(later > earlier * 1.5 for earlier, later in itertools.pairwise(gaps)), gaps


@pytest.mark.parametrize("server_kind", ["autobahn", "websockets"])
@deferred_f_from_coro_f
async def test_policy_violation_means_one_connection_and_the_crawl_goes_on(
    server_kind: str, storage: Path, endless_site: DemoSite, caplog: pytest.LogCaptureFixture
) -> None:
    def errors() -> list[logging.LogRecord]:
        return [
            r for r in caplog.records if r.levelno == logging.ERROR and "1008" in r.getMessage()
        ]

    with start_events_server(server_kind) as server:
        server.send("refuse 1008")
        server.wait_for("refusing")
        crawler, done = start(endless_site, **events_settings(server.url))
        await eventually(lambda: bool(errors()), "the client logs the 1008 close")
        # What is checked is an absence: a reconnection would come 0.2 s after the close and
        # the next 0.54 s after that; the crawl goes on long enough for both.
        await sleep(RECONNECT_INITIAL_DELAY * (1 + math.e) + 0.5)
        await finish(crawler, done)
        server.send("status")
        status = server.wait_for(r"status \d+ open, (\d+) in total")
    assert status.group(1) == "1"
    assert crawler.stats.get_value("finish_reason") == "finished"
    assert len(errors()) == 1
    assert "will not be reopened" in errors()[0].getMessage()


@deferred_f_from_coro_f
async def test_a_connection_that_lived_reconnects_at_once_and_closes_with_1000(
    storage: Path, endless_site: DemoSite
) -> None:
    with start_events_server() as server:
        crawler, done = start(endless_site, **events_settings(server.url))
        await wait_for_lines(server, r"^open 1 ", 1)
        # The real threshold: this test is about connections that lived STABLE_AFTER_SECONDS.
        await sleep(STABLE_AFTER_SECONDS + 0.2)
        server.send("close 1011")
        await wait_for_lines(server, r"^open 2 ", 1, timeout=3)
        await sleep(STABLE_AFTER_SECONDS + 0.2)
        await finish(crawler, done)
        await wait_for_lines(server, r"^closed 2 1000", 1, timeout=5)
        # A socket the crawl closed stays closed, however long it lived: no retry comes after
        # the reconnect delay.
        await sleep(3 * RECONNECT_INITIAL_DELAY)
        assert server.connections() == 2
    assert crawler.stats.get_value("finish_reason") == "finished"


MALFORMED = [
    ("raw this is not json", "not JSON"),
    ("binary 00ff10", "binary frame"),
    ('raw {"name": "", "data": {}}', "no event name"),
    ('raw {"data": {}}', "no event name"),
    ('raw ["persistState"]', "not an object"),
    ("big 1100000", "over the 1 MiB limit"),
]


@pytest.mark.parametrize("server_kind", ["autobahn", "websockets"])
@deferred_f_from_coro_f
async def test_malformed_frames_are_logged_and_ignored(
    server_kind: str, storage: Path, endless_site: DemoSite, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="scrapy_actor_events")
    with start_events_server(server_kind) as server:
        crawler, done = start(endless_site, **events_settings(server.url))
        await wait_for_lines(server, r"^open 1 ", 1)
        for command, _ in MALFORMED:
            server.send(command)
        server.send('raw {"name": "persistState"}')  # no data: defaults
        server.send('raw {"name": "brandNewEvent", "data": {}}')
        await wait_for_lines(server, r"^sent ", len(MALFORMED) + 2)
        # Frames arrive in order: once the last two are counted, every frame has been read.
        stats = crawler.stats
        await eventually(
            lambda: stats.get_value("actor_events/events/unknown") == 1,
            "the last frame sent is read",
        )
        await finish(crawler, done)
        server.send("status")
        total = server.wait_for(r"status \d+ open, (\d+) in total").group(1)
    assert total == "1", "malformed frames never cost the connection"
    assert crawler.stats.get_value("finish_reason") == "finished"
    warnings = [r.getMessage() for r in caplog.records if "malformed message" in r.getMessage()]
    for _, reason in MALFORMED:
        assert any(reason in w for w in warnings), (reason, warnings)
    assert crawler.stats.get_value("actor_events/events/persistState") == 1
    assert crawler.stats.get_value("actor_events/events/unknown") == 1
    assert "Ignored the unknown event 'brandNewEvent'" in caplog.text


@deferred_f_from_coro_f
async def test_one_socket_for_several_crawlers(storage: Path, endless_site: DemoSite) -> None:
    with start_events_server() as server:
        settings = events_settings(server.url)
        first, first_done = start(endless_site, **settings)
        second, second_done = start(endless_site, SPIDER_STATE_KEY="SECOND", **settings)
        await wait_for_lines(server, r"^open 1 ", 1)
        await eventually(
            lambda: len(EventsConnection._by_url[server.url].listeners) == 2,
            "both crawlers listen",
        )
        server.send("persistState")
        for crawler in (first, second):
            stats = crawler.stats
            await eventually(
                lambda s=stats: s.get_value("actor_events/events/persistState") == 1,
                "each crawler gets the event",
            )
        await finish(first, first_done)
        await finish(second, second_done)
        server.send("status")
        total = server.wait_for(r"status \d+ open, (\d+) in total").group(1)
    assert total == "1"
    for crawler in (first, second):
        assert crawler.stats.get_value("actor_events/events/persistState") == 1
    assert not EventsConnection._by_url, "the last crawler out closed the shared socket"


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@deferred_f_from_coro_f
async def test_wss_verifies_certificates(
    storage: Path, endless_site: DemoSite, tmp_path: Path, caplog
) -> None:
    def refused_logged() -> bool:
        return "certificate verify failed" in caplog.text or "Could not connect" in caplog.text

    cert, key = self_signed(tmp_path)
    with start_events_server(extra_args=["--certificate", str(cert), "--key", str(key)]) as server:
        url = server.url.replace("127.0.0.1", "localhost")
        assert url.startswith("wss://")
        refused, done = start(
            endless_site, **events_settings(url, ACTOR_EVENTS_RECONNECT_INITIAL_DELAY=5)
        )
        await eventually(refused_logged, "the refused handshake is logged")
        await finish(refused, done)
        assert not server.matching(r"^open "), "a self-signed certificate is refused by default"

        accepted, done = start(endless_site, **events_settings(url, ACTOR_EVENTS_CA_FILE=str(cert)))
        await wait_for_lines(server, r"^open 1 ", 1)
        server.send("persistState")
        stats = accepted.stats
        await eventually(
            lambda: stats.get_value("actor_events/events/persistState") == 1,
            "the event arrives over wss://",
        )
        await finish(accepted, done)
    assert accepted.stats.get_value("actor_events/events/persistState") == 1
    assert refused.stats.get_value("finish_reason") == "finished"


def test_importing_the_package_installs_no_reactor() -> None:
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys, scrapy_actor_events, scrapy_actor_events.events.connection;"
        "assert 'twisted.internet.reactor' not in sys.modules, 'a reactor was installed'"
    )
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
