"""The bot as a participant of the inbox, on both databases: Telegram updates in the Bot API's
format (tests/fixtures/telegram) reach it through the real webhook and inbound processing, its
replies go out through the real adapter to a loopback Bot API; the order placed in the app is
found after a one-time code; handovers reach the queue with the summary; every intent answers in
both languages; nobody reads another person's data."""

from __future__ import annotations

import copy
import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select, update

from seamline.app import create_app
from seamline.assistant import service as bot
from seamline.assistant.models import AssistantState, AssistantStockWatch, AssistantTurn
from seamline.commerce.models import CommerceOrder, CommerceOrderStatus
from seamline.core.time import utcnow
from seamline.customers.models import CustomerIdentity
from seamline.inbox import delivery
from seamline.inbox import service as inbox_service
from seamline.inbox.models import InboxConversation, InboxMessage
from tests.channels.fakes import FakeJsonApi
from tests.commerce.conftest import receive
from tests.inbox.conftest import create_agent, process_inbound, reply

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "telegram"
SECRET, TOKEN = "webhook-secret-1", "123456:ABC-test-token"
PHONE = "+79161234567"


def bot_api_answer(body: dict, n: int) -> dict:
    return {"ok": True, "result": {"message_id": 7000 + n, "chat": {"id": int(body["chat_id"])}, "date": 1763900500,
                                   "text": body.get("text", "")}}


@pytest.fixture
def telegram_api():
    api = FakeJsonApi(bot_api_answer)
    yield api
    api.close()


@pytest.fixture
def bot_settings(settings, telegram_api):
    bot.forget_catalog()
    return settings.model_copy(update={
        "assistant_enabled": True, "inbox_language": "ru",
        "inbox_telegram_bot_token": SecretStr(TOKEN), "inbox_telegram_webhook_secret": SecretStr(SECRET),
        "inbox_telegram_api_base": telegram_api.url,
        # Codes go by SMS through a gateway nobody calls here: the test reads the queued SMS.
        "inbox_sms_provider": "generic", "inbox_sms_api_url": "http://127.0.0.1:9/sms", "inbox_sms_api_key": SecretStr("k")})


@pytest.fixture
def client(bot_settings, database):
    with TestClient(create_app(bot_settings, database=database)) as test_client:
        yield test_client


class Telegram:
    """One Telegram user writing to the shop's bot."""

    def __init__(self, client, user_id: int = 111111111, first_name: str = "Анна") -> None:
        self.client, self.user_id, self.first_name = client, user_id, first_name
        self.update_id = 100000000 + user_id % 1000 * 1000
        self.template = json.loads((FIXTURES / "text_message.json").read_text())

    def say(self, text: str) -> None:
        self.update_id += 1
        update = copy.deepcopy(self.template)
        update["update_id"] = self.update_id
        update["message"]["message_id"] = self.update_id
        update["message"]["from"].update(id=self.user_id, first_name=self.first_name, username=f"u{self.user_id}")
        update["message"]["chat"].update(id=self.user_id, first_name=self.first_name, username=f"u{self.user_id}")
        update["message"]["text"] = text
        response = self.client.post("/v1/channels/telegram/webhook", json=update, headers={"X-Telegram-Bot-Api-Secret-Token": SECRET})
        assert response.status_code == 200, response.text
        process_inbound(self.client)

    def answers(self) -> list[InboxMessage]:
        with self.client.app.state.database.read() as session:
            return list(session.scalars(select(InboxMessage).join(InboxConversation).where(
                InboxMessage.direction == "out", InboxMessage.channel == "telegram",
                InboxMessage.meta["address"]["chat_id"].as_string() == str(self.user_id)).order_by(InboxMessage.id)))

    def last(self) -> str:
        answers = self.answers()
        assert answers, "the bot did not answer"
        assert answers[-1].meta.get("bot") is True
        return answers[-1].text

    def conversation(self) -> InboxConversation:
        """The latest conversation of the person this Telegram account belongs to."""
        with self.client.app.state.database.read() as session:
            profile = session.scalar(select(CustomerIdentity.profile_id).where(
                CustomerIdentity.type == "telegram_id", CustomerIdentity.value == str(self.user_id)))
            return session.scalars(select(InboxConversation).where(
                InboxConversation.customer_id.in_(inbox_service.person_ids(session, profile)))
                .order_by(InboxConversation.id.desc())).first()


def place_app_order(client, headers, *, phone: str = PHONE, ready: bool = True, store: str = "store-tverskaya") -> dict:
    response = client.post("/v1/orders", json={
        "channel": "app", "identifiers": [{"type": "phone", "value": phone}],
        "lines": [{"sku": "CREAM-50", "quantity": 1}], "fulfilment": {"kind": "click_and_collect", "location": store}}, headers=headers)
    assert response.status_code == 201, response.text
    placed = response.json()
    if ready:
        assert client.post(f"/v1/orders/{placed['id']}/ready", json={"channel": "store"}, headers=headers).status_code == 200
    return placed


def sent_code(client, phone: str) -> str:
    """The one-time code the bot had sent by SMS (queued to the gateway)."""
    with client.app.state.database.read() as session:
        texts = [m.text for m in session.scalars(select(InboxMessage).where(InboxMessage.channel == "sms", InboxMessage.direction == "out")
                                                 .order_by(InboxMessage.id.desc()))]
    assert texts, "no code was sent"
    return re.search(r"\d{6}", texts[0]).group(0)


def test_order_placed_in_the_app_is_found_in_telegram_after_a_one_time_code(client, shop, telegram_api):
    headers = shop["headers"]
    placed = place_app_order(client, headers)
    anna = Telegram(client)
    anna.say("где мой заказ?")
    asked = anna.last()
    assert "телефон или email" in asked and placed["pickup_code"] not in asked  # nothing of the order before the proof
    conversation = anna.conversation()
    assert conversation.handled_by_bot and conversation.queue_rank_at is None
    assert client.get("/v1/inbox/queue", headers=headers).json()["items"] == []

    anna.say("8 (916) 123-45-67")
    assert "+7***67" in anna.last()
    code = sent_code(client, PHONE)
    anna.say(f"мой код {code}")
    answer = anna.last()
    assert f"№{placed['id']}" in answer and "готов к выдаче" in answer
    assert f"Код получения: {placed['pickup_code']}" in answer and "Тверская" in answer

    # The Telegram account now belongs to the person: the next question is answered at once,
    # and the replies went out through the Bot API.
    anna.say("какой код получения?")
    assert placed["pickup_code"] in anna.last()
    delivery.send_due(client.app.state.database, settings=client.app.state.settings)
    sent = [body.get("text", "") for _path, body, _auth in telegram_api.calls]
    assert sum(placed["pickup_code"] in text for text in sent) == 2


def queue_items(client, headers) -> list[dict]:
    return client.get("/v1/inbox/queue", headers=headers).json()["items"]


def test_asking_for_a_person_hands_over_with_the_summary_and_the_topic_routes_by_skill(client, shop):
    headers = shop["headers"]
    with client.app.state.database.write() as session:
        bot.set_topic(session, intent="returns", human_only=True, skill="returns")
    anna = Telegram(client)
    anna.say("здравствуйте")
    assert "бот поддержки" in anna.last()
    anna.say("хочу вернуть крем, он не подошёл")
    assert "сотрудник" in anna.last()
    conversation = anna.conversation()
    assert not conversation.handled_by_bot and conversation.required_skill == "returns" and "returns" in conversation.labels
    assert conversation.first_response_due_at is not None or conversation.sla_policy_id is None
    [waiting] = queue_items(client, headers)
    assert waiting["id"] == conversation.id and waiting["required_skill"] == "returns"

    # The agent with the skill comes online and gets it, and sees the bot's part and its summary.
    agent = create_agent(client, headers, skills=["returns"])
    view = client.get(f"/v1/inbox/conversations/{conversation.id}", headers=headers).json()
    assert view["assignee_id"] == agent["id"] and view["handled_by_bot"] is False
    notes = [m for m in view["messages"] if m["kind"] == "note"]
    assert notes and notes[0]["meta"]["summary"] and "Возврат и обмен" in notes[0]["text"] and "хочу вернуть крем" in notes[0]["text"]
    bot_lines = [m for m in view["messages"] if m["direction"] == "out" and m["meta"].get("bot")]
    assert len(bot_lines) == 2
    events = [m for m in view["messages"] if m["kind"] == "event" and m["meta"].get("text_key", "").startswith("conversation.bot_handover")]
    assert events[0]["meta"]["text_params"] == {"reason": "human_only", "topic": "returns"}

    # From now on people answer: the bot stays quiet in this conversation.
    reply(client, headers, conversation.id, "Здравствуйте, Анна! Помогу с возвратом.", agent_id=agent["id"])
    before = len(anna.answers())
    anna.say("спасибо")
    assert len(anna.answers()) == before


@pytest.mark.parametrize("words,reason", [
    (["позовите оператора"], "requested"),
    (["ывапролджэ", "кукареку фыва"], "misunderstood"),
])
def test_handover_on_request_and_after_two_misunderstandings(client, shop, words, reason):
    headers = shop["headers"]
    ivan = Telegram(client, user_id=222222222, first_name="Иван")
    for text in words[:-1]:
        ivan.say(text)
        assert "не понял" in ivan.last() and ivan.conversation().handled_by_bot
    ivan.say(words[-1])
    conversation = ivan.conversation()
    assert not conversation.handled_by_bot
    with client.app.state.database.read() as session:
        state = session.get(AssistantState, conversation.id)
        assert (state.outcome, state.handover_reason) == ("handed_over", reason)
    assert [item["id"] for item in queue_items(client, headers)] == [conversation.id]


def test_a_broken_bot_hands_over_and_keeps_the_message(client, shop, monkeypatch):
    def broken(self, text):
        raise RuntimeError("boom")

    monkeypatch.setattr(bot.Turn, "on_store_hours", broken)
    olga = Telegram(client, user_id=333333333, first_name="Ольга")
    olga.say("во сколько открывается магазин?")
    conversation = olga.conversation()
    assert not conversation.handled_by_bot and olga.answers() == []
    with client.app.state.database.read() as session:
        texts = [m.text for m in session.scalars(select(InboxMessage).where(InboxMessage.conversation_id == conversation.id))]
        assert "во сколько открывается магазин?" in texts
        assert session.get(AssistantState, conversation.id) is None  # rolled back with the bot's savepoint
    assert [item["id"] for item in queue_items(client, shop["headers"])] == [conversation.id]


PUBLIC = [
    ("store_hours", "во сколько открывается магазин на тверской?", "Тверская", "what time do your stores open?", "Tverskaya"),
    ("stock", "есть крем для лица в наличии?", "Крем для лица", "is the face cream in stock?", "Face cream"),
    ("delivery_options", "сколько стоит доставка курьером?", "курьером", "how much is delivery?", "courier"),
    ("returns", "как вернуть товар?", "14 дней", "what is your return policy?", "14 days"),
    ("greeting", "привет", "Здравствуйте", "hello", "Hello"),
    ("thanks", "спасибо большое", "Рады помочь", "thanks a lot", "Happy to help"),
]


@pytest.mark.parametrize("intent,ru,ru_answer,en,en_answer", PUBLIC, ids=[p[0] for p in PUBLIC])
def test_public_answers_in_both_languages_to_anyone(client, shop, intent, ru, ru_answer, en, en_answer):
    for n, (text, expected) in enumerate(((ru, ru_answer), (en, en_answer))):
        stranger = Telegram(client, user_id=400000000 + n)
        stranger.say(text)
        answer = stranger.last()
        assert expected in answer, answer
        with client.app.state.database.read() as session:
            turn = session.scalars(select(AssistantTurn).order_by(AssistantTurn.id.desc())).first()
        assert turn.intent == intent and turn.lang == ("ru" if n == 0 else "en")


def verified(client, shop, user_id: int, phone: str = PHONE) -> Telegram:
    """A Telegram user who proved the phone of the app orders with a code."""
    person = Telegram(client, user_id=user_id)
    person.say("сколько у меня баллов?")
    person.say(phone)
    person.say(sent_code(client, phone))
    return person


PERSONAL = [
    ("order_status", "where is my order?", "Order #"),
    ("pickup", "what is my pickup code?", "Pickup code"),
    ("points", "how many points do I have?", "points"),
    ("loyalty_card", "what is my loyalty card number?", "card"),
]


@pytest.mark.parametrize("intent,en,en_answer", PERSONAL, ids=[p[0] for p in PERSONAL])
def test_personal_answers_in_english_once_identified(client, shop, intent, en, en_answer):
    placed = place_app_order(client, shop["headers"])
    person = verified(client, shop, 500000001)
    person.say(en)
    answer = person.last()
    assert en_answer in answer, answer
    if intent in ("order_status", "pickup"):
        assert str(placed["id"]) in answer


def test_nobody_reads_another_persons_order_by_naming_its_number(client, shop):
    placed = place_app_order(client, shop["headers"])
    intruder = Telegram(client, user_id=600000001, first_name="Мэллори")
    intruder.say(f"где заказ {placed['id']}?")
    assert placed["pickup_code"] not in intruder.last() and "телефон или email" in intruder.last()
    # A phone that is not theirs: the code goes to its owner, never to the chat; guessing fails.
    intruder.say(PHONE)
    intruder.say("000000")
    intruder.say("111111")
    assert all(placed["pickup_code"] not in m.text for m in intruder.answers())
    with client.app.state.database.read() as session:
        mallory = session.get(InboxConversation, intruder.conversation().id).customer_id
        owner = session.get(CommerceOrder, placed["id"]).profile_id
    assert mallory != owner


def test_extend_a_pickup_hold_once_then_a_person(client, shop):
    placed = place_app_order(client, shop["headers"])
    person = verified(client, shop, 700000001)
    with client.app.state.database.read() as session:
        before = session.get(CommerceOrder, placed["id"]).reserved_until
    person.say("можно продлить хранение заказа до пятницы?")
    assert "будет ждать вас до" in person.last()
    with client.app.state.database.read() as session:
        order = session.get(CommerceOrder, placed["id"])
        assert order.reserved_until - before == timedelta(hours=48)
        notes = [s.note for s in session.scalars(select(CommerceOrderStatus).where(CommerceOrderStatus.order_id == order.id))]
        assert notes.count("hold extended") == 1
    person.say("продлите хранение ещё раз пожалуйста")
    assert "уже продлено" in person.last()
    assert not person.conversation().handled_by_bot  # the second extension is a person's call
    with client.app.state.database.read() as session:
        assert session.get(CommerceOrder, placed["id"]).reserved_until - before == timedelta(hours=48)


def test_back_in_stock_alert_in_the_same_chat(client, shop):
    headers = shop["headers"]
    person = Telegram(client, user_id=800000001)
    person.say("есть сыворотка в наличии?")
    assert "Сыворотка" in person.last()
    # Sold out everywhere: it offers an alert.
    with client.app.state.database.write() as session:
        from seamline.commerce.models import CommerceStock
        session.execute(update(CommerceStock).values(on_hand=0))
    person.say("есть сыворотка в наличии?")
    assert "сообщу, когда появится" in person.last()
    person.say("да")
    assert "сообщу сюда" in person.last()
    with client.app.state.database.read() as session:
        assert session.scalar(select(AssistantStockWatch).where(AssistantStockWatch.notified_at.is_(None))) is not None
    with client.app.state.database.write() as session:
        assert bot.notify_back_in_stock(session, settings=client.app.state.settings) == 0
    receive(client, headers, "SERUM-30", "store-arbat", 3)
    with client.app.state.database.write() as session:
        assert bot.notify_back_in_stock(session, settings=client.app.state.settings) == 1
    assert "снова в наличии" in person.last()
    with client.app.state.database.write() as session:
        assert bot.notify_back_in_stock(session, settings=client.app.state.settings) == 0


def test_start_a_return_of_a_received_order(client, shop):
    headers = shop["headers"]
    placed = place_app_order(client, headers)
    done = client.post(f"/v1/orders/{placed['id']}/pickup", json={"code": placed["pickup_code"], "channel": "store"}, headers=headers)
    assert done.status_code == 200, done.text
    person = verified(client, shop, 900000001)
    person.say("хочу вернуть товар")
    assert f"№{placed['id']}" in person.last() and "Ответьте «да»" in person.last()
    person.say("да")
    assert "Возврат по заказу" in person.last()
    with client.app.state.database.read() as session:
        notes = [s.note for s in session.scalars(select(CommerceOrderStatus).where(CommerceOrderStatus.order_id == placed["id"]))]
    assert notes.count("return requested") == 1


def test_a_quiet_conversation_is_resolved_by_the_bot_and_counted_as_contained(client, shop):
    person = Telegram(client, user_id=910000001)
    person.say("во сколько закрывается магазин?")
    conversation = person.conversation()
    settings = client.app.state.settings
    with client.app.state.database.write() as session:
        assert bot.close_idle(session, settings=settings) == 0
        session.execute(update(AssistantState).values(last_turn_at=utcnow() - timedelta(minutes=31)))
    with client.app.state.database.write() as session:
        assert bot.close_idle(session, settings=settings) == 1
    with client.app.state.database.read() as session:
        assert session.get(InboxConversation, conversation.id).status == "resolved"
        stats = bot.stats(session, since=utcnow() - timedelta(days=1))
    assert stats["resolved"] == 1 and stats["containment"] == 1.0 and stats["p99_ms"] is not None
    # Writing again reopens it with the bot, not in the queue.
    person.say("а в воскресенье открыто?")
    conversation = person.conversation()
    assert conversation.status == "open" and conversation.handled_by_bot and conversation.queue_rank_at is None


def test_the_bot_is_off_by_default_and_only_on_its_channels(client, shop, bot_settings, database):
    off = bot_settings.model_copy(update={"assistant_enabled": False})
    with TestClient(create_app(off, database=database)) as other:
        person = Telegram(other, user_id=920000001)
        person.say("где мой заказ?")
        assert person.answers() == []
        assert not person.conversation().handled_by_bot


def test_cron_runs_the_bots_periodic_work(client, shop, database):
    from typer.testing import CliRunner

    from seamline.cli import app as cli

    person = Telegram(client, user_id=930000001)
    person.say("во сколько закрывается магазин?")
    with client.app.state.database.write() as session:
        session.execute(update(AssistantState).values(last_turn_at=utcnow() - timedelta(hours=2)))
    result = CliRunner().invoke(cli, ["assistant", "run", "--database-url", database.url],
                                env={"SEAMLINE_ASSISTANT_ENABLED": "true", "SEAMLINE_SECRET_KEY": client.app.state.settings.secret_key.get_secret_value()})
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1]) == {"resolved": 1, "back_in_stock": 0}
    assert person.conversation().status == "resolved"


def test_one_chat_cannot_send_codes_to_number_after_number(client, shop):
    for n in range(3):
        client.post("/v1/customers", json={"identifiers": [{"type": "phone", "value": f"+7916555000{n}"}], "source": "shop"},
                    headers=shop["headers"])
    mallory = Telegram(client, user_id=940000001, first_name="Мэллори")
    mallory.say("сколько у меня баллов?")
    for n in range(3):
        mallory.say(f"+7916555000{n}")
        assert "код" in mallory.last() and mallory.conversation().handled_by_bot
    mallory.say("+79165550009")
    assert "сотрудник" in mallory.last() and not mallory.conversation().handled_by_bot
    with client.app.state.database.read() as session:
        sms = session.scalars(select(InboxMessage).where(InboxMessage.channel == "sms")).all()
    assert len(sms) == 3


def test_the_console_says_the_bot_is_answering_and_an_agent_can_take_over(client, shop, database):
    from tests.web.conftest import add_staff, sign_in

    _, agent_id = add_staff(database, email="maria@shop.example", role="agent", locale="ru")
    client.post(f"/v1/inbox/agents/{agent_id}/status", json={"status": "online"}, headers=shop["headers"])
    person = Telegram(client, user_id=950000001)
    person.say("во сколько открывается магазин?")
    conversation = person.conversation()
    csrf = sign_in(client, "maria@shop.example")
    listing = client.get("/console/inbox?view=open").text
    assert "У бота" in listing and "Бот:" in listing
    page = client.get(f"/console/inbox/{conversation.id}").text
    assert "Отвечает бот" in page
    taken = client.post(f"/console/inbox/{conversation.id}/take", headers={"HX-Request": "true", "X-CSRF-Token": csrf})
    assert taken.status_code == 200, taken.text
    with database.read() as session:
        now = session.get(InboxConversation, conversation.id)
        assert now.assignee_id == agent_id and not now.handled_by_bot


def test_a_store_named_in_the_question_is_the_one_answered_about(client, shop):
    person = Telegram(client, user_id=960000001)
    person.say("есть крем для лица на арбате?")
    answer = person.last()
    assert answer.startswith("Крем для лица: есть в магазине Арбат (4 шт.)"), answer  # 5 on hand, 1 kept back
    assert "Тверская (3)" in answer
    person.say("до скольки работает магазин на Тверской?")
    answer = person.last()
    assert "Тверская" in answer and "Арбат" not in answer and "10:00–22:00" in answer


def test_left_after_i_did_not_understand_is_not_counted_as_solved(client, shop):
    person = Telegram(client, user_id=970000001)
    person.say("кукареку фыва")
    assert "не понял" in person.last()
    settings = client.app.state.settings
    with client.app.state.database.write() as session:
        session.execute(update(AssistantState).values(last_turn_at=utcnow() - timedelta(hours=1)))
    with client.app.state.database.write() as session:
        assert bot.close_idle(session, settings=settings) == 1
    with client.app.state.database.read() as session:
        stats = bot.stats(session, since=utcnow() - timedelta(days=1))
    assert (stats["resolved"], stats["abandoned"], stats["containment"]) == (0, 1, 0.0)


def test_nothing_to_say_goes_to_a_person_never_a_template(client):
    person = Telegram(client, user_id=980000001)  # a shop with no stores
    person.say("во сколько открывается магазин?")
    assert "{%" not in person.last() and "сотрудник" in person.last()
    assert not person.conversation().handled_by_bot
