"""The inbox's lists page like every list of the API: `{items, next_cursor}` with `limit` and
`cursor`; the conversations' old `before_id` / `next_before_id` still work (deprecated)."""

from __future__ import annotations

from seamline.inbox import service as inbox_service
from tests.inbox.conftest import create_agent


def get(client, headers, path: str, **params) -> dict:
    response = client.get(path, params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_conversations_page_with_a_cursor_and_the_old_before_id(client, admin_headers, visitor, monkeypatch):
    cids = []
    for text in ("Первый", "Второй", "Третий"):
        v = visitor()
        v.say(text)
        cids.append(v.open()["conversation"]["id"])
    newest_first = cids[::-1]

    first = get(client, admin_headers, "/v1/inbox/conversations", limit=2)
    assert [c["id"] for c in first["items"]] == newest_first[:2]
    assert first["next_cursor"] and first["next_before_id"] == newest_first[1]
    second = get(client, admin_headers, "/v1/inbox/conversations", limit=2, cursor=first["next_cursor"])
    assert [c["id"] for c in second["items"]] == newest_first[2:]
    assert second["next_cursor"] is None and second["next_before_id"] is None
    old_style = get(client, admin_headers, "/v1/inbox/conversations", limit=2, before_id=first["next_before_id"])
    assert old_style["items"] == second["items"]
    exact = get(client, admin_headers, "/v1/inbox/conversations", limit=3)
    assert len(exact["items"]) == 3 and exact["next_cursor"] is None  # a full last page says so

    bad = client.get("/v1/inbox/conversations", params={"cursor": "garbage!"}, headers=admin_headers)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_cursor"

    # A label filter never answers a short page while older conversations still match.
    labelled = client.post(f"/v1/inbox/conversations/{cids[0]}/labels", json={"add": ["vip"]}, headers=admin_headers)
    assert labelled.status_code == 200
    monkeypatch.setattr(inbox_service, "LABEL_SCAN_FACTOR", 1)  # windows of one conversation
    found = get(client, admin_headers, "/v1/inbox/conversations", label="vip", limit=1)
    assert [c["id"] for c in found["items"]] == [cids[0]] and found["next_cursor"] is None


def test_messages_page_backwards_in_writing_order(client, admin_headers, visitor):
    anna = visitor()
    said = [anna.say(f"Сообщение {n}")["id"] for n in range(5)]
    cid = anna.open()["conversation"]["id"]
    url = f"/v1/inbox/conversations/{cid}/messages"

    latest = get(client, admin_headers, url, limit=2)
    assert [m["id"] for m in latest["items"]] == said[3:] and latest["next_cursor"]
    middle = get(client, admin_headers, url, limit=2, cursor=latest["next_cursor"])
    assert [m["id"] for m in middle["items"]] == said[1:3] and middle["next_cursor"]
    earliest = get(client, admin_headers, url, limit=2, cursor=middle["next_cursor"])
    assert [m["id"] for m in earliest["items"]] == said[:1] and earliest["next_cursor"] is None
    assert [m["id"] for m in get(client, admin_headers, url, limit=2, before_id=said[3])["items"]] == said[1:3]  # deprecated
    newer = get(client, admin_headers, url, after_id=said[1], limit=2)
    assert [m["id"] for m in newer["items"]] == said[2:4] and newer["next_cursor"] is None


def test_search_surveys_and_dead_letters_page_too(client, admin_headers, visitor):
    create_agent(client, admin_headers)
    anna = visitor()
    hits = [anna.say(f"Где мой заказ {n}?")["id"] for n in range(3)]
    first = get(client, admin_headers, "/v1/inbox/search", q="заказ", limit=2)
    assert [m["id"] for m in first["items"]] == hits[:0:-1] and first["next_cursor"]
    rest = get(client, admin_headers, "/v1/inbox/search", q="заказ", limit=2, cursor=first["next_cursor"])
    assert [m["id"] for m in rest["items"]] == hits[:1] and rest["next_cursor"] is None
    received = get(client, admin_headers, "/v1/inbox/inbound", limit=2)  # the web chat's messages, stored raw first
    older = get(client, admin_headers, "/v1/inbox/inbound", limit=2, cursor=received["next_cursor"])
    assert [r["message_id"] for r in received["items"] + older["items"]] == hits[::-1] and older["next_cursor"] is None
    for path in ("/v1/inbox/surveys", "/v1/inbox/dead-letters"):
        assert get(client, admin_headers, path) == {"items": [], "next_cursor": None}, path
