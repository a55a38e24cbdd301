"""Idempotent retries: the same `Idempotency-Key` and body replays the stored answer.

The key is taken, the work done and the answer stored in the request's one
transaction. A 4xx answer is stored too (its work undone through a savepoint),
so a retry of a refused request is refused the same way; a 5xx stores nothing.
"""

import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import Header
from fastapi.encoders import jsonable_encoder
from fastapi.responses import Response
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from appointments.errors import PROBLEM_MEDIA_TYPE, DomainError
from appointments.idempotency import repository
from appointments.idempotency.errors import IdempotencyKeyInFlight, IdempotencyKeyReused
from appointments.observability.metrics import count_outcome, record_refusal

KEY_LIFETIME = timedelta(hours=24)
REPLAYED_HEADER = "Idempotent-Replayed"

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="Any unique string (e.g. a UUID). A retry with the same key and body "
        "gets the stored answer instead of doing the work again; kept 24 hours.",
    ),
]

Action = Callable[[], Awaitable[tuple[int, BaseModel]]]


def _fingerprint(request: dict[str, Any]) -> str:
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _json_response(status: int, body: str, *, replayed: bool = False) -> Response:
    media_type = PROBLEM_MEDIA_TYPE if status >= 400 else "application/json"
    headers = {REPLAYED_HEADER: "true"} if replayed else None
    return Response(content=body, status_code=status, media_type=media_type, headers=headers)


async def run_counted(outcome: str, action: Action) -> Response:
    """Run `action` with no key to store: count a success towards `outcome`, a refusal
    under its error code."""
    try:
        status, model = await action()
    except DomainError as exc:
        record_refusal(exc.code)
        raise
    count_outcome(outcome)
    return _json_response(status, model.model_dump_json())


async def run_once(
    session: AsyncSession,
    *,
    outcome: str,
    key: str | None,
    scope_id: uuid.UUID,
    operation: str,
    request: dict[str, Any],
    now: datetime,
    action: Action,
) -> Response:
    """Run `action`, or replay the answer stored for this key.

    A run that succeeds counts towards the `outcome` metric; a refusal counts under
    its error code. Replays count nothing: the work was counted when it was done.
    """
    if key is None:
        return await run_counted(outcome, action)

    request_hash = _fingerprint(request)
    args = (session, scope_id, operation, key)
    terms = (request_hash, now, now + KEY_LIFETIME)
    # Exactly one request runs per key: the one whose claim inserted the row, or whose
    # conditional update took over an expired one. Every other reads what it holds.
    if not (
        await repository.claim(*args, *terms) or await repository.take_over_expired(*args, *terms)
    ):
        stored = await repository.get(*args)
        if stored is None:
            # Swept between our two statements: the holder's answer is gone with it.
            raise IdempotencyKeyInFlight("a request with this Idempotency-Key is running")
        if stored.request_hash != request_hash:
            raise IdempotencyKeyReused(
                "this Idempotency-Key was used for a different request; use a new key"
            )
        if stored.status_code is None or stored.response_body is None:
            raise IdempotencyKeyInFlight("a request with this Idempotency-Key is running")
        return _json_response(stored.status_code, stored.response_body, replayed=True)

    savepoint = await session.begin_nested()
    try:
        status, model = await action()
        body = model.model_dump_json()
        await savepoint.commit()
        count_outcome(outcome)
    except DomainError as exc:
        await savepoint.rollback()
        record_refusal(exc.code)
        status, body = exc.status, json.dumps(jsonable_encoder(exc.problem()))
    await repository.store_answer(*args, status, body)
    return _json_response(status, body)
