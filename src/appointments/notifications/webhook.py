"""One webhook attempt: sign the event's body and POST it, pinned to a checked address."""

import time

import httpx

from appointments.notifications import signing
from appointments.notifications.addresses import host_and_port, resolve_public
from appointments.notifications.models import Event, WebhookEndpoint
from appointments.notifications.payload import body_of
from appointments.settings import Settings


async def send_webhook(
    http: httpx.AsyncClient,
    settings: Settings,
    endpoint: WebhookEndpoint,
    event: Event,
) -> int:
    """POST the event to the endpoint; return the answer's status code.

    Raises on a refused address, a network error or the timeout. The body is not
    read: only the status counts, and a receiver cannot make us download anything.
    """
    body = body_of(event)
    # Wall time, not the service's injectable clock: receivers compare it with their own
    # clocks to refuse replays, so it must be the real moment of this attempt.
    headers = signing.headers(endpoint.secret, str(event.id), int(time.time()), body)
    url = httpx.URL(endpoint.url)
    extensions: dict[str, str] = {}
    if not settings.webhooks_may_reach_private():
        address = await resolve_public(endpoint.url)
        host, port = host_and_port(endpoint.url)
        # Connect to the address just checked; name the host for HTTP and for TLS.
        headers["host"] = url.netloc.decode("ascii")
        if url.scheme == "https":
            extensions["sni_hostname"] = host
        url = url.copy_with(host=str(address), port=port)
    timeout = httpx.Timeout(settings.webhook_timeout_seconds)
    async with http.stream(
        "POST", url, content=body, headers=headers, timeout=timeout, extensions=extensions
    ) as response:
        return response.status_code
