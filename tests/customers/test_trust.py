"""Trust boundaries of the identity graph, attacked through the public HTTP API as an attacker
holding a website's (public) write key would (docs/customers.md, "Trust")."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from seamline.app import create_app
from seamline.customers.signing import user_hash
from seamline.customers.models import CustomerIdentity
from seamline.inbox.models import InboxMessage

VICTIM_EMAIL = "victim@example.com"
VICTIM_PHONE = "+79161110000"
VICTIM_NEW_PHONE = "+79162220000"
ATTACKER_PHONE = "+79169990000"
SECRET = "site-identity-secret"


@pytest.fixture
def settings(database, settings_for):
    return settings_for(database.url, login_codes_reveal=True, inbox_webchat_identity_secret=SECRET,
                        inbox_sms_provider="generic", inbox_sms_api_url="http://127.0.0.1:9/sms")


@pytest.fixture
def server(write_headers) -> dict[str, str]:
    """The shop's backend: a secret write key."""
    return write_headers


@pytest.fixture
def admin(admin_headers) -> dict[str, str]:
    return admin_headers


@pytest.fixture
def victim(client, server) -> int:
    response = client.post("/v1/customers", headers=server, json={
        "identifiers": [{"type": "user_id", "value": "victim-1"}, {"type": "email", "value": VICTIM_EMAIL},
                        {"type": "phone", "value": VICTIM_PHONE}],
        "traits": {"first_name": "Анна"}, "source": "shop"})
    assert response.status_code in (200, 201), response.text
    return response.json()["customer"]["id"]


def identify(client, write_key: str, **message) -> None:
    response = client.post("/v1/identify", json={"writeKey": write_key, **message})
    assert response.status_code == 200, response.text
    assert client.app.state.event_writer.wait_idle()


def holder(database, type_: str, value: str) -> int | None:
    with database.read() as session:
        return session.scalar(select(CustomerIdentity.profile_id).where(CustomerIdentity.type == type_,
                                                                        CustomerIdentity.value == value))


def identities(client, admin, customer_id: int) -> set[tuple[str, str]]:
    body = client.get(f"/v1/customers/{customer_id}", headers=admin).json()
    return {(i["type"], i["value"]) for i in body["sections"]["identities"]}


def login(client, server, phone: str, anonymous_id: str | None = None) -> int:
    code = client.post("/v1/auth/login-codes", headers=server, json={"identifier": {"type": "phone", "value": phone}})
    assert code.status_code == 202, code.text
    body = {"identifier": {"type": "phone", "value": phone}, "code": code.json()["code"]}
    if anonymous_id:
        body["anonymous_id"] = anonymous_id
    verified = client.post("/v1/auth/login-codes/verify", headers=server, json=body)
    assert verified.status_code == 200, verified.text
    return verified.json()["customer_id"]


def test_a_browser_cannot_attach_its_phone_to_someone_elses_profile(client, database, write_key, server, admin, victim):
    identify(client, write_key, anonymousId="attacker-cookie", traits={"email": VICTIM_EMAIL, "phone": ATTACKER_PHONE})

    assert identities(client, admin, victim) == {("user_id", "victim-1"), ("email", VICTIM_EMAIL), ("phone", VICTIM_PHONE)}
    assert holder(database, "anonymous_id", "attacker-cookie") != victim
    # The attacker's phone logs the attacker into their own profile, never the victim's.
    assert login(client, server, ATTACKER_PHONE) != victim
    # The victim's own login still lands on the victim.
    assert login(client, server, VICTIM_PHONE) == victim


def test_a_user_id_or_a_user_id_with_traits_from_a_browser_joins_nothing(client, database, write_key, admin, victim):
    identify(client, write_key, anonymousId="attacker-cookie", userId="victim-1", traits={"phone": ATTACKER_PHONE})
    identify(client, write_key, userId="victim-1", traits={"phone": ATTACKER_PHONE, "first_name": "Hacker"})

    assert identities(client, admin, victim) == {("user_id", "victim-1"), ("email", VICTIM_EMAIL), ("phone", VICTIM_PHONE)}
    traits = client.get(f"/v1/customers/{victim}", headers=admin).json()["sections"]["profile"]["traits"]
    assert traits["first_name"]["value"] == "Анна"


def test_a_browser_cannot_overwrite_a_verified_trait_nor_set_a_privileged_one(client, server, write_key, admin):
    created = client.post("/v1/customers", headers=server, json={
        "identifiers": [{"type": "anonymous_id", "value": "anna-cookie"}, {"type": "phone", "value": VICTIM_PHONE}],
        "traits": {"first_name": "Анна"}, "source": "shop"}).json()["customer"]["id"]
    identify(client, write_key, anonymousId="anna-cookie", traits={"first_name": "Hacker", "vip": True, "city": "Тверь"})

    traits = client.get(f"/v1/customers/{created}", headers=admin).json()["sections"]["profile"]["traits"]
    assert traits["first_name"]["value"] == "Анна"  # verified wins over a later claim
    assert "vip" not in traits  # privileged: only a trusted source sets it
    assert traits["city"]["value"] == "Тверь"  # an unverified addition is kept


def test_a_claim_made_before_the_owner_logs_in_is_taken_back_at_login(client, database, write_key, server, admin):
    """Pre-hijacking: the attacker claims a phone nobody has yet from their own browser; when
    its real owner logs in with it, they must not land in the attacker's profile."""
    identify(client, write_key, anonymousId="attacker-cookie", traits={"phone": VICTIM_NEW_PHONE, "first_name": "Hacker"})
    attacker_profile = holder(database, "anonymous_id", "attacker-cookie")
    assert holder(database, "phone", VICTIM_NEW_PHONE) == attacker_profile  # a new identifier: added, unverified

    owner = login(client, server, VICTIM_NEW_PHONE, anonymous_id="owner-cookie")

    assert owner != attacker_profile
    assert identities(client, admin, owner) == {("phone", VICTIM_NEW_PHONE), ("anonymous_id", "owner-cookie")}
    assert ("phone", VICTIM_NEW_PHONE) not in identities(client, admin, attacker_profile)
    with database.read() as session:
        phone = session.scalar(select(CustomerIdentity).where(CustomerIdentity.value == VICTIM_NEW_PHONE))
        assert phone.verified_at is not None and phone.verified_by == "login:web"


def test_a_claim_confirmed_on_the_same_device_stays_with_that_device(client, database, write_key, server):
    identify(client, write_key, anonymousId="anna-cookie", traits={"phone": VICTIM_NEW_PHONE})
    device_profile = holder(database, "anonymous_id", "anna-cookie")
    assert login(client, server, VICTIM_NEW_PHONE, anonymous_id="anna-cookie") == device_profile


def test_login_codes_go_only_to_the_identifier_they_were_asked_for(client, database, server, victim):
    # The victim's profile gets a newer verified phone; a code asked for the old one goes to the old one.
    client.post("/v1/customers", headers=server, json={
        "identifiers": [{"type": "user_id", "value": "victim-1"}, {"type": "phone", "value": VICTIM_NEW_PHONE}], "source": "shop"})
    assert client.post("/v1/auth/login-codes", headers=server,
                       json={"identifier": {"type": "phone", "value": VICTIM_PHONE}}).status_code == 202
    with database.read() as session:
        sent = session.scalars(select(InboxMessage).where(InboxMessage.direction == "out")).all()
    assert [m.meta["address"] for m in sent] == [{"phone": VICTIM_PHONE}]


def test_messages_go_only_to_verified_phones(client, database, write_key, server, admin):
    """A phone a browser typed may be anybody's: the SMS route ignores it."""
    identify(client, write_key, anonymousId="cookie-9", traits={"phone": ATTACKER_PHONE})
    customer = holder(database, "anonymous_id", "cookie-9")
    response = client.post("/v1/inbox/outbound", headers=admin,
                           json={"customer_id": customer, "text": "Your order 12 is ready", "channel": "sms"})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "customer_unreachable"


def test_a_server_side_source_is_vouched_for(client, database, admin, victim):
    created = client.post("/v1/sources", headers=admin, json={"name": "Shop backend", "channel": "server", "server_side": True})
    assert created.status_code == 201 and created.json()["server_side"] is True
    identify(client, created.json()["write_key"], anonymousId="anna-laptop", userId="victim-1", traits={"vip": True})
    assert holder(database, "anonymous_id", "anna-laptop") == victim
    traits = client.get(f"/v1/customers/{victim}", headers=admin).json()["sections"]["profile"]["traits"]
    assert traits["vip"]["value"] is True


def open_chat(client, write_key: str, **body) -> dict:
    response = client.post("/v1/webchat/sessions", json={"writeKey": write_key, **body})
    assert response.status_code in (200, 201), response.text
    return response.json()


def test_web_chat_binds_a_user_id_only_with_its_user_hash(client, database, write_key, victim):
    open_chat(client, write_key, anonymousId="attacker-cookie", userId="victim-1")
    assert holder(database, "anonymous_id", "attacker-cookie") != victim
    assert holder(database, "user_id", "victim-1") == victim

    forged = client.post("/v1/webchat/sessions", json={"writeKey": write_key, "anonymousId": "attacker-cookie",
                                                       "userId": "victim-1", "userHash": "0" * 64})
    assert forged.status_code == 401

    open_chat(client, write_key, anonymousId="anna-cookie", userId="victim-1", userHash=user_hash(SECRET, "victim-1"))
    assert holder(database, "anonymous_id", "anna-cookie") == victim


def test_web_chat_without_an_identity_secret_treats_the_user_id_as_a_claim(database, settings_for, write_key, server):
    app = create_app(settings_for(database.url), database=database)
    with TestClient(app) as client:
        victim = client.post("/v1/customers", headers=server, json={
            "identifiers": [{"type": "user_id", "value": "victim-1"}], "source": "shop"}).json()["customer"]["id"]
        open_chat(client, write_key, anonymousId="attacker-cookie", userId="victim-1")
        assert holder(database, "anonymous_id", "attacker-cookie") != victim


def test_the_web_chat_email_form_cannot_join_someone_elses_profile(client, database, write_key, victim):
    chat = open_chat(client, write_key, anonymousId="attacker-cookie")
    response = client.post("/v1/webchat/email", json={"email": VICTIM_EMAIL},
                           headers={"Authorization": f"Bearer {chat['token']}"})
    assert response.status_code < 500, response.text
    assert holder(database, "anonymous_id", "attacker-cookie") != victim


def test_a_callback_request_for_someone_elses_number_reveals_and_joins_nothing(client, database, write_key, victim):
    response = client.post("/v1/channels/telephony/callback-requests",
                           json={"writeKey": write_key, "phone": VICTIM_PHONE, "name": "Hacker", "anonymousId": "attacker-cookie"})
    assert response.status_code == 201, response.text
    assert holder(database, "anonymous_id", "attacker-cookie") is None
    assert holder(database, "phone", VICTIM_PHONE) == victim


def test_the_batch_rebuild_agrees_with_claims_refusals_and_take_backs(client, database, settings, write_key, server, victim):
    """Refused claims are never stored as links and taken-back claims are revoked: replaying
    the graph by the rules finds nothing to change."""
    from seamline.customers.identifiers import IdentifierRules
    from seamline.customers.rebuild import rebuild_profiles

    identify(client, write_key, anonymousId="attacker-cookie", traits={"email": VICTIM_EMAIL, "phone": ATTACKER_PHONE})
    identify(client, write_key, anonymousId="attacker-cookie", traits={"phone": VICTIM_NEW_PHONE})
    identify(client, write_key, anonymousId="newsletter-cookie", traits={"email": "reader@example.com"})
    login(client, server, VICTIM_NEW_PHONE, anonymous_id="owner-cookie")
    report = rebuild_profiles(database, rules=IdentifierRules(settings), dry_run=True)
    assert (report.identities_moved, report.profiles_created, report.profiles_retired) == (0, 0, 0)


def test_a_browser_identify_with_the_sites_signature_joins_the_user(client, database, write_key, victim):
    """The site signs its user's id (userHash): the tracker's identify is then a fact, and a new
    device's browsing joins the person; a wrong signature is only a claim."""
    identify(client, write_key, anonymousId="wrong-sig", userId="victim-1", context={"userHash": "f" * 64})
    assert holder(database, "anonymous_id", "wrong-sig") != victim
    identify(client, write_key, anonymousId="anna-phone", userId="victim-1",
             context={"userHash": user_hash(SECRET, "victim-1")}, traits={"vip": True})
    assert holder(database, "anonymous_id", "anna-phone") == victim
    with database.read() as session:
        from seamline.customers import service as customers_service
        traits = customers_service.traits_of(session, customers_service.identity_ids_of(session, victim))
    assert "vip" not in traits  # the signature covers the user id, not the traits


def test_the_shops_backend_links_a_cookie_to_a_customer_named_by_a_claim(client, database, write_key, server):
    """A profile whose only identifiers are a browser's claims: the shop's backend links a new
    cookie to it by customer id; the claim it names as a handle is neither vouched for nor taken
    back, so the cookie joins that very profile."""
    identify(client, write_key, userId="newcomer-1", traits={"email": "newcomer@example.com"})
    customer = holder(database, "user_id", "newcomer-1")
    merged = client.post("/v1/carts/merge", headers=server,
                         json={"anonymous_id": "second-device", "customer_id": customer, "channel": "web"})
    assert merged.status_code == 200, merged.text
    assert holder(database, "anonymous_id", "second-device") == customer == holder(database, "user_id", "newcomer-1")
    with database.read() as session:
        user = session.scalar(select(CustomerIdentity).where(CustomerIdentity.value == "newcomer-1"))
        assert user.verified_at is None
