"""Webhooks on the provider's page: add one (secret shown once), see its deliveries."""

import re
from collections.abc import Callable

from standardwebhooks import Webhook

from tests.api import Api
from tests.notifications.receiver import receiver
from tests.web.browser import Browser
from tests.web.test_appointment_pages import NINE, provider_desk

SECRET = re.compile(r"whsec_[A-Za-z0-9+/=]+")


def test_a_provider_adds_a_webhook_and_sees_its_deliveries(
    api: Api, new_browser: Callable[[], Browser]
) -> None:
    provider_id, desk = provider_desk(api, new_browser)
    refused = desk.submit("/provider/webhooks", {"url": "ftp://x.example"}, from_page="/provider")
    assert "No webhook was added" in refused.text
    with receiver() as hooks:
        added = desk.submit(
            "/provider/webhooks",
            {"url": hooks.url, "description": "front desk"},
            from_page="/provider",
        )
        secrets = SECRET.findall(added.text)
        assert len(secrets) == 1
        assert hooks.url in added.text
        assert SECRET.findall(desk.get("/provider").text) == []  # shown once

        bob = api.customer()
        api.reserve(bob["id"], api.slot_at(provider_id, NINE))
        desk.submit(f"/provider/webhooks/{hooks_id(api)}/ping", from_page="/provider")
        api.deliver()
        page = desk.get("/provider").text
        assert "reservation.held" in page
        assert "ping" in page
        assert page.count("<td>delivered</td>") == 2
        for item in hooks.received:
            Webhook(secrets[0]).verify(item.body, item.headers)

        deleted = desk.submit(f"/provider/webhooks/{hooks_id(api)}/delete", from_page="/provider")
        assert "The webhook is deleted" in deleted.text
        assert api.ok("GET", "/webhooks")["items"] == []


def hooks_id(api: Api) -> str:
    (endpoint,) = api.ok("GET", "/webhooks")["items"]
    return str(endpoint["id"])
