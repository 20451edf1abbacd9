"""The console's settings: channels and the web chat snippet, API keys, staff accounts, routing
rules and SLA policies, loyalty rules (admins; loyalty rules also marketers)."""

from __future__ import annotations

import re

from seamline.core.auth.schemas import Scope
from tests.conftest import make_key
from tests.web.conftest import sign_in

HX = {"HX-Request": "true"}


def post(client, path: str, csrf: str, data: dict | None = None):
    return client.post(path, data=data or {}, headers={**HX, "X-CSRF-Token": csrf})


def test_every_tab_renders_for_an_admin(client, database, staff_client):
    make_key(database, Scope.read, name="Reporting")
    csrf = staff_client("admin")
    channels = client.get("/console/settings")
    assert channels.status_code == 200 and 'data-test="settings-channels"' in channels.text
    assert 'data-test="channel-webchat"' in channels.text and 'data-test="channel-email"' in channels.text
    assert "/webchat/widget.js" in channels.text
    keys = client.get("/console/settings?tab=keys")
    assert "Reporting" in keys.text and 'data-test="key-form"' in keys.text
    staff = client.get("/console/settings?tab=staff")
    assert "admin1@example.com" in staff.text
    routing = client.get("/console/settings?tab=routing")
    assert 'data-test="rule-form"' in routing.text and 'data-test="sla-form"' in routing.text
    loyalty = client.get("/console/settings?tab=loyalty")
    assert 'data-test="loyalty-form"' in loyalty.text and 'value="5.0"' in loyalty.text

    source = post(client, "/console/settings/sources", csrf, {"name": "shop.example.com"})
    assert source.status_code == 200
    snippet = re.search(r'data-test="new-snippet"><code>(.*?)</code>', source.text, re.DOTALL).group(1)
    write_key = re.search(r'data-write-key="(sl_[^"]+)"', snippet.replace("&#34;", '"')).group(1)
    opened = client.post("/v1/webchat/sessions", json={"writeKey": write_key, "anonymousId": "a-1"})
    assert opened.status_code == 201, opened.text


def test_creating_an_api_key_shows_it_once_and_revoking_stops_it(client, staff_client):
    csrf = staff_client("admin")
    created = post(client, "/console/settings/keys", csrf, {"name": "Shop backend", "scopes": ["read", "write"]})
    assert created.status_code == 200, created.text
    secret = re.search(r'data-test="new-key-secret">([^<]+)<', created.text).group(1)
    assert client.get("/v1/customers", headers={"Authorization": f"Bearer {secret}"}).status_code == 200
    listing = client.get("/console/settings?tab=keys")
    assert "Shop backend" in listing.text and secret not in listing.text
    key_id = re.search(r'data-test="revoke-(\d+)"', listing.text).group(1)
    revoked = post(client, f"/console/settings/keys/{key_id}/revoke", csrf)
    assert revoked.status_code == 200 and "revoked" in revoked.text
    assert client.get("/v1/customers", headers={"Authorization": f"Bearer {secret}"}).status_code == 401

    no_scope = post(client, "/console/settings/keys", csrf, {"name": "Nothing"})
    assert no_scope.status_code == 422 and 'data-test="flash-error"' in no_scope.text and "scopes" in no_scope.text


def test_a_new_staff_account_can_sign_in_and_get_a_new_password(client, staff_client):
    csrf = staff_client("admin")
    created = post(client, "/console/settings/staff", csrf, {
        "email": "Olga@Example.com", "name": "Ольга", "role": "agent", "locale": "ru", "password": "s3cret-passw0rd",
        "skills": "returns lang:ru", "capacity": "4"})
    assert created.status_code == 200, created.text
    assert "olga@example.com" in created.text and 'data-test="flash-ok"' in created.text
    user_id = re.search(r'data-test="staff-(\d+)">\s*<td>Ольга', created.text).group(1)
    clerk = post(client, "/console/settings/staff", csrf, {"email": "c@example.com", "name": "C", "role": "clerk",
                                                           "locale": "en", "password": "long-enough-1"})
    assert clerk.status_code == 422 and "needs a store" in clerk.text and 'value="c@example.com"' in clerk.text
    weak = post(client, f"/console/settings/staff/{user_id}/password", csrf, {"password": "short"})
    assert weak.status_code == 422 and "at least 8" in weak.text
    assert post(client, f"/console/settings/staff/{user_id}/password", csrf, {"password": "an0ther-passw0rd"}).status_code == 200

    sign_in(client, "olga@example.com", "an0ther-passw0rd")
    assert client.get("/console/customers").status_code == 200
    assert client.get("/console/settings").status_code == 403  # an agent


def test_routing_rules_and_sla_policies(client, staff_client):
    csrf = staff_client("admin")
    added = post(client, "/console/settings/routing-rules", csrf,
                 {"name": "Returns", "pattern": "возврат|return", "skill": "returns", "position": "1", "enabled": "true"})
    assert added.status_code == 200 and "возврат|return" in added.text
    rule_id = re.search(r'data-test="delete-rule-(\d+)"', added.text).group(1)
    broken = post(client, "/console/settings/routing-rules", csrf, {"name": "Bad", "pattern": "(", "skill": "x"})
    assert broken.status_code == 422 and "Invalid regular expression" in broken.text
    deleted = post(client, f"/console/settings/routing-rules/{rule_id}/delete", csrf)
    assert deleted.status_code == 200 and f'data-test="rule-{rule_id}"' not in deleted.text

    policy = post(client, "/console/settings/sla-policies", csrf, {
        "name": "Chat", "first_response_minutes": "5", "resolution_minutes": "480", "channels": ["webchat"],
        "is_default": "true", "hours": "business", "timezone": "Europe/Moscow", "open-mon": "true", "from-mon": "09:00",
        "to-mon": "18:00"})
    assert policy.status_code == 200, policy.text
    assert re.search(r'data-test="policy-\d+">\s*<td>Chat', policy.text) and "Europe/Moscow" in policy.text
    again = post(client, "/console/settings/sla-policies", csrf, {"name": "Chat"})
    assert again.status_code == 422 and "exists" in again.text


def test_a_marketer_edits_loyalty_rules_but_nothing_else(client, database, staff_client):
    csrf = staff_client("marketer")
    page = client.get("/console/settings")
    assert page.status_code == 200 and 'data-test="settings-loyalty"' in page.text
    assert 'data-test="tab-keys"' not in page.text
    assert client.get("/console/settings?tab=keys").status_code == 403
    assert post(client, "/console/settings/keys", csrf, {"name": "x", "scopes": ["admin"]}).status_code == 403
    assert post(client, "/console/settings/staff", csrf, {"email": "x@example.com"}).status_code == 403

    form = {"name_ru": "Бонусы", "name_en": "Bonuses", "points_name_ru": "баллы", "points_name_en": "points",
            "currency": "RUB", "point_value": "100", "earn_percent": "7.5", "max_redeem_percent": "50",
            "welcome_points": "100", "birthday_points": "0", "hold_days": "14", "expiry_days": "", "tier_window_days": "365",
            "card_check_digit": "luhn", "card_prefix": "7700", "auto_enroll": "true",
            "tiers-0-code": "gold", "tiers-0-name_ru": "Золото", "tiers-0-name_en": "Gold", "tiers-0-min_spend": "50000",
            "tiers-0-earn_multiplier": "1.5", "category_multipliers-0-category": "face", "category_multipliers-0-multiplier": "2"}
    saved = post(client, "/console/settings/loyalty", csrf, form)
    assert saved.status_code == 200, saved.text
    program = client.get("/v1/loyalty/program", headers={"Authorization": f"Bearer {make_key(database, Scope.read)}"}).json()
    assert program["earn_percent"] == 7.5 and program["expiry_days"] is None and program["tiers"][0]["code"] == "gold"
    assert program["category_multipliers"] == {"face": 2.0} and program["welcome_points"] == 100

    bad_tier = post(client, "/console/settings/loyalty", csrf, {**form, "tiers-0-code": "Gold!"})
    assert bad_tier.status_code == 422 and "Tier 1: the code" in bad_tier.text and 'value="Gold!"' in bad_tier.text
    out_of_range = post(client, "/console/settings/loyalty", csrf, {**form, "earn_percent": "150"})
    assert out_of_range.status_code == 422 and "earn_percent" in out_of_range.text
    empty = post(client, "/console/settings/loyalty", csrf, {})  # an empty form must not reset the program
    assert empty.status_code == 422 and "earn_percent" in empty.text
    blank = post(client, "/console/settings/loyalty", csrf, {**form, "hold_days": " "})
    assert blank.status_code == 422 and "hold_days" in blank.text
    assert client.get("/v1/loyalty/program", headers={"Authorization": f"Bearer {make_key(database, Scope.read)}"}).json()[
        "earn_percent"] == 7.5


def test_an_agent_gets_403_and_writes_need_the_csrf_token(client, staff_client):
    csrf = staff_client("agent")
    assert client.get("/console/settings").status_code == 403
    assert post(client, "/console/settings/loyalty", csrf, {}).status_code == 403
    staff_client("admin")
    assert client.post("/console/settings/keys", data={"name": "x", "scopes": ["read"]}, headers=HX).status_code == 403
