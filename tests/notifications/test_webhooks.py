"""Webhooks end to end: endpoints over HTTP, deliveries to a real receiver, retries,
signatures checked with the `standardwebhooks` package."""

import time
from datetime import timedelta
from typing import Any

import pytest
from standardwebhooks import Webhook

from appointments.auth.tokens import Role
from appointments.clock import FrozenClock
from appointments.notifications.worker import Deliverer
from tests.api import Api, Json, bearer
from tests.conftest import START
from tests.notifications.receiver import receiver

DAY = START + timedelta(days=3)


def add_webhook(api: Api, url: str, **fields: Any) -> Json:
    created: Json = api.ok("POST", "/webhooks", 201, json={"url": url, **fields})
    return created


def deliveries(api: Api, webhook_id: str, **query: Any) -> list[Json]:
    page: Json = api.ok("GET", f"/webhooks/{webhook_id}/deliveries", params=query)
    items: list[Json] = page["items"]
    return items


def book(api: Api) -> tuple[Json, Json, Json]:
    """A provider, a client and the client's confirmed booking."""
    provider, bob = api.provider(), api.customer()
    slot = api.slot(provider["id"], DAY)
    held = api.reserve(bob["id"], slot["id"]).json()
    clock: FrozenClock = api.client.app.state.clock  # type: ignore[attr-defined]
    clock.advance(seconds=1)  # so "newest first" has one answer
    confirmed = api.ok("POST", f"/clients/{bob['id']}/confirm", json={"reservation_id": held["id"]})
    return provider, bob, confirmed


def test_failed_attempts_are_retried_with_the_same_id_and_a_valid_signature(
    api: Api, clock: FrozenClock
) -> None:
    with receiver(fail_first=2) as hooks:
        endpoint = add_webhook(api, hooks.url)
        assert endpoint["secret"].startswith("whsec_")
        assert "secret" not in api.ok("GET", f"/webhooks/{endpoint['id']}")
        _, _, booking = book(api)

        api.deliver()  # both events tried once: 503
        first = deliveries(api, endpoint["id"])
        assert [(d["event_type"], d["status"], d["attempts"]) for d in first] == [
            ("reservation.confirmed", "pending", 1),
            ("reservation.held", "pending", 1),
        ]
        assert first[0]["last_status_code"] == 503
        due = first[0]["next_attempt_at"]
        # The first retry comes about 5 s later (a little jitter), not before.
        api.deliver()
        assert len(hooks.received) == 2
        clock.advance(seconds=5.6)
        api.deliver()
        clock.advance(seconds=331)
        api.deliver()

        assert len(hooks.received) == 6
        assert all(d["status"] == "delivered" for d in deliveries(api, endpoint["id"]))
        verifier = Webhook(endpoint["secret"])
        by_id: dict[str, list[bytes]] = {}
        for item in hooks.received:
            verifier.verify(item.body, item.headers)  # raises on a bad signature
            by_id.setdefault(item.id, []).append(item.body)
        assert len(by_id) == 2
        assert all(len(bodies) == 3 and len(set(bodies)) == 1 for bodies in by_id.values())
        confirmed = next(i.json() for i in hooks.received if i.json()["type"].endswith("confirmed"))
        assert confirmed["data"]["reservation"] == booking
        assert due is not None


def test_a_tampered_body_fails_verification(api: Api) -> None:
    with receiver() as hooks:
        endpoint = add_webhook(api, hooks.url, events=["reservation.held"])
        book(api)
        api.deliver()
        [item] = hooks.received  # only the subscribed type
        assert item.json()["type"] == "reservation.held"
        with pytest.raises(Exception, match="signature"):
            Webhook(endpoint["secret"]).verify(item.body.replace(b"held", b"hold"), item.headers)


def test_after_the_schedule_a_delivery_fails_and_a_manual_retry_sends_it(
    api: Api, clock: FrozenClock
) -> None:
    api.configure(webhook_retry_seconds=[1.0])
    with receiver(fail_first=2) as hooks:
        endpoint = add_webhook(api, hooks.url)
        ping = api.ok("POST", f"/webhooks/{endpoint['id']}/ping", 202)
        api.deliver()
        clock.advance(seconds=2)
        api.deliver()
        [failed] = deliveries(api, endpoint["id"], status="failed")
        assert (failed["event_id"], failed["attempts"]) == (ping["event_id"], 2)
        assert failed["next_attempt_at"] is None
        assert failed["last_error"] == "answered HTTP 503"
        assert deliveries(api, endpoint["id"], status="delivered") == []

        again = api.ok("POST", f"/webhooks/{endpoint['id']}/deliveries/{failed['id']}/retry", 202)
        assert again["status"] == "pending"
        api.deliver()
        [done] = deliveries(api, endpoint["id"])
        assert (done["status"], done["attempts"]) == ("delivered", 3)
        assert hooks.received[-1].json() == {
            "type": "ping",
            "timestamp": hooks.received[-1].json()["timestamp"],
            "data": {"endpoint_id": endpoint["id"], "message": "ping"},
        }


def test_scoping_providers_see_and_receive_only_their_own(api: Api) -> None:
    with receiver() as mine, receiver() as theirs, receiver() as everyone:
        ada, grace = api.provider("Ada"), api.provider("Grace")
        as_ada = bearer(Role.PROVIDER, ada["id"])
        own = api.client.post("/webhooks", json={"url": mine.url}, headers=as_ada)
        assert own.status_code == 201
        assert own.json()["provider_id"] == ada["id"]
        refused = api.client.post(
            "/webhooks", json={"url": mine.url, "provider_id": grace["id"]}, headers=as_ada
        )
        assert refused.status_code == 403
        other = add_webhook(api, theirs.url, provider_id=grace["id"])
        add_webhook(api, everyone.url)
        listed = api.client.get("/webhooks", headers=as_ada).json()["items"]
        assert [item["id"] for item in listed] == [own.json()["id"]]
        for path in (f"/webhooks/{other['id']}", f"/webhooks/{other['id']}/deliveries"):
            assert api.client.get(path, headers=as_ada).status_code == 404
        as_client = bearer(Role.CLIENT, api.customer()["id"])
        assert api.client.get("/webhooks", headers=as_client).status_code == 403

        bob = api.customer("Bob", "bob2@example.com")
        slot = api.slot(ada["id"], DAY)
        api.reserve(bob["id"], slot["id"])
        api.deliver()
        assert (len(mine.received), len(theirs.received), len(everyone.received)) == (1, 0, 1)


def test_disabled_and_deleted_endpoints_get_nothing(api: Api) -> None:
    with receiver() as hooks:
        endpoint = add_webhook(api, hooks.url, description="old")
        replaced = api.ok(
            "PUT", f"/webhooks/{endpoint['id']}", json={"url": hooks.url, "enabled": False}
        )
        assert (replaced["enabled"], replaced["description"]) == (False, None)
        book(api)
        api.deliver()
        assert hooks.received == []
        api.ok("DELETE", f"/webhooks/{endpoint['id']}", 204)
        assert api.client.get(f"/webhooks/{endpoint['id']}").status_code == 404


def test_a_receiver_that_hangs_holds_up_only_its_own_deliveries(api: Api) -> None:
    """The running worker keeps attempts in flight and claims more as others end; one
    endpoint gets at most `per_endpoint` of the slots. With rounds that waited for all
    their attempts, the quick receiver would wait for the slow one's 3-second answers."""
    app: Any = api.client.app
    portal = api.client.portal
    assert portal is not None
    with receiver(delay_seconds=3) as slow, receiver() as quick:
        add_webhook(api, slow.url)
        add_webhook(api, quick.url)
        for _ in range(3):
            book(api)  # a hold and a confirmation each: 6 events per endpoint
        deliverer = Deliverer(
            app.state.sessionmaker,
            app.state.settings,
            app.state.clock,
            concurrency=4,
            per_endpoint=2,
        )
        running = portal.start_task_soon(deliverer.run, 0.05)
        try:
            quick.wait_for(6, timeout=2.5)
            assert len(slow.answered_ok) == 0
            assert len(slow.received) <= 2  # its share of the slots, not more
            slow.wait_for(6, timeout=15)
            page: Json = api.ok("GET", "/webhooks")
            for endpoint in page["items"]:
                deadline = time.monotonic() + 5
                while {d["status"] for d in deliveries(api, endpoint["id"])} != {"delivered"}:
                    assert time.monotonic() < deadline, deliveries(api, endpoint["id"])
                    time.sleep(0.05)
        finally:
            running.cancel()
            portal.call(deliverer.close)


def test_a_backlog_beyond_an_endpoints_share_drains_without_waiting_for_the_interval(
    api: Api,
) -> None:
    """Rows left behind for want of the endpoint's share are claimed as soon as one of
    its attempts ends. (A claim that counted them as "no more work" waited a whole
    interval for each share: 16 webhooks per second per worker in the benchmark.)"""
    app: Any = api.client.app
    portal = api.client.portal
    assert portal is not None
    with receiver() as hooks:
        add_webhook(api, hooks.url)
        for _ in range(5):
            book(api)  # 10 events, five times the endpoint's share
        deliverer = Deliverer(
            app.state.sessionmaker,
            app.state.settings,
            app.state.clock,
            concurrency=8,
            per_endpoint=2,
        )
        running = portal.start_task_soon(deliverer.run, 60)  # no second round by the clock
        try:
            hooks.wait_for(10, timeout=5)
        finally:
            running.cancel()
            portal.call(deliverer.close)


@pytest.mark.parametrize(
    "body",
    [
        {"url": "ftp://example.com/x"},
        {"url": "example.com/x"},
        {"url": "https://"},
        {"url": "https://user:pw@example.com/"},
        {"url": "https://example.com/ x"},
        {"url": "https://example.com/", "events": ["reservation.unknown"]},
        {"url": "https://example.com/", "events": []},
        {"url": "https://example.com/", "events": ["ping"]},
        {"url": "https://example.com/", "secret": "mine"},
        {"url": 5},
    ],
)
def test_invalid_endpoints_are_422_and_create_nothing(api: Api, body: Json) -> None:
    response = api.client.post("/webhooks", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_error"
    assert api.sql("SELECT count(*) FROM webhook_endpoints") == [(0,)]


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://localhost:8080/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[fe80::1]/hook",
        "http://[fd00::1]/hook",
        "http://0.0.0.0/hook",
    ],
)
def test_non_public_addresses_are_refused_unless_allowed(api: Api, url: str) -> None:
    api.configure(webhook_allow_private=False)
    response = api.client.post("/webhooks", json={"url": url})
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "webhook_url_not_allowed"
    api.configure(webhook_allow_private=True)
    assert api.client.post("/webhooks", json={"url": url}).status_code == 201


def test_an_address_that_turned_private_is_refused_at_send_time(api: Api) -> None:
    with receiver() as hooks:
        endpoint = add_webhook(api, hooks.url)  # allowed when saved (local)
        api.configure(webhook_allow_private=False)
        book(api)
        api.deliver()
        assert hooks.received == []
        [latest, _] = deliveries(api, endpoint["id"])
        assert latest["status"] == "pending"
        assert "non-public address 127.0.0.1" in latest["last_error"]


def test_unknown_ids_are_404(api: Api) -> None:
    endpoint = add_webhook(api, "https://hooks.example.com/x")
    for method, path in [
        ("GET", "/webhooks/nope"),
        ("PUT", "/webhooks/3f1c1f7e-1d3b-4a4e-9a56-0c2a0f5f7a10"),
        ("DELETE", "/webhooks/nope"),
        ("POST", "/webhooks/nope/ping"),
        ("GET", "/webhooks/nope/deliveries"),
        ("POST", f"/webhooks/{endpoint['id']}/deliveries/nope/retry"),
    ]:
        response = api.client.request(method, path, json={"url": "https://example.com/"})
        assert response.status_code == 404, (method, path, response.text)
    missing = api.client.post(
        "/webhooks",
        json={"url": "https://example.com/", "provider_id": "3f1c1f7e-1d3b-4a4e-9a56-0c2a0f5f7a10"},
    )
    assert missing.status_code == 404
