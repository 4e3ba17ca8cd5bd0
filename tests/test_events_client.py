"""The events socket client against real servers (Autobahn and `websockets`), in real crawls."""

from __future__ import annotations

import datetime as dt
import ipaddress
import itertools
import logging
from typing import TYPE_CHECKING

import pytest
from scrapy import Spider
from scrapy.utils.asyncio import sleep
from scrapy.utils.defer import deferred_f_from_coro_f, deferred_from_coro, maybe_deferred_to_future

from scrapy_actor_events.events.connection import EventsConnection
from scrapy_actor_events.tools.site import DemoSite

from .support.crawling import make_crawler
from .support.events import start_events_server

if TYPE_CHECKING:
    from pathlib import Path

    from scrapy_actor_events.tools.harness import EventsServerProcess


class SlowSpider(Spider):
    name = "slow"

    def __init__(self, url: str = "", **kwargs):
        super().__init__(**kwargs)
        self.start_urls = [url]

    def parse(self, response):
        yield from response.follow_all(css="a::attr(href)", callback=self.parse)


def events_settings(url: str, **extra) -> dict:
    return {
        "ACTOR_EVENTS_WEBSOCKET_URL": url,
        "ACTOR_EVENTS_RECONNECT_INITIAL_DELAY": 0.2,
        "ACTOR_EVENTS_RECONNECT_MAX_DELAY": 10,
        "CONCURRENT_REQUESTS": 2,
        **extra,
    }


def start(site: DemoSite, **settings):
    crawler = make_crawler(SlowSpider, **settings)
    done = deferred_from_coro(crawler.crawl_async(url=f"{site.url}/"))
    return crawler, done


async def wait_for_lines(
    server: EventsServerProcess, pattern: str, count: int, timeout: float = 20
) -> None:
    for _ in range(int(timeout / 0.02)):
        if len(server.matching(pattern)) >= count:
            return
        await sleep(0.02)
    raise AssertionError(f"fewer than {count} lines matching {pattern!r}:\n{server.text()}")


@pytest.fixture
def slow_site():
    # About 4 s of crawling at CONCURRENT_REQUESTS=2: time for a few reconnections.
    with DemoSite(pages=70, delay=0.1) as demo:
        yield demo


@pytest.mark.parametrize("server_kind", ["autobahn", "websockets"])
@pytest.mark.parametrize("refusal", ["1011", "reset"])
@deferred_f_from_coro_f
async def test_dropped_connections_are_retried_with_growing_delays(
    server_kind: str, refusal: str, storage: Path, slow_site: DemoSite
) -> None:
    with start_events_server(server_kind) as server:
        server.send(f"refuse {refusal}")
        server.wait_for("refusing")
        crawler, done = start(slow_site, **events_settings(server.url))
        await wait_for_lines(server, r"^refused ", 4)
        await maybe_deferred_to_future(done)
        attempts = [t for t, _ in server.matching(r"^refused ")]
    assert crawler.stats.get_value("finish_reason") == "finished", "the crawl goes on"
    gaps = [b - a for a, b in itertools.pairwise(attempts)][:3]
    # Delays grow by e (x2.7) each time, with up to 12% jitter either way.
    assert all(later > earlier * 1.5 for earlier, later in itertools.pairwise(gaps)), gaps


@pytest.mark.parametrize("server_kind", ["autobahn", "websockets"])
@deferred_f_from_coro_f
async def test_policy_violation_means_one_connection_and_the_crawl_goes_on(
    server_kind: str, storage: Path, slow_site: DemoSite, caplog: pytest.LogCaptureFixture
) -> None:
    with start_events_server(server_kind) as server:
        server.send("refuse 1008")
        server.wait_for("refusing")
        crawler, done = start(slow_site, **events_settings(server.url))
        await maybe_deferred_to_future(done)
        server.send("status")
        status = server.wait_for(r"status \d+ open, (\d+) in total")
    assert status.group(1) == "1"
    assert crawler.stats.get_value("finish_reason") == "finished"
    errors = [r for r in caplog.records if r.levelno == logging.ERROR and "1008" in r.getMessage()]
    assert len(errors) == 1
    assert "will not be reopened" in errors[0].getMessage()


@deferred_f_from_coro_f
async def test_a_connection_that_lived_reconnects_at_once_and_closes_with_1000(
    storage: Path, slow_site: DemoSite
) -> None:
    with start_events_server() as server:
        crawler, done = start(slow_site, **events_settings(server.url))
        await wait_for_lines(server, r"^open 1 ", 1)
        await sleep(1.2)
        server.send("close 1011")
        await wait_for_lines(server, r"^open 2 ", 1, timeout=3)
        await maybe_deferred_to_future(done)
        await wait_for_lines(server, r"^closed 2 1000", 1, timeout=5)
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
    server_kind: str, storage: Path, slow_site: DemoSite, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="scrapy_actor_events")
    with start_events_server(server_kind) as server:
        crawler, done = start(slow_site, **events_settings(server.url))
        await wait_for_lines(server, r"^open 1 ", 1)
        for command, _ in MALFORMED:
            server.send(command)
        server.send('raw {"name": "persistState"}')  # no data: defaults
        server.send('raw {"name": "brandNewEvent", "data": {}}')
        await wait_for_lines(server, r"^sent ", len(MALFORMED) + 2)
        await maybe_deferred_to_future(done)
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
async def test_one_socket_for_several_crawlers(storage: Path, slow_site: DemoSite) -> None:
    with start_events_server() as server:
        first, first_done = start(slow_site, **events_settings(server.url))
        second = make_crawler(SlowSpider, SPIDER_STATE_KEY="SECOND", **events_settings(server.url))
        second_done = deferred_from_coro(second.crawl_async(url=f"{slow_site.url}/"))
        await wait_for_lines(server, r"^open 1 ", 1)
        await sleep(0.5)
        server.send("persistState")
        await maybe_deferred_to_future(first_done)
        await maybe_deferred_to_future(second_done)
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
    storage: Path, slow_site: DemoSite, tmp_path: Path, caplog
) -> None:
    cert, key = self_signed(tmp_path)
    with start_events_server(extra_args=["--certificate", str(cert), "--key", str(key)]) as server:
        url = server.url.replace("127.0.0.1", "localhost")
        assert url.startswith("wss://")
        refused, done = start(
            slow_site, **events_settings(url, ACTOR_EVENTS_RECONNECT_INITIAL_DELAY=5)
        )
        await maybe_deferred_to_future(done)
        assert not server.matching(r"^open "), "a self-signed certificate is refused by default"
        assert "certificate verify failed" in caplog.text or "Could not connect" in caplog.text

        accepted, done = start(slow_site, **events_settings(url, ACTOR_EVENTS_CA_FILE=str(cert)))
        await wait_for_lines(server, r"^open 1 ", 1)
        server.send("persistState")
        await maybe_deferred_to_future(done)
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
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
