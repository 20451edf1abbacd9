"""Conversations through the API: one history per customer, statuses, notes, merge and split,
labels, search, transfer, canned responses, surveys, and bad input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient

from seamline.app import create_app
from seamline.loyalty.models import LoyaltyAccount
from tests.inbox.conftest import (
    Visitor,
    conversation,
    conversation_of,
    create_agent,
    reply,
    set_status,
)


def test_chat_message_opens_a_conversation_routed_to_an_agent(client, admin_headers, visitor):
    agent = create_agent(client, admin_headers)
    anna = visitor()
    sent = anna.say("Здравствуйте! Где мой заказ?")
    assert sent["direction"] == "in" and sent["text"] == "Здравствуйте! Где мой заказ?"
    cid = anna.open()["conversation"]["id"]
    view = conversation(client, admin_headers, cid)
    assert view["assignee_id"] == agent["id"] and view["status"] == "open" and view["channel"] == "webchat"
    assert view["awaiting_reply_since"] is not None and view["queue_position"] is None

    answer = reply(client, admin_headers, cid, "Добрый день! Заказ уже в пути.", agent_id=agent["id"])
    assert answer["direction"] == "out" and answer["delivery_status"] == "sent"
    history = anna.open()["messages"]
    assert [m["direction"] for m in history] == ["in", "out"]
    assert history[1]["author"] == {"name": "Мария"}
    view = conversation(client, admin_headers, cid)
    assert view["awaiting_reply_since"] is None and view["first_response_at"] is not None


def test_a_retried_message_is_stored_once(client, admin_headers, visitor):
    anna = visitor()
    first = anna.say("Привет", client_message_id="m-1")
    again = anna.say("Привет", client_message_id="m-1")
    assert first["id"] == again["id"]
    assert len(anna.open()["messages"]) == 1


def test_queue_position_and_assignment_when_an_agent_comes_online(client, admin_headers, visitor):
    agent = create_agent(client, admin_headers, online=False)
    first, second = visitor(), visitor()
    first.say("Первый вопрос")
    second.say("Второй вопрос")
    assert first.open()["queuePosition"] == 1 and second.open()["queuePosition"] == 2
    assert first.state["agentsOnline"] is False
    queue = client.get("/v1/inbox/queue", headers=admin_headers).json()["items"]
    assert [q["position"] for q in queue] == [1, 2]

    set_status(client, admin_headers, agent["id"], "online")
    assert first.open()["queuePosition"] is None and second.open()["queuePosition"] is None
    assigned = client.get("/v1/inbox/conversations", params={"assignee_id": agent["id"]}, headers=admin_headers).json()["items"]
    assert len(assigned) == 2


def test_capacity_least_loaded_and_offline_requeue(client, admin_headers, visitor):
    maria = create_agent(client, admin_headers, "Мария", capacity=2)
    ivan = create_agent(client, admin_headers, "Иван", capacity=1)
    for n in range(4):
        visitor().say(f"Вопрос {n}")
    agents = {a["id"]: a for a in client.get("/v1/inbox/agents", headers=admin_headers).json()["items"]}
    assert agents[maria["id"]]["load"] == 2 and agents[ivan["id"]]["load"] == 1
    dashboard = client.get("/v1/inbox/dashboard", headers=admin_headers).json()
    assert dashboard["waiting_total"] == 1 and dashboard["queues"][0]["waiting"] == 1

    set_status(client, admin_headers, maria["id"], "offline")  # her two go back to the queue, ahead of the newer one
    agents = {a["id"]: a for a in client.get("/v1/inbox/agents", headers=admin_headers).json()["items"]}
    assert agents[maria["id"]]["load"] == 0 and agents[ivan["id"]]["load"] == 1
    assert client.get("/v1/inbox/dashboard", headers=admin_headers).json()["waiting_total"] == 3


def test_skill_routing_from_topic_rules(client, admin_headers, visitor):
    rule = client.post("/v1/inbox/routing-rules", json={"name": "Returns", "pattern": r"возвр|вернуть|return", "skill": "returns"},
                       headers=admin_headers)
    assert rule.status_code == 201
    bad = client.post("/v1/inbox/routing-rules", json={"name": "x", "pattern": "(", "skill": "x"}, headers=admin_headers)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_pattern"
    general = create_agent(client, admin_headers, "Общий")
    returns = create_agent(client, admin_headers, "Возвраты", skills=["returns"])
    visitor().say("Можно вернуть один тюбик?")
    visitor().say("Когда откроется магазин?")
    mine = client.get("/v1/inbox/conversations", params={"assignee_id": returns["id"]}, headers=admin_headers).json()["items"]
    theirs = client.get("/v1/inbox/conversations", params={"assignee_id": general["id"]}, headers=admin_headers).json()["items"]
    assert len(mine) == 1 and len(theirs) == 1
    assert conversation(client, admin_headers, mine[0]["id"])["required_skill"] == "returns"


def test_vip_customers_go_first(client, admin_headers, visitor, write_headers):
    plain, vip = visitor(), visitor()
    plain.say("Обычный вопрос")
    response = client.post("/v1/customers", json={"identifiers": [{"type": "anonymous_id", "value": vip.anonymous_id}],
                                                    "traits": {"vip": True}}, headers=write_headers)
    assert response.status_code == 200
    vip.say("Срочный вопрос")
    assert vip.open()["queuePosition"] == 1 and plain.open()["queuePosition"] == 2


def test_statuses_snooze_and_reopen_by_customer(client, admin_headers, visitor):
    agent = create_agent(client, admin_headers)
    anna = visitor()
    anna.say("Вопрос")
    cid = anna.state["conversation"]["id"] if anna.state["conversation"] else anna.open()["conversation"]["id"]
    url = f"/v1/inbox/conversations/{cid}/status"
    assert client.post(url, json={"status": "pending", "agent_id": agent["id"]}, headers=admin_headers).json()["status"] == "pending"
    load = lambda: client.get("/v1/inbox/agents", headers=admin_headers).json()["items"][0]["load"]  # noqa: E731
    assert load() == 0
    past = client.post(url, json={"status": "snoozed", "snoozed_until": "2020-01-01T00:00:00Z"}, headers=admin_headers)
    assert past.status_code == 422 and past.json()["error"]["code"] == "invalid_snooze"
    until = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert client.post(url, json={"status": "snoozed", "snoozed_until": until}, headers=admin_headers).json()["status"] == "snoozed"
    assert client.post(url, json={"status": "resolved", "agent_id": agent["id"]}, headers=admin_headers).json()["status"] == "resolved"
    anna.say("Ещё вопрос")
    view = conversation(client, admin_headers, cid)
    assert view["status"] == "open" and view["assignee_id"] == agent["id"] and load() == 1
    events = [m["text"] for m in view["messages"] if m["kind"] == "event"]
    assert "Reopened by the customer" in events


def test_notes_are_internal_and_labels_and_search(client, admin_headers, visitor):
    agent = create_agent(client, admin_headers)
    anna = visitor()
    anna.say("Крем не подошёл, хочу вернуть")
    cid = anna.open()["conversation"]["id"]
    note = client.post(f"/v1/inbox/conversations/{cid}/notes", json={"text": "Проверить партию", "agent_id": agent["id"]},
                       headers=admin_headers)
    assert note.status_code == 201 and note.json()["direction"] == "internal"
    assert all(m["text"] != "Проверить партию" for m in anna.open()["messages"])
    labels = client.post(f"/v1/inbox/conversations/{cid}/labels", json={"add": ["возврат", "vip"]}, headers=admin_headers)
    assert labels.json()["labels"] == ["vip", "возврат"]
    found = client.get("/v1/inbox/conversations", params={"label": "возврат"}, headers=admin_headers).json()["items"]
    assert [c["id"] for c in found] == [cid]
    hits = client.get("/v1/inbox/search", params={"q": "КРЕМ"}, headers=admin_headers).json()["items"]
    assert [h["conversation_id"] for h in hits] == [cid]


def test_merge_and_split(client, admin_headers, visitor):
    agent = create_agent(client, admin_headers)
    anna = visitor()
    first = anna.say("Первый вопрос")
    cid = conversation_of(client, admin_headers, first["id"])
    client.post(f"/v1/inbox/conversations/{cid}/status", json={"status": "resolved", "agent_id": agent["id"]}, headers=admin_headers)
    second = anna.say("Второй, новый вопрос")
    second_cid = conversation_of(client, admin_headers, second["id"])
    assert second_cid == cid  # within the reopen window: the same conversation
    split = client.post("/v1/inbox/split", json={"message_id": second["id"], "agent_id": agent["id"]}, headers=admin_headers)
    assert split.status_code == 201, split.text
    new_id = split.json()["id"]
    assert new_id != cid and [m["id"] for m in split.json()["messages"] if m["kind"] == "message"] == [second["id"]]
    merged = client.post(f"/v1/inbox/conversations/{cid}/merge", json={"source_id": new_id}, headers=admin_headers)
    assert merged.status_code == 200, merged.text
    assert {first["id"], second["id"]} <= {m["id"] for m in merged.json()["messages"]}
    assert conversation(client, admin_headers, new_id)["id"] == cid  # the merged id leads to the survivor
    self_merge = client.post(f"/v1/inbox/conversations/{cid}/merge", json={"source_id": cid}, headers=admin_headers)
    assert self_merge.status_code == 422


def test_transfer_to_agent_and_team_with_note(client, admin_headers, visitor):
    team = client.post("/v1/inbox/teams", json={"name": "Возвраты"}, headers=admin_headers).json()
    maria = create_agent(client, admin_headers, "Мария")
    ivan = create_agent(client, admin_headers, "Иван", online=False, team_ids=[team["id"]])
    visitor().say("Вопрос о возврате")
    cid = client.get("/v1/inbox/conversations", headers=admin_headers).json()["items"][0]["id"]
    moved = client.post(f"/v1/inbox/conversations/{cid}/transfer", json={"to_team_id": team["id"], "note": "Это возврат",
                                                                        "agent_id": maria["id"]}, headers=admin_headers)
    assert moved.status_code == 200 and moved.json()["assignee_id"] is None and moved.json()["team_id"] == team["id"]
    set_status(client, admin_headers, ivan["id"], "online")
    view = conversation(client, admin_headers, cid)
    assert view["assignee_id"] == ivan["id"]
    assert any("Transferred to team Возвраты: Это возврат" == m["text"] for m in view["messages"])
    back = client.post(f"/v1/inbox/conversations/{cid}/transfer", json={"to_agent_id": maria["id"]}, headers=admin_headers)
    assert back.json()["assignee_id"] == maria["id"]
    both = client.post(f"/v1/inbox/conversations/{cid}/transfer", json={"to_agent_id": maria["id"], "to_team_id": team["id"]},
                       headers=admin_headers)
    assert both.status_code == 422


def test_canned_response_with_variables(client, admin_headers, visitor, write_headers):
    agent = create_agent(client, admin_headers, "Мария")
    anna = visitor()
    client.post("/v1/customers", json={"identifiers": [{"type": "anonymous_id", "value": anna.anonymous_id}],
                                       "traits": {"first_name": "Анна"}}, headers=write_headers)
    anna.say("Привет")
    cid = anna.open()["conversation"]["id"]
    made = client.post("/v1/inbox/canned-responses", json={
        "shortcut": "hello", "title": "Приветствие", "body": "{{customer.first_name}}, здравствуйте! Меня зовут {{ agent.name }}.{{order.number}}"},
        headers=admin_headers).json()
    found = client.get("/v1/inbox/canned-responses", params={"q": "привет"}, headers=admin_headers).json()["items"]
    assert [f["id"] for f in found] == [made["id"]]
    sent = reply(client, admin_headers, cid, "", agent_id=agent["id"], canned_response_id=made["id"])
    assert sent["text"] == "Анна, здравствуйте! Меня зовут Мария."


def test_csat_after_resolution_answered_on_the_same_channel(client, admin_headers, visitor):
    agent = create_agent(client, admin_headers)
    anna = visitor()
    anna.say("Вопрос")
    cid = anna.open()["conversation"]["id"]
    reply(client, admin_headers, cid, "Ответ", agent_id=agent["id"])
    client.post(f"/v1/inbox/conversations/{cid}/status", json={"status": "resolved", "agent_id": agent["id"]}, headers=admin_headers)
    surveys = client.get("/v1/inbox/surveys", params={"conversation_id": cid}, headers=admin_headers).json()["items"]
    assert len(surveys) == 1 and surveys[0]["kind"] == "csat" and surveys[0]["channel"] == "webchat"
    question = anna.open()["messages"][-1]
    assert "1" in question["text"] and "5" in question["text"]
    out_of_range = client.post(f"/v1/webchat/surveys/{surveys[0]['id']}", json={"score": 9}, headers=anna.headers)
    assert out_of_range.status_code == 422
    answered = client.post(f"/v1/webchat/surveys/{surveys[0]['id']}", json={"score": 5, "comment": "Спасибо"}, headers=anna.headers)
    assert answered.status_code == 200
    survey = client.get("/v1/inbox/surveys", params={"conversation_id": cid}, headers=admin_headers).json()["items"][0]
    assert survey["score"] == 5 and survey["agent_id"] == agent["id"] and survey["comment"] == "Спасибо"
    assert conversation(client, admin_headers, cid)["status"] == "resolved"


def test_bad_input(client, admin_headers, visitor, settings):
    agent = create_agent(client, admin_headers)
    unknown = client.get("/v1/inbox/conversations/999999", headers=admin_headers)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "conversation_not_found"
    assert reply(client, admin_headers, 999999, "x", agent_id=agent["id"], expect=404)["error"]["code"] == "conversation_not_found"
    anna = visitor()
    anna.say("Привет")
    cid = anna.open()["conversation"]["id"]
    assert reply(client, admin_headers, cid, "x", agent_id=agent["id"], channel="pigeon", expect=422)["error"]["code"] == "unknown_channel"
    no_agent = client.post(f"/v1/inbox/conversations/{cid}/messages", json={"text": "x"}, headers=admin_headers)
    assert no_agent.status_code == 422 and no_agent.json()["error"]["code"] == "agent_required"
    bad_token = client.post("/v1/webchat/messages", json={"text": "x"}, headers={"Authorization": "Bearer nope"})
    assert bad_token.status_code == 401
    bad_key = client.post("/v1/webchat/sessions", json={"writeKey": "sl_nope_nope", "anonymousId": "a-1"})
    assert bad_key.status_code in (401, 403)
    big = b"x" * (settings.inbox_attachment_max_bytes + 1)
    too_big = client.post("/v1/webchat/attachments", files={"file": ("big.bin", big, "application/octet-stream")}, headers=anna.headers)
    assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "attachment_too_large"
    assert len(anna.open()["messages"]) == 1


def test_chat_file_upload_and_download(client, admin_headers, visitor):
    create_agent(client, admin_headers)
    anna, other = visitor(), visitor()
    uploaded = client.post("/v1/webchat/attachments", files={"file": ("чек.png", b"\x89PNG\r\n\x1a\n" + b"0" * 100, "image/png")},
                           headers=anna.headers)
    assert uploaded.status_code == 201, uploaded.text
    file = uploaded.json()
    sent = anna.say("Вот чек", attachmentIds=[file["id"]])
    assert sent["attachments"][0]["filename"] == "чек.png"
    assert other.say("чужой файл", attachmentIds=[file["id"]], expect=422)["error"]["code"] == "message_failed"
    mine = client.get(f"/v1/webchat/attachments/{file['id']}", headers=anna.headers)
    assert mine.status_code == 200 and mine.content.startswith(b"\x89PNG")
    assert client.get(f"/v1/webchat/attachments/{file['id']}", headers=other.headers).status_code == 404
    agent_view = client.get(f"/v1/inbox/attachments/{file['id']}", headers=admin_headers)
    assert agent_view.status_code == 200 and agent_view.headers["content-type"] == "image/png"


def test_loyalty_tier_raises_queue_priority(database, settings_for, write_key, write_headers):
    """The tier signal is wired in app.py from loyalty (the inbox imports neither side)."""
    settings = settings_for(database.url, inbox_tier_priority={"gold": 30})
    with TestClient(create_app(settings, database=database)) as client:
        plain, gold = Visitor(client, write_key), Visitor(client, write_key)
        gold_id = client.post("/v1/customers", json={"identifiers": [{"type": "anonymous_id", "value": gold.anonymous_id}]},
                              headers=write_headers).json()["customer"]["id"]
        with database.write() as session:
            session.add(LoyaltyAccount(profile_id=gold_id, tier="gold"))
        plain.say("Обычный вопрос")
        gold.say("Вопрос от золотого клиента")
        assert gold.open()["queuePosition"] == 1 and plain.open()["queuePosition"] == 2


def test_freed_capacity_takes_the_oldest_waiting_not_a_newcomer(client, admin_headers, visitor):
    agent = create_agent(client, admin_headers, capacity=1)
    a, b = visitor(), visitor()
    a.say("Первый")
    b.say("Второй")
    first, second = a.open()["conversation"]["id"], b.open()["conversation"]["id"]
    assert conversation(client, admin_headers, first)["assignee_id"] == agent["id"]
    assert conversation(client, admin_headers, second)["assignee_id"] is None
    client.post(f"/v1/inbox/conversations/{first}/status", json={"status": "resolved", "agent_id": agent["id"]}, headers=admin_headers)
    assert conversation(client, admin_headers, second)["assignee_id"] == agent["id"]  # at once, in queue order
    c = visitor()
    c.say("Третий")
    assert c.open()["queuePosition"] == 1
    client.post(f"/v1/inbox/conversations/{second}/status", json={"status": "pending", "agent_id": agent["id"]}, headers=admin_headers)
    assert c.open()["queuePosition"] is None
