"""The four hot routes: parse as FastAPI would (or skip), authorize, then the very
function the FastAPI route calls.

A request that fails to parse is skipped *before* anything is done, so FastAPI
answers it exactly as before; from the authorization on, errors are raised as the
route raises them and rendered by the app's own exception handlers.
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from pydantic import BaseModel
from starlette.responses import Response

from appointments.appointment_types.router import start_times_answer
from appointments.appointment_types.start_times import Repeat
from appointments.availability.router import slot_page_answer
from appointments.availability.schemas import SlotFilter
from appointments.booking.router import (
    autocommits,
    confirm_answer,
    confirm_autocommit_answer,
    reserve_answer,
    reserve_autocommit_answer,
)
from appointments.booking.schemas import ConfirmIn, ReserveIn
from appointments.db import transaction
from appointments.fast_paths.call import Call, Skip, bounded, paging, times

Handler = Callable[[Call], Awaitable[Response]]

_LISTING = frozenset({"limit", "cursor", "from", "to", "status"})
_START_TIMES = frozenset({"limit", "cursor", "from", "to", "repeat_count", "repeat_interval_weeks"})


async def slot_listing(call: Call) -> Response:
    params = call.query(_LISTING)
    page = paging(params)
    start_from, start_before = times(params, "from", "to")
    try:
        status = SlotFilter(params.get("status", SlotFilter.AVAILABLE.value))
    except ValueError as exc:
        raise Skip from exc
    await call.principal()
    state = call.api.state
    return await slot_page_answer(
        state.read_engine,
        state.clock,
        state.settings,
        call.path_params["provider_id"],
        page,
        start_from,
        start_before,
        status,
        call.header(b"if-none-match"),
    )


async def start_times(call: Call) -> Response:
    params = call.query(_START_TIMES)
    page = paging(params)
    start_from, start_before = times(params, "from", "to")
    count = bounded(params, "repeat_count", 2, 52)
    interval = bounded(params, "repeat_interval_weeks", 1, 4)
    repeat = None if count is None else Repeat(count, interval or 1)
    await call.principal()
    state = call.api.state
    return await start_times_answer(
        state.read_engine,
        state.read_sessionmaker,
        state.clock,
        state.settings,
        call.path_params["provider_id"],
        call.path_params["type_id"],
        page,
        start_from,
        start_before,
        call.header(b"if-none-match"),
        repeat,
    )


async def reserve(call: Call) -> Response:
    if call.header(b"idempotency-key") is not None:
        raise Skip  # the keyed path is not the hot one; its header has rules of its own
    data = await call.json_body(ReserveIn)
    await call.principal()
    state = call.api.state
    client_id = call.path_params["client_id"]
    if autocommits(state.engine, None) and data.appointment_type_id is None and data.seats == 1:
        # No session: the statement is its own transaction.
        return await reserve_autocommit_answer(
            state.engine, state.clock.now(), state.settings, client_id, data
        )
    async with transaction(state.sessionmaker, writes=True) as session:
        return await reserve_answer(
            session, state.clock.now(), state.settings, client_id, data, None
        )


async def confirm(call: Call) -> Response:
    if call.header(b"idempotency-key") is not None:
        raise Skip
    data = await call.json_body(ConfirmIn)
    await call.principal()
    state = call.api.state
    if autocommits(state.engine, None):
        return await confirm_autocommit_answer(
            state.engine, state.clock.now(), call.path_params["client_id"], data
        )
    async with transaction(state.sessionmaker, writes=True) as session:
        return await confirm_answer(
            session, state.clock.now(), call.path_params["client_id"], data, None
        )


@dataclass(frozen=True)
class Reads:
    """What a request handler reads of a request besides its path."""

    query: frozenset[str] = frozenset()
    headers: frozenset[str] = frozenset()  # lower-case
    body: type[BaseModel] | None = None


@dataclass(frozen=True)
class Hot:
    """A hot route: the FastAPI route's method and template, the handler in front of
    it, and what that handler reads. `front.check_models` holds `reads` to the route's
    own declaration at start-up, so a parameter added on one side only stops the
    service from starting instead of being ignored by the other side."""

    method: str
    template: str
    handler: Handler
    reads: Reads


_CONDITIONAL = frozenset({"if-none-match"})
_KEYED = frozenset({"idempotency-key"})  # read only to hand a keyed request to FastAPI

HOT: tuple[Hot, ...] = (
    Hot(
        "GET",
        "/providers/{provider_id}/availability",
        slot_listing,
        Reads(query=_LISTING, headers=_CONDITIONAL),
    ),
    Hot(
        "GET",
        "/providers/{provider_id}/appointment-types/{type_id}/availability",
        start_times,
        Reads(query=_START_TIMES, headers=_CONDITIONAL),
    ),
    Hot("POST", "/clients/{client_id}/reserve", reserve, Reads(headers=_KEYED, body=ReserveIn)),
    Hot("POST", "/clients/{client_id}/confirm", confirm, Reads(headers=_KEYED, body=ConfirmIn)),
)
