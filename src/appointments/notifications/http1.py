"""A small HTTP/1.1 client for webhook POSTs: kept-alive connections, the status only.

Why not httpx, the stack's client for outgoing HTTP: on this project's machines an
httpx POST over a kept-alive loopback connection cost 1.1-1.8 ms of CPU (its request
and response models, h11's parser, anyio's streams), about as much as the
reservation change that caused the webhook; a write and a header parse on asyncio's
own streams cost 0.07-0.13 ms (docs/benchmarks.md). A webhook needs little of HTTP:
one POST with a body of known length, and the answer's status code. So this client
does only that, and is strict about the rest:

- the response head is read up to 64 KiB; a body is drained only when its
  `content-length` is at most 64 KiB, else (chunked, unbounded or larger) the
  connection is closed instead of read: a receiver cannot make us download anything;
- no redirects, no proxies, no cookies, no credentials;
- TLS through `ssl` with the default context (system CA store, hostname checked);
  the connection may go to an already-checked address while the certificate and the
  Host header name the URL's host (SNI), which pins a webhook to its checked address;
- a connection is reused only after a complete exchange; any error, timeout or
  cancellation closes it. A kept-alive connection that the receiver had closed
  before our request fails without an answer; that request is made once more on a
  fresh connection (webhooks are delivered at least once anyway).
"""

import asyncio
import functools
import ssl
from collections import defaultdict
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

MAX_HEAD_BYTES = 64 * 1024
MAX_DRAINED_BODY = 64 * 1024
# Characters a request target may carry as they are; others are percent-encoded.
_TARGET_SAFE = "/?#[]@!$&'()*+,;=:-._~%"


class ProtocolError(Exception):
    """The receiver's answer is not HTTP/1.x as expected."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # as connected to and named in TLS: IDNA-encoded, no brackets
    port: int
    host_header: str
    path: str


@functools.lru_cache(maxsize=1024)
def target_of(url: str) -> Target:
    """The parts of a webhook URL a request needs (validated when the URL was saved)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {url!r}")
    host = parts.hostname
    if not host.isascii():
        host = host.encode("idna").decode("ascii")
    default = 443 if parts.scheme == "https" else 80
    port = parts.port or default
    named = f"[{host}]" if ":" in host else host
    host_header = named if port == default else f"{named}:{port}"
    path = quote(parts.path or "/", safe=_TARGET_SAFE)
    if parts.query:
        path += "?" + quote(parts.query, safe=_TARGET_SAFE)
    return Target(parts.scheme, host, port, host_header, path)


@dataclass
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter

    def usable(self) -> bool:
        return not (self.reader.at_eof() or self.writer.is_closing())

    def close(self) -> None:
        self.writer.close()


_Origin = tuple[str, str, int, str]  # scheme, address connected to, port, TLS name


class Pool:
    """Kept-alive connections per origin, at most `max_idle` idle ones each."""

    def __init__(self, max_idle: int = 64, ssl_context: ssl.SSLContext | None = None) -> None:
        self.max_idle = max_idle
        self._ssl = ssl_context
        self._idle: defaultdict[_Origin, list[_Connection]] = defaultdict(list)

    def _tls(self) -> ssl.SSLContext:
        # Made on first use: loading the CA store costs tens of milliseconds.
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
        return self._ssl

    async def post(
        self, target: Target, headers: dict[str, str], body: bytes, address: str | None = None
    ) -> int:
        """POST `body` to the target (connecting to `address` when given, else to the
        target's host); return the status code. Raises on any network or protocol error."""
        origin = (target.scheme, address or target.host, target.port, target.host)
        request = _request_bytes(target, headers, body)
        connection = self._take(origin)
        if connection is not None:
            try:
                return await self._exchange(origin, connection, request)
            except (ConnectionError, asyncio.IncompleteReadError) as exc:
                if isinstance(exc, asyncio.IncompleteReadError) and exc.partial:
                    raise
                # Closed by the receiver while idle: nothing was answered; try afresh.
        connection = await self._open(origin)
        return await self._exchange(origin, connection, request)

    def _take(self, origin: _Origin) -> _Connection | None:
        idle = self._idle.get(origin)
        while idle:
            connection = idle.pop()
            if connection.usable():
                return connection
            connection.close()
        return None

    async def _open(self, origin: _Origin) -> _Connection:
        scheme, address, port, name = origin
        if scheme == "https":
            reader, writer = await asyncio.open_connection(
                address, port, ssl=self._tls(), server_hostname=name
            )
        else:
            reader, writer = await asyncio.open_connection(address, port)
        return _Connection(reader, writer)

    async def _exchange(self, origin: _Origin, connection: _Connection, request: bytes) -> int:
        kept = False
        try:
            connection.writer.write(request)
            await connection.writer.drain()
            status, keep_alive = await _read_response(connection.reader)
            if keep_alive and len(self._idle[origin]) < self.max_idle:
                self._idle[origin].append(connection)
                kept = True
            return status
        finally:
            # On errors, timeouts and cancellation too: a half-used connection is dropped.
            if not kept:
                connection.close()

    async def close(self) -> None:
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()


def _request_bytes(target: Target, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"POST {target.path} HTTP/1.1", f"host: {target.host_header}"]
    lines.extend(f"{name}: {value}" for name, value in headers.items())
    lines.append(f"content-length: {len(body)}")
    lines.append("user-agent: appointments-webhooks")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, str, dict[str, str]]:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError as exc:
        raise ProtocolError("the response head is too long") from exc
    if len(head) > MAX_HEAD_BYTES:
        raise ProtocolError("the response head is too long")
    lines = head.decode("latin-1").split("\r\n")
    version, _, rest = lines[0].partition(" ")
    code = rest[:3]
    if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
        raise ProtocolError(f"not an HTTP/1.x status line: {lines[0][:100]!r}")
    fields: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if colon:
            fields[name.strip().lower()] = value.strip()
    return int(code), version, fields


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """The status and whether the connection can carry another request."""
    status, version, fields = await _read_head(reader)
    while 100 <= status < 200:  # interim answers (100 Continue, 103 Early Hints)
        if status == 101:
            raise ProtocolError("the receiver switched protocols")
        status, version, fields = await _read_head(reader)
    keep_alive = version == "HTTP/1.1" and fields.get("connection", "").lower() != "close"
    if status in (204, 304):
        return status, keep_alive
    if "transfer-encoding" in fields:
        return status, False
    length = fields.get("content-length")
    if length is None or not length.isdigit() or int(length) > MAX_DRAINED_BODY:
        return status, False
    if int(length):
        await reader.readexactly(int(length))
    return status, keep_alive
