"""One webhook attempt: sign the event's body and POST it, pinned to a checked address."""

import time

from appointments.addresses import resolve_public
from appointments.notifications import signing
from appointments.notifications.senders import WebhookSender, target_of
from appointments.settings import Settings


async def send_webhook(
    http: WebhookSender,
    settings: Settings,
    url: str,
    secret: str,
    message_id: str,
    body: bytes,
) -> int:
    """POST the body to the URL; return the answer's status code.

    Raises on a refused address, a network or protocol error. The caller bounds the
    whole attempt with the timeout.
    """
    # Wall time, not the service's injectable clock: receivers compare it with their own
    # clocks to refuse replays, so it must be the real moment of this attempt.
    headers = signing.headers(secret, message_id, int(time.time()), body)
    address = None
    if not settings.webhooks_may_reach_private():
        # Checked at every send (DNS can change); the connection goes to the address
        # just checked, while the Host header and TLS still name the URL's host.
        address = str(await resolve_public(url))
    return await http.post(target_of(url), headers, body, address)
