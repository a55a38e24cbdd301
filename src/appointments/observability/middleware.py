"""Per-request observation: a request id, an access log line, the latency histogram."""

import logging
import re
import time
import uuid

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from appointments.observability.logging import request_id
from appointments.observability.metrics import REQUEST_SECONDS

logger = logging.getLogger("appointments.access")

HEADER = b"x-request-id"
# Accept a caller's id only if it is short and plain, so it is safe to log and echo.
_USABLE_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")


class RequestObserver:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(HEADER, b"")
        rid = given.decode() if _USABLE_ID.match(given) else uuid.uuid4().hex
        token = request_id.set(rid)
        began = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []), (HEADER, rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            elapsed = time.perf_counter() - began
            route = scope.get("route")
            template = getattr(route, "path_format", None) or "unmatched"
            REQUEST_SECONDS.labels(
                route=template, method=scope["method"], status=f"{status // 100}xx"
            ).observe(elapsed)
            logger.info(
                "request",
                extra={
                    "fields": {
                        "request_id": rid,
                        "method": scope["method"],
                        "route": template,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                    }
                },
            )
            request_id.reset(token)
