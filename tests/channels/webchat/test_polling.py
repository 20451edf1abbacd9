"""A web chat client that polls (no WebSocket) sees what the socket would have told it: the
survey asked after resolution, with its question and scale, so it can answer it."""

from __future__ import annotations

from tests.inbox.conftest import create_agent, reply, visitor  # noqa: F401 - a fixture


def resolve(client, headers, cid: int, agent_id: int) -> None:
    response = client.post(f"/v1/inbox/conversations/{cid}/status", json={"status": "resolved", "agent_id": agent_id},
                           headers=headers)
    assert response.status_code == 200, response.text


def polled(client, visitor, **params) -> dict:
    response = client.get("/v1/webchat/messages", params=params, headers=visitor.headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_polling_client_gets_the_pending_survey_and_answers_it(client, admin_headers, visitor, settings):
    agent = create_agent(client, admin_headers)
    anna = visitor()
    anna.say("Где мой заказ?")
    cid = anna.open()["conversation"]["id"]
    reply(client, admin_headers, cid, "Уже в магазине", agent_id=agent["id"])
    assert polled(client, anna)["pendingSurvey"] is None and anna.open()["pendingSurvey"] is None

    resolve(client, admin_headers, cid, agent["id"])
    page = polled(client, anna)
    pending = page["pendingSurvey"]
    question = page["items"][-1]
    assert pending["kind"] == "csat" and pending["scale"] == {"min": 1, "max": 5} and pending["conversationId"] == cid
    assert pending["question"] == question["text"] and "5" in pending["question"]
    assert polled(client, anna, after=question["id"]) == {"items": [], "pendingSurvey": pending}  # also when nothing is new
    assert anna.open()["pendingSurvey"] == pending  # and in the session's state, on a page load
    assert visitor().state["pendingSurvey"] is None  # another browser: not theirs

    answered = client.post(f"/v1/webchat/surveys/{pending['id']}", json={"score": 4}, headers=anna.headers)
    assert answered.status_code == 200 and answered.json() == {"id": pending["id"], "score": 4}
    assert polled(client, anna)["pendingSurvey"] is None and anna.open()["pendingSurvey"] is None

    # NPS takes 0-10; a later survey replaces an unanswered one.
    settings.inbox_survey = "nps"
    anna.say("Ещё вопрос")
    resolve(client, admin_headers, cid, agent["id"])
    nps = polled(client, anna)["pendingSurvey"]
    assert nps["kind"] == "nps" and nps["scale"] == {"min": 0, "max": 10} and nps["id"] != pending["id"]
    assert client.post(f"/v1/webchat/surveys/{nps['id']}", json={"score": 0}, headers=anna.headers).status_code == 200
    assert polled(client, anna)["pendingSurvey"] is None
