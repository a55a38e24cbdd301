"""Where the service's own requests may go (webhooks, the providers' calendars): public
addresses only, unless private ones are allowed.

A URL is checked when it is saved and again at every send, since DNS can change
between the two; at send time the connection is pinned to the address that was
checked, so a second lookup (DNS rebinding) cannot redirect it.
"""

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

Address = ipaddress.IPv4Address | ipaddress.IPv6Address

# NAT64's well-known prefix: the last 32 bits are an IPv4 address.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class AddressNotAllowed(Exception):
    """The URL's host is, or resolves to, an address webhooks may not reach."""


def is_public(address: Address) -> bool:
    """Globally routable unicast, looking through IPv4 embedded in IPv6 forms."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address.teredo is not None:
            embedded = address.teredo[1]
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return is_public(embedded)
    return (
        address.is_global
        and not address.is_multicast
        and not address.is_reserved
        and not address.is_unspecified
    )


def host_and_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    if parts.hostname is None:
        raise AddressNotAllowed("the URL has no host")
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


async def resolve_public(url: str) -> Address:
    """The first address the URL's host resolves to, when every one of them is public."""
    host, port = host_and_port(url)
    try:
        literal: Address | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        found = [literal]
    else:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            raise AddressNotAllowed(f"the host {host!r} does not resolve") from exc
        found = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    if not found:
        raise AddressNotAllowed(f"the host {host!r} does not resolve")
    refused = [address for address in found if not is_public(address)]
    if refused:
        raise AddressNotAllowed(
            f"the host {host!r} resolves to the non-public address {refused[0]}"
        )
    return found[0]


async def check(url: str, *, private_allowed: bool) -> None:
    """Refuse (AddressNotAllowed) a URL whose host is not public, unless private
    addresses are allowed: the rule for webhooks and for calendar feeds alike."""
    if not private_allowed:
        await resolve_public(url)
