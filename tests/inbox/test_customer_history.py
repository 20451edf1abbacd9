"""One history per person: a chat before login joins the profile at login, merged customers'
conversations come together, the agent's single window, export and erasure."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import func, select

from seamline.app import create_app
from seamline.customers.signing import user_hash
from seamline.inbox.models import InboxChatSession
from tests.inbox.conftest import conversation, create_agent, reply


def _customer(client, headers, *identifiers, **traits) -> int:
    response = client.post("/v1/customers", json={"identifiers": [{"type": t, "value": v} for t, v in identifiers], "traits": traits},
                           headers=headers)
    assert response.status_code == 200, response.text
    return response.json()["customer"]["id"]


SECRET = "site-backend-secret"


@pytest.fixture
def client(settings, database):
    verified = settings.model_copy(update={"inbox_webchat_identity_secret": SecretStr(SECRET)})
    with TestClient(create_app(verified, database=database)) as test_client:
        yield test_client


def test_chat_before_login_joins_the_profile_at_login(client, admin_headers, write_headers, visitor):
    known = _customer(client, write_headers, ("user_id", "user-42"), ("email", "anna@example.com"), first_name="Анна")
    anna = visitor()
    anna.say("Вопрос до входа")
    cid = anna.open()["conversation"]["id"]
    assert conversation(client, admin_headers, cid)["customer_id"] != known

    # The tracker's identify(): the widget opens its session again with the user id, vouched for
    # by the site's backend.
    anna.user_id, anna.user_hash = "user-42", user_hash(SECRET, "user-42")
    state = anna.open()
    assert state["conversation"]["id"] == cid and [m["text"] for m in state["messages"]] == ["Вопрос до входа"]
    assert state["email"] == "anna@example.com"
    assert conversation(client, admin_headers, cid)["customer_id"] == known
    mine = client.get("/v1/inbox/conversations", params={"customer_id": known}, headers=admin_headers).json()["items"]
    assert [c["id"] for c in mine] == [cid]
    anna.say("Вопрос после входа")
    assert [m["text"] for m in anna.open()["messages"]] == ["Вопрос до входа", "Вопрос после входа"]


def test_a_user_id_without_the_sites_signature_opens_no_history(client, admin_headers, visitor):
    victim = visitor(user_id="user-42", user_hash=user_hash(SECRET, "user-42"))
    victim.say("Моя карта заканчивается на 4242")
    attacker = visitor(user_id="user-42")  # a public write key and a guessed user id, no hash
    assert attacker.state["messages"] == [] and attacker.state["conversation"] is None and attacker.state["email"] is None
    forged = client.post("/v1/webchat/sessions", json={"writeKey": attacker.write_key, "anonymousId": "x", "userId": "user-42",
                                                        "userHash": "00" * 32})
    assert forged.status_code == 401 and forged.json()["error"]["code"] == "invalid_user_hash"
    assert client.get("/v1/webchat/messages", headers=attacker.headers).json()["items"] == []
    # Writing starts a conversation of its own, of a person of its own: with an identity secret set,
    # an unsigned user id is not bound to the browser at all (docs/customers.md, "Trust").
    attacker.say("Привет")
    assert [m["text"] for m in attacker.open()["messages"]] == ["Привет"]
    assert [m["text"] for m in victim.open()["messages"]] == ["Моя карта заканчивается на 4242"]
    customer = conversation(client, admin_headers, attacker.state["conversation"]["id"])["customer_id"]
    assert customer != conversation(client, admin_headers, victim.state["conversation"]["id"])["customer_id"]
    assert len(client.get("/v1/inbox/conversations", params={"customer_id": customer}, headers=admin_headers).json()["items"]) == 1


def test_a_page_load_resumes_the_session(client, visitor, database):
    anna = visitor()
    first = anna.state["token"]
    again = client.post("/v1/webchat/sessions", json={"writeKey": anna.write_key, "anonymousId": anna.anonymous_id, "token": first})
    assert again.status_code == 201 and again.json()["token"] == first
    other = client.post("/v1/webchat/sessions", json={"writeKey": anna.write_key, "anonymousId": "someone-else", "token": first})
    assert other.json()["token"] != first  # a token is no key to another visitor
    with database.read() as session:
        assert session.scalar(select(func.count()).select_from(InboxChatSession)) == 2


def test_single_window_shows_the_whole_person(client, admin_headers, write_headers, visitor):
    agent = create_agent(client, admin_headers)
    anna = visitor()
    _customer(client, write_headers, ("anonymous_id", anna.anonymous_id), ("phone", "+79161234567"), first_name="Анна")
    anna.say("Первое обращение")
    first = anna.open()["conversation"]["id"]
    client.post(f"/v1/inbox/conversations/{first}/status", json={"status": "resolved", "agent_id": agent["id"]}, headers=admin_headers)
    from seamline.inbox.models import InboxConversation  # noqa: PLC0415 - age the first conversation past the reopen window

    with client.app.state.database.write() as session:
        session.get(InboxConversation, first).resolved_at = session.get(InboxConversation, first).resolved_at.replace(year=2020)
    anna.say("Второе обращение")
    second = anna.open()["conversation"]["id"]
    assert second != first
    reply(client, admin_headers, second, "Здравствуйте, Анна", agent_id=agent["id"])

    window = client.get(f"/v1/inbox/conversations/{second}/window", headers=admin_headers)
    assert window.status_code == 200, window.text
    body = window.json()
    assert body["conversation"]["id"] == second and len(body["conversation"]["messages"]) >= 2
    customer = body["customer"]["sections"]
    assert customer["profile"]["traits"]["first_name"]["value"] == "Анна"
    assert {"type": "phone", "value": "+79161234567"} in [{"type": i["type"], "value": i["value"]} for i in customer["identities"]]
    assert [c["id"] for c in body["other_conversations"]] == [first]
    assert any(item["type"] == "inbox.message_received" for item in customer["timeline"])
    assert "webchat" in body["reachable_channels"]
    timeline = client.get(f"/v1/customers/{body['conversation']['customer_id']}/timeline", params={"type": "inbox"},
                          headers=admin_headers).json()["items"]
    assert [t["title"] for t in timeline][:2] == ["Здравствуйте, Анна", "Второе обращение"]


def test_export_and_erasure(client, admin_headers, write_headers, visitor):
    agent = create_agent(client, admin_headers)
    anna = visitor()
    anna.say("Мой адрес: Москва, Тверская 1")
    cid = anna.open()["conversation"]["id"]
    client.post(f"/v1/inbox/conversations/{cid}/notes", json={"text": "внутреннее", "agent_id": agent["id"]}, headers=admin_headers)
    customer_id = conversation(client, admin_headers, cid)["customer_id"]
    export = client.get(f"/v1/customers/{customer_id}/export", headers=admin_headers)
    assert export.status_code == 200, export.text
    exported = export.json()["sections"]["conversations"]
    texts = [m["text"] for m in exported[0]["messages"]]
    assert "Мой адрес: Москва, Тверская 1" in texts and "внутреннее" not in texts
    erased = client.post(f"/v1/customers/{customer_id}/erase", json={"reason": "152-FZ request"}, headers=admin_headers)
    assert erased.status_code in (200, 202), erased.text
    view = conversation(client, admin_headers, cid)
    assert all(m["text"] == "" for m in view["messages"])
    assert client.get("/v1/inbox/search", params={"q": "Тверская"}, headers=admin_headers).json()["items"] == []
