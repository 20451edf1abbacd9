"""The journey engine's rules, through the API: waits in the person's time zone, waiting for an
event, quiet hours (held, not dropped), frequency caps, A/B splits with a holdout, pausing,
versions, date and segment triggers, points, traits, coupons for a store visit, agent tasks,
and each step once."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from seamline.inbox.models import InboxConversation, InboxMessage
from seamline.marketing.journeys import engine
from seamline.marketing.journeys.definition import Arm, SplitStep
from seamline.marketing.journeys.models import MarketingEnrollment, MarketingEnrollmentStep
from seamline.marketing.messages.models import MarketingMessage
from tests.commerce.conftest import put
from tests.marketing.test_journeys import advance, anna
from tests.marketing.test_segments_api import react, send

HELLO = {"ru": {"subject": "Привет", "text": "Привет, {{ person.first_name }}! {{ coupon.code }}"},
         "en": {"subject": "Hello", "text": "Hello, {{ person.first_name }}! {{ coupon.code }}"}}


def template(client, marketer) -> int:
    response = client.post("/v1/marketing/templates", headers=marketer, json={"name": "Hello", "content": HELLO})
    assert response.status_code == 201, response.text
    return response.json()["id"]


def journey(client, marketer, definition: dict, *, start: bool = True) -> int:
    response = client.post("/v1/marketing/journeys", headers=marketer, json={"name": "Test", "definition": definition})
    assert response.status_code == 201, response.text
    if start:
        assert client.post(f"/v1/marketing/journeys/{response.json()['id']}/start", headers=marketer).status_code == 200
    return response.json()["id"]


def enroll(client, marketer, journey_id: int, customer_id: int, **context) -> dict:
    response = client.post(f"/v1/marketing/journeys/{journey_id}/enroll", headers=marketer,
                           json={"customer_id": customer_id, "context": context})
    assert response.status_code == 200, response.text
    return response.json()


def enrollment(client, enrollment_id: int) -> MarketingEnrollment:
    with client.app.state.database.read() as s:
        return s.get(MarketingEnrollment, enrollment_id)


def messages_of(client, customer_id: int) -> list[MarketingMessage]:
    with client.app.state.database.read() as s:
        return list(s.scalars(select(MarketingMessage).where(MarketingMessage.profile_id == customer_id).order_by(MarketingMessage.id)))


def soon() -> datetime:
    """A moment just after now: whatever was enrolled is due."""
    return datetime.now(timezone.utc) + timedelta(seconds=1)


def api_journey(*steps: dict, **extra) -> dict:
    return {"trigger": {"type": "api"}, "steps": list(steps), **extra}


def test_bad_definitions_are_422(client, marketer):
    bad = [
        api_journey({"id": "a", "type": "wait", "minutes": 5, "next": "b"}),  # no step b
        api_journey({"id": "a", "type": "wait", "minutes": 5, "next": "b"}, {"id": "b", "type": "wait", "minutes": 5, "next": "a"}),
        api_journey({"id": "a", "type": "wait", "minutes": 5}, {"id": "b", "type": "wait", "minutes": 5}),  # b unreachable
        api_journey({"id": "a", "type": "wait"}),
        api_journey({"id": "a", "type": "send", "template_id": 999}),
        api_journey({"id": "a", "type": "split", "arms": [{"name": "A", "percent": 50}, {"name": "B", "percent": 40}]}),
        {"trigger": {"type": "segment_entered", "segment_id": 42}, "steps": [{"id": "a", "type": "wait", "minutes": 1}]},
        api_journey({"id": "a", "type": "give_coupon", "promotion": "NOPE"}),
    ]
    for definition in bad:
        response = client.post("/v1/marketing/journeys", headers=marketer, json={"name": "x", "definition": definition})
        assert response.status_code == 422, (definition, response.text)


def test_wait_until_a_time_of_day_in_the_persons_time_zone(client, shop, marketer):
    customer_id = anna(client, shop["headers"], timezone="Asia/Vladivostok")
    journey_id = journey(client, marketer, api_journey({"id": "morning", "type": "wait", "until": "10:00"}))
    entered = enroll(client, marketer, journey_id, customer_id)["enrollment"]
    tomorrow = datetime.now(timezone.utc).date() + timedelta(days=1)
    at = datetime(tomorrow.year, tomorrow.month, tomorrow.day, 2, 0, tzinfo=timezone.utc)  # 12:00 in Vladivostok
    advance(client, at=at)
    wake = enrollment(client, entered["id"]).wake_at.astimezone(ZoneInfo("Asia/Vladivostok"))
    assert (wake.date(), wake.hour, wake.minute) == (tomorrow + timedelta(days=1), 10, 0)  # the next 10:00 is the day after


def test_quiet_hours_hold_the_message_until_morning(client, settings, shop, marketer):
    settings.marketing_quiet_hours = "21:00-09:00"
    customer_id = anna(client, shop["headers"])  # Moscow
    journey_id = journey(client, marketer, api_journey({"id": "hello", "type": "send", "template_id": template(client, marketer),
                                                        "channel": "email"}))
    entered = enroll(client, marketer, journey_id, customer_id)["enrollment"]
    today = datetime.now(timezone.utc).date()
    late = datetime(today.year, today.month, today.day, 20, 0, tzinfo=timezone.utc) + timedelta(days=1)  # 23:00 in Moscow
    advance(client, at=late)
    assert messages_of(client, customer_id) == []
    held = enrollment(client, entered["id"])
    assert held.status == "waiting" and held.step_id == "hello"
    assert held.wake_at.astimezone(ZoneInfo("Europe/Moscow")).hour == 9
    advance(client, at=held.wake_at + timedelta(seconds=1))
    sent, = messages_of(client, customer_id)
    assert sent.status == "queued" and enrollment(client, entered["id"]).exit_reason == "completed"


def test_frequency_caps_global_and_per_journey(client, settings, shop, marketer):
    settings.marketing_cap_messages, settings.marketing_cap_days = 2, 1
    customer_id = anna(client, shop["headers"])
    hello = template(client, marketer)
    twice = journey(client, marketer, api_journey({"id": "one", "type": "send", "template_id": hello, "channel": "email", "next": "two"},
                                                  {"id": "two", "type": "send", "template_id": hello, "channel": "email"},
                                                  frequency_cap={"messages": 1, "days": 7}))
    other = journey(client, marketer, api_journey({"id": "one", "type": "send", "template_id": hello, "channel": "email", "next": "two"},
                                                  {"id": "two", "type": "send", "template_id": hello, "channel": "email"}))
    enroll(client, marketer, twice, customer_id)
    advance(client, at=soon())
    enroll(client, marketer, other, customer_id)
    advance(client, at=soon())
    assert [(m.journey_id, m.step_id, m.status, m.reason) for m in messages_of(client, customer_id)] == [
        (twice, "one", "queued", None), (twice, "two", "skipped", "journey_capped"),
        (other, "one", "queued", None), (other, "two", "skipped", "capped")]


def test_wait_for_an_event_or_time_out(client, shop, marketer, server_key):
    customer_id = anna(client, shop["headers"])
    boris = client.post("/v1/customers", headers=shop["headers"], json={"identifiers": [{"type": "user_id", "value": "boris"}]}).json()["customer"]["id"]
    journey_id = journey(client, marketer, api_journey(
        {"id": "wait_review", "type": "wait", "for_event": {"type": "event", "name": "Review Written", "where": [
            {"property": "stars", "op": "gte", "value": 4}]}, "timeout_minutes": 60, "next": "thanks", "timeout_next": "nudge"},
        {"id": "thanks", "type": "update_trait", "key": "reviewer", "value": True},
        {"id": "nudge", "type": "update_trait", "key": "reviewer", "value": False}))
    first = enroll(client, marketer, journey_id, customer_id)["enrollment"]
    second = enroll(client, marketer, journey_id, boris)["enrollment"]
    react(client)  # the advance job: both wait
    send(client, server_key, "track", userId="anna", event="Review Written", properties={"stars": 2})  # not this one
    send(client, server_key, "track", userId="anna", event="Review Written", properties={"stars": 5})
    react(client)
    assert enrollment(client, first["id"]).exit_reason == "completed"
    assert enrollment(client, second["id"]).status == "waiting"
    advance(client, at=datetime.now(timezone.utc) + timedelta(minutes=61))
    assert enrollment(client, second["id"]).exit_reason == "completed"
    traits = {c: client.get(f"/v1/customers/{c}", headers=shop["headers"]).json()["sections"]["profile"]["traits"]
              for c in (customer_id, boris)}
    assert traits[customer_id]["reviewer"]["value"] is True and traits[boris]["reviewer"]["value"] is False


def test_split_gives_each_person_one_arm_for_good_and_holds_out(client, shop, marketer):
    step = SplitStep(id="ab", type="split", arms=[Arm(name="A", percent=45, next="a"), Arm(name="B", percent=45),
                                                  Arm(name="holdout", percent=10, holdout=True)])
    arms = [engine.arm_of(step, 7, person).name for person in range(1, 3001)]
    assert arms == [engine.arm_of(step, 7, person).name for person in range(1, 3001)]  # the same every time
    share = {name: arms.count(name) / len(arms) for name in ("A", "B", "holdout")}
    assert abs(share["A"] - 0.45) < 0.04 and abs(share["B"] - 0.45) < 0.04 and abs(share["holdout"] - 0.10) < 0.03
    customer_id = anna(client, shop["headers"])
    holdout_only = journey(client, marketer, api_journey({"id": "ab", "type": "split", "arms": [
        {"name": "holdout", "percent": 100, "holdout": True}, {"name": "A", "percent": 0, "next": "never"}]},
        {"id": "never", "type": "update_trait", "key": "x", "value": 1}, goal={"type": "order"}))
    entered = enroll(client, marketer, holdout_only, customer_id)["enrollment"]
    now = soon()
    advance(client, at=now)
    held_out = enrollment(client, entered["id"])
    assert held_out.arm == "holdout" and held_out.status == "waiting"  # followed for the goal, sent nothing
    advance(client, at=now + engine.HOLDOUT_FOLLOW + timedelta(minutes=1))
    assert enrollment(client, entered["id"]).exit_reason == "holdout"


def test_pause_holds_everyone_and_a_new_version_leaves_them_on_theirs(client, shop, marketer):
    customer_id = anna(client, shop["headers"])
    journey_id = journey(client, marketer, api_journey({"id": "w", "type": "wait", "minutes": 10, "next": "mark"},
                                                       {"id": "mark", "type": "update_trait", "key": "version", "value": 1}))
    entered = enroll(client, marketer, journey_id, customer_id)["enrollment"]
    now = soon()
    advance(client, at=now)
    assert client.post(f"/v1/marketing/journeys/{journey_id}/pause", headers=marketer).json()["status"] == "paused"
    assert client.post(f"/v1/marketing/journeys/{journey_id}/pause", headers=marketer).status_code == 200  # again: no change
    assert enroll(client, marketer, journey_id, customer_id)["reason"] == "journey_not_active"
    edited = client.patch(f"/v1/marketing/journeys/{journey_id}", headers=marketer, json={"definition": api_journey(
        {"id": "w", "type": "wait", "minutes": 10, "next": "mark"}, {"id": "mark", "type": "update_trait", "key": "version", "value": 2})})
    assert edited.json()["version"] == 2
    advance(client, at=now + timedelta(minutes=11))
    assert enrollment(client, entered["id"]).status == "waiting"  # paused: nobody moves
    client.post(f"/v1/marketing/journeys/{journey_id}/start", headers=marketer)
    advance(client, at=now + timedelta(minutes=12))
    done = enrollment(client, entered["id"])
    assert done.exit_reason == "completed" and done.version == 1
    traits = client.get(f"/v1/customers/{customer_id}", headers=shop["headers"]).json()["sections"]["profile"]["traits"]
    assert traits["version"]["value"] == 1  # the version she entered with
    assert client.post(f"/v1/marketing/journeys/{journey_id}/archive", headers=marketer).json()["status"] == "archived"
    assert client.post(f"/v1/marketing/journeys/{journey_id}/start", headers=marketer).status_code == 409


def test_store_visit_gives_an_offer_for_that_store_today(client, shop, marketer, server_key):
    put(client, shop["headers"], "/v1/promotions/VISIT15", {"name_ru": "Скидка 15% в магазине", "name_en": "15% in store",
                                                            "kind": "percent", "value": 15, "requires_coupon": True})
    created = client.post("/v1/marketing/journeys/from-template", headers=marketer, json={"template": "store_visit", "promotion": "VISIT15",
                                                                           "channel": "email"}).json()
    client.post(f"/v1/marketing/journeys/{created['id']}/start", headers=marketer)
    customer_id = anna(client, shop["headers"])
    send(client, server_key, "track", userId="anna", event="Store Entered", properties={"store": "store-arbat"})
    react(client)
    message, = messages_of(client, customer_id)
    with client.app.state.database.read() as s:
        text = s.get(InboxMessage, message.inbox_message_id).text
        state = s.scalar(select(MarketingEnrollment).where(MarketingEnrollment.journey_id == created["id"]))
    coupon = state.context["coupon"]
    assert coupon["code"] in text and coupon["store"] == "store-arbat" and "Рады видеть вас в магазине" in text
    assert datetime.fromisoformat(coupon["valid_until"]).date() == datetime.now(ZoneInfo("Europe/Moscow")).date()
    assert client.post("/v1/marketing/journeys/from-template", headers=marketer, json={"template": "store_visit"}).status_code == 422


def test_birthday_gives_points_and_a_greeting_once_a_year(client, settings, shop, marketer):
    today = datetime.now(ZoneInfo("Europe/Moscow"))
    customer_id = anna(client, shop["headers"], birthday=f"1990-{today.month:02d}-{today.day:02d}")
    created = client.post("/v1/marketing/journeys/from-template", headers=marketer, json={"template": "birthday", "channel": "email"}).json()
    client.post(f"/v1/marketing/journeys/{created['id']}/start", headers=marketer)
    client.post("/v1/marketing/segments/estimate", headers=marketer, json={"rules": {"type": "cart"}})  # builds the profile facts
    database = client.app.state.database
    at = datetime.now(timezone.utc).replace(hour=12)  # past 10:00 in Moscow whatever the day
    at = at if at.astimezone(ZoneInfo("Europe/Moscow")).date() == today.date() else at - timedelta(days=1)
    assert database.run_write(lambda s: engine.date_triggers(s, settings=settings, now=at)) == 1
    assert database.run_write(lambda s: engine.date_triggers(s, settings=settings, now=at)) == 0  # once
    advance(client, at=at)
    balance = client.get(f"/v1/customers/{customer_id}/loyalty", headers=shop["headers"])
    assert balance.status_code == 200 and balance.json()["points"] >= 200, balance.text
    message, = messages_of(client, customer_id)
    with database.read() as s:
        assert "С днём рождения, Анна" in s.get(InboxMessage, message.inbox_message_id).text


def test_segment_entry_starts_a_journey_and_an_agent_gets_a_task(client, shop, marketer, server_key):
    segment = client.post("/v1/marketing/segments", headers=marketer, json={"name": "VIP", "rules": {
        "type": "trait", "key": "vip", "op": "eq", "value": True}}).json()
    journey_id = journey(client, marketer, {"trigger": {"type": "segment_entered", "segment_id": segment["id"]},
                                            "exit_on_segment_exit": True,
                                            "steps": [{"id": "call", "type": "notify_agent", "text": "Позвонить: новый VIP", "next": "w"},
                                                      {"id": "w", "type": "wait", "minutes": 60 * 24}]})
    send(client, server_key, "identify", userId="anna", traits={"vip": True})
    react(client)
    customer_id = client.get("/v1/customers/lookup?user_id=anna", headers=shop["headers"]).json()["id"]
    with client.app.state.database.read() as s:
        state = s.scalar(select(MarketingEnrollment).where(MarketingEnrollment.journey_id == journey_id))
        task = s.scalar(select(InboxMessage).where(InboxMessage.kind == "event").order_by(InboxMessage.id.desc()))
        conversation = s.get(InboxConversation, task.conversation_id)
    assert state.profile_id == customer_id and state.step_id is None and state.status == "waiting"
    assert task.text == "Task: Позвонить: новый VIP" and conversation.status == "open" and "marketing" in conversation.labels
    send(client, server_key, "identify", userId="anna", traits={"vip": False})
    react(client)
    assert enrollment(client, state.id).exit_reason == "segment_exit"


def test_a_step_is_never_run_twice(client, shop, marketer):
    """A worker that dies after a step's effect but before the enrollment moved on (simulated:
    the enrollment is put back on the step) finds the step recorded and does not repeat it."""
    customer_id = anna(client, shop["headers"])
    journey_id = journey(client, marketer, api_journey({"id": "hello", "type": "send", "template_id": template(client, marketer),
                                                        "channel": "email", "next": "bonus"},
                                                       {"id": "bonus", "type": "give_points", "points": 50}))
    entered = enroll(client, marketer, journey_id, customer_id)["enrollment"]
    now = soon()
    advance(client, at=now)
    database = client.app.state.database

    def rewind(s):  # noqa: ANN001, ANN202
        row = s.get(MarketingEnrollment, entered["id"])
        row.status, row.step_id, row.wake_at, row.exit_reason, row.finished_at = "waiting", "hello", now, None, None

    database.run_write(rewind)
    advance(client, at=now)
    assert len([m for m in messages_of(client, customer_id) if m.status == "queued"]) == 1
    assert client.get(f"/v1/customers/{customer_id}/loyalty", headers=shop["headers"]).json()["points"] == 50
    with database.read() as s:
        assert len(s.scalars(select(MarketingEnrollmentStep).where(MarketingEnrollmentStep.enrollment_id == entered["id"])).all()) == 2


@pytest.mark.parametrize("locale, expected", [("ru", "Привет, Анна!"), ("en", "Hello, Анна!")])
def test_preview_with_a_real_profile_and_test_send(client, shop, marketer, locale, expected):
    customer_id = anna(client, shop["headers"])
    template_id = template(client, marketer)
    preview = client.post(f"/v1/marketing/templates/{template_id}/preview", headers=marketer,
                          json={"customer_id": customer_id, "locale": locale}).json()
    assert preview["text"].startswith(expected) and preview["missing"] == ["coupon"]
    test = client.post(f"/v1/marketing/templates/{template_id}/test-send", headers=marketer,
                       json={"customer_id": customer_id, "channel": "email"}).json()
    assert test["status"] == "test" and test["channel"] == "email" and test["message_id"]
    bad = client.post("/v1/marketing/templates", headers=marketer, json={"name": "x", "content": {"ru": {"text": "{% for %}"}}})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_template"


def test_a_browser_cannot_start_someone_elses_journey(client, shop, marketer, server_key, write_key):
    """The website's write key is public: "Store Entered" sent as Anna's user id starts nothing
    for her; sent from her own device (an anonymous id the identity graph gave her) it does."""
    put(client, shop["headers"], "/v1/promotions/VISIT15", {"name_ru": "Скидка", "name_en": "Off", "kind": "percent", "value": 15,
                                                            "requires_coupon": True})
    created = client.post("/v1/marketing/journeys/from-template", headers=marketer, json={"template": "store_visit", "promotion": "VISIT15",
                                                                           "channel": "email"}).json()
    client.post(f"/v1/marketing/journeys/{created['id']}/start", headers=marketer)
    customer_id = anna(client, shop["headers"])
    send(client, write_key, "track", userId="anna", anonymousId="attacker-device", event="Store Entered", properties={"store": "store-arbat"})
    react(client)
    assert messages_of(client, customer_id) == []
    send(client, server_key, "identify", userId="anna", anonymousId="annas-phone")  # her app, vouched for by the backend
    react(client)
    send(client, write_key, "track", userId="anna", anonymousId="annas-phone", event="Store Entered", properties={"store": "store-arbat"})
    react(client)
    assert len(messages_of(client, customer_id)) == 1


def test_a_template_that_fails_for_one_person_skips_only_them(client, shop, marketer):
    """One person's data makes the template refuse (a width from their traits); the others in
    the same batch get theirs, and the skip says why."""
    content = {"ru": {"text": "{{ person.first_name|center(person.traits.width or 10) }}"}}
    template_id = client.post("/v1/marketing/templates", headers=marketer, json={"name": "Wide", "content": content}).json()["id"]
    journey_id = journey(client, marketer, api_journey({"id": "hello", "type": "send", "template_id": template_id, "channel": "email"}))
    anna_id = anna(client, shop["headers"], width=10**9)
    boris = client.post("/v1/customers", headers=shop["headers"], json={
        "identifiers": [{"type": "email", "value": "boris@example.com"}], "traits": {"first_name": "Борис"},
        "consents": [{"channel": "email", "purpose": "marketing", "granted": True}]}).json()["customer"]["id"]
    for customer_id in (anna_id, boris):
        enroll(client, marketer, journey_id, customer_id)
    advance(client, at=soon())
    [refused] = messages_of(client, anna_id)
    assert (refused.status, refused.reason) == ("skipped", "template_too_costly")
    [sent] = messages_of(client, boris)
    assert sent.status == "queued"


def test_the_nearest_store_holding_the_cart(client, shop, marketer):
    """`nearest_store`: the pickup store nearest the person (from where they collected their last
    order, else their coordinates) that holds every line of their cart."""
    content = {"ru": {"text": "{% if nearest_store %}{{ nearest_store.name }}, {{ nearest_store.address }}{% else %}нет{% endif %}"},
               "en": {"text": "{{ nearest_store.name }}"}}
    template_id = client.post("/v1/marketing/templates", headers=marketer, json={"name": "Store", "content": content}).json()["id"]

    def preview(customer_id: int, locale: str = "ru") -> str:
        answer = client.post(f"/v1/marketing/templates/{template_id}/preview", headers=marketer,
                             json={"customer_id": customer_id, "locale": locale})
        assert answer.status_code == 200, answer.text
        return answer.json()["text"]

    def cart(customer_id: int, quantity: int) -> None:
        answer = client.put("/v1/carts/current/lines/CREAM-50", headers=shop["headers"], params={"customer_id": customer_id},
                            json={"quantity": quantity, "channel": "web"})
        assert answer.status_code == 200, answer.text

    near_tverskaya = anna(client, shop["headers"], latitude=55.7620, longitude=37.6090)
    assert preview(near_tverskaya) == "Тверская, Тверская ул., 10"  # no cart: any pickup store, the nearest
    cart(near_tverskaya, 2)
    assert preview(near_tverskaya) == "Тверская, Тверская ул., 10"
    assert preview(near_tverskaya, "en") == "Tverskaya"
    cart(near_tverskaya, 4)  # Tverskaya holds 3: Arbat, farther, holds 5
    assert preview(near_tverskaya) == "Арбат, ул. Арбат, 20"
    cart(near_tverskaya, 9)  # nowhere
    assert preview(near_tverskaya) == "нет"
    nowhere = client.post("/v1/customers", headers=shop["headers"], json={
        "identifiers": [{"type": "email", "value": "boris@example.com"}]}).json()["customer"]["id"]
    assert preview(nowhere) == "нет"  # where they are is not known
    cart(nowhere, 1)  # ... until they collect an order at Arbat: where they shop
    order = client.post("/v1/carts/current/checkout", params={"customer_id": nowhere}, headers={**shop["headers"], "Idempotency-Key": "b-1"},
                        json={"channel": "web", "fulfilment": {"kind": "click_and_collect", "location": "store-arbat"}})
    assert order.status_code == 201, order.text
    assert preview(nowhere) == "Арбат, ул. Арбат, 20"
