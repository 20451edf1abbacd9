"""The bot's admin surface, `/v1/assistant`, on both databases: every intent with its settings,
phrases and answers; a topic left to people (and the bot then hands it over with the skill);
the business's answers (the customer then reads them), refused when they do not parse; example
phrases (the model learns them at once), paged; trying a text; the figures of a period after
customers wrote in the web chat; only an admin key may do any of it."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from seamline.assistant import nlu
from seamline.assistant import service as bot
from seamline.assistant.intents import ANSWERS, INTENTS
from seamline.core.auth.schemas import Scope
from seamline.inbox.models import InboxConversation
from tests.assistant.chat import an_hour_later, webchat
from tests.conftest import make_key

GIBBERISH = ("кракозябра фыва", "олрпаволр ыва")
#: A question the shipped phrases do not cover: not understood until the business teaches it.
NEW_QUESTION = "можно оплатить подарочным сертификатом?"


@pytest.fixture
def settings(database, settings_for):
    return settings_for(database.url, assistant_enabled=True)


@pytest.fixture(autouse=True)
def fresh_model():
    """Each test's phrases start at id 1 again: no model trained for another test's phrases."""
    bot._models.clear()  # noqa: SLF001
    yield
    bot._models.clear()  # noqa: SLF001


def _ok(response, status: int = 200) -> dict:  # noqa: ANN001
    assert response.status_code == status, response.text
    return response.json() if response.content else {}


def _error(response, status: int, code: str) -> dict:  # noqa: ANN001
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert body["code"] == code, body
    return body


def test_every_intent_with_its_settings_phrases_and_answers(client, admin_headers):
    items = _ok(client.get("/v1/assistant/intents", headers=admin_headers))["items"]
    assert [i["name"] for i in items] == list(INTENTS)
    by_name = {i["name"]: i for i in items}
    order = by_name["order_status"]
    assert order["personal"] and order["configurable"] and not order["human_only"] and order["skill"] is None
    assert order["names"]["ru"] == "Статус заказа"
    shipped = nlu.shipped_phrases()["order_status"]
    assert order["phrases"] == {"shipped": {"ru": len(shipped["ru"]), "en": len(shipped["en"])}, "business": {"ru": 0, "en": 0}}
    assert [a["key"] for a in order["answers"]] == [k for k in ANSWERS if k.split(".")[0] == "order_status"]
    answer = order["answers"][0]
    assert "order.number" in answer["variables"] and answer["intent"] == "order_status"
    assert answer["languages"]["ru"] == {"default": ANSWERS["order_status"]["ru"], "custom": None, "template": ANSWERS["order_status"]["ru"],
                                         "updated_by": None, "updated_at": None, "unknown_variables": []}
    assert by_name["change_address"]["human_only"] and by_name["change_address"]["human_only_default"]
    assert not by_name["human"]["configurable"] and not by_name["out_of_scope"]["configurable"]
    assert by_name["out_of_scope"]["answers"] == []
    assert _ok(client.get("/v1/assistant/intents/returns", headers=admin_headers)) == by_name["returns"]
    _error(client.get("/v1/assistant/intents/weather", headers=admin_headers), 404, "intent_not_found")
    # every text, the conversation's steps too (asking who they are, handing over)
    answers = {a["key"]: a for a in _ok(client.get("/v1/assistant/answers", headers=admin_headers))["items"]}
    assert list(answers) == list(ANSWERS)
    assert answers["identify"]["intent"] is None and answers["handover"]["intent"] is None


def test_only_an_admin_key_may(client, database, read_headers, write_headers, admin_headers):
    marketing = {"Authorization": f"Bearer {make_key(database, Scope.marketing, name='marketer')}"}
    agent = {"Authorization": f"Bearer {make_key(database, Scope.agent, name='agent')}"}
    phrase = _ok(client.post("/v1/assistant/phrases", json={"intent": "points", "text": "сколько бонусиков"}, headers=admin_headers), 201)
    calls = [("get", "/v1/assistant/intents", None), ("get", "/v1/assistant/intents/points", None), ("get", "/v1/assistant/answers", None),
             ("put", "/v1/assistant/topics/returns", {"human_only": True}),
             ("put", "/v1/assistant/answers/greeting/ru", {"template": "Привет"}), ("delete", "/v1/assistant/answers/greeting/ru", None),
             ("get", "/v1/assistant/phrases", None), ("post", "/v1/assistant/phrases", {"intent": "points", "text": "бонусы?"}),
             ("delete", f"/v1/assistant/phrases/{phrase['id']}", None), ("post", "/v1/assistant/classify", {"text": "привет"}),
             ("get", "/v1/assistant/stats", None)]
    for headers in (read_headers, write_headers, marketing, agent):
        for method, path, body in calls:
            kwargs = {"json": body} if body is not None else {}
            _error(client.request(method, path, headers=headers, **kwargs), 403, "insufficient_scope")
    for method, path, body in calls:
        kwargs = {"json": body} if body is not None else {}
        assert client.request(method, path, **kwargs).status_code == 401, path
    # nothing changed
    assert _ok(client.get("/v1/assistant/phrases", headers=admin_headers))["items"] == [phrase]
    assert not _ok(client.get("/v1/assistant/intents/returns", headers=admin_headers))["human_only"]


def test_a_topic_left_to_people_is_handed_over_with_its_skill(client, admin_headers, write_key, database):
    body = {"human_only": True, "skill": "returns"}
    first = _ok(client.put("/v1/assistant/topics/returns", json=body, headers=admin_headers))
    assert first["human_only"] and first["skill"] == "returns" and not first["human_only_default"] and first["updated_at"]
    again = _ok(client.put("/v1/assistant/topics/returns", json=body, headers=admin_headers))  # a PUT again changes nothing
    assert {k: v for k, v in again.items() if k != "updated_at"} == {k: v for k, v in first.items() if k != "updated_at"}
    tried = _ok(client.post("/v1/assistant/classify", json={"text": "хочу вернуть товар, не подошёл"}, headers=admin_headers))
    assert (tried["intent"], tried["would"], tried["reason"]) == ("returns", "hand_over", "human_only")

    messages = webchat(client, write_key, "visitor-1", "хочу вернуть товар, не подошёл")
    assert messages[-1] == ANSWERS["handover"]["ru"]
    with database.read() as session:
        conversation = session.scalars(select(InboxConversation)).one()
        assert conversation.required_skill == "returns" and not conversation.handled_by_bot

    # back: the bot answers it again, with no skill required
    back = _ok(client.put("/v1/assistant/topics/returns", json={"human_only": False}, headers=admin_headers))
    assert not back["human_only"] and back["skill"] is None
    assert webchat(client, write_key, "visitor-2", "хочу вернуть товар, не подошёл")[-1].startswith("Вернуть или обменять товар")
    # a topic a customer cannot be answered on by default can be given to the bot
    given = _ok(client.put("/v1/assistant/topics/change_address", json={"human_only": False, "skill": None}, headers=admin_headers))
    assert not given["human_only"] and given["human_only_default"]


def test_what_a_topic_setting_refuses(client, admin_headers):
    _error(client.put("/v1/assistant/topics/weather", json={"human_only": True}, headers=admin_headers), 404, "intent_not_found")
    for fixed in ("human", "out_of_scope"):
        refused = _error(client.put(f"/v1/assistant/topics/{fixed}", json={"human_only": False}, headers=admin_headers), 422, "topic_fixed")
        assert refused["details"] == {"intent": fixed}
    for body in ({"human_only": "yes"}, {"human_only": 1}, {"human_only": True, "skill": "two words"}, {"human_only": True, "skill": "x" * 65},
                 {"skill": "returns"}, {"human_only": True, "extra": 1}):
        _error(client.put("/v1/assistant/topics/returns", json=body, headers=admin_headers), 422, "validation_error")
    _error(client.put("/v1/assistant/topics/Returns!", json={"human_only": True}, headers=admin_headers), 422, "validation_error")


def test_the_business_writes_the_bots_answers(client, admin_headers, write_key):
    hello = "Добрый день{% if name %}, {{ name }}{% endif %}! Это бот магазина «Ромашка»."
    saved = _ok(client.put("/v1/assistant/answers/greeting/ru", json={"template": hello}, headers=admin_headers))
    ru = saved["languages"]["ru"]
    assert (ru["custom"], ru["template"], ru["updated_by"], ru["unknown_variables"]) == (hello, hello, "api:admin", ["name"])
    assert saved["languages"]["en"]["custom"] is None  # one language at a time
    assert webchat(client, write_key, "visitor-1", "привет")[-1] == "Добрый день! Это бот магазина «Ромашка»."
    assert webchat(client, write_key, "visitor-2", "hello there")[-1] == ANSWERS["greeting"]["en"]

    # refused, and nothing changes: a template that does not parse (its line said), an unknown filter
    broken = _error(client.put("/v1/assistant/answers/greeting/ru", json={"template": "Привет!\n{% if %}"}, headers=admin_headers),
                    422, "invalid_template")
    assert broken["details"]["line"] == 2 and broken["details"]["key"] == "greeting" and broken["details"]["lang"] == "ru"
    _error(client.put("/v1/assistant/answers/greeting/ru", json={"template": "{{ name | shout }}"}, headers=admin_headers),
           422, "invalid_template")
    for body in ({"template": ""}, {"template": "   "}, {"template": "a\x00b"}, {"template": "x" * 4001}, {"text": "Привет"}):
        _error(client.put("/v1/assistant/answers/greeting/ru", json=body, headers=admin_headers), 422, "validation_error")
    _error(client.put("/v1/assistant/answers/greeting/de", json={"template": "Hallo"}, headers=admin_headers), 422, "validation_error")
    _error(client.put("/v1/assistant/answers/farewell/ru", json={"template": "Пока"}, headers=admin_headers), 404, "answer_not_found")
    assert _ok(client.get("/v1/assistant/intents/greeting", headers=admin_headers))["answers"][0]["languages"]["ru"]["custom"] == hello

    # the default's own text is the default; DELETE goes back to it, again and again
    same = _ok(client.put("/v1/assistant/answers/greeting/en", json={"template": ANSWERS["greeting"]["en"] + "\n"}, headers=admin_headers))
    assert same["languages"]["en"]["custom"] is None
    for _ in range(2):
        reset = _ok(client.delete("/v1/assistant/answers/greeting/ru", headers=admin_headers))
        assert reset["languages"]["ru"]["custom"] is None and reset["languages"]["ru"]["template"] == ANSWERS["greeting"]["ru"]
    _error(client.delete("/v1/assistant/answers/farewell/ru", headers=admin_headers), 404, "answer_not_found")
    # a step of the conversation is the business's to word too
    handover = _ok(client.put("/v1/assistant/answers/handover/ru", json={"template": "Зову коллегу."}, headers=admin_headers))
    assert handover["intent"] is None and handover["languages"]["ru"]["custom"] == "Зову коллегу."


def test_example_phrases_teach_the_bot_at_once(client, admin_headers):
    before = _ok(client.post("/v1/assistant/classify", json={"text": NEW_QUESTION}, headers=admin_headers))
    assert before["would"] == "not_understood"
    added = _ok(client.post("/v1/assistant/phrases", json={"intent": "human", "text": f"  {NEW_QUESTION}  "}, headers=admin_headers), 201)
    assert (added["intent"], added["lang"], added["text"], added["created_by"]) == ("human", "ru", NEW_QUESTION, "api:admin")
    after = _ok(client.post("/v1/assistant/classify", json={"text": NEW_QUESTION}, headers=admin_headers))
    assert (after["intent"], after["would"], after["reason"]) == ("human", "hand_over", "requested")
    counts = _ok(client.get("/v1/assistant/intents/human", headers=admin_headers))["phrases"]["business"]
    assert counts == {"ru": 1, "en": 0}

    # the same words again (case and spaces aside): the same phrase, not a second one; under another intent: refused
    again = client.post("/v1/assistant/phrases", json={"intent": "human", "text": NEW_QUESTION.upper()}, headers=admin_headers)
    assert _ok(again) == added
    other = _error(client.post("/v1/assistant/phrases", json={"intent": "points", "text": NEW_QUESTION}, headers=admin_headers),
                   409, "phrase_exists")
    assert other["details"] == {"intent": "human", "phrase_id": added["id"]}
    english = _ok(client.post("/v1/assistant/phrases", json={"intent": "points", "text": "how many bonus points do I have"},
                              headers=admin_headers), 201)
    assert english["lang"] == "en"
    told = _ok(client.post("/v1/assistant/phrases", json={"intent": "points", "text": "bonusy", "lang": "ru"}, headers=admin_headers), 201)
    assert told["lang"] == "ru"

    _error(client.post("/v1/assistant/phrases", json={"intent": "points", "text": "  "}, headers=admin_headers), 422, "empty_phrase")
    for body in ({"intent": "weather", "text": "дождь?"}, {"intent": "points", "text": "x" * 501}, {"intent": "points", "text": "a\x00b"},
                 {"intent": "points", "text": "две\nстроки"}, {"intent": "points", "text": "баллы", "lang": "de"}, {"intent": "points"}):
        _error(client.post("/v1/assistant/phrases", json=body, headers=admin_headers), 422, "validation_error")

    # deleted: the model forgets it
    assert client.delete(f"/v1/assistant/phrases/{added['id']}", headers=admin_headers).status_code == 204
    _error(client.delete(f"/v1/assistant/phrases/{added['id']}", headers=admin_headers), 404, "phrase_not_found")
    assert _ok(client.post("/v1/assistant/classify", json={"text": NEW_QUESTION}, headers=admin_headers))["would"] == "not_understood"


def test_phrases_are_listed_newest_first_a_page_at_a_time(client, admin_headers):
    made = [_ok(client.post("/v1/assistant/phrases", json={"intent": intent, "text": text}, headers=admin_headers), 201)
            for intent, text in (("points", "баллы где"), ("points", "points please"), ("thanks", "мерси"), ("points", "бонусики"))]
    first = _ok(client.get("/v1/assistant/phrases", params={"limit": 3}, headers=admin_headers))
    assert [p["id"] for p in first["items"]] == [m["id"] for m in reversed(made)][:3] and first["next_cursor"]
    rest = _ok(client.get("/v1/assistant/phrases", params={"limit": 3, "cursor": first["next_cursor"]}, headers=admin_headers))
    assert [p["id"] for p in rest["items"]] == [made[0]["id"]] and rest["next_cursor"] is None
    points = _ok(client.get("/v1/assistant/phrases", params={"intent": "points", "lang": "ru"}, headers=admin_headers))
    assert [p["text"] for p in points["items"]] == ["бонусики", "баллы где"]
    _error(client.get("/v1/assistant/phrases", params={"cursor": "nonsense"}, headers=admin_headers), 422, "invalid_cursor")
    for params in ({"intent": "weather"}, {"lang": "de"}, {"limit": 0}, {"limit": 201}):
        _error(client.get("/v1/assistant/phrases", params=params, headers=admin_headers), 422, "validation_error")


def test_trying_a_text(client, admin_headers):
    def tried(text: str) -> dict:
        return _ok(client.post("/v1/assistant/classify", json={"text": text}, headers=admin_headers))

    order = tried("где мой заказ?")
    assert (order["intent"], order["lang"], order["would"], order["reason"]) == ("order_status", "ru", "identify", None)
    assert order["confidence"] >= order["thresholds"]["confident"] and len(order["alternatives"]) == 2
    assert (tried("what are your store opening hours?")["lang"], tried("what are your store opening hours?")["would"]) == ("en", "answer")
    assert (tried("позовите оператора")["would"], tried("позовите оператора")["reason"]) == ("hand_over", "requested")
    assert tried(GIBBERISH[0])["would"] == "not_understood" and not tried(GIBBERISH[0])["asks_llm"]  # no LLM set up
    assert tried("хочу поменять адрес доставки")["reason"] == "human_only"  # human-only by default
    _error(client.post("/v1/assistant/classify", json={"text": "   "}, headers=admin_headers), 422, "empty_text")
    for body in ({"text": ""}, {"text": "x" * 1001}, {"text": "a\x00"}, {}):
        _error(client.post("/v1/assistant/classify", json=body, headers=admin_headers), 422, "validation_error")


def test_the_figures_of_a_period(client, admin_headers, write_key):
    webchat(client, write_key, "greets", "привет")
    webchat(client, write_key, "thanks", "спасибо большое")
    webchat(client, write_key, "asks-for-a-person", "позовите оператора")
    webchat(client, write_key, "not-understood", *GIBBERISH)
    assert an_hour_later(client) == 2
    figures = _ok(client.get("/v1/assistant/stats", headers=admin_headers))
    assert (figures["conversations"], figures["resolved"], figures["handed_over"], figures["open"]) == (4, 2, 2, 0)
    assert figures["containment"] == 0.5 and figures["turns"] == 5
    assert figures["handover_reasons"] == {"misunderstood": 1, "requested": 1}
    assert figures["intents"]["greeting"] == 1 and figures["intents"]["human"] == 1
    assert 0 < figures["p50_ms"] <= figures["p99_ms"]
    assert [item["text"] for item in figures["not_understood"]] == list(reversed(GIBBERISH))
    assert figures["until"] > figures["since"]

    period = {"since": "2020-01-01T00:00:00", "until": "2020-02-01T00:00:00Z"}
    empty = _ok(client.get("/v1/assistant/stats", params=period, headers=admin_headers))
    assert (empty["conversations"], empty["containment"], empty["p50_ms"], empty["not_understood"]) == (0, None, None, [])
    assert empty["since"] == "2020-01-01T00:00:00Z"  # no zone: UTC
    for params in ({"since": "2020-02-01T00:00:00Z", "until": "2020-01-01T00:00:00Z"},
                   {"since": "2020-01-01T00:00:00Z", "until": "2021-06-01T00:00:00Z"}):
        _error(client.get("/v1/assistant/stats", params=params, headers=admin_headers), 422, "invalid_period")
    for params in ({"since": "1700000000"}, {"until": "yesterday"}):
        _error(client.get("/v1/assistant/stats", params=params, headers=admin_headers), 422, "validation_error")


def test_trying_a_text_says_when_the_bot_would_ask_the_llm(database, settings_for, admin_headers):
    from fastapi.testclient import TestClient

    from seamline.app import create_app

    settings = settings_for(database.url, assistant_enabled=True, assistant_llm_url="http://127.0.0.1:9/v1")
    with TestClient(create_app(settings, database=database)) as client:
        unsure = _ok(client.post("/v1/assistant/classify", json={"text": "points delivery return"}, headers=admin_headers))
        sure = _ok(client.post("/v1/assistant/classify", json={"text": "где мой заказ?"}, headers=admin_headers))
        out_of_scope = _ok(client.post("/v1/assistant/classify", json={"text": GIBBERISH[0]}, headers=admin_headers))
    assert unsure["asks_llm"] and unsure["confidence"] < settings.assistant_confidence and unsure["would"] != "answer"
    assert not sure["asks_llm"] and not out_of_scope["asks_llm"]  # a confident "out of scope" is not asked about
