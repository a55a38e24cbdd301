"""Webhook POSTs through a maintained HTTP client (aiohttp's): kept-alive HTTP/1.1
connections, the status code only.

Why aiohttp and not httpx (the stack's client for outgoing HTTP), and no longer our
own HTTP/1.1 parser: on bench.notify (500 changes per second, one receiver) httpx
cost the throughput goal (reserves with delivery on at 0.60 of off, goal 0.90) and
the lag goal (p99 5.9 s, goal 2 s); aiohttp meets both (1.05 and 1.9 s in-process,
0.95 and 1.0 s in a separate deliverer). Per POST, on a kept-alive loopback
connection, 16 at a time: aiohttp 68-90 us of CPU, httpx 0.8-1.5 ms, httpcore
alone 0.8 ms, the hand-written client this replaced 19-27 us (bench.http_clients;
docs/benchmarks.md). Parsing what a receiver sends back is security-sensitive and
best left to a client the field maintains. httpx's pool also keys connections by
address only, not by the TLS name, so a connection verified for one host could
carry a request for another at the same address; aiohttp's key includes it.

What each attempt honours:
- the connection goes to the address `addresses.resolve_public` just checked, while
  the Host header and TLS (SNI and the certificate's name, `server_hostname`) name
  the URL's host, so DNS cannot move a webhook after the check;
- no redirects, no proxies or settings from the environment, no cookies kept, no
  decompression;
- an answer's body is read only when it is at most 64 KiB long by its
  content-length; any other (chunked, unbounded, larger) closes its connection
  instead of being downloaded;
- a connection goes back to the pool only after an answer read to its end; an
  error, timeout or cancellation closes it.
"""

import functools
import ssl
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import aiohttp

MAX_DRAINED_BODY = 64 * 1024
# Characters a request target may carry as they are; others are percent-encoded.
_TARGET_SAFE = "/?#[]@!$&'()*+,;=:-._~%"


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


def _url(target: Target, address: str | None) -> str:
    host = address or target.host
    named = f"[{host}]" if ":" in host else host
    return f"{target.scheme}://{named}:{target.port}{target.path}"


class WebhookSender:
    """aiohttp's client: kept-alive connections per (address, port, TLS name), at most
    `max_idle` each."""

    def __init__(self, max_idle: int = 64, ssl_context: ssl.SSLContext | None = None) -> None:
        self._max_idle = max_idle
        self._ssl = ssl_context
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        # Made on first use, inside the running loop, as aiohttp requires.
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=0,
                limit_per_host=self._max_idle,
                ssl=self._ssl if self._ssl is not None else True,
                use_dns_cache=False,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                auto_decompress=False,
                trust_env=False,
                cookie_jar=aiohttp.DummyCookieJar(),
                timeout=aiohttp.ClientTimeout(total=None),
                headers={"user-agent": "appointments-webhooks"},
            )
        return self._session

    async def post(
        self, target: Target, headers: dict[str, str], body: bytes, address: str | None = None
    ) -> int:
        response = await self._open().post(
            _url(target, address),
            data=body,
            headers={**headers, "host": target.host_header},
            allow_redirects=False,
            server_hostname=target.host if target.scheme == "https" else None,
        )
        try:
            length = response.content_length  # None when chunked or unbounded
            bodiless = response.status in (204, 304)
            if bodiless or (length is not None and length <= MAX_DRAINED_BODY):
                await response.read()
                response.release()  # read to its end: the connection may carry another
            else:
                response.close()  # not downloaded: the connection is closed
            return response.status
        except BaseException:
            response.close()
            raise

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
