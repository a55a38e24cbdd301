"""Appointments of any length under real concurrency (live server processes)."""

import functools
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from appointments.auth.tokens import Role
from tests.api import Api, Json, bearer, iso
from tests.gate import race
from tests.live_server import create_clients, live_server, publish_ahead

ADMIN = bearer(Role.ADMIN, "race-admin")


def as_time(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def assert_no_overlap(api: Api) -> int:
    """No two live reservations of a provider occupy overlapping time; return how many
    are live."""
    rows = api.sql(
        "SELECT provider_id, occupied_start, occupied_end FROM reservations "
        "WHERE status IN ('held', 'confirmed') ORDER BY provider_id, occupied_start"
    )
    spans = [(str(provider), as_time(start), as_time(end)) for provider, start, end in rows]
    for earlier, later in zip(spans, spans[1:], strict=False):
        if earlier[0] == later[0]:
            assert earlier[2] <= later[1], spans
    return len(spans)


def post_all(database_url: str, base: str, calls: list[tuple[str, Json]]) -> list[tuple[int, str]]:
    """Every (path, body) from its own connection, released together at a held database
    (`tests.gate.race`: the overlap is proven); the answers' status and code."""

    def call(path: str, body: Json) -> tuple[int, str]:
        with httpx.Client(base_url=base, timeout=60, headers=ADMIN) as own:
            response = own.post(path, json=body)
            return response.status_code, response.json().get("code", "")

    return race(database_url, [functools.partial(call, path, body) for path, body in calls])


@pytest.mark.live
def test_overlapping_multi_slot_reserves_never_overlap(database_url: str, api: Api) -> None:
    """27 clients race for 60-minute appointments at nine overlapping starts."""
    with (
        live_server(database_url, workers=2, db_pool_size="60") as base,
        httpx.Client(base_url=base, headers=ADMIN) as http,
    ):
        provider, slots = publish_ahead(http, "Dr Overlap", timedelta(hours=3))
        kind = http.post(
            f"/providers/{provider['id']}/appointment-types",
            json={"name": "Hour", "duration_minutes": 45, "buffer_after_minutes": 15},
        ).json()
        clients = create_clients(http, 27)
        answers = post_all(
            database_url,
            base,
            [
                (
                    f"/clients/{client['id']}/reserve",
                    {"slot_id": slots[i % 9]["id"], "appointment_type_id": kind["id"]},
                )
                for i, client in enumerate(clients)
            ],
        )
    winners = [a for a in answers if a[0] == 201]
    assert {a for a in answers if a[0] != 201} <= {(409, "slot_unavailable")}, answers
    assert 1 <= len(winners) <= 3  # at most three 60-minute spans fit in the first 2h15
    assert assert_no_overlap(api) == len(winners)
    assert api.links() == 4 * len(winners)


@pytest.mark.live
def test_racing_reschedules_onto_the_same_slots_leave_one_winner(
    database_url: str, api: Api
) -> None:
    with (
        live_server(database_url, workers=2, db_pool_size="60") as base,
        httpx.Client(base_url=base, headers=ADMIN) as http,
    ):
        provider, slots = publish_ahead(http, "Dr Move", timedelta(hours=6))
        kind = http.post(
            f"/providers/{provider['id']}/appointment-types",
            json={"name": "Half hour", "duration_minutes": 30},
        ).json()
        clients = create_clients(http, 10)
        holds = []
        for index, client in enumerate(clients):  # at 0:00, 0:30, ... 4:30
            response = http.post(
                f"/clients/{client['id']}/reserve",
                json={"slot_id": slots[2 * index]["id"], "appointment_type_id": kind["id"]},
            )
            assert response.status_code == 201, response.text
            holds.append(response.json())
        target = slots[21]["id"]  # 5:15, overlapping nobody's
        answers = post_all(
            database_url,
            base,
            [
                (
                    f"/clients/{hold['client_id']}/reservations/{hold['id']}/reschedule",
                    {"slot_id": target},
                )
                for hold in holds
            ],
        )
    assert sorted(answers) == [(200, "")] + [(409, "slot_unavailable")] * 9, answers
    assert assert_no_overlap(api) == 10
    assert api.links() == 20


@pytest.mark.live
def test_the_daily_cap_holds_under_twenty_parallel_reserves(database_url: str, api: Api) -> None:
    with (
        live_server(database_url, workers=2, db_pool_size="60") as base,
        httpx.Client(base_url=base, headers=ADMIN) as http,
    ):
        # One calendar day for sure: 06:00-11:00 UTC (the provider's zone), three days ahead.
        provider = http.post("/providers", json={"name": "Dr Cap"}).json()
        day = datetime.now(UTC).replace(hour=6, minute=0, second=0, microsecond=0)
        start = day + timedelta(days=3)
        slots = http.post(
            f"/providers/{provider['id']}/availability",
            json={"start_time": iso(start), "end_time": iso(start + timedelta(hours=5))},
        ).json()["slots"]
        kind = http.post(
            f"/providers/{provider['id']}/appointment-types",
            json={"name": "Quick", "duration_minutes": 15, "max_per_day": 3},
        ).json()
        clients = create_clients(http, 20)
        answers = post_all(
            database_url,
            base,
            [
                (
                    f"/clients/{client['id']}/reserve",
                    {"slot_id": slots[i]["id"], "appointment_type_id": kind["id"]},
                )
                for i, client in enumerate(clients)
            ],
        )
    assert sorted(answers) == [(201, "")] * 3 + [(409, "daily_limit_reached")] * 17, answers
    live = api.sql("SELECT count(*) FROM reservations WHERE status IN ('held', 'confirmed')")
    assert live == [(3,)]
