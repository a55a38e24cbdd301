"""Metrics, request ids and structured logs."""

import json
import logging
from datetime import timedelta

import pytest

from appointments.observability.logging import JsonFormatter
from tests.api import Api
from tests.conftest import START

DAY = START + timedelta(days=3)


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus exposition text (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        sample, _, value = line.rpartition(" ")
        metric_name, _, label_text = sample.partition("{")
        found = ",".join(sorted(label_text.rstrip("}").split(","))) if label_text else ""
        if metric_name == name and found == wanted:
            return float(value)
    return 0.0


def test_metrics_count_booking_outcomes_and_latency(api: Api) -> None:
    anonymous = api.client.get("/metrics", headers={"Authorization": ""})
    assert anonymous.status_code == 200
    before = anonymous.text
    provider = api.provider()
    bob, eve = api.customer(), api.customer("Eve", "eve@example.com")
    slot = api.slot(provider["id"], DAY)
    held = api.reserve(bob["id"], slot["id"]).json()
    assert api.reserve(eve["id"], slot["id"]).status_code == 409
    api.confirm(bob["id"], held["id"])
    after = api.client.get("/metrics")
    assert after.headers["content-type"].startswith("text/plain")
    text = after.text

    def grew(name: str, **labels: str) -> float:
        return metric(text, name, **labels) - metric(before, name, **labels)

    assert grew("appointments_reservations_total", outcome="held") == 1
    assert grew("appointments_reservations_total", outcome="confirmed") == 1
    assert grew("appointments_reservations_total", outcome="refused_slot_unavailable") == 1
    assert (
        grew(
            "appointments_request_duration_seconds_count",
            route="/clients/{client_id}/reserve",
            method="POST",
            status="2xx",
        )
        == 1
    )
    assert "appointments_db_pool_in_use" in text
    api.ok("POST", "/admin/expire-reservations")
    swept = api.client.get("/metrics").text
    assert (
        metric(swept, "appointments_sweeps_total") - metric(before, "appointments_sweeps_total")
        == 1
    )


def test_request_id_is_generated_or_taken_from_the_caller(api: Api) -> None:
    generated = api.client.get("/healthz")
    assert len(generated.headers["x-request-id"]) == 32
    given = api.client.get("/healthz", headers={"X-Request-ID": "trace-42"})
    assert given.headers["x-request-id"] == "trace-42"
    unsafe = api.client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
    assert unsafe.headers["x-request-id"] != "bad id\twith spaces"
    problem = api.client.get("/providers/nope")
    assert problem.status_code == 404
    assert "x-request-id" in problem.headers


def test_access_log_is_json_with_request_id_and_no_personal_data(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="appointments.access")
    api.client.post(
        "/clients",
        json={
            "name": "Secret Person",
            "email": "secret@example.com",
            "phone_number": "+4915112345678",
        },
        headers={"X-Request-ID": "req-7"},
    )
    records = [r for r in caplog.records if r.name == "appointments.access"]
    assert records
    line = JsonFormatter().format(records[-1])
    entry = json.loads(line)
    assert entry["request_id"] == "req-7"
    assert entry["route"] == "/clients"
    assert entry["status"] == 201
    assert "secret@example.com" not in line
    assert "Secret Person" not in line
    assert "+4915112345678" not in line
