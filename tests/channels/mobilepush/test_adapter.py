"""Mobile push through the inbox's outbound send, against a loopback OAuth2 token endpoint and
FCM HTTP v1 (fake_fcm.py) answering with the documented bodies (tests/fixtures/fcm): the
service account's token grant, the message for each platform, every documented error's
effect on the token and the message, and device registration by a write key only."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import func, select, update

from seamline.app import create_app
from seamline.channels.mobilepush import adapter as mobilepush
from seamline.channels.mobilepush.models import MobilePushDevice
from seamline.core.auth.schemas import Scope
from seamline.core.queue.models import Job
from seamline.core.time import utcnow
from seamline.inbox import delivery
from tests.channels.mobilepush.fake_fcm import FakeFcm, check_message, fixture
from tests.conftest import make_key
from tests.inbox.conftest import pause_over

ANDROID, IPHONE = "dGVzdC1hbmRyb2lk:APA91bHun4MxP5egoKMwt2KZFBaFUH-1RYqx", "ZmFrZS1pcGhvbmU:APA91bE9Tgd6zKYaXb3"


@pytest.fixture
def fcm():
    fake = FakeFcm()
    yield fake
    fake.close()


@pytest.fixture
def push_settings(settings, fcm, tmp_path):
    key_file = tmp_path / "service-account.json"
    key_file.write_text(json.dumps(fcm.service_account()))
    return settings.model_copy(update={
        "inbox_mobilepush_fcm_credentials_file": str(key_file), "inbox_mobilepush_fcm_base_url": fcm.url,
        "inbox_mobilepush_ttl_seconds": 3600, "delivery_backoff_seconds": 30.0})


@pytest.fixture
def client(push_settings, database):
    with TestClient(create_app(push_settings, database=database)) as test_client:
        yield test_client


def customer(client, headers, email: str) -> int:
    response = client.post("/v1/customers", json={"identifiers": [{"type": "email", "value": email}]}, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["customer"]["id"]


def register(client, headers, customer_id: int, token: str, platform: str = "android", expect: int = 201, **extra) -> dict:
    response = client.post("/v1/channels/mobilepush/devices", json={
        "customer_id": customer_id, "token": token, "platform": platform, **extra}, headers=headers)
    assert response.status_code == expect, response.text
    return response.json()


def send(client, headers, customer_id: int, text: str, expect: int = 201, **extra) -> dict:
    response = client.post("/v1/inbox/outbound", json={"customer_id": customer_id, "text": text, "channel": "mobilepush", **extra},
                           headers=headers)
    assert response.status_code == expect, response.text
    return response.json()


def status_of(client, headers, message_id: int) -> dict:
    return client.get(f"/v1/inbox/outbound/{message_id}", headers=headers).json()


def devices(client, headers, customer_id: int) -> dict[int, dict]:
    items = client.get("/v1/channels/mobilepush/devices", params={"customer_id": customer_id}, headers=headers).json()["items"]
    return {d["id"]: d for d in items}


def time_passes(database) -> None:
    pause_over(database)
    with database.write() as session:
        session.execute(update(Job).where(Job.task == "inbox.send").values(run_at=utcnow()))


def test_the_fake_checks_the_documented_message_shape():
    """The checker holds the documented example, and refuses what FCM refuses (a number in data)."""
    assert check_message(fixture("send_request_android")) == []
    bad = fixture("send_request_android")
    bad["message"]["data"]["Room"] = 12
    bad["message"]["android"]["ttl"] = "1 day"
    assert check_message(bad) == ["data values must be strings", "android.ttl is a duration like 3.5s"]


def test_a_notification_reaches_android_and_ios_through_fcm(client, write_headers, database, push_settings, fcm):
    anna = customer(client, write_headers, "anna@example.com")
    register(client, write_headers, anna, ANDROID, "android", app_id="com.example.shop")
    register(client, write_headers, anna, IPHONE, "ios")
    sent = send(client, write_headers, anna, "Ваш заказ 1042 готов к выдаче", push={
        "title": "Заказ готов", "url": "https://shop.example/orders/1042", "tag": "order-1042", "urgency": "high"})
    assert delivery.send_due(database, settings=push_settings) == 1
    assert fcm.problems == []
    by_token = {m["token"]: m for m in fcm.sent}
    assert set(by_token) == {ANDROID, IPHONE}
    android, ios = by_token[ANDROID], by_token[IPHONE]
    assert android["notification"] == {"title": "Заказ готов", "body": "Ваш заказ 1042 готов к выдаче"}
    assert android["data"] == {"url": "https://shop.example/orders/1042", "tag": "order-1042",
                               "seamline_message_id": str(sent["id"])}
    assert android["android"] == {"ttl": "3600s", "priority": "high", "collapse_key": "order-1042",
                                  "notification": {"tag": "order-1042"}} and "apns" not in android
    assert ios["apns"]["headers"]["apns-priority"] == "10" and ios["apns"]["headers"]["apns-collapse-id"] == "order-1042"
    assert int(ios["apns"]["headers"]["apns-expiration"]) > utcnow().timestamp() and "android" not in ios
    view = status_of(client, write_headers, sent["id"])
    assert view["delivery_status"] == "sent" and view["provider_message_id"].startswith("projects/seamline-test/messages/")

    send(client, write_headers, anna, "Спасибо за покупку!")
    delivery.send_due(database, settings=push_settings)
    assert len(fcm.sent) == 4 and fcm.sent[-1]["notification"]["title"] == "Seamline"
    assert fcm.sent[-1]["data"] == {"seamline_message_id": str(sent["id"] + 1)}
    assert len(fcm.tokens_issued) == 1  # one access token for every send until it expires


def test_the_service_account_may_be_given_as_a_secret(client, write_headers, database, push_settings, fcm):
    inline = push_settings.model_copy(update={"inbox_mobilepush_fcm_credentials_file": "",
                                              "inbox_mobilepush_fcm_credentials": SecretStr(json.dumps(fcm.service_account()))})
    assert mobilepush.ADAPTER.configured(inline)
    assert not mobilepush.ADAPTER.configured(inline.model_copy(update={"inbox_mobilepush_fcm_credentials": SecretStr("")}))
    anna = customer(client, write_headers, "anna@example.com")
    register(client, write_headers, anna, ANDROID)
    send(client, write_headers, anna, "Привет")
    delivery.send_due(database, settings=inline)
    assert [m["notification"]["body"] for m in fcm.sent] == ["Привет"]


@pytest.mark.parametrize("answer", ["error_unregistered", "error_invalid_token", "error_invalid_token_field",
                                    "error_sender_id_mismatch"])
def test_a_dead_token_is_revoked_and_the_message_fails_when_none_is_left(client, write_headers, admin_headers, database,
                                                                         push_settings, fcm, answer):
    anna = customer(client, write_headers, "anna@example.com")
    device = register(client, write_headers, anna, ANDROID)
    fcm.answers[ANDROID] = [(fixture(answer)["error"]["code"], answer, {})]
    sent = send(client, write_headers, anna, "Заказ готов")
    delivery.send_due(database, settings=push_settings)
    view = status_of(client, write_headers, sent["id"])
    assert view["delivery_status"] == "failed" and view["attempts"] == 1, view
    assert fixture(answer)["error"]["details"][0]["errorCode"] in view["error"]
    revoked = devices(client, write_headers, anna)[device["id"]]
    assert revoked["revoked_at"] is not None and revoked["revoked_reason"]
    dead = client.get("/v1/inbox/dead-letters", params={"channel": "mobilepush"}, headers=admin_headers).json()["items"]
    assert [m["id"] for m in dead] == [sent["id"]]
    assert send(client, write_headers, anna, "Ещё?", expect=422)["error"]["details"]["reasons"]["mobilepush"] == "channel_unreachable"


def test_a_bad_payload_or_apns_key_fails_the_message_but_keeps_the_token(client, write_headers, database, push_settings, fcm):
    anna = customer(client, write_headers, "anna@example.com")
    device = register(client, write_headers, anna, IPHONE, "ios")
    for answer in ("error_invalid_data", "error_third_party_auth"):
        fcm.answers[IPHONE] = [(fixture(answer)["error"]["code"], answer, {})]
        sent = send(client, write_headers, anna, "Заказ готов")
        delivery.send_due(database, settings=push_settings)
        view = status_of(client, write_headers, sent["id"])
        assert view["delivery_status"] == "failed" and view["attempts"] == 1, view
        assert devices(client, write_headers, anna)[device["id"]]["revoked_at"] is None, answer  # the token is fine
    assert len(fcm.tokens_issued) == 1  # THIRD_PARTY_AUTH_ERROR is a 401 that a new access token does not cure


@pytest.mark.parametrize(("answer", "retry_after"), [("error_quota_exceeded", "90"), ("error_unavailable", "45"),
                                                     ("error_internal", None)])
def test_quota_and_outages_are_retried_honouring_retry_after(client, write_headers, admin_headers, database, push_settings,
                                                              fcm, answer, retry_after):
    anna = customer(client, write_headers, "anna@example.com")
    device = register(client, write_headers, anna, ANDROID)
    fcm.answers[ANDROID] = [(fixture(answer)["error"]["code"], answer, {"Retry-After": retry_after} if retry_after else {})]
    sent = send(client, write_headers, anna, "Заказ передан в доставку")
    before = utcnow()
    delivery.send_due(database, settings=push_settings)
    waiting = status_of(client, write_headers, sent["id"])
    assert waiting["delivery_status"] == "queued" and waiting["attempts"] == 1
    assert fixture(answer)["error"]["details"][0]["errorCode"] in waiting["error"]
    channel = next(c for c in client.get("/v1/inbox/channels", headers=admin_headers).json()["items"] if c["channel"] == "mobilepush")
    assert channel["paused_until"] is not None
    if retry_after:
        from datetime import datetime
        paused = datetime.fromisoformat(channel["paused_until"])
        assert (paused - before).total_seconds() >= int(retry_after) - 1  # FCM's Retry-After is obeyed
    assert devices(client, write_headers, anna)[device["id"]]["revoked_at"] is None
    time_passes(database)
    delivery.send_due(database, settings=push_settings)
    assert status_of(client, write_headers, sent["id"])["delivery_status"] == "sent"
    assert [m["notification"]["body"] for m in fcm.sent] == ["Заказ передан в доставку"]


def test_an_access_token_fcm_rejects_is_renewed_at_once(client, write_headers, database, push_settings, fcm):
    anna = customer(client, write_headers, "anna@example.com")
    register(client, write_headers, anna, ANDROID)
    send(client, write_headers, anna, "Первое")
    delivery.send_due(database, settings=push_settings)
    fcm.revoked.add(fcm.tokens_issued[-1])  # expired on Google's side before our clock said so
    second = send(client, write_headers, anna, "Второе")
    delivery.send_due(database, settings=push_settings)
    assert status_of(client, write_headers, second["id"])["delivery_status"] == "sent"
    assert len(fcm.tokens_issued) == 2 and [m["notification"]["body"] for m in fcm.sent] == ["Первое", "Второе"]


def test_a_token_endpoint_that_refuses_keeps_the_message_waiting(client, write_headers, database, push_settings, fcm):
    fcm.token_refusal = (400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
    anna = customer(client, write_headers, "anna@example.com")
    register(client, write_headers, anna, ANDROID)
    sent = send(client, write_headers, anna, "Заказ готов")
    delivery.send_due(database, settings=push_settings)
    waiting = status_of(client, write_headers, sent["id"])
    assert waiting["delivery_status"] == "queued" and "invalid_grant" in waiting["error"]
    fcm.token_refusal = None
    time_passes(database)
    delivery.send_due(database, settings=push_settings)
    assert status_of(client, write_headers, sent["id"])["delivery_status"] == "sent"


def test_registration_is_idempotent_a_token_moves_and_only_servers_register(client, write_headers, database, write_key):
    anna, boris = customer(client, write_headers, "anna@example.com"), customer(client, write_headers, "boris@example.com")
    first = register(client, write_headers, anna, ANDROID)
    assert "token" not in first  # the API never shows the token back
    assert register(client, write_headers, anna, ANDROID, expect=200)["id"] == first["id"]
    moved = register(client, write_headers, boris, ANDROID, platform="android", expect=200)  # the phone changed hands
    assert moved["id"] == first["id"] and moved["customer_id"] == boris
    assert devices(client, write_headers, anna) == {}
    with database.read() as session:
        assert session.scalar(select(func.count()).select_from(MobilePushDevice)) == 1

    body = {"customer_id": anna, "token": IPHONE, "platform": "ios"}
    for key in (write_key, make_key(database, Scope.read)):  # the app's public write key; a read key
        refused = client.post("/v1/channels/mobilepush/devices", json=body, headers={"Authorization": f"Bearer {key}"})
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "insufficient_scope"
    claimed = client.post("/v1/channels/mobilepush/devices", json={**body, "userId": "anna-1"}, headers=write_headers)
    assert claimed.status_code == 422
    bad = client.post("/v1/channels/mobilepush/devices", json={**body, "platform": "symbian"}, headers=write_headers)
    assert bad.status_code == 422

    assert client.delete(f"/v1/channels/mobilepush/devices/{first['id']}", headers=write_headers).status_code == 204
    assert devices(client, write_headers, boris)[first["id"]]["revoked_reason"] == "removed"
    missing = client.delete("/v1/channels/mobilepush/devices/999999", headers=write_headers)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "device_not_found"


def test_erasure_deletes_the_devices_the_export_lists(client, write_headers, admin_headers, database):
    anna = customer(client, write_headers, "anna@example.com")
    register(client, write_headers, anna, ANDROID)
    exported = client.get(f"/v1/customers/{anna}/export", headers=admin_headers).json()["sections"]["mobilepush_devices"]
    assert [d["token"] for d in exported] == [ANDROID]
    assert "mobilepush_devices" not in client.get(f"/v1/customers/{anna}", headers=admin_headers).json()["sections"]
    assert client.post(f"/v1/customers/{anna}/erase", json={"reason": "request"}, headers=admin_headers).status_code in (200, 201)
    with database.read() as session:
        assert session.scalar(select(func.count()).select_from(MobilePushDevice)) == 0
