"""VK through the inbox, with Callback API events in VK's documented format (tests/fixtures/vk)
and a loopback HTTP server standing in for api.vk.com (its base URL is a setting): the
confirmation, the shared secret, repeats, message kinds and edits, skipped events, the VK id in
the profile, replies by messages.send and VK's errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from seamline.app import create_app
from seamline.inbox import delivery
from tests.channels.fakes import FakeJsonApi
from tests.inbox.conftest import conversation, create_agent, process_inbound, reply

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "vk"
SECRET, CODE, TOKEN, GROUP = "vk-secret-1", "8f2a1c3d", "vk1.a.community-token", "229876543"


def payload(name: str, *, secret: str | None = SECRET, **changes) -> bytes:
    data = json.loads((FIXTURES / f"{name}.json").read_text())
    data.pop("secret", None)
    if secret is not None:
        data["secret"] = secret
    data.update(changes)
    return json.dumps(data, ensure_ascii=False).encode()


def vk_answer(body: dict, n: int) -> dict:
    """messages.send's answer, as the VK API gives it: the new message's id."""
    return {"response": 200 + n}


@pytest.fixture
def vk_api():
    api = FakeJsonApi(vk_answer)
    yield api
    api.close()


@pytest.fixture
def vk_settings(settings, vk_api):
    return settings.model_copy(update={
        "inbox_vk_secret": SecretStr(SECRET), "inbox_vk_confirmation_code": CODE, "inbox_vk_group_id": GROUP,
        "inbox_vk_access_token": SecretStr(TOKEN), "inbox_vk_api_base": vk_api.url})


@pytest.fixture
def client(vk_settings, database):
    with TestClient(create_app(vk_settings, database=database)) as test_client:
        yield test_client


def post(client, body: bytes, *, expect: int = 200) -> str:
    response = client.post("/v1/channels/vk/webhook", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == expect, response.text
    process_inbound(client)
    return response.text


def inbound(client, headers) -> list[dict]:
    return client.get("/v1/inbox/inbound", headers=headers).json()["items"]


def only_conversation(client, headers) -> dict:
    items = client.get("/v1/inbox/conversations", headers=headers).json()["items"]
    assert len(items) == 1, items
    return conversation(client, headers, items[0]["id"])


def test_the_confirmation_answers_the_code_for_the_secret_and_the_community(client, admin_headers):
    response = client.post("/v1/channels/vk/webhook", content=payload("confirmation"), headers={"Content-Type": "application/json"})
    assert response.status_code == 200 and response.text == CODE
    assert response.headers["content-type"].startswith("text/plain")
    assert json.loads(post(client, payload("confirmation", secret="guess"), expect=401))["error"]["code"] == "invalid_signature"
    assert json.loads(post(client, payload("confirmation", secret=None), expect=401))["error"]["code"] == "invalid_signature"
    other = json.loads(post(client, payload("confirmation", group_id=1), expect=403))
    assert other["error"]["code"] == "wrong_vk_group"
    assert inbound(client, admin_headers) == []


def test_events_without_the_secret_are_refused_with_nothing_stored(client, admin_headers):
    assert json.loads(post(client, payload("message_new_text", secret=None), expect=401))["error"]["code"] == "invalid_signature"
    assert json.loads(post(client, payload("message_new_text", secret="not-the-secret"), expect=401))["error"]["code"] == "invalid_signature"
    assert json.loads(post(client, b"{not json", expect=401))["error"]["code"] == "invalid_signature"
    assert json.loads(post(client, payload("message_new_text", group_id=1), expect=403))["error"]["code"] == "wrong_vk_group"
    assert inbound(client, admin_headers) == []
    assert client.get("/v1/inbox/conversations", headers=admin_headers).json()["items"] == []
    assert json.loads(post(client, json.dumps({"secret": SECRET, "group_id": int(GROUP)}).encode(), expect=422))["error"]["code"] == "invalid_payload"


def test_messages_edits_repeats_and_skipped_events(client, admin_headers):
    for name in ("message_new_text", "message_new_photo", "message_new_doc", "message_edit"):
        assert post(client, payload(name)) == "ok", name
    assert post(client, payload("message_new_text")) == "ok"  # VK resent it: ignored
    for name in ("message_reply", "message_deny", "message_typing_state"):
        assert post(client, payload(name)) == "ok", name  # acknowledged, nothing stored
    stored = inbound(client, admin_headers)
    assert len(stored) == 4 and all(row["status"] == "processed" for row in stored), stored
    view = only_conversation(client, admin_headers)
    messages = [m for m in view["messages"] if m["kind"] == "message"]
    assert [m["text"] for m in messages] == [
        "Здравствуйте! Где мой заказ 1042?", "Вот фото чека", "заказ-1042.pdf", "Здравствуйте! Где мой заказ 1043?"]
    photo = messages[1]["meta"]["vk"]["files"][0]
    assert photo["id"] == "photo123456789_457239017" and "w_6HJ6J8QqTdc" in photo["url"]  # the largest size
    assert messages[2]["meta"]["vk"]["files"][0] | {"url": None} == {
        "kind": "doc", "id": "doc123456789_670123456", "url": None, "filename": "заказ-1042.pdf", "ext": "pdf", "size": 48213}
    assert messages[3]["meta"]["vk"]["edited"] is True
    customer = client.get(f"/v1/customers/{view['customer_id']}", headers=admin_headers).json()
    assert {"type": "vk_id", "value": "123456789"} in [
        {"type": i["type"], "value": i["value"]} for i in customer["sections"]["identities"]]


def test_replies_go_out_by_messages_send_and_its_errors_are_kept(client, admin_headers, database, vk_settings, vk_api):
    agent = create_agent(client, admin_headers)
    post(client, payload("message_new_text"))
    cid = only_conversation(client, admin_headers)["id"]
    sent = reply(client, admin_headers, cid, "Заказ уже в пути.", agent_id=agent["id"])
    assert sent["delivery_status"] == "queued"
    assert delivery.send_due(database, settings=vk_settings) == 1
    path, form, _auth = vk_api.calls[-1]
    assert path == "/method/messages.send"
    assert form == {"peer_id": "123456789", "message": "Заказ уже в пути.", "random_id": str(sent["id"]),
                    "access_token": TOKEN, "v": "5.199"}
    stored = next(m for m in conversation(client, admin_headers, cid)["messages"] if m["id"] == sent["id"])
    assert stored["delivery_status"] == "sent"

    vk_api.errors = [(200, {"error": {"error_code": 901, "error_msg": "Can't send messages for users without permission"}})]
    denied = reply(client, admin_headers, cid, "Вы здесь?", agent_id=agent["id"])
    delivery.send_due(database, settings=vk_settings)
    failed = next(m for m in conversation(client, admin_headers, cid)["messages"] if m["id"] == denied["id"])
    assert failed["delivery_status"] == "failed" and "901" in failed["error"] and "permission" in failed["error"]

    vk_api.errors = [(200, {"error": {"error_code": 6, "error_msg": "Too many requests per second"}})]
    again = reply(client, admin_headers, cid, "Ещё", agent_id=agent["id"])
    delivery.send_due(database, settings=vk_settings)
    waiting = next(m for m in conversation(client, admin_headers, cid)["messages"] if m["id"] == again["id"])
    assert waiting["delivery_status"] == "queued" and "Too many requests" in waiting["error"]  # retried later
    assert TOKEN not in waiting["error"] and TOKEN not in failed["error"]
