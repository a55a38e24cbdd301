"""The client's pages: choose a provider, a week of bookable slots, hold, confirm,
my bookings. Each action goes through the same rules and services as the API."""

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import Response

from appointments.appointment_types import repository as appointment_types
from appointments.appointment_types import start_times
from appointments.appointment_types.rules import BookingRules
from appointments.auth.tokens import Principal, Role
from appointments.availability import repository as slots
from appointments.availability.schemas import SlotFilter
from appointments.booking import repository as reservations
from appointments.booking import router as booking_api
from appointments.booking import series as booking_series
from appointments.booking import series_router, terms
from appointments.booking.repository import Owner
from appointments.booking.reschedule import reschedule as reschedule_reservation
from appointments.booking.schemas import ConfirmIn, RepeatIn, ReserveIn, SeriesIn
from appointments.calendar.export import calendar_response
from appointments.clients import service as clients
from appointments.deps import ClockDep, SessionDep, SettingsDep
from appointments.errors import DomainError, NotFound
from appointments.ids import parse_id
from appointments.pagination import PageRequest
from appointments.providers import service as providers
from appointments.scheduling import rules as core
from appointments.scheduling.models import Reservation, ReservationStatus, SeriesPolicy
from appointments.web.pages import (
    ClientPosterDep,
    PageRefused,
    VisitorDep,
    attempt,
    cancel_and_tell,
    day_name,
    provider_list,
    redirect,
    refuse,
    render,
    signed_in,
    subject_id,
)
from appointments.web.week import Week

router = APIRouter(include_in_schema=False)

# A week of 15-minute slots is 672; the cap keeps a page bounded whatever the slot length.
WEEK_SLOT_CAP = 2000
TYPES_SHOWN = 50
# The API bodies' bound (ReserveIn, ConfirmIn): a page form is read as the API reads it.
IdField = Annotated[str, Form(max_length=64)]


@router.get("/book")
async def book(
    request: Request,
    visitor: VisitorDep,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    provider: str | None = None,
    week: str | None = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    type: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    """No provider chosen: the list of providers. Otherwise: that provider's week, of
    bookable slots, or of bookable start times of the chosen appointment type."""
    signed_in(visitor, Role.CLIENT, "GET", "/clients/{client_id}")
    if not provider:
        try:
            listed, more = await provider_list(session, cursor)
        except DomainError as exc:
            return refuse(request, visitor, exc.status, exc.detail)
        return render(request, visitor, "providers.html", providers=listed, next_cursor=more)
    try:
        shown = await providers.get_provider(session, provider)
    except DomainError as exc:
        return refuse(request, visitor, exc.status, exc.detail)
    now = clock.now()
    first_bookable = core.bookable_after(now, core.service_notice(settings))
    shown_week = Week.parse(week, first_bookable, visitor.tz)
    kinds = await appointment_types.page(
        session, shown.id, PageRequest(limit=TYPES_SHOWN, after=None)
    )
    if type:
        chosen = next((kind for kind in kinds if str(kind.id) == type), None)
        if chosen is None:
            return refuse(request, visitor, 404, f"appointment type {type!r} does not exist")
        rules = BookingRules.of(chosen, settings)
        starts = await week_of_starts(session, shown.id, shown.timezone, rules, shown_week, now)
        return render(
            request,
            visitor,
            "week.html",
            provider=shown,
            week=shown_week,
            days=shown_week.group(starts, lambda start: start.start_time),
            kinds=kinds,
            chosen=chosen,
            truncated=len(starts) >= WEEK_SLOT_CAP,
        )
    bookable = await slots.page(
        session,
        shown.id,
        status=SlotFilter.AVAILABLE,
        start_from=shown_week.start,
        start_before=shown_week.end,
        bookable_after=first_bookable,
        now=now,
        request=PageRequest(limit=WEEK_SLOT_CAP, after=None),
    )
    days = shown_week.group(bookable[:WEEK_SLOT_CAP], lambda slot: slot.start_time)
    return render(
        request,
        visitor,
        "week.html",
        provider=shown,
        week=shown_week,
        days=days,
        kinds=kinds,
        chosen=None,
        truncated=len(bookable) > WEEK_SLOT_CAP,
    )


async def week_of_starts(
    session: SessionDep,
    provider_id: uuid.UUID,
    zone: str,
    rules: BookingRules,
    week: Week,
    now: datetime,
    *,
    moving: uuid.UUID | None = None,
) -> list[start_times.StartTime]:
    """Bookable start times in the week (the API's query), for a new appointment or
    for one `moving` (its own slots count as free for it)."""
    search = start_times.Search(
        start_from=week.start,
        start_before=week.end,
        after=rules.bookable_after(now),
        latest=rules.horizon(now),
        zone=zone,
    )
    return await start_times.find(
        session, provider_id, rules, search, now, limit=WEEK_SLOT_CAP, moving=moving
    )


FormIdField = Annotated[str, Form(max_length=40, pattern=r"^[A-Za-z0-9_-]*$")]


def _form_key(form_id: str, *parts: str) -> str | None:
    """The Idempotency-Key a page form stands for: one per rendered form and choice, so
    a form sent twice (a double click, a resubmit after Back) is answered once."""
    return ":".join(("page", form_id, *parts)) if form_id else None


def _as_api(outcome: Response | DomainError) -> tuple[int, dict[str, Any]]:
    """A booking operation's API answer (status and JSON body, or the refusal it
    raised), as the page reads it."""
    if isinstance(outcome, DomainError):
        # As the API sends it: models and times in it as JSON.
        return outcome.status, jsonable_encoder(outcome.problem())
    body: dict[str, Any] = json.loads(bytes(outcome.body))
    return outcome.status_code, body


@router.post("/book/hold")
async def hold(
    request: Request,
    visitor: ClientPosterDep,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    slot_id: IdField,
    provider: IdField = "",
    week: Annotated[str, Form(max_length=20)] = "",
    appointment_type_id: IdField = "",
    form_id: FormIdField = "",
    seats: Annotated[int, Form(ge=1, le=500)] = 1,
    weeks: Annotated[int, Form(ge=1, le=52)] = 1,
) -> Response:
    """The API's reserve (`booking.router.reserve_answer`): its checks, idempotency
    (the form's key) and outcome metrics; `seats` in a group session. `weeks` > 1: the
    same time every week, as a series of the weeks that can be booked (`policy`
    `available`), the others explained on the series' hold page before confirming."""
    if weeks > 1:
        return await _hold_series(
            request,
            visitor,
            session,
            clock,
            settings,
            slot_id,
            provider,
            week,
            appointment_type_id,
            form_id,
            seats,
            weeks,
        )
    principal = signed_in(visitor, Role.CLIENT, "POST", "/clients/{client_id}/reserve")
    terms = ReserveIn(slot_id=slot_id, appointment_type_id=appointment_type_id or None, seats=seats)
    key = _form_key(form_id, "reserve", slot_id, appointment_type_id, str(seats))
    outcome = await attempt(
        session,
        lambda: booking_api.reserve_answer(
            session, clock.now(), settings, principal.subject, terms, key
        ),
    )
    status, body = _as_api(outcome)
    if status >= 400:
        visitor.session.flash = f"That slot could not be held: {body['detail']}."
        back = {"type": appointment_type_id} if appointment_type_id else {}
        return redirect(request, visitor, "/book", provider=provider, week=week, **back)
    return redirect(request, visitor, f"/book/holds/{body['id']}")


async def _hold_series(
    request: Request,
    visitor: ClientPosterDep,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    slot_id: str,
    provider: str,
    week: str,
    appointment_type_id: str,
    form_id: str,
    seats: int,
    weeks: int,
) -> Response:
    """The API's series (`series_router.series_answer`) for the weeks that can be
    booked; the skipped ones and why go to the series' page."""
    principal = signed_in(visitor, Role.CLIENT, "POST", "/clients/{client_id}/series")
    terms = SeriesIn(
        slot_id=slot_id,
        appointment_type_id=appointment_type_id or None,
        seats=seats,
        repeat=RepeatIn(count=weeks),
        policy=SeriesPolicy.AVAILABLE,
    )
    key = _form_key(form_id, "series", slot_id, appointment_type_id, str(seats), str(weeks))
    outcome = await attempt(
        session,
        lambda: series_router.series_answer(
            session, clock.now(), settings, principal.subject, terms, key
        ),
    )
    status, body = _as_api(outcome)
    if status >= 400:
        refused = body.get("conflicts") or []
        visitor.session.flash = f"Those weeks could not be held: {body['detail']}" + (
            f" ({_refusals_in_words(refused, visitor.tz)})." if refused else "."
        )
        back = {"type": appointment_type_id} if appointment_type_id else {}
        return redirect(request, visitor, "/book", provider=provider, week=week, **back)
    if body["skipped"]:
        visitor.session.flash = (
            f"{len(body['skipped'])} of {weeks} weeks cannot be booked: "
            f"{_refusals_in_words(body['skipped'], visitor.tz)}. The others are held."
        )
    return redirect(request, visitor, f"/book/series/{body['id']}")


# A refused occurrence's code, as the series' page explains it.
_REFUSAL_WORDS = {
    "slot_unavailable": "taken, or not offered",
    "too_late_to_book": "too soon to book",
    "too_far_ahead": "too far ahead",
    "daily_limit_reached": "the day is fully booked",
    "session_full": "the session is full",
    "already_booked": "you are already booked",
}


def _refusals_in_words(refused: list[dict[str, Any]], tz: tzinfo) -> str:
    return "; ".join(
        f"{day_name(datetime.fromisoformat(r['start_time']).astimezone(tz).date())}: "
        f"{_REFUSAL_WORDS.get(r['code'], r['code'].replace('_', ' '))}"
        for r in refused
    )


@router.get("/book/series/{series_id}")
async def series_page(
    request: Request,
    visitor: VisitorDep,
    session: SessionDep,
    clock: ClockDep,
    series_id: str,
) -> Response:
    """A series on hold: every week, held or not (the reasons came with the hold), one
    countdown, Confirm all and Release."""
    principal = signed_in(visitor, Role.CLIENT, "GET", "/clients/{client_id}/series/{series_id}")
    owner = Owner(client_id=subject_id(principal))
    try:
        found = await booking_series.get_series(session, owner, series_id)
        shown = await providers.get_provider(session, str(found.series.provider_id))
    except DomainError as exc:
        return refuse(request, visitor, exc.status, exc.detail)
    now = clock.now()
    series = found.series
    held = [r for r in found.reservations if terms.is_live(r, now)]
    if any(r.status == ReservationStatus.CONFIRMED for r in held):
        return redirect(request, visitor, "/bookings")
    if not held:
        visitor.session.flash = visitor.session.flash or (
            "The hold ran out; pick the time again if it is still free."
        )
        week = series.first_start.astimezone(visitor.tz).date().isoformat()
        return redirect(request, visitor, "/book", provider=str(series.provider_id), week=week)
    by_start = {r.start_time: r for r in held}
    weeks = [
        (start, by_start.get(start))
        for start, _ in booking_series.occurrence_starts(
            series.first_start, shown.timezone, series.interval_weeks, series.count
        )
    ]
    return render(
        request,
        visitor,
        "series_hold.html",
        series=series,
        weeks=weeks,
        held=held,
        provider_name=shown.name,
        provider_zone=shown.timezone,
        seconds_left=int((series.expires_at - now).total_seconds()),
    )


@router.post("/book/series/{series_id}/confirm")
async def confirm_series(
    request: Request,
    visitor: ClientPosterDep,
    session: SessionDep,
    clock: ClockDep,
    series_id: str,
) -> Response:
    """The API's series confirm: every held week, or none."""
    path = "/clients/{client_id}/series/{series_id}/confirm"
    principal = signed_in(visitor, Role.CLIENT, "POST", path)

    async def confirm_all() -> booking_series.SeriesResult:
        # As the API route: the client's row first (the one lock order).
        client = await clients.lock_client(session, principal.subject)
        return await booking_series.confirm_series(session, client, series_id, clock.now())

    outcome = await attempt(session, confirm_all)
    if isinstance(outcome, DomainError):
        visitor.session.flash = f"The series could not be confirmed: {outcome.detail}."
        return redirect(request, visitor, f"/book/series/{series_id}")
    booked = sum(r.status == ReservationStatus.CONFIRMED for r in outcome.reservations)
    visitor.session.flash = f"Booked {booked} weeks. See you then."
    return redirect(request, visitor, "/bookings")


@router.post("/bookings/series/{series_id}/cancel")
async def cancel_series(
    request: Request,
    visitor: ClientPosterDep,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    series_id: str,
) -> Response:
    """The API's series cancel by the client: every week not yet started (those inside
    the change notice stay, and are named)."""
    path = "/clients/{client_id}/series/{series_id}/cancel"
    principal = signed_in(visitor, Role.CLIENT, "POST", path)

    async def cancel_all() -> booking_series.SeriesResult:
        client = await clients.lock_client(session, principal.subject)
        return await booking_series.cancel_series(
            session, settings, Owner(client_id=client), series_id, None, clock.now(), by_client=True
        )

    outcome = await attempt(session, cancel_all)
    if isinstance(outcome, DomainError):
        visitor.session.flash = f"The series was not cancelled: {outcome.detail}."
    elif outcome.kept:
        kept = ", ".join(day_name(k.start_time.astimezone(visitor.tz).date()) for k in outcome.kept)
        visitor.session.flash = f"Series cancelled, except {kept}: too close to change."
    else:
        visitor.session.flash = "Series cancelled."
    return redirect(request, visitor, "/bookings")


async def _own_reservation(
    session: SessionDep, principal: Principal, reservation_id: str
) -> tuple[Reservation, str, str]:
    """The client's reservation with its provider's name and time zone; anything else
    (malformed, missing, another client's) is the 404 page."""
    owner = Owner(client_id=subject_id(principal))
    try:
        reservation = await reservations.get_owned(
            session, owner, parse_id(reservation_id, "reservation")
        )
        if reservation is None:
            raise NotFound(f"reservation {reservation_id!r} does not exist")
        provider = await providers.get_provider(session, str(reservation.provider_id))
    except DomainError as exc:
        raise PageRefused(exc.status, exc.detail) from exc
    return reservation, provider.name, provider.timezone


@router.get("/book/holds/{reservation_id}")
async def hold_page(
    request: Request,
    visitor: VisitorDep,
    session: SessionDep,
    clock: ClockDep,
    reservation_id: str,
) -> Response:
    principal = signed_in(visitor, Role.CLIENT, "GET", "/clients/{client_id}/reservations")
    reservation, name, timezone = await _own_reservation(session, principal, reservation_id)
    now = clock.now()
    if reservation.status == ReservationStatus.CONFIRMED:
        return redirect(request, visitor, f"/bookings/{reservation.id}")
    if not core.hold_is_live(reservation.status, reservation.expires_at, now):
        # Keep the message of the confirm that sent us here, if one did.
        visitor.session.flash = (
            visitor.session.flash or "The hold ran out; pick the slot again if it is still free."
        )
        week = reservation.start_time.astimezone(visitor.tz).date().isoformat()
        return redirect(request, visitor, "/book", provider=str(reservation.provider_id), week=week)
    return render(
        request,
        visitor,
        "hold.html",
        reservation=reservation,
        provider_name=name,
        provider_zone=timezone,
        seconds_left=int((reservation.expires_at - now).total_seconds()),
    )


@router.post("/book/holds/{reservation_id}/confirm")
async def confirm(
    request: Request,
    visitor: ClientPosterDep,
    session: SessionDep,
    clock: ClockDep,
    reservation_id: str,
    form_id: FormIdField = "",
) -> Response:
    """The API's confirm (`booking.router.confirm_answer`), idempotent by the form's key."""
    principal = signed_in(visitor, Role.CLIENT, "POST", "/clients/{client_id}/confirm")
    terms = ConfirmIn.model_construct(reservation_id=reservation_id)  # a path: any text
    outcome = await attempt(
        session,
        lambda: booking_api.confirm_answer(
            session, clock.now(), principal.subject, terms, _form_key(form_id, "confirm")
        ),
    )
    status, body = _as_api(outcome)
    if status >= 400:
        visitor.session.flash = f"The booking could not be confirmed: {body['detail']}."
        return redirect(request, visitor, f"/book/holds/{reservation_id}")
    visitor.session.flash = "Booked. See you then."
    return redirect(request, visitor, f"/bookings/{body['id']}")


@router.get("/bookings")
async def my_bookings(
    request: Request, visitor: VisitorDep, session: SessionDep, clock: ClockDep
) -> Response:
    principal = signed_in(visitor, Role.CLIENT, "GET", "/clients/{client_id}/reservations")
    now = clock.now()
    owner = Owner(client_id=subject_id(principal))
    upcoming = await reservations.live_with_counterpart(
        session, owner, now, now, None, WEEK_SLOT_CAP
    )
    return render(request, visitor, "bookings.html", entries=_by_series(upcoming), now=now)


@dataclass
class _Entry:
    """A line of My bookings: one booking, or a series' upcoming occurrences together
    (placed at its next one)."""

    provider_name: str
    bookings: list[Reservation]
    series_id: uuid.UUID | None = None


def _by_series(upcoming: Sequence[tuple[Reservation, str]]) -> list[_Entry]:
    entries: list[_Entry] = []
    series: dict[uuid.UUID, _Entry] = {}
    for reservation, provider_name in upcoming:
        if reservation.series_id is None:
            entries.append(_Entry(provider_name, [reservation]))
        elif reservation.series_id in series:
            series[reservation.series_id].bookings.append(reservation)
        else:
            entry = _Entry(provider_name, [reservation], reservation.series_id)
            series[reservation.series_id] = entry
            entries.append(entry)
    return entries


@router.get("/bookings/calendar.ics")
async def my_calendar(visitor: VisitorDep, session: SessionDep, clock: ClockDep) -> Response:
    principal = signed_in(visitor, Role.CLIENT, "GET", "/clients/{client_id}/reservations.ics")
    owner = Owner(client_id=subject_id(principal))
    return await calendar_response(session, owner, "My appointments", clock.now())


@router.get("/bookings/{reservation_id}")
async def booking_page(
    request: Request, visitor: VisitorDep, session: SessionDep, reservation_id: str
) -> Response:
    principal = signed_in(visitor, Role.CLIENT, "GET", "/clients/{client_id}/reservations")
    reservation, name, timezone = await _own_reservation(session, principal, reservation_id)
    return render(
        request,
        visitor,
        "booked.html",
        reservation=reservation,
        provider_name=name,
        provider_zone=timezone,
    )


@router.post("/bookings/{reservation_id}/cancel")
async def cancel(
    request: Request,
    visitor: ClientPosterDep,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    reservation_id: str,
) -> Response:
    path = "/clients/{client_id}/reservations/{reservation_id}/cancel"
    principal = signed_in(visitor, Role.CLIENT, "POST", path)
    owner = Owner(client_id=subject_id(principal))
    await cancel_and_tell(session, settings, visitor, owner, reservation_id, clock.now())
    return redirect(request, visitor, "/bookings")


@router.get("/bookings/{reservation_id}/reschedule")
async def reschedule_page(
    request: Request,
    visitor: VisitorDep,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    reservation_id: str,
    week: str | None = None,
) -> Response:
    """A week of the start times this booking could move to (same type and length)."""
    path = "/clients/{client_id}/reservations/{reservation_id}/reschedule"
    principal = signed_in(visitor, Role.CLIENT, "POST", path)
    reservation, name, timezone = await _own_reservation(session, principal, reservation_id)
    now = clock.now()
    rules = await terms.rules_of(session, settings, reservation)
    shown_week = Week.parse(week, reservation.start_time, visitor.tz)
    # Its own slots count as free for itself: a move by 15 minutes is offered too.
    starts = await week_of_starts(
        session,
        reservation.provider_id,
        timezone,
        rules,
        shown_week,
        now,
        moving=reservation.id,
    )
    starts = [start for start in starts if start.start_time != reservation.start_time]
    return render(
        request,
        visitor,
        "reschedule.html",
        reservation=reservation,
        provider_name=name,
        week=shown_week,
        days=shown_week.group(starts, lambda start: start.start_time),
    )


@router.post("/bookings/{reservation_id}/reschedule")
async def reschedule(
    request: Request,
    visitor: ClientPosterDep,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    reservation_id: str,
    slot_id: IdField,
) -> Response:
    path = "/clients/{client_id}/reservations/{reservation_id}/reschedule"
    principal = signed_in(visitor, Role.CLIENT, "POST", path)
    owner = Owner(client_id=subject_id(principal))
    outcome = await attempt(
        session,
        lambda: reschedule_reservation(
            session, settings, owner, reservation_id, slot_id, clock.now(), by_client=True
        ),
    )
    if isinstance(outcome, DomainError):
        visitor.session.flash = f"The booking was not moved: {outcome.detail}."
        return redirect(request, visitor, "/bookings")
    when = outcome.start_time.astimezone(visitor.tz).strftime("%a %d %b, %H:%M")
    visitor.session.flash = f"Moved to {when}."
    return redirect(request, visitor, "/bookings")
