"""The real-time sockets: the agent console's and the web chat widget's, on both databases (on
PostgreSQL the notices go through LISTEN/NOTIFY, as between server processes)."""

from __future__ import annotations

import pytest
from starlette.websockets import WebSocketDisconnect

from seamline.core.auth.schemas import Scope
from tests.conftest import make_key
from tests.inbox.conftest import create_agent, reply


def _next(ws, wanted: str, *, limit: int = 20) -> dict:
    for _ in range(limit):
        frame = ws.receive_json()
        if frame["type"] == wanted:
            return frame
    raise AssertionError(f"no {wanted} frame")


def test_agent_socket_gets_assignment_and_messages(client, admin_headers, visitor):
    agent = create_agent(client, admin_headers, key=True)
    with client.websocket_connect(f"/v1/inbox/ws?key={agent['api_key']}") as ws:
        ready = ws.receive_json()
        assert ready["type"] == "ready" and ready["agent_id"] == agent["id"]
        anna = visitor()
        anna.say("Где мой заказ?")
        message = _next(ws, "message")
        assert message["message"]["text"] == "Где мой заказ?" and message["message"]["direction"] == "in"
        assignment = _next(ws, "assignment")
        assert assignment["conversation"]["assignee_id"] == agent["id"]
        cid = assignment["conversation"]["id"]
        ws.send_json({"type": "watch", "conversation_id": cid})
        # The agent's own key acts as the agent: no agent_id needed.
        sent = client.post(f"/v1/inbox/conversations/{cid}/messages", json={"text": "Уже едет"},
                           headers={"Authorization": f"Bearer {agent['api_key']}"})
        assert sent.status_code == 201, sent.text
        assert _next(ws, "message")["message"]["text"] == "Уже едет"


def test_widget_socket_gets_reply_typing_and_queue(client, admin_headers, visitor):
    anna = visitor()
    anna.say("Есть кто?")
    cid = anna.open()["conversation"]["id"]
    with client.websocket_connect(f"/v1/webchat/ws?token={anna.state['token']}") as ws:
        queue = ws.receive_json()
        assert queue == {"type": "queue", "position": 1, "agentsOnline": False}
        agent = create_agent(client, admin_headers)
        client.post(f"/v1/inbox/conversations/{cid}/typing", json={"agent_id": agent["id"], "typing": True}, headers=admin_headers)
        typing = _next(ws, "typing")
        assert typing["typing"] is True and typing["author"] == {"name": "Мария"}
        reply(client, admin_headers, cid, "Да, здравствуйте!", agent_id=agent["id"])
        frame = _next(ws, "message")
        assert frame["message"]["text"] == "Да, здравствуйте!" and frame["message"]["direction"] == "out"
        assert frame["message"]["author"] == {"name": "Мария"}
        client.post(f"/v1/inbox/conversations/{cid}/notes", json={"text": "секрет", "agent_id": agent["id"]}, headers=admin_headers)
        client.post(f"/v1/inbox/conversations/{cid}/status", json={"status": "resolved", "agent_id": agent["id"]}, headers=admin_headers)
        frames = [_next(ws, "status")]
        survey = _next(ws, "survey")
        assert frames[0]["status"] == "resolved" and survey["kind"] == "csat"


def test_sockets_refuse_bad_credentials(client, database):
    with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect("/v1/webchat/ws?token=nope") as ws:
        ws.receive_json()
    assert closed.value.code == 4401
    reader = make_key(database, Scope.read)
    with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect(f"/v1/inbox/ws?key={reader}") as ws:
        ws.receive_json()
    assert closed.value.code == 4401


def test_a_huge_message_still_notifies_and_is_stored(client, admin_headers, visitor):
    agent = create_agent(client, admin_headers, key=True)
    with client.websocket_connect(f"/v1/inbox/ws?key={agent['api_key']}") as ws:
        ws.receive_json()
        anna = visitor()
        files = [client.post("/v1/webchat/attachments", files={"file": (f"{'ф' * 200}-{n}.txt", b"x", "text/plain")},
                             headers=anna.headers).json()["id"] for n in range(10)]
        text = "Очень длинное сообщение. " * 300  # 7,500 characters: the widget allows 8,000
        sent = anna.say(text, attachmentIds=files)
        frame = _next(ws, "message")
        assert frame["message"]["id"] == sent["id"]
        assert frame["message"].get("truncated") is True
    stored = client.get(f"/v1/inbox/conversations/{frame['conversation_id']}", headers=admin_headers).json()["messages"]
    assert stored[0]["text"] == text and len(stored[0]["attachments"]) == 10
