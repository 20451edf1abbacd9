"""The next best channel and send time with the database: what people did with their messages is
learnt (opens, clicks, replies, purchases, unsubscribes, each message credited once), a "best"
send goes where the person answers, a new person starts from their cohort, a wait "until best"
ends at their best hour, the console's ranking explains itself, and it all goes at erasure."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from seamline.inbox import outbound
from seamline.inbox.models import InboxMessage
from seamline.marketing import reactor
from seamline.marketing.messages import service as messages
from seamline.marketing.journeys.models import MarketingEnrollment
from seamline.marketing.messages.models import MarketingMessage
from seamline.marketing.optichannel import model
from seamline.marketing.optichannel import service as optichannel
from seamline.marketing.optichannel.models import MarketingChannelEvidence, MarketingHourEvidence

from tests.marketing.test_campaigns import run_campaigns, setup
from tests.marketing.test_journeys import advance

#: The settings' default (the tests' settings keep it).
HALF_LIFE = 120.0

CONTENT = {"ru": {"subject": "Скидки недели", "text": "Скидки недели: https://shop.example/sale"}}


@pytest.fixture
def settings(database, settings_for):
    """Email and SMS both reach people (the SMS gateway is never called: nothing is delivered here)."""
    return settings_for(database.url, inbox_smtp_host="127.0.0.1", inbox_smtp_port=2525, inbox_email_address="shop@example.com",
                        inbox_sms_provider="generic", inbox_sms_api_url="http://127.0.0.1:9/send",
                        inbox_outbound_channels=["email", "sms"], marketing_quiet_hours="21:00-09:00", marketing_cap_messages=0)


def person(client, headers, name: str, *, sms: bool = True) -> int:
    consents = [{"channel": "email", "purpose": "marketing", "granted": True}]
    if sms:
        consents.append({"channel": "sms", "purpose": "marketing", "granted": True})
    response = client.post("/v1/customers", headers=headers, json={
        "identifiers": [{"type": "user_id", "value": name}, {"type": "email", "value": f"{name}@example.com"},
                        {"type": "phone", "value": f"+7916{abs(hash(name)) % 10_000_000:07d}"}],
        "traits": {"first_name": name.title()}, "consents": consents})
    assert response.status_code in (200, 201), response.text
    return response.json()["customer"]["id"]


def template(client, marketer) -> int:
    return client.post("/v1/marketing/templates", headers=marketer, json={"name": "Sale", "content": CONTENT}).json()["id"]


def outside_quiet_hours() -> datetime:
    """Now, or, while Moscow is in the tests' quiet hours (21:00-09:00), the last 20:00 there: a
    send at the real time would be held, and the test would depend on when it runs."""
    moscow = datetime.now(UTC).astimezone(ZoneInfo("Europe/Moscow"))
    if 9 <= moscow.hour < 21:
        return datetime.now(UTC)
    evening = moscow.replace(hour=20, minute=0, second=0, microsecond=0)
    return (evening if evening <= moscow else evening - timedelta(days=1)).astimezone(UTC)


def send(client, profile_id: int, template_id: int, key: str, channel: str | None = None,
         now: datetime | None = None) -> MarketingMessage:
    app = client.app
    now = now or outside_quiet_hours()

    def work(session):
        outcome = messages.deliver(session, settings=app.state.settings, profile_id=profile_id,
                                   template=messages.get_template(session, template_id), channel=channel, key=key, now=now)
        assert outcome.status == "queued", outcome
        return outcome.inbox_message_id

    message_id = app.state.database.run_write(work)
    with app.state.database.read() as session:
        return session.scalar(select(MarketingMessage).where(MarketingMessage.inbox_message_id == message_id))


def outcome(client, message: MarketingMessage, what: str) -> None:
    app = client.app

    def work(session):
        optichannel.record_outcome(session, app.state.settings, session.get(MarketingMessage, message.id), what)

    app.state.database.run_write(work)


def ranking(client, marketer, profile_id: int, **params) -> dict:
    response = client.get(f"/v1/marketing/people/{profile_id}/channels", headers=marketer, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_best_send_goes_where_the_person_answers(client, shop, marketer):
    olga = person(client, shop["headers"], "olga")
    template_id = template(client, marketer)
    before = ranking(client, marketer, olga)
    assert {c["channel"] for c in before["channels"]} >= {"email", "sms"} and before["cohort"] == "email+sms"
    assert all(c["sends"] == 0 for c in before["channels"])
    # only what a send with no channel named may use: the push channels are not among the settings' channels here
    assert {c["channel"] for c in before["channels"]} == {"email", "sms"}
    for i in range(6):  # she clicks every SMS and never opens an email
        outcome(client, send(client, olga, template_id, f"sms-{i}", channel="sms"), "clicked")
        send(client, olga, template_id, f"email-{i}", channel="email")

    shown = ranking(client, marketer, olga)
    first, second = shown["channels"][:2]
    assert (first["channel"], first["rank"], second["channel"], second["rank"]) == ("sms", 1, "email", 2)
    assert first["sends"] == pytest.approx(6, rel=0.01) and first["responses"] == pytest.approx(6, rel=0.01)
    assert second["sends"] == pytest.approx(6, rel=0.01) and second["responses"] == 0
    assert first["expected_rate"] > 0.5 > 0.1 > second["expected_rate"]
    assert all(h["hour"] in range(9, 21) for h in shown["best_hours"])  # outside quiet hours

    chosen = [send(client, olga, template_id, f"best-{i}") for i in range(8)]  # no channel named: "best"
    # nearly all to SMS; a draw may still try email (exploring: here one of the eight, the same every run: seeded by the key)
    assert [m.channel for m in chosen].count("sms") >= 7
    with client.app.state.database.read() as session:
        meta = session.get(InboxMessage, chosen[0].inbox_message_id).meta
    assert meta["choice"] == {"by": "ranked", "among": ["email", "sms"]}

    again = send(client, olga, template_id, "best-0")  # a retried send is the same message, learnt once
    assert again.id == chosen[0].id
    with client.app.state.database.read() as session:
        sms = session.get(MarketingChannelEvidence, (olga, "sms"))
    sent_by_sms = 6 + [m.channel for m in chosen].count("sms")
    assert model.at(model.Counts(sms.responses, sms.sends), datetime.now(UTC), HALF_LIFE).sends == pytest.approx(sent_by_sms, rel=0.01)


def test_each_message_earns_once_and_an_unsubscribe_costs(client, shop, marketer, database, settings):
    ivan = person(client, shop["headers"], "ivan")
    template_id = template(client, marketer)
    message = send(client, ivan, template_id, "one", channel="email")
    for what in ("opened", "opened", "clicked", "opened", "clicked"):
        outcome(client, message, what)
    with database.read() as session:
        assert session.get(MarketingMessage, message.id).response == 1.0
        email = session.get(MarketingChannelEvidence, (ivan, "email"))
        hour = session.get(MarketingHourEvidence, (ivan, message.local_hour))
        now = datetime.now(UTC)
        assert model.at(model.Counts(email.responses, email.sends), now, HALF_LIFE).responses == pytest.approx(1.0, rel=0.01)
        assert hour.responses == pytest.approx(email.responses)

    other = send(client, ivan, template_id, "two", channel="email")
    outcome(client, other, "unsubscribed")
    with database.read() as session:
        email = session.get(MarketingChannelEvidence, (ivan, "email"))
        counts = model.at(model.Counts(email.responses, email.sends), datetime.now(UTC), HALF_LIFE)
    assert counts.sends == pytest.approx(2 + model.UNSUBSCRIBE_PENALTY, rel=0.01) and counts.responses == pytest.approx(1.0, rel=0.01)


def test_a_purchase_and_a_reply_are_responses(client, shop, marketer, database, settings):
    pavel = person(client, shop["headers"], "pavel")
    template_id = template(client, marketer)
    first = send(client, pavel, template_id, "first", channel="email")
    earlier = send(client, pavel, template_id, "earlier", channel="email")
    last = send(client, pavel, template_id, "last", channel="sms")
    # an order reaches marketing through its reactor job: the last message before it converted
    database.run_write(lambda s: reactor.react(s, {"profiles": [pavel], "orders": [[pavel, 1, 1500]]}, settings=settings))
    with database.read() as session:
        assert (session.get(MarketingMessage, first.id).response, session.get(MarketingMessage, last.id).response) == (0.0, 1.0)

    replied = send(client, pavel, template_id, "reply-me", channel="email")
    with database.write() as session:
        sent = session.get(InboxMessage, replied.inbox_message_id)
        session.add(InboxMessage(conversation_id=sent.conversation_id, direction="in", kind="message", channel="email",
                                 text="Да, интересно", meta={}, delivery_status=None))
    assert database.run_write(lambda s: optichannel.credit_replies(s, settings)) == 1
    assert database.run_write(lambda s: optichannel.credit_replies(s, settings)) == 0  # once
    with database.read() as session:  # a reply answers the last message on its channel, not every one before it
        assert (session.get(MarketingMessage, replied.id).response, session.get(MarketingMessage, earlier.id).response) == (1.0, 0.0)


def test_a_new_person_starts_from_people_like_them(client, shop, marketer, database, settings):
    template_id = template(client, marketer)
    for name in ("anna", "boris", "vera"):
        someone = person(client, shop["headers"], name)
        for i in range(4):
            outcome(client, send(client, someone, template_id, f"{name}-sms-{i}", channel="sms"), "clicked")
            send(client, someone, template_id, f"{name}-email-{i}", channel="email")
        send(client, someone, template_id, f"{name}-best")  # a chosen send records the cohort
    assert database.run_write(lambda s: optichannel.refresh_cohorts(s, settings)) > 0

    newcomer = person(client, shop["headers"], "gleb")
    shown = {c["channel"]: c for c in ranking(client, marketer, newcomer)["channels"]}
    assert shown["sms"]["sends"] == 0 and shown["sms"]["rank"] == 1
    assert shown["sms"]["cohort_rate"] > 0.5 > shown["email"]["cohort_rate"]
    no_sms = person(client, shop["headers"], "dina", sms=False)
    shown = {c["channel"]: c for c in ranking(client, marketer, no_sms)["channels"]}
    assert shown["sms"]["rank"] is None and shown["sms"]["reason"] == "no_marketing_consent"
    assert shown["email"]["rank"] == 1
    assert ranking(client, marketer, no_sms, purpose="service")["cohort"] == "email+sms"  # service needs no marketing consent


def test_a_service_message_without_a_channel_is_ranked_too(client, shop, marketer, database, settings):
    zoya = person(client, shop["headers"], "zoya")
    template_id = template(client, marketer)
    for i in range(5):
        outcome(client, send(client, zoya, template_id, f"sms-{i}", channel="sms"), "clicked")
    message, _new = database.run_write(lambda s: outbound.send(s, settings=settings, customer_id=zoya, text="Заказ готов",
                                                               idempotency_key="ready-1"))
    assert message.channel == "sms" and message.meta["choice"]["by"] == "ranked"


def test_the_best_hour_and_a_wait_until_best(client, shop, marketer, database, settings):
    nina = person(client, shop["headers"], "nina")
    template_id = template(client, marketer)
    moscow = ZoneInfo("Europe/Moscow")
    day = datetime(2026, 12, 1, tzinfo=moscow)
    for i in range(8):  # she answers what comes at 19:00 and ignores the mornings
        outcome(client, send(client, nina, template_id, f"evening-{i}", channel="email",
                             now=(day + timedelta(days=i, hours=19)).astimezone(UTC)), "clicked")
        send(client, nina, template_id, f"morning-{i}", channel="email", now=(day + timedelta(days=i, hours=10)).astimezone(UTC))
    now = datetime(2026, 12, 10, 9, 30, tzinfo=moscow).astimezone(UTC)
    moments = database.run_write(lambda s: optichannel.best_moments(s, settings, {nina: "Europe/Moscow"}, seeds={nina: "x"}, now=now))
    local = moments[nina].astimezone(moscow)
    assert local.date() == now.astimezone(moscow).date() and local.hour in (18, 19, 20) and local.minute == 0
    again = database.run_write(lambda s: optichannel.best_moments(s, settings, {nina: "Europe/Moscow"}, seeds={nina: "x"}, now=now))
    assert again == moments  # the same step retried waits for the same hour



def test_a_campaign_at_each_persons_best_hour(client, shop, marketer, database):
    world = setup(client, shop, marketer, count=3)
    body = {"name": "At their best hour", "segment_id": world["segment"], "channel": "email", "local_time": "best",
            "variants": [{"name": "A", "template_id": world["templates"][0]}]}
    campaign = client.post("/v1/marketing/campaigns", headers=marketer, json=body)
    assert campaign.status_code == 201, campaign.text
    journey_id = client.post(f"/v1/marketing/campaigns/{campaign.json()['id']}/schedule", headers=marketer).json()["journey_id"]
    start = datetime.now(UTC) + timedelta(seconds=1)
    run_campaigns(client, at=start)
    advance(client, at=start)
    with database.read() as session:
        waits = [e.wake_at for e in session.scalars(select(MarketingEnrollment).where(MarketingEnrollment.journey_id == journey_id))]
    assert len(waits) == 3 and all(start - timedelta(seconds=2) <= w <= start + timedelta(days=1) for w in waits)
    assert all(w.astimezone(ZoneInfo("Europe/Moscow")).hour in range(9, 21) for w in waits)  # never in quiet hours
    assert client.post("/v1/marketing/campaigns", headers=marketer, json={**body, "local_time": "soon"}).status_code == 422


def test_the_ranking_is_for_the_marketing_team_and_goes_at_erasure(client, shop, marketer, database, admin_headers, read_headers,
                                                                   write_headers):
    lena = person(client, shop["headers"], "lena")
    template_id = template(client, marketer)
    send(client, lena, template_id, "one", channel="sms")
    assert client.get(f"/v1/marketing/people/{lena}/channels").status_code == 401
    for headers in (read_headers, write_headers):
        assert client.get(f"/v1/marketing/people/{lena}/channels", headers=headers).status_code == 403
    assert client.get("/v1/marketing/people/999999/channels", headers=marketer).status_code == 404
    assert client.get(f"/v1/marketing/people/{lena}/channels", headers=marketer, params={"purpose": "spam"}).status_code == 422

    with database.read() as session:
        assert session.scalars(select(MarketingChannelEvidence).where(MarketingChannelEvidence.profile_id == lena)).all()
    exported = client.get(f"/v1/customers/{lena}/export", headers=admin_headers)
    assert exported.status_code == 200, exported.text
    assert [row["channel"] for row in exported.json()["sections"]["channel_evidence"]] == ["sms"]
    erased = client.post(f"/v1/customers/{lena}/erase", json={"reason": "152-FZ request"}, headers=admin_headers)
    assert erased.status_code == 200, erased.text
    with database.read() as session:
        assert not session.scalars(select(MarketingChannelEvidence).where(MarketingChannelEvidence.profile_id == lena)).all()
        assert not session.scalars(select(MarketingHourEvidence).where(MarketingHourEvidence.profile_id == lena)).all()
