"""The console's Chat bot area (web/console/pages/assistant.py) on both databases: who may open
it; the figures of a period in the reader's language; a message the bot did not understand
taught to it from the list; a topic's settings, its answers in both languages (a template that
does not parse is said, with what was typed kept, and nothing is written) and its phrases; the
conversation's own texts; trying a text; every write needs the console's CSRF token."""

from __future__ import annotations

import inspect
import re

import pytest
from sqlalchemy import select

from seamline.assistant import service as bot
from seamline.assistant.intents import ANSWERS, INTENTS
from seamline.assistant.models import AssistantAnswer, AssistantPhrase, AssistantTopic
from seamline.web.console import labels
from seamline.web.console.pages import assistant as page
from tests.assistant.chat import an_hour_later, webchat

HX = {"HX-Request": "true"}
GIBBERISH = ("кракозябра фыва", "олрпаволр ыва")
NEW_QUESTION = "можно оплатить подарочным сертификатом?"


@pytest.fixture
def settings(database, settings_for):
    return settings_for(database.url, assistant_enabled=True)


@pytest.fixture(autouse=True)
def fresh_model():
    bot._models.clear()  # noqa: SLF001 - each test's phrases start at id 1 again
    yield
    bot._models.clear()  # noqa: SLF001


@pytest.fixture
def week(client, write_key) -> None:
    """Customers wrote to the bot: a greeting, a request for a person, one it did not understand
    (twice: handed over), a question it does not know (left unanswered); an hour later the bot's own are resolved."""
    webchat(client, write_key, "greets", "привет")
    webchat(client, write_key, "asks-for-a-person", "позовите оператора")
    webchat(client, write_key, "not-understood", *GIBBERISH)
    webchat(client, write_key, "certificate", NEW_QUESTION)
    an_hour_later(client)


def _text(html: str) -> str:
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace("&amp;", "&").replace("&#34;", '"').replace("&#39;", "'")


def _get(client, url: str, **kwargs) -> str:  # noqa: ANN001
    response = client.get(url, **kwargs)
    assert response.status_code == 200, (url, response.status_code, response.text[:2000])
    return response.text


def _rows(client, model) -> list:  # noqa: ANN001
    with client.app.state.database.read() as session:
        return list(session.scalars(select(model)))


URLS = ["/console/assistant", "/console/assistant?days=30", "/console/assistant/texts",
        *(f"/console/assistant/intents/{intent}" for intent in INTENTS)]


@pytest.mark.parametrize(("role", "locale"), [("marketer", "ru"), ("admin", "en")])
def test_every_page_renders_in_the_readers_language(client, staff_client, week, role, locale):
    staff_client(role, locale=locale)
    assert 'data-test="nav-assistant"' in _get(client, "/console/dashboard")
    pages = {url: _text(_get(client, url)) for url in URLS}
    overview = pages["/console/assistant"]
    if locale == "ru":
        assert "Чат-бот" in overview and "Решено ботом 25% 1 из 4" in overview, overview[:3000]
        assert "клиент попросил человека" in overview and "бот дважды не понял" in overview
        assert "Просьба позвать человека" in overview and NEW_QUESTION in overview
        assert "Только люди: бот сразу передаёт такие диалоги" in pages["/console/assistant/intents/returns"]
        assert "Вопрос, кто клиент" in pages["/console/assistant/texts"]
    else:
        assert "Chat bot" in overview and "Solved by the bot 25% 1 of 4" in overview, overview[:3000]
        assert "the customer asked for a person" in overview and "Asked for a person" in overview
        assert "Asking who they are" in pages["/console/assistant/texts"]
    # no code of the bot reaches the reader (intents, reasons, answer keys)
    codes = re.compile(r"\b(?:requested|misunderstood|human_only|low_confidence|out_of_scope|order_status|back_in_stock|"
                       r"identify\.\w+|\w+\.none|not_understood)\b")
    leaks = {url: sorted(set(codes.findall(text))) for url, text in pages.items()}
    assert not any(leaks.values()), leaks
    # each answer key is named, and so is every handover reason the bot or the inbox writes
    assert set(page.case_names(_FakeRequest(locale))) >= {key for key in ANSWERS if key not in INTENTS}


class _FakeRequest:
    """What `translate` reads of a request: the signed-in person's language."""

    def __init__(self, locale: str) -> None:
        self.state = type("State", (), {"staff": type("Staff", (), {"user": type("User", (), {"locale": locale})()})()})()


def test_every_handover_reason_written_has_a_name():
    from seamline.inbox import service as inbox_service

    written = set(re.findall(r'hand_over\(\s*"([a-z_]+)"', inspect.getsource(bot)))
    written |= set(re.findall(r'Handover\(reason="([a-z_]+)"', inspect.getsource(inbox_service)))
    written |= set(re.findall(r'handover_reason or \(\s*"([a-z_]+)"', inspect.getsource(bot)))
    assert {"requested", "misunderstood", "human_only", "error", "agent"} <= written
    ru = labels.Labels("ru")
    unnamed = sorted(code for code in written | {"unknown"} if ru.bot_reason(code) == code)
    assert not unnamed, "name these in web/console/labels.py `bot_reason` (and labels.po)"


@pytest.mark.parametrize("role", ["agent", "clerk"])
def test_agents_and_clerks_may_not_open_it(client, staff_client, role):
    csrf = staff_client(role, **({"store": "store-1"} if role == "clerk" else {}))
    assert 'data-test="nav-assistant"' not in client.get("/console/").text
    for url in URLS:
        assert client.get(url).status_code == 403, url
    for url, data in (("/console/assistant/try", {"text": "привет"}), ("/console/assistant/phrases", {"intent": "points", "text": "бонусы"}),
                      ("/console/assistant/intents/returns/topic", {"human_only": "on"}),
                      ("/console/assistant/answers/greeting", {"ru": "Привет", "en": "Hi"})):
        assert client.post(url, data={"csrf": csrf, **data}).status_code == 403, url
    assert _rows(client, AssistantPhrase) == [] and _rows(client, AssistantTopic) == [] and _rows(client, AssistantAnswer) == []


def test_a_message_it_did_not_understand_is_taught_from_the_list(client, staff_client, week):
    csrf = staff_client("admin", locale="ru")
    overview = _get(client, "/console/assistant")
    item = re.search(r'<li data-test="bot-unknown-item">(?:(?!</li>).)*?' + re.escape(NEW_QUESTION) + r".*?</li>", overview, re.S).group(0)
    assert 'name="lang" value="ru"' in item and "selected" in item  # the topic the bot now finds closest is chosen
    form = {"csrf": csrf, "days": "7", "text": NEW_QUESTION, "lang": "ru", "intent": "human"}
    assert client.post("/console/assistant/phrases", data={k: v for k, v in form.items() if k != "csrf"}).status_code == 403
    assert _rows(client, AssistantPhrase) == []  # no CSRF token: nothing added
    added = client.post("/console/assistant/phrases", data=form, follow_redirects=False)
    assert added.status_code == 303 and added.headers["location"] == "/console/assistant?days=7&done=phrase_added#unknown"
    after = _get(client, added.headers["location"])
    assert "бот учится сразу" in _text(after) and "Теперь это пример темы «Просьба позвать человека»." in _text(after)
    tried = _text(_get(client, "/console/assistant"))
    assert tried.count(NEW_QUESTION) == 1
    result = client.post("/console/assistant/try", data={"text": NEW_QUESTION}, headers={**HX, "X-CSRF-Token": csrf})
    assert "Просьба позвать человека" in _text(result.text) and "передаёт это человеку: клиент попросил человека" in _text(result.text)
    # twice: kept once; under another topic: said, in the reader's words
    again = client.post("/console/assistant/phrases", data=form, follow_redirects=False)
    assert again.headers["location"].endswith("done=phrase_kept#unknown")
    other = client.post("/console/assistant/phrases", data={**form, "intent": "points"})
    assert other.status_code == 422 and "уже пример темы «Просьба позвать человека»" in _text(other.text)
    unknown = client.post("/console/assistant/phrases", data={**form, "intent": "weather"})
    assert unknown.status_code == 422 and "Выберите тему, о которой эта фраза." in _text(unknown.text)
    assert [(p.intent, p.text, p.created_by) for p in _rows(client, AssistantPhrase)] == [("human", NEW_QUESTION, "staff:admin1@example.com")]


def test_a_topics_settings_answers_and_phrases(client, staff_client):
    csrf = staff_client("admin", locale="ru")
    # people only, with a skill nobody has yet: said
    saved = client.post("/console/assistant/intents/returns/topic", data={"csrf": csrf, "human_only": "on", "skill": "returns"},
                        follow_redirects=False)
    assert saved.status_code == 303 and saved.headers["location"] == "/console/assistant/intents/returns?done=saved#settings"
    returns = _get(client, saved.headers["location"])
    assert "Сохранено." in returns and 'name="human_only" value="on" checked' in returns
    assert "Ни у одного оператора нет навыка «returns»" in _text(returns) and "бот не даёт этих ответов" in _text(returns)
    bad = client.post("/console/assistant/intents/returns/topic", data={"csrf": csrf, "skill": "два слова"})
    assert bad.status_code == 422 and "Навык — одно слово" in _text(bad.text) and 'value="два слова"' in bad.text
    assert [(t.intent, t.human_only, t.skill) for t in _rows(client, AssistantTopic)] == [("returns", True, "returns")]
    fixed = client.post("/console/assistant/intents/human/topic", data={"csrf": csrf, "human_only": "on"})
    assert fixed.status_code == 422 and "У этой темы нет настроек." in _text(fixed.text)
    assert 'data-test="bot-topic-form"' not in _get(client, "/console/assistant/intents/human")
    gone = client.get("/console/assistant/intents/weather")
    assert gone.status_code == 404 and "У бота нет такой темы." in gone.text

    # both languages of an answer at once; a browser's CRLF is kept as LF; the default's own text is the default
    url = "/console/assistant/answers/greeting"
    answer = client.post(url, data={"csrf": csrf, "ru": "Здравствуйте!\r\nЧем помочь?", "en": ANSWERS["greeting"]["en"]},
                         follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/console/assistant/intents/greeting?done=saved#answer-greeting"
    assert [(a.lang, a.template, a.updated_by) for a in _rows(client, AssistantAnswer)] == [("ru", "Здравствуйте!\nЧем помочь?",
                                                                                         "staff:admin1@example.com")]
    greeting = _get(client, "/console/assistant/intents/greeting")
    assert 'data-test="answer-greeting-custom-ru"' in greeting and 'data-test="answer-greeting-custom-en"' not in greeting
    # one language does not parse: said with its line, both kept as typed, nothing written
    broken = client.post(url, data={"csrf": csrf, "ru": "Привет!", "en": "Hi\n{{ name | shout }}"})
    assert broken.status_code == 422
    assert "Английский текст не разбирается (строка 2): No filter named &#39;shout&#39;." in broken.text
    assert ">\nПривет!</textarea>" in broken.text and ">\nHi\n{{ name | shout }}</textarea>" in broken.text
    assert [a.template for a in _rows(client, AssistantAnswer)] == ["Здравствуйте!\nЧем помочь?"]
    # a name the text is not given is pointed out
    client.post("/console/assistant/answers/points", data={"csrf": csrf, "ru": "У вас {{ pionts }} баллов", "en": ANSWERS["points"]["en"]})
    assert "Этих значений у текста нет, они ничего не выведут: pionts" in _text(_get(client, "/console/assistant/intents/points"))
    # reset one language
    reset = client.post(url, data={"csrf": csrf, "reset": "ru", "ru": "whatever", "en": "whatever"}, follow_redirects=False)
    assert reset.headers["location"] == "/console/assistant/intents/greeting?done=reset#answer-greeting"
    assert [a.key for a in _rows(client, AssistantAnswer)] == ["points"]
    assert client.post("/console/assistant/answers/farewell", data={"csrf": csrf, "ru": "Пока"}).status_code == 404
    # a step of the conversation: back to its own page
    step = client.post("/console/assistant/answers/identify.sent", data={"csrf": csrf, "ru": "Код ушёл на {{ masked }}.",
                                                                        "en": ANSWERS["identify.sent"]["en"]}, follow_redirects=False)
    assert step.headers["location"] == "/console/assistant/texts?done=saved#answer-identify-sent"
    assert "Код ушёл на {{ masked }}." in _get(client, "/console/assistant/texts")

    # phrases: added on the topic's page, listed, deleted
    added = client.post("/console/assistant/phrases", data={"csrf": csrf, "back": "intent", "intent": "points", "text": "сколько бонусиков",
                                                            "lang": ""}, follow_redirects=False)
    assert added.headers["location"] == "/console/assistant/intents/points?done=phrase_added#phrases"
    phrase = _rows(client, AssistantPhrase)[0]
    assert (phrase.lang, phrase.text) == ("ru", "сколько бонусиков")
    assert f'data-test="bot-phrase-{phrase.id}"' in _get(client, "/console/assistant/intents/points")
    empty = client.post("/console/assistant/phrases", data={"csrf": csrf, "back": "intent", "intent": "points", "text": "  "})
    assert empty.status_code == 422 and "Напишите фразу." in _text(empty.text)
    delete = f"/console/assistant/phrases/{phrase.id}/delete"
    assert client.post(delete, data={"back": "intent", "intent": "points"}).status_code == 403  # no CSRF token
    deleted = client.post(delete, data={"csrf": csrf, "back": "intent", "intent": "points"}, follow_redirects=False)
    assert deleted.headers["location"] == "/console/assistant/intents/points?done=phrase_deleted#phrases"
    assert _rows(client, AssistantPhrase) == []
    twice = client.post(delete, data={"csrf": csrf, "back": "intent", "intent": "points"})
    assert twice.status_code == 404 and "Этой фразы уже нет." in _text(twice.text)


def test_trying_a_text(client, staff_client):
    csrf = staff_client("marketer", locale="en")
    fragment = client.post("/console/assistant/try", data={"text": "where is my order?"}, headers={**HX, "X-CSRF-Token": csrf})
    assert fragment.status_code == 200 and "<html" not in fragment.text
    words = _text(fragment.text)
    assert "Order tracking" in words and "once the customer confirms who they are" in words and "English" in words
    full = client.post("/console/assistant/try", data={"csrf": csrf, "text": "кракозябра фыва", "days": "30"})
    assert full.status_code == 200 and "<html" in full.text and "The bot does not understand it" in _text(full.text)
    assert 'aria-current="page" data-test="bot-period-30"' in full.text
    assert "Write a message to try." in _text(client.post("/console/assistant/try", data={"text": " "}, headers={**HX, "X-CSRF-Token": csrf}).text)
    assert client.post("/console/assistant/try", data={"text": "hello"}, headers=HX).status_code == 403  # no CSRF token
