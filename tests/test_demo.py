"""The demo data: filled through the real services, then checked through the HTTP API."""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from datetime import datetime, timezone

import pytest
from sqlalchemy import select
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from seamline.app import create_app
from seamline.channels.webpush import adapter as webpush
from seamline.cli import _settings

from seamline.commerce.models import CommerceLocation, CommerceOrder, CommerceReturn
from seamline.core.config import get_settings
from seamline.demo import (
    BROKEN_ANONYMOUS_ID,
    PLACEHOLDER_EMAIL,
    STORES,
    build_plan,
    clear_database,
    environment_file,
    fill_demo,
    has_data,
    write_environment,
)
from seamline.demo_world import PRODUCTS, SOLD_OUT, location_code
from seamline.inbox.adapters import adapter_for
from seamline.inbox.models import InboxConversation, InboxMessage
from seamline.web import demo_sink
from seamline.web.staff import service as staff_service

CUSTOMERS = 30
_SOURCE = re.compile(r"^[a-z0-9][a-z0-9_.:-]{0,63}$")


@pytest.fixture
def demo(settings, database) -> dict:
    """The customers alone (fast); `world` adds the retailer around them."""
    return fill_demo(settings, customers=CUSTOMERS, world=False)


@pytest.fixture
def world(settings, database) -> dict:
    return fill_demo(settings, customers=CUSTOMERS)


@pytest.fixture
def sqlite_world(request, database) -> dict:
    """The world on SQLite only (`seamline demo`'s database): a fill takes 3 s there, 8 s on the
    test PostgreSQL server, which the order and inbox tests already cover."""
    if not database.is_sqlite:
        pytest.skip("covered on PostgreSQL by the order and inbox tests")
    return request.getfixturevalue("world")


@pytest.fixture
def headers(demo) -> dict[str, str]:
    return {"Authorization": f"Bearer {demo['admin_key']}"}


def _all_customers(client, headers) -> list[dict]:
    items, cursor = [], None
    while True:
        params = {"limit": 7} | ({"cursor": cursor} if cursor else {})
        page = client.get("/v1/customers", params=params, headers=headers)
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if not cursor:
            return items


def test_numbers_match_what_the_api_shows(client, demo, headers):
    customers = _all_customers(client, headers)
    # every demo person ends up as exactly one profile, however many channels they used
    assert demo["customers"] == len(customers) == CUSTOMERS
    assert demo["identifiers"] == sum(len(c["identifiers"]) for c in customers)
    assert demo["merges"] > 0
    assert demo["upserts"] > 2 * CUSTOMERS


def test_admin_key_is_named_demo(client, headers):
    keys = client.get("/v1/api-keys", headers=headers)
    assert keys.status_code == 200, keys.text
    assert [(k["name"], k["scopes"]) for k in keys.json()] == [("demo", ["admin"])]


def test_people_are_known_under_several_identifier_types(client, headers):
    customers = _all_customers(client, headers)
    types_per_customer = [{i["type"] for i in c["identifiers"]} for c in customers]
    assert all(len(types) >= 2 for types in types_per_customer)
    assert sum(len(types) >= 4 for types in types_per_customer) >= CUSTOMERS // 4
    seen = Counter(t for types in types_per_customer for t in types)
    for kind in ("user_id", "anonymous_id", "email", "phone", "loyalty_card", "telegram_id"):
        assert seen[kind] > 0, kind
    # the identifiers arrived from the website, the app, the stores and the messenger
    sources = {i["source"] for c in customers for i in c["identifiers"]}
    assert {"web", "app", "telegram"} <= sources
    assert any(s.startswith("store:") for s in sources)
    assert all(_SOURCE.match(s) for s in sources)


def test_phone_in_another_format_finds_the_same_person(client, headers):
    # Anna's phone was said at the till as 8 (916) 123-45-67 and sent by the app as +79161234567
    by_local = client.get("/v1/customers/lookup", params={"phone": "8 (916) 123-45-67"}, headers=headers)
    assert by_local.status_code == 200, by_local.text
    anna = by_local.json()
    for other in ("+79161234567", "79161234567", "+7 916 123 45 67"):
        again = client.get("/v1/customers/lookup", params={"phone": other}, headers=headers)
        assert again.json()["id"] == anna["id"], other
    by_email = client.get("/v1/customers/lookup", params={"email": " Anna.Smirnova@MAIL.ru"}, headers=headers)
    assert by_email.json()["id"] == anna["id"]

    traits = anna["sections"]["profile"]["traits"]
    assert traits["first_name"]["value"] == "Анна"
    assert traits["last_name"]["value"] == "Смирнова"
    assert traits["preferred_store"]["value"] == "store:msk-tverskaya"
    types = {i["type"] for i in anna["sections"]["identities"]}
    assert {"user_id", "email", "phone", "loyalty_card", "anonymous_id"} <= types
    phone = next(i for i in anna["sections"]["identities"] if i["type"] == "phone")
    card = next(i for i in anna["sections"]["identities"] if i["type"] == "loyalty_card")
    assert phone["value"] == "+79161234567"
    # her profiles from the website and from the till were merged
    merges = client.get(f"/v1/customers/{anna['id']}/merges", headers=headers)
    assert merges.status_code == 200 and merges.json()
    by_card = client.get("/v1/customers/lookup", params={"loyalty_card": card["value"]}, headers=headers)
    assert by_card.json()["id"] == anna["id"]


def test_cyrillic_and_latin_names(client, headers):
    customers = _all_customers(client, headers)
    first_names = [c["traits"].get("first_name", "") for c in customers]
    assert any(re.fullmatch(r"[А-ЯЁ][а-яё]+", n) for n in first_names)
    assert any(re.fullmatch(r"[A-Z][a-z]+", n) for n in first_names)
    assert {c["traits"].get("locale") for c in customers} - {None} == {"ru", "en"}  # stores do not ask
    store_codes = {s.code for s in STORES}
    preferred = {c["traits"]["preferred_store"] for c in customers if "preferred_store" in c["traits"]}
    assert preferred and preferred <= store_codes
    for c in customers:
        if "birthday" in c["traits"]:
            datetime.strptime(c["traits"]["birthday"], "%Y-%m-%d")


def test_family_laptop_is_an_open_conflict(client, headers):
    conflicts = client.get("/v1/identity-conflicts", headers=headers)
    assert conflicts.status_code == 200, conflicts.text
    items = conflicts.json()["items"]
    assert items and all(c["status"] == "open" for c in items)
    conflict = items[0]
    assert "user_id" in str(conflict["violations"])
    names = set()
    for profile_id in (conflict["profile_a_id"], conflict["profile_b_id"]):
        traits = client.get(f"/v1/customers/{profile_id}", headers=headers).json()["sections"]["profile"]["traits"]
        names.add(f"{traits['first_name']['value']} {traits['last_name']['value']}")
    assert names == {"Дмитрий Иванов", "Елена Иванова"}


def test_blocked_values_identify_nobody(client, demo, headers):
    for params in ({"email": PLACEHOLDER_EMAIL}, {"anonymous_id": BROKEN_ANONYMOUS_ID}):
        missing = client.get("/v1/customers/lookup", params=params, headers=headers)
        assert missing.status_code == 404, params
    customers = _all_customers(client, headers)
    values = {i["value"] for c in customers for i in c["identifiers"]}
    assert PLACEHOLDER_EMAIL not in values and BROKEN_ANONYMOUS_ID not in values
    # two customers got the placeholder email at the till and one login carried "undefined";
    # nobody was merged through them: still one profile per person
    assert demo["ignored_identifiers"] >= 3
    assert len(customers) == CUSTOMERS


def test_consents_given_and_withdrawn(client, headers):
    anna = client.get("/v1/customers/lookup", params={"phone": "+79161234567"}, headers=headers).json()
    consents = {(c["channel"], c["purpose"]): c["granted"] for c in anna["sections"]["consents"]}
    assert consents[("email", "personal_data")] is True
    assert ("sms", "marketing") in consents
    marketing = []
    for customer in _all_customers(client, headers):
        current = client.get(f"/v1/customers/{customer['id']}/consents", headers=headers).json()
        marketing += [c["granted"] for c in current if c["purpose"] == "marketing"]
    # some said yes, some said no (or unsubscribed later)
    assert True in marketing and False in marketing


def test_plan_is_deterministic():
    now = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)
    first, second = build_plan(60, now=now), build_plan(60, now=now)
    assert [s.request.model_dump() for s in first] == [s.request.model_dump() for s in second]
    assert build_plan(60, seed=1, now=now)[10].request != first[10].request
    assert all(s.request.timestamp < now for s in first)
    assert all(_SOURCE.match(s.request.source) for s in first)
    # a smaller demo is the start of a bigger one
    assert [s.request for s in build_plan(10, now=now)] == [s.request for s in first if s.person < 10]


def test_tiny_demos(settings, database):
    for count in (0, 1, 2):  # the world is made once, by the first fill; the others add customers
        summary = fill_demo(settings, customers=count, database=database)
        assert summary["customers"] >= min(count, 1)
        assert summary["products"] == len(PRODUCTS)
        assert (summary["storefront_api_key"] is None) == (count > 0)


#: What `seamline demo` sets so its channels send to the local sink.
DEMO_SINK_SETTINGS = tuple(demo_sink.channel_settings("http://127.0.0.1:8000", 2525))


@pytest.fixture
def clean_settings_cache(monkeypatch):
    # the CLI writes SEAMLINE_DATABASE_URL (and the stores' blocked phones) into os.environ:
    # monkeypatch puts the old values back
    monkeypatch.setenv("SEAMLINE_DATABASE_URL", "sqlite:///unused-by-this-test.db")
    for name in ("SEAMLINE_BLOCKED_EXTRA_VALUES", "SEAMLINE_STOREFRONT_API_KEY", "SEAMLINE_STOREFRONT_WRITE_KEY",
                 "SEAMLINE_STOREFRONT_APP_WRITE_KEY", "SEAMLINE_LOGIN_CODES_REVEAL", "SEAMLINE_STOREFRONT_PRODUCTS",
                 "SEAMLINE_DEMO", "SEAMLINE_INBOX_WEBPUSH_VAPID_PRIVATE_KEY", *DEMO_SINK_SETTINGS):
        monkeypatch.setenv(name, "")  # recorded, so that undo removes what the CLI sets too
        monkeypatch.delenv(name)
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


def test_cli_demo(tmp_path, clean_settings_cache):
    from seamline.cli import app

    path = tmp_path / "demo.db"
    result = CliRunner().invoke(app, ["demo", "--no-serve", "--database", str(path), "--customers", "20"])
    assert result.exit_code == 0, result.output
    assert path.exists()
    assert "20 customers" in result.output
    assert "+7" in os.environ["SEAMLINE_BLOCKED_EXTRA_VALUES"]  # the stores' shared phones link nobody
    key = re.search(r"admin API key: (sl_\S+)", result.output)
    assert key, result.output
    for shown in ("/console/", "/shop/", "http://localhost:8000/app/", "/docs", "agent@demo.seamline", "agent-demo",
                  "filled in", "Seamline demo is ready: `seamline serve`, then open http://127.0.0.1:8000/"):
        assert shown in result.output, shown
    # the storefront served next uses the demo's keys, and shows login codes on screen
    assert os.environ["SEAMLINE_STOREFRONT_API_KEY"].startswith("sl_")
    assert os.environ["SEAMLINE_STOREFRONT_WRITE_KEY"].startswith("sl_")
    assert os.environ["SEAMLINE_STOREFRONT_APP_WRITE_KEY"].startswith("sl_")  # the app look's own source (channel app)
    assert os.environ["SEAMLINE_LOGIN_CODES_REVEAL"] == "true"
    assert os.environ["SEAMLINE_DEMO"] == "true"  # the page at / lists the logins; readable logs
    assert "other commands on this database: SEAMLINE_DATABASE_URL=" in result.output  # not the usual seamline.db

    # `seamline serve` (another process) on the demo's database finds the storefront's keys beside it
    kept = tmp_path / "demo.db.demo.json"
    assert kept.stat().st_mode & 0o077 == 0  # it holds a write key: its owner's only
    assert json.loads(kept.read_text())["SEAMLINE_STOREFRONT_API_KEY"] == os.environ["SEAMLINE_STOREFRONT_API_KEY"]
    for name in ("SEAMLINE_BLOCKED_EXTRA_VALUES", "SEAMLINE_STOREFRONT_API_KEY", "SEAMLINE_STOREFRONT_WRITE_KEY",
                 "SEAMLINE_STOREFRONT_APP_WRITE_KEY", "SEAMLINE_LOGIN_CODES_REVEAL", "SEAMLINE_STOREFRONT_PRODUCTS",
                 "SEAMLINE_DEMO", "SEAMLINE_INBOX_WEBPUSH_VAPID_PRIVATE_KEY", *DEMO_SINK_SETTINGS):
        del os.environ[name]
    get_settings.cache_clear()
    served = _settings(None)
    assert served.storefront_api_key and served.storefront_write_key and served.login_codes_reveal and served.demo
    assert served.storefront_app_write_key and served.storefront_app_write_key != served.storefront_write_key
    assert served.blocked_extra_values and served.storefront_products
    # web push is on, with the demo's own key (the shop's "Notify me" and the abandoned cart's reminder)
    assert webpush.ADAPTER.configured(served) and webpush.public_key(served)
    # the demo's channels send to its local sink (web/demo_sink.py), on the demo's own address
    assert served.inbox_telegram_api_base == "http://127.0.0.1:8000/demo/sink/telegram"
    assert served.inbox_smtp_host == "127.0.0.1" and served.inbox_smtp_security == "none"
    assert all(adapter_for(c).configured(served) for c in ("telegram", "whatsapp", "vk", "email"))
    quiet = {"serve_worker": False, "commerce_expire_interval_seconds": 0, "commerce_refund_retry_seconds": 0,
             "loyalty_job_interval_seconds": 0, "inbox_job_interval_seconds": 0,
             "inbox_imap_poll_seconds": 0}
    with TestClient(create_app(served.model_copy(update=quiet))) as client:
        shop = client.get("/shop/")
        landing = client.get("/")
    assert shop.status_code == 200 and 'data-test="product-card"' in shop.text
    assert "agent@demo.seamline" in landing.text and "agent-demo" in landing.text  # served again: still the demo


def test_cli_demo_leaves_other_data_alone(tmp_path, clean_settings_cache):
    """The demo fills an empty database or replaces its own, never a database with other data."""
    from seamline.cli import app

    path = tmp_path / "mine.db"
    url = f"sqlite:///{path}"
    assert CliRunner().invoke(app, ["db", "upgrade", "--database-url", url]).exit_code == 0
    assert CliRunner().invoke(app, ["apikey", "create", "--scope", "read", "--database-url", url]).exit_code == 0
    result = CliRunner().invoke(app, ["demo", "--no-serve", "--database", str(path), "--customers", "1"])
    assert result.exit_code == 1
    assert "holds data the demo did not make" in result.output and "Traceback" not in result.output
    assert has_data(url) and not environment_file(url).exists()
    # an earlier demo's file (its settings beside it) is made way for; an empty database is fine as it is
    write_environment(url, {"SEAMLINE_LOGIN_CODES_REVEAL": "true"})
    assert clear_database(url) is None
    assert not path.exists() and not environment_file(url).exists()
    assert clear_database(url) is None


# --- the world around the customers ---------------------------------------------------------------


def test_world_orders_in_every_state(client, world, database):
    headers = {"Authorization": f"Bearer {world['admin_key']}"}
    by_status = world["orders_by_status"]
    for status in ("pending_payment", "confirmed", "ready_for_pickup", "shipped", "completed", "cancelled"):
        assert by_status.get(status, 0) > 0, status
    assert world["orders"] == sum(by_status.values()) >= CUSTOMERS // 2
    assert world["products"] == len(PRODUCTS) and world["order_errors"] == []
    with database.read() as session:
        placed = session.scalars(select(CommerceOrder)).all()
        locations = {loc.id: loc.code for loc in session.scalars(select(CommerceLocation))}
        returned = session.scalars(select(CommerceReturn)).all()
    assert {o.channel for o in placed} == {"web", "app", "store", "call_center"}
    assert all(o.profile_id is not None for o in placed)  # every order is someone's
    assert {o.fulfilment for o in placed} == {"click_and_collect", "delivery", "in_store"}
    assert all(o.pickup_code for o in placed if o.status == "ready_for_pickup")
    days = {o.created_at.date() for o in placed}
    assert len(days) > 10  # spread over the last two months
    # Anna's cream: bought in the app, collected near her office, one tube back in her home store
    anna = client.get("/v1/customers/lookup", params={"phone": "+79161234567"}, headers=headers).json()
    journey = next(o for o in placed if o.profile_id == anna["id"] and o.channel == "app")
    assert journey.status == "completed" and locations[journey.pickup_location_id] == "msk-city"
    back = client.get(f"/v1/orders/{journey.id}/returns", headers=headers).json()
    assert [(r["location"], r["lines"][0]["sku"], r["lines"][0]["quantity"]) for r in back] == [
        ("msk-tverskaya", "CREAM-50", 1)]
    assert any(not r.full and r.location_id != o.pickup_location_id
               for r in returned for o in placed if o.id == r.order_id)
    balance = client.get(f"/v1/customers/{anna['id']}/loyalty/balance", headers=headers).json()
    assert balance["points"] > 0 and balance["pending"] > 0  # the welcome points; the cream's, on hold
    entries = client.get(f"/v1/customers/{anna['id']}/loyalty/entries", headers=headers).json()["items"]
    assert {"welcome", "earn", "reverse"} <= {e["kind"] for e in entries}
    assert world["loyalty_accounts"] >= CUSTOMERS // 3
    assert client.get("/v1/loyalty/check", headers=headers).json()["ok"] is True


def test_world_stock_in_several_stores(client, sqlite_world):
    world = sqlite_world
    headers = {"Authorization": f"Bearer {world['admin_key']}"}
    stores = {location_code(s.code) for s in STORES if s.kind == "store"}
    locations = {loc["code"]: loc for loc in client.get("/v1/locations", headers=headers).json()}
    assert stores <= set(locations) and all(locations[s]["pickup_enabled"] for s in stores)
    assert any(loc["kind"] == "warehouse" for loc in locations.values())
    cream = {row["location"]: row for row in client.get("/v1/stock/CREAM-50", headers=headers).json()}
    assert sum(cream[s]["available"] > 0 for s in stores) >= 3
    sold_out = client.get(f"/v1/stock/{SOLD_OUT}", headers=headers).json()
    assert sold_out and all(row["available"] == 0 and row["on_hand"] == 0 for row in sold_out)
    low = [row for p in PRODUCTS for v in p.variants for row in client.get(f"/v1/stock/{v[0]}", headers=headers).json()
           if row["location"] in stores and 0 < row["on_hand"] <= 2]
    assert low  # some shelves are nearly empty
    nearby = client.get("/v1/stock/CREAM-50/nearby", params={"latitude": 55.75, "longitude": 37.6},
                        headers=headers).json()
    assert nearby[0]["location"] in {"msk-tverskaya", "msk-city"}


def test_world_inbox(client, world, database):
    headers = {"Authorization": f"Bearer {world['admin_key']}"}
    states = world["conversations_by_state"]
    assert states["queued"] > 0 and states["assigned"] > 0 and states["resolved"] > 0
    assert world["conversations"] >= 20
    queue = client.get("/v1/inbox/queue", headers=headers).json()["items"]
    assert len(queue) == states["queued"]
    with database.read() as session:
        conversations = session.scalars(select(InboxConversation)).all()
        messages = session.scalars(select(InboxMessage)).all()
        orders_by = {o.profile_id for o in session.scalars(select(CommerceOrder))}
    customer_in = {(m.conversation_id, m.channel) for m in messages if m.direction == "in"}
    assert {c for _, c in customer_in} == {"webchat", "telegram", "whatsapp", "email", "vk"}
    assert any(m.kind == "note" for m in messages)
    # agents answered in the web chat, which needs no provider; nothing waits for an unconfigured one
    assert any(m.direction == "out" and m.author_agent_id for m in messages)
    assert all(m.delivery_status == "sent" for m in messages if m.direction == "out")
    # someone wrote from two channels into one history, and has orders too
    channels_of: dict[int, set[str]] = {}
    owner = {c.id: c.customer_id for c in conversations}
    for conversation_id, channel in customer_in:
        channels_of.setdefault(owner[conversation_id], set()).add(channel)
    assert any(len(channels) >= 2 and customer in orders_by for customer, channels in channels_of.items())
    # the journey's question from Telegram, with the order and the points in one window
    anna = client.get("/v1/customers/lookup", params={"phone": "+79161234567"}, headers=headers).json()
    hers = client.get("/v1/inbox/conversations", params={"customer_id": anna["id"]}, headers=headers).json()["items"]
    assert [c["channel"] for c in hers] == ["telegram"]
    window = client.get(f"/v1/inbox/conversations/{hers[0]['id']}/window", headers=headers)
    assert window.status_code == 200, window.text
    assert window.json()["customer"]["sections"]["orders"]
    assert client.get("/v1/inbox/canned-responses", params={"q": "возврат"}, headers=headers).json()["items"]
    assert client.get("/v1/inbox/canned-responses", params={"q": "return"}, headers=headers).json()["items"]


def test_world_staff_and_storefront_keys(client, sqlite_world, database, settings):
    world = sqlite_world
    logins = {login["email"]: login for login in world["logins"]}
    assert world["staff_users"] == len(logins) == 5
    assert {login["role"] for login in logins.values()} == {"admin", "agent", "clerk", "marketer"}
    with database.write() as session:
        for email, login in logins.items():
            user = staff_service.find_staff_user(session, email)
            assert user is not None and user.role == login["role"] and user.locale == login["locale"], email
            assert (user.agent_id is not None) == (login["role"] == "agent")
            staff_service.login(session, settings=settings, email=email, password=login["password"])
        clerk = staff_service.find_staff_user(session, "clerk@demo.seamline")
        assert clerk.store == location_code(STORES[0].code)
    agents = client.get("/v1/inbox/agents", headers={"Authorization": f"Bearer {world['admin_key']}"}).json()["items"]
    assert {a["email"] for a in agents} == {"agent@demo.seamline", "agent2@demo.seamline"}
    assert all(a["status"] == "online" and a["skills"] for a in agents)
    keys = client.get("/v1/api-keys", headers={"Authorization": f"Bearer {world['admin_key']}"}).json()
    assert ("storefront", ["write"]) in [(k["name"], k["scopes"]) for k in keys]
    storefront = {"Authorization": f"Bearer {world['storefront_api_key']}"}
    assert client.get("/v1/catalog/products/hand-cream", headers=storefront).status_code == 200
    chat = client.post("/v1/webchat/sessions", json={"writeKey": world["storefront_write_key"], "anonymousId": "visitor-1"})
    assert chat.status_code in (200, 201), chat.text


def test_world_marketing(world, database):
    """The marketer finds segments filled, the abandoned cart and the store visit running, more
    ready-made journeys as drafts, and a campaign draft with two variants and a holdout."""
    from seamline.marketing.campaigns.models import MarketingCampaign
    from seamline.marketing.journeys.models import MarketingJourney
    from seamline.marketing.segments.models import MarketingSegment

    with database.read() as session:
        segments = {s.name: s.member_count for s in session.scalars(select(MarketingSegment))}
        journeys = {j.template: j.status for j in session.scalars(select(MarketingJourney))}
        campaign = session.scalar(select(MarketingCampaign))
    assert len(segments) == 3 and all(count > 0 for count in segments.values()), segments
    assert journeys == {"abandoned_cart": "active", "store_visit": "active", "birthday": "draft", "post_purchase_nps": "draft",
                        "win_back": "draft"}
    assert campaign.status == "draft" and [v["name"] for v in campaign.variants] == ["A", "B"] and campaign.holdout_percent == 10
