"""One request on a fast path: its parts parsed the way FastAPI parses them, or not
at all.

Every parser here raises `Skip` for anything it does not take exactly as FastAPI's
route would (a repeated header or parameter, a value that fails validation, a body
that is not JSON): the request then goes on to FastAPI, which answers it, errors and
all, as it always has. So a fast path never has to reproduce a validation error.
"""

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.requests import Request
from starlette.types import Message, Receive, Scope

from appointments.auth.policy import Rule
from appointments.auth.tokens import Principal, TokenVerifier, bearer_token
from appointments.pagination import DEFAULT_LIMIT, MAX_LIMIT, PageRequest, decode_cursor
from appointments.schemas import utc_in_range
from appointments.timeparams import AwareQueryTime

_TIME = TypeAdapter(AwareQueryTime)
# Headers a fast path reads; each may appear at most once.
_HEADERS = (
    b"authorization",
    b"content-length",
    b"content-type",
    b"if-none-match",
    b"idempotency-key",
)


class Skip(Exception):
    """Not for the fast path: FastAPI answers this request."""


@dataclass
class Call:
    api: FastAPI
    scope: Scope
    receive: Receive
    path_params: dict[str, str]
    headers: dict[bytes, str]
    # Messages read from `receive` (a body), to hand to FastAPI if the call is skipped.
    received: list[Message]
    # A longer body is FastAPI's stack's to refuse (413).
    max_body: int
    # The route's authorization rule (auth.policy.RULES, the table FastAPI's routes use).
    rule: Rule
    # Set while waiting on `receive`: an error there is not the route's to render.
    reading: bool = False

    @classmethod
    def of(
        cls,
        api: FastAPI,
        scope: Scope,
        receive: Receive,
        path_params: dict[str, str],
        max_body: int,
        rule: Rule,
    ) -> "Call":
        headers: dict[bytes, str] = {}
        for name, value in scope["headers"]:
            if name in _HEADERS:
                if name in headers:
                    raise Skip  # FastAPI would take one of them; which one is its business
                headers[name] = value.decode("latin-1")
        return cls(api, scope, receive, path_params, headers, [], max_body, rule)

    def header(self, name: bytes) -> str | None:
        return self.headers.get(name)

    def query(self, names: frozenset[str]) -> dict[str, str]:
        """The query parameters of `names` (others are ignored, as FastAPI does)."""
        found: dict[str, str] = {}
        for name, value in parse_qsl(self.scope["query_string"].decode("latin-1"), True):
            if name in names:
                if name in found:
                    raise Skip
                found[name] = value
        return found

    async def json_body(self, model: type[BaseModel]) -> Any:
        """The body as `model`, when it is JSON the model accepts."""
        kind = self.header(b"content-type")
        if kind is None or kind.split(";", 1)[0].strip().lower() != "application/json":
            raise Skip
        body = await self._read()
        try:
            return model.model_validate(json.loads(body))
        except (ValueError, ValidationError) as exc:  # JSONDecodeError is a ValueError
            raise Skip from exc

    async def _read(self) -> bytes:
        declared = self.header(b"content-length")
        if declared is not None:
            # isascii: the header is read as latin-1, where "²" would pass isdigit().
            if not (declared.isascii() and declared.isdigit()) or int(declared) > self.max_body:
                raise Skip
        chunks = []
        size = 0
        while True:
            self.reading = True
            message = await self.receive()
            self.reading = False
            self.received.append(message)
            if message["type"] != "http.request":
                raise Skip  # the client went away: let FastAPI see it
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise Skip
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def replay(self) -> Receive:
        """`receive` for FastAPI: first what was read here, then the rest."""
        pending = list(self.received)

        async def receive() -> Message:
            return pending.pop(0) if pending else await self.receive()

        return receive

    async def principal(self) -> Principal:
        """The caller, as the route's `authorize` dependency finds it: verified and
        allowed by the route's rule, or an Unauthorized / Forbidden / NotFound raised.
        A header that is not `Bearer <token>` goes to FastAPI."""
        token = bearer_token(self.header(b"authorization"))
        if token is None:
            raise Skip
        verifier: TokenVerifier = self.api.state.verifier
        principal = await verifier.verify(token)
        self.scope["path_params"] = self.path_params
        self.rule.check(principal, Request(self.scope, self.receive))
        return principal


# The form clients send (`2027-03-04T09:15:00Z`, or an offset, `+` sent as `%2B`):
# read by `datetime.fromisoformat` and the same range check, 0.5 against 2.0 us with
# the validator. Other forms go through the very validator the routes use.
_PLAIN_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{6})?(?:Z|[+-]\d{2}:\d{2})")


def _time(text: str) -> datetime:
    if _PLAIN_TIME.fullmatch(text):
        try:
            return utc_in_range(datetime.fromisoformat(text))
        except ValueError as exc:
            raise Skip from exc
    try:
        moment: datetime = _TIME.validate_python(text)
        return moment
    except ValidationError as exc:
        raise Skip from exc


def times(params: dict[str, str], *names: str) -> list[datetime | None]:
    """Query times as the routes' `AwareQueryTime` parameters take them."""
    return [None if name not in params else _time(params[name]) for name in names]


def bounded(params: dict[str, str], name: str, low: int, high: int) -> int | None:
    """An integer query parameter within [low, high] as FastAPI's `Query(ge, le)` takes
    it (None when absent); anything else is FastAPI's to refuse."""
    value = params.get(name)
    if value is None:
        return None
    if value.isascii() and value.isdigit() and low <= int(value) <= high:
        return int(value)
    raise Skip


def paging(params: dict[str, str]) -> PageRequest:
    """`limit` and `cursor` as `pagination.page_request` takes them."""
    limit = params.get("limit")
    if limit is None:
        size = DEFAULT_LIMIT
    elif limit.isascii() and limit.isdigit() and 1 <= int(limit) <= MAX_LIMIT:
        size = int(limit)
    else:
        raise Skip
    cursor = params.get("cursor")
    if cursor is not None and len(cursor) > 200:
        raise Skip
    try:
        return PageRequest(limit=size, after=decode_cursor(cursor) if cursor else None)
    except Exception as exc:  # a cursor FastAPI's route refuses, with its own words
        raise Skip from exc
