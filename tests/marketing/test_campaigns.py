"""Campaigns through the API: variants, a holdout, a pace, a local time, an A/B test whose winner
goes to the rest, results with conversions against the holdout, cancelling."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select

from seamline.inbox.models import InboxMessage
from seamline.marketing import reactor
from seamline.marketing.journeys.models import MarketingEnrollment
from seamline.marketing.messages.models import MarketingMessage
from tests.marketing.test_journeys import advance
from tests.marketing.test_segments_api import react

PICKUP = {"kind": "click_and_collect", "location": "store-arbat"}


def people(client, headers, count: int, *, city: str = "Moscow") -> list[int]:
    ids = []
    for n in range(count):
        response = client.post("/v1/customers", headers=headers, json={
            "identifiers": [{"type": "user_id", "value": f"{city}-{n}"}, {"type": "email", "value": f"{city.lower()}{n}@example.com"}],
            "traits": {"city": city, "first_name": f"P{n}"}, "consents": [{"channel": "email", "purpose": "marketing", "granted": True}]})
        assert response.status_code in (200, 201), response.text
        ids.append(response.json()["customer"]["id"])
    return ids


def setup(client, shop, marketer, count: int = 30) -> dict:
    customers = people(client, shop["headers"], count)
    people(client, shop["headers"], 3, city="Kazan")
    segment = client.post("/v1/marketing/segments", headers=marketer, json={"name": "Moscow", "rules": {
        "type": "trait", "key": "city", "op": "eq", "value": "Moscow"}}).json()
    assert segment["member_count"] == count
    templates = [client.post("/v1/marketing/templates", headers=marketer, json={"name": name, "content": {
        "ru": {"subject": name, "text": f"Вариант {name}, {{{{ person.first_name }}}}"}}}).json()["id"] for name in ("A", "B")]
    return {"customers": customers, "segment": segment["id"], "templates": templates}


def run_campaigns(client, *, at) -> int:
    app = client.app
    return reactor.campaigns(app.state.database, app.state.settings, now=at)


def texts(client, journey_id: int) -> list[str]:
    with client.app.state.database.read() as s:
        ids = s.scalars(select(MarketingMessage.inbox_message_id).where(MarketingMessage.journey_id == journey_id,
                                                                         MarketingMessage.status == "queued")).all()
        return [m.text for m in s.scalars(select(InboxMessage).where(InboxMessage.id.in_(ids)))]


def test_variants_holdout_pace_and_results(client, shop, marketer):
    world = setup(client, shop, marketer)
    bad = client.post("/v1/marketing/campaigns", headers=marketer, json={
        "name": "x", "segment_id": world["segment"], "variants": [{"name": "A", "template_id": world["templates"][0], "percent": 60},
                                                                  {"name": "B", "template_id": world["templates"][1], "percent": 60}]})
    assert bad.status_code == 422
    created = client.post("/v1/marketing/campaigns", headers={**marketer, "Idempotency-Key": "c1"}, json={
        "name": "Winter sale", "segment_id": world["segment"], "channel": "email", "holdout_percent": 20, "per_minute": 60,
        "variants": [{"name": "A", "template_id": world["templates"][0], "percent": 50},
                     {"name": "B", "template_id": world["templates"][1], "percent": 50}]})
    assert created.status_code == 201, created.text
    campaign = created.json()
    assert campaign["status"] == "draft"
    assert client.post("/v1/marketing/campaigns", headers={**marketer, "Idempotency-Key": "c1"}, json={
        "name": "Winter sale", "segment_id": world["segment"], "variants": [{"name": "A", "template_id": world["templates"][0]}]}
    ).json()["id"] == campaign["id"]
    scheduled = client.post(f"/v1/marketing/campaigns/{campaign['id']}/schedule", headers=marketer).json()
    assert scheduled["status"] == "scheduled" and scheduled["journey_id"]
    assert client.get("/v1/marketing/journeys", headers=marketer).json() == []  # its journey is not listed as one
    start = datetime.now(timezone.utc) + timedelta(seconds=1)
    assert run_campaigns(client, at=start) == 1
    with client.app.state.database.read() as s:
        wakes = sorted(e.wake_at for e in s.scalars(select(MarketingEnrollment).where(MarketingEnrollment.journey_id == scheduled["journey_id"])))
    assert len(wakes) == 30 and wakes[-1] - wakes[0] == timedelta(seconds=29)  # 60 a minute: one a second
    advance(client, at=start + timedelta(seconds=10))
    assert 0 < len(texts(client, scheduled["journey_id"])) < 30  # the pace holds the rest back
    advance(client, at=start + timedelta(minutes=1))
    sent = texts(client, scheduled["journey_id"])
    results = client.get(f"/v1/marketing/campaigns/{campaign['id']}", headers=marketer).json()
    arms = results["results"]["arms"]
    assert results["status"] == "sent" and results["audience"] == 30
    assert sum(a["people"] for a in arms.values()) == 30 and set(arms) == {"A", "B", "holdout"}
    assert arms["holdout"]["queued"] == 0 and arms["A"]["queued"] + arms["B"]["queued"] == len(sent) == 30 - arms["holdout"]["people"]
    assert 2 <= arms["holdout"]["people"] <= 12  # 20 % of 30, give or take the hash
    assert all(t.startswith("Вариант ") for t in sent)

    # a person of arm A buys in the app: a conversion of A, measured against the holdout
    with client.app.state.database.read() as s:
        buyer = s.scalar(select(MarketingEnrollment.profile_id).where(MarketingEnrollment.journey_id == scheduled["journey_id"],
                                                                      MarketingEnrollment.arm == "A").limit(1))
    assert client.put("/v1/carts/current/lines/CREAM-50", headers=shop["headers"], params={"customer_id": buyer},
                      json={"quantity": 1, "channel": "app"}).status_code == 200
    assert client.post("/v1/carts/current/checkout", params={"customer_id": buyer}, headers={**shop["headers"], "Idempotency-Key": "o1"},
                       json={"channel": "app", "fulfilment": PICKUP}).status_code == 201
    react(client)
    arms = client.get(f"/v1/marketing/campaigns/{campaign['id']}", headers=marketer).json()["results"]["arms"]
    assert arms["A"]["converted"] == 1 and arms["A"]["revenue"] == 199000 and arms["A"]["lift"] > 0
    assert client.post(f"/v1/marketing/campaigns/{campaign['id']}/cancel", headers=marketer).status_code == 409  # sent


def test_an_ab_test_sends_the_winner_to_the_rest(client, shop, marketer):
    world = setup(client, shop, marketer, count=20)
    campaign = client.post("/v1/marketing/campaigns", headers=marketer, json={
        "name": "Test", "segment_id": world["segment"], "channel": "email",
        "ab_test": {"test_percent": 50, "metric": "converted", "after_hours": 2},
        "variants": [{"name": "A", "template_id": world["templates"][0], "percent": 50},
                     {"name": "B", "template_id": world["templates"][1], "percent": 50}]}).json()
    journey_id = client.post(f"/v1/marketing/campaigns/{campaign['id']}/schedule", headers=marketer).json()["journey_id"]
    start = datetime.now(timezone.utc) + timedelta(seconds=1)
    run_campaigns(client, at=start)
    advance(client, at=start)
    tested = client.get(f"/v1/marketing/campaigns/{campaign['id']}", headers=marketer).json()
    assert tested["status"] == "testing" and sum(a["people"] for a in tested["results"]["arms"].values()) == 10
    with client.app.state.database.read() as s:  # B converts, A does not
        b_people = s.scalars(select(MarketingEnrollment.profile_id).where(MarketingEnrollment.journey_id == journey_id,
                                                                          MarketingEnrollment.arm == "B")).all()
    for n, buyer in enumerate(b_people[:1]):
        client.put("/v1/carts/current/lines/CREAM-50", headers=shop["headers"], params={"customer_id": buyer},
                   json={"quantity": 1, "channel": "web"})
        client.post("/v1/carts/current/checkout", params={"customer_id": buyer}, headers={**shop["headers"], "Idempotency-Key": f"b{n}"},
                    json={"channel": "web", "fulfilment": PICKUP})
    react(client)
    assert run_campaigns(client, at=start + timedelta(hours=1)) == 0  # the test is still running
    assert run_campaigns(client, at=start + timedelta(hours=2, seconds=1)) == 1
    advance(client, at=start + timedelta(hours=2, seconds=2))
    done = client.get(f"/v1/marketing/campaigns/{campaign['id']}", headers=marketer).json()
    assert done["winner"] == "B" and done["status"] == "sent" and done["audience"] == 20
    rest = [t for t in texts(client, journey_id)]
    assert len(rest) == 20 and sum(t.startswith("Вариант B") for t in rest) == len(b_people) + 10  # the 10 not tested got B
    assert done["results"]["arms"]["B"]["people"] == len(b_people) + 10


def test_local_time_and_cancel(client, shop, marketer):
    world = setup(client, shop, marketer, count=3)
    body = {"name": "Morning", "segment_id": world["segment"], "channel": "email", "local_time": "10:00",
            "variants": [{"name": "A", "template_id": world["templates"][0]}]}
    campaign = client.post("/v1/marketing/campaigns", headers=marketer, json=body).json()
    journey_id = client.post(f"/v1/marketing/campaigns/{campaign['id']}/schedule", headers=marketer).json()["journey_id"]
    start = datetime.now(timezone.utc) + timedelta(seconds=1)
    run_campaigns(client, at=start)
    advance(client, at=start)
    with client.app.state.database.read() as s:
        waits = [e.wake_at for e in s.scalars(select(MarketingEnrollment).where(MarketingEnrollment.journey_id == journey_id))]
    from zoneinfo import ZoneInfo
    assert len(waits) == 3 and all(w.astimezone(ZoneInfo("Europe/Moscow")).hour == 10 for w in waits)
    later = client.post("/v1/marketing/campaigns", headers=marketer, json={**body, "name": "Later",
                                                                          "send_at": (start + timedelta(days=1)).isoformat()}).json()
    client.post(f"/v1/marketing/campaigns/{later['id']}/schedule", headers=marketer)
    cancelled = client.post(f"/v1/marketing/campaigns/{later['id']}/cancel", headers=marketer).json()
    assert cancelled["status"] == "cancelled"
    assert run_campaigns(client, at=start + timedelta(days=2)) == 0
    assert client.post(f"/v1/marketing/campaigns/{later['id']}/schedule", headers=marketer).status_code == 409


def test_cron_command_sends_a_scheduled_campaign(client, shop, marketer, settings):
    """`seamline marketing run` (cron, when no worker runs) starts the campaign and sends it."""
    import json

    from tests.test_runtime import seamline

    world = setup(client, shop, marketer, count=3)
    campaign = client.post("/v1/marketing/campaigns", headers=marketer, json={
        "name": "Cron", "segment_id": world["segment"], "channel": "email",
        "variants": [{"name": "A", "template_id": world["templates"][0]}]}).json()
    journey_id = client.post(f"/v1/marketing/campaigns/{campaign['id']}/schedule", headers=marketer).json()["journey_id"]
    out = json.loads(seamline(settings, "marketing", "run", SEAMLINE_INBOX_SMTP_HOST="127.0.0.1",
                              SEAMLINE_INBOX_EMAIL_ADDRESS="shop@example.com", SEAMLINE_MARKETING_QUIET_HOURS="").stdout)
    assert out["campaigns"] == 1  # started, and its steps run at once
    assert out["replies"] == 0  # the next best channel's reply credit runs from cron too (nobody answered yet)
    full = json.loads(seamline(settings, "marketing", "run", "--refresh", SEAMLINE_INBOX_SMTP_HOST="127.0.0.1",
                               SEAMLINE_INBOX_EMAIL_ADDRESS="shop@example.com").stdout)
    assert full["cohorts"] > 0  # the three sends' evidence, summed into their cohort and everyone's
    assert len(texts(client, journey_id)) == 3
    assert client.get(f"/v1/marketing/campaigns/{campaign['id']}", headers=marketer).json()["status"] == "sent"
