"""Per-request observation: a request id, an access log line, the latency histogram."""

import itertools
import re
import secrets
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from appointments.observability import access_log
from appointments.observability.logging import request_id
from appointments.observability.metrics import REQUEST_SECONDS, labelled

HEADER = b"x-request-id"
OBSERVED = "appointments.observed"
# Accept a caller's id only if it is short and plain, so it is safe to log and echo.
_USABLE_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")
# Our ids: 16 random hex digits per process, then a counter (32 in all). Unique across
# processes like a uuid4, without reading the system's random source per request.
_PROCESS = secrets.token_hex(8)
_NUMBERS = itertools.count()
# Any token is a method to HTTP; the label keeps to the known ones (bounded series).
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _new_id() -> str:
    return f"{_PROCESS}{next(_NUMBERS):016x}"


def _given_id(headers: list[tuple[bytes, bytes]]) -> bytes:
    for name, value in headers:
        if name == HEADER:
            return value
    return b""


class RequestObserver:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get(OBSERVED):
            # Observed already: a hot request (fast_paths) that went on to FastAPI.
            await self.app(scope, receive, send)
            return
        scope[OBSERVED] = True
        given = _given_id(scope["headers"])
        rid = given.decode() if given and _USABLE_ID.match(given) else _new_id()
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
            method = scope["method"] if scope["method"] in _METHODS else "OTHER"
            labelled(REQUEST_SECONDS, template, method, f"{status // 100}xx").observe(elapsed)
            access_log.write(rid, scope["method"], template, status, round(elapsed * 1000, 2))
            request_id.reset(token)
