"""The webhook sender (aiohttp's client, `notifications.senders`) against real sockets:
kept-alive reuse, a connection the receiver closed, bodies it refuses to download,
interim answers, broken answers, timeouts, and TLS with the certificate checked
against the URL's host while connecting to an address."""

import asyncio
import datetime
import ipaddress
import ssl
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from appointments.notifications.senders import WebhookSender, target_of

Answer = Callable[[bytes, asyncio.StreamWriter], Awaitable[None]]


class Server:
    """A loopback server that records each request and answers it with `answer`."""

    def __init__(self, answer: Answer, tls: ssl.SSLContext | None = None) -> None:
        self.answer = answer
        self.tls = tls
        self.connections = 0
        self.requests: list[bytes] = []
        self.port = 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> "Server":
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self.server is not None
        self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    int(line.split(b":")[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                await self.answer(request, writer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        except asyncio.CancelledError:  # the loop ends with connections still open
            pass
        finally:
            writer.close()


def answering(raw: bytes, *, close: bool = False) -> Answer:
    async def answer(_: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(raw)
        if close:
            await writer.drain()
            writer.close()

    return answer


NO_CONTENT = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n"
HEADERS = {"webhook-id": "msg_1", "content-type": "application/json"}


def post(
    pool: WebhookSender, server: Server, body: bytes = b"{}", path: str = "/hooks"
) -> Awaitable[int]:
    return pool.post(target_of(f"http://127.0.0.1:{server.port}{path}"), HEADERS, body)


def test_kept_alive_connections_are_reused_and_the_request_is_well_formed() -> None:
    async def scenario() -> None:
        async with Server(answering(NO_CONTENT)) as server:
            pool = WebhookSender()
            statuses = [await post(pool, server, b'{"n":%d}' % n) for n in range(3)]
            await pool.close()
        assert statuses == [204, 204, 204]
        assert server.connections == 1
        head, _, body = server.requests[0].partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        fields = {
            name.lower(): value.strip()
            for name, _, value in (line.partition(":") for line in lines[1:])
        }
        assert lines[0] == "POST /hooks HTTP/1.1"
        assert fields["host"] == f"127.0.0.1:{server.port}"
        assert fields["webhook-id"] == "msg_1"
        assert fields["content-length"] == "7"
        assert fields["user-agent"] == "appointments-webhooks"
        assert "cookie" not in fields
        assert body == b'{"n":0}'

    asyncio.run(scenario())


def test_a_connection_closed_while_idle_is_replaced_and_the_post_still_arrives() -> None:
    async def scenario() -> None:
        # Answers keep-alive, then hangs up: the pool's idle connection is dead.
        async with Server(answering(NO_CONTENT, close=True)) as server:
            pool = WebhookSender()
            assert await post(pool, server) == 204
            await asyncio.sleep(0.05)
            assert await post(pool, server) == 204
            await pool.close()
        assert server.connections == 2
        assert len(server.requests) == 2

    asyncio.run(scenario())


BIG = 10 * 1024 * 1024
CHUNKED = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"


@pytest.mark.parametrize(
    ("answer", "status", "reused"),
    [
        (b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello", 200, True),
        # Far past the 64 KiB a body may have: closed, not downloaded.
        (b"HTTP/1.1 202 OK\r\ncontent-length: %d\r\n\r\n" % BIG + b"x" * BIG, 202, False),
        # Chunked: never read by us (aiohttp's parser may have taken a short one in whole,
        # within its read buffer, and then the connection may serve again).
        (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            200,
            None,
        ),
        (b"HTTP/1.1 503 No\r\nconnection: close\r\ncontent-length: 0\r\n\r\n", 503, False),
        (b"HTTP/1.0 200 OK\r\ncontent-length: 0\r\n\r\n", 200, False),
        (b"HTTP/1.1 500 Oops\r\n\r\n", 500, False),
        (
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n",
            201,
            True,
        ),
        # Switching protocols without an Upgrade is no delivery (not 2xx); aiohttp reads
        # it as an answer without a body.
        (b"HTTP/1.1 101 Upgrade\r\n\r\n", 101, None),
    ],
)
def test_bodies_are_drained_only_when_small_and_of_known_length(
    answer: bytes, status: int, reused: bool | None
) -> None:
    async def scenario() -> None:
        async with Server(answering(answer)) as server:
            pool = WebhookSender()
            first = await post(pool, server)
            second = await post(pool, server)
            await pool.close()
        assert first == second == status
        if reused is not None:
            assert server.connections == (1 if reused else 2)

    asyncio.run(scenario())


@pytest.mark.parametrize(
    "answer",
    [b"SSH-2.0-OpenSSH\r\n\r\n", b"HTTP/1.1 20 OK\r\n\r\n"],
)
def test_an_answer_that_is_not_http_is_a_protocol_error(answer: bytes) -> None:
    async def scenario() -> None:
        async with Server(answering(answer)) as server:
            pool = WebhookSender()
            with pytest.raises(aiohttp.ClientError):
                await post(pool, server)
            await pool.close()

    asyncio.run(scenario())


def test_a_receiver_that_hangs_up_without_answering_is_an_error() -> None:
    async def hang_up(_: bytes, writer: asyncio.StreamWriter) -> None:
        writer.close()

    async def scenario() -> None:
        async with Server(hang_up) as server:
            pool = WebhookSender()
            with pytest.raises(aiohttp.ClientError):
                await post(pool, server)
            await pool.close()

    asyncio.run(scenario())


def test_a_timed_out_exchange_drops_its_connection() -> None:
    slow = [True]

    async def answer(_: bytes, writer: asyncio.StreamWriter) -> None:
        if slow.pop(0) if slow else False:
            await asyncio.sleep(0.5)
        writer.write(NO_CONTENT)

    async def scenario() -> None:
        async with Server(answer) as server:
            pool = WebhookSender()
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(post(pool, server), 0.1)
            # The late answer must not be taken for the next request's.
            assert await post(pool, server) == 204
            await pool.close()
        assert server.connections == 2

    asyncio.run(scenario())


def test_the_path_and_query_are_sent_percent_encoded() -> None:
    async def scenario() -> None:
        async with Server(answering(NO_CONTENT)) as server:
            pool = WebhookSender()
            await post(pool, server, path="/hooks/caf\u00e9?who=a%20b&x=1")
            await pool.close()
        assert server.requests[0].startswith(b"POST /hooks/caf%C3%A9?who=a%20b&x=1 HTTP/1.1\r\n")

    asyncio.run(scenario())


def test_targets_name_ipv6_hosts_and_default_ports() -> None:
    assert target_of("https://example.com/a").host_header == "example.com"
    assert target_of("https://example.com:8443/a").host_header == "example.com:8443"
    assert target_of("http://[::1]:8080").host_header == "[::1]:8080"
    assert target_of("http://[::1]:8080").host == "::1"
    assert target_of("http://example.com").path == "/"
    assert target_of("https://b\u00fccher.example/x").host == "xn--bcher-kva.example"


def _certificate(tmp: Path, name: str) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A self-signed certificate for `name`: (the server's context, a client's trusting it)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp / "cert.pem", tmp / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file, key_file)
    client = ssl.create_default_context(cafile=str(cert_file))
    return server, client


def test_tls_checks_the_urls_host_while_connecting_to_the_checked_address(
    tmp_path: Path,
) -> None:
    server_tls, client_tls = _certificate(tmp_path, "hooks.example")
    loopback = str(ipaddress.ip_address("127.0.0.1"))

    async def scenario() -> None:
        async with Server(answering(NO_CONTENT), tls=server_tls) as server:
            pool = WebhookSender(ssl_context=client_tls)
            good = target_of(f"https://hooks.example:{server.port}/hooks")
            assert await pool.post(good, HEADERS, b"{}", loopback) == 204
            assert await pool.post(good, HEADERS, b"{}", loopback) == 204
            # The certificate does not name this host: refused before anything is sent.
            wrong = target_of(f"https://other.example:{server.port}/hooks")
            with pytest.raises(aiohttp.ClientConnectorCertificateError):
                await pool.post(wrong, HEADERS, b"{}", loopback)
            await pool.close()
        # The refused handshake never reached the server's handler.
        assert server.connections == 1
        assert len(server.requests) == 2
        assert f"host: hooks.example:{server.port}".encode() in server.requests[0]

    asyncio.run(scenario())
