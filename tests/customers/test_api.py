"""The customers API through HTTP: one profile per person across every identifier, merge rules,
conflicts, manual merge and unmerge, consents, export and erasure."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from seamline.app import create_app
from seamline.models import metadata
from tests.core.test_auth import assert_error

# --- helpers ---------------------------------------------------------------------------------


def ids(*pairs: tuple[str, str]) -> list[dict[str, str]]:
    return [{"type": t, "value": v} for t, v in pairs]


class Api:
    """Thin wrapper so the tests read as the behaviour they check."""

    def __init__(self, client: TestClient, write: dict[str, str], admin: dict[str, str]):
        self.client, self.write, self.admin = client, write, admin

    def upsert(self, *pairs: tuple[str, str], expect: int = 200, **extra: Any) -> dict[str, Any]:
        response = self.client.post("/v1/customers", json={"identifiers": ids(*pairs), **extra}, headers=self.write)
        assert response.status_code == expect, response.text
        return response.json()

    def get(self, customer_id: int, expect: int = 200) -> dict[str, Any]:
        response = self.client.get(f"/v1/customers/{customer_id}", headers=self.write)
        assert response.status_code == expect, response.text
        return response.json()

    def lookup(self, **params: str):
        return self.client.get("/v1/customers/lookup", params=params, headers=self.write)

    def listing(self, **params: Any) -> dict[str, Any]:
        response = self.client.get("/v1/customers", params=params, headers=self.write)
        assert response.status_code == 200, response.text
        return response.json()

    def merges(self, customer_id: int) -> list[dict[str, Any]]:
        response = self.client.get(f"/v1/customers/{customer_id}/merges", headers=self.write)
        assert response.status_code == 200, response.text
        return response.json()

    def merge(self, customer_id: int, other_id: int, **extra: Any):
        return self.client.post(
            f"/v1/customers/{customer_id}/merge", json={"customer_id": other_id, **extra}, headers=self.admin
        )

    def undo(self, merge_id: int):
        return self.client.post(f"/v1/merges/{merge_id}/undo", headers=self.admin)

    def conflicts(self, status: str = "open") -> list[dict[str, Any]]:
        response = self.client.get("/v1/identity-conflicts", params={"status": status}, headers=self.write)
        assert response.status_code == 200, response.text
        return response.json()["items"]

    def resolve(self, conflict_id: int, action: str):
        return self.client.post(
            f"/v1/identity-conflicts/{conflict_id}/resolve", json={"action": action}, headers=self.admin
        )

    def consents(self, customer_id: int, *consents: dict[str, Any]):
        return self.client.post(f"/v1/customers/{customer_id}/consents", json=list(consents), headers=self.write)

    def export(self, customer_id: int) -> dict[str, Any]:
        response = self.client.get(f"/v1/customers/{customer_id}/export", headers=self.admin)
        assert response.status_code == 200, response.text
        return response.json()

    def erase(self, customer_id: int, reason: str = "Data-subject request #17"):
        return self.client.post(f"/v1/customers/{customer_id}/erase", json={"reason": reason}, headers=self.admin)


@pytest.fixture
def api(client, write_headers, admin_headers) -> Api:
    return Api(client, write_headers, admin_headers)


def identifiers_of(customer: dict[str, Any]) -> set[tuple[str, str]]:
    return {(i["type"], i["value"]) for i in customer["sections"]["identities"]}


def traits_of(customer: dict[str, Any]) -> dict[str, Any]:
    return {k: v["value"] for k, v in customer["sections"]["profile"]["traits"].items()}


def consents_of(customer: dict[str, Any]) -> dict[tuple[str, str], bool]:
    return {(c["channel"], c["purpose"]): c["granted"] for c in customer["sections"]["consents"]}


def consent(channel: str, purpose: str, granted: bool, **extra: Any) -> dict[str, Any]:
    return {"channel": channel, "purpose": purpose, "granted": granted, **extra}


def merge_history_rows(database) -> list[int]:
    """Ids of every recorded merge (the erased profile's history is no longer readable by HTTP)."""
    from seamline.customers.models import CustomerMerge

    with database.read() as session:
        return list(session.scalars(select(CustomerMerge.id).order_by(CustomerMerge.id)))


def dump_database(database) -> str:
    """Every row of every table, as text."""
    lines = []
    with database.read_engine.connect() as connection:
        for table in metadata.sorted_tables:
            for row in connection.execute(select(table)):
                lines.append(f"{table.name}: {tuple(row)!r}")
    return "\n".join(lines)


# --- upsert, normalization, lookup -----------------------------------------------------------


def test_upsert_creates_then_returns_the_same_profile(api):
    first = api.upsert(("email", "anna@example.com"), traits={"first_name": "Анна"})
    assert first["created"] is True
    assert first["merged_customer_ids"] == [] and first["conflict_ids"] == [] and first["ignored_identifiers"] == []
    customer = first["customer"]
    assert customer["status"] == "active"
    assert identifiers_of(customer) == {("email", "anna@example.com")}
    assert traits_of(customer) == {"first_name": "Анна"}
    assert set(customer["sections"]) == {"profile", "identities", "consents"}  # what the upsert writes ...
    whole = api.get(customer["id"])
    assert {"orders", "loyalty", "conversations"} <= set(whole["sections"])  # ... the 360 is read on its own
    assert {k: whole["sections"][k] for k in customer["sections"]} == customer["sections"]

    second = api.upsert(("email", "anna@example.com"))
    assert second["created"] is False
    assert second["customer"]["id"] == customer["id"]
    assert traits_of(second["customer"]) == {"first_name": "Анна"}


def test_phone_formats_are_one_identifier(api):
    first = api.upsert(("phone", "8 (916) 123-45-67"))
    assert identifiers_of(first["customer"]) == {("phone", "+79161234567")}
    for fmt in ("+79161234567", "+7 916 123 45 67", "89161234567", "9161234567"):
        again = api.upsert(("phone", fmt))
        assert again["customer"]["id"] == first["customer"]["id"], fmt
        assert again["created"] is False
    assert len(api.listing()["items"]) == 1


def test_emails_are_trimmed_and_lowercased(api):
    first = api.upsert(("email", "  Anna.Petrova@Example.COM "))
    assert identifiers_of(first["customer"]) == {("email", "anna.petrova@example.com")}
    second = api.upsert(("email", "anna.petrova@example.com"))
    assert second["customer"]["id"] == first["customer"]["id"]


def test_several_identifiers_make_one_profile(api):
    result = api.upsert(
        ("email", "anna@example.com"), ("phone", "+79161234567"), ("telegram_id", "5512345"), ("user_id", "crm-1")
    )
    assert identifiers_of(result["customer"]) == {
        ("email", "anna@example.com"),
        ("phone", "+79161234567"),
        ("telegram_id", "5512345"),
        ("user_id", "crm-1"),
    }
    # Each of them now finds the profile.
    for type_name, value in [("telegram_id", "5512345"), ("user_id", "crm-1"), ("phone", "8 916 123-45-67")]:
        response = api.lookup(**{type_name: value})
        assert response.status_code == 200, response.text
        assert response.json()["id"] == result["customer"]["id"]


def test_lookup_any_format_and_exactly_one_parameter(api):
    created = api.upsert(("phone", "+79161234567"), ("email", "anna@example.com"))
    cid = created["customer"]["id"]
    for params in ({"phone": "8 (916) 123-45-67"}, {"phone": "+79161234567"}, {"email": " ANNA@example.com"}):
        response = api.lookup(**params)
        assert response.status_code == 200, (params, response.text)
        assert response.json()["id"] == cid
        assert identifiers_of(response.json()) == {("phone", "+79161234567"), ("email", "anna@example.com")}

    error = assert_error(api.lookup(), 422, "one_identifier_required")
    assert "phone" in error["details"]["types"]
    error = assert_error(api.lookup(phone="+79161234567", email="anna@example.com"), 422, "one_identifier_required")
    assert sorted(error["details"]["given"]) == ["email", "phone"]
    # A parameter given twice is refused before the lookup reads it (core/openapi.one_value_per_query_parameter).
    error = assert_error(
        api.client.get("/v1/customers/lookup?phone=%2B79161234567&phone=89161234567", headers=api.write),
        422,
        "validation_error",
    )
    assert error["details"]["errors"][0]["type"] == "repeated_parameter"
    assert_error(api.lookup(passport="1"), 422, "unknown_identifier_type")
    assert_error(api.lookup(phone="12"), 422, "invalid_phone")
    error = assert_error(api.lookup(email="boris@example.com"), 404, "customer_not_found")
    assert error["details"] == {"type": "email", "value": "boris@example.com"}


def test_get_by_id_and_merged_id_returns_survivor(api):
    a = api.upsert(("email", "a@example.com"))["customer"]["id"]
    b = api.upsert(("phone", "+79161234567"))["customer"]["id"]
    merged = api.upsert(("email", "a@example.com"), ("phone", "+79161234567"))
    assert merged["merged_customer_ids"] == [b]
    assert merged["customer"]["id"] == a

    survivor = api.get(a)
    assert identifiers_of(survivor) == {("email", "a@example.com"), ("phone", "+79161234567")}
    via_old_id = api.get(b)
    assert via_old_id["id"] == a
    assert via_old_id == survivor
    assert_error(api.client.get("/v1/customers/987654", headers=api.write), 404, "customer_not_found")


# --- list, search, pagination ----------------------------------------------------------------


def test_list_walks_every_profile_once_with_a_cursor(api):
    created = [api.upsert(("email", f"p{i:02}@example.com"))["customer"]["id"] for i in range(11)]
    # A merged profile disappears from the list; its survivor stays.
    api.upsert(("email", "p00@example.com"), ("email", "p01@example.com"))
    expected = [c for c in created if c != created[1]]

    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 4, **({"cursor": cursor} if cursor else {})}
        page = api.listing(**params)
        pages += 1
        assert len(page["items"]) <= 4
        seen.extend(item["id"] for item in page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert pages < 10
    assert pages == 3
    assert seen == expected  # in id order, no duplicates, none missing
    first = api.listing(limit=1)["items"][0]
    assert first["status"] == "active"
    assert {(i["type"], i["value"]) for i in first["identifiers"]} == {
        ("email", "p00@example.com"),
        ("email", "p01@example.com"),
    }


def test_list_when_the_last_page_is_exactly_full(api):
    for i in range(4):
        api.upsert(("user_id", f"u{i}"))
    page = api.listing(limit=2)
    second = api.listing(limit=2, cursor=page["next_cursor"])
    assert len(second["items"]) == 2
    assert second["next_cursor"] is None


def test_search_by_phone_in_another_format(api):
    anna = api.upsert(("phone", "+79161234567"), ("email", "anna@example.com"))["customer"]["id"]
    boris = api.upsert(("phone", "+79031112233"), ("email", "boris@example.com"))["customer"]["id"]

    found = api.listing(q="8 (916) 123-45-67")["items"]
    assert [c["id"] for c in found] == [anna]
    assert [c["id"] for c in api.listing(q="BORIS@example.com")["items"]] == [boris]
    assert [c["id"] for c in api.listing(q="anna@")["items"]] == [anna]  # prefix
    assert [c["id"] for c in api.listing(q="+7")["items"]] == [anna, boris]
    assert api.listing(q="nobody@example.com")["items"] == []
    assert [c["id"] for c in api.listing(identifier_type="email", q="boris")["items"]] == [boris]
    assert api.listing(identifier_type="phone", q="boris")["items"] == []
    # LIKE wildcards are literal
    assert api.listing(q="%")["items"] == [] and api.listing(q="_")["items"] == []
    assert_error(
        api.client.get("/v1/customers", params={"identifier_type": "passport"}, headers=api.write),
        422,
        "unknown_identifier_type",
    )


# --- traits ----------------------------------------------------------------------------------


def test_traits_latest_wins_by_timestamp_and_keep_their_source(api):
    email = ("email", "anna@example.com")
    api.upsert(email, traits={"city": "Moscow", "tier": "gold"}, source="crm", timestamp="2026-03-01T10:00:00Z")
    older = api.upsert(email, traits={"city": "Tver"}, source="pos", timestamp="2026-02-01T10:00:00Z")
    traits = older["customer"]["sections"]["profile"]["traits"]
    assert traits["city"]["value"] == "Moscow"  # an older observation does not overwrite
    assert traits["city"]["source"] == "crm"
    assert traits["city"]["observed_at"].startswith("2026-03-01T10:00:00")

    newer = api.upsert(email, traits={"city": "Kazan"}, source="app", timestamp="2026-04-01T10:00:00+03:00")
    traits = newer["customer"]["sections"]["profile"]["traits"]
    assert traits["city"]["value"] == "Kazan"
    assert traits["city"]["source"] == "app"
    assert traits["city"]["observed_at"].startswith("2026-04-01T07:00:00")  # kept in UTC
    assert traits["tier"] == {**traits["tier"], "value": "gold", "source": "crm"}

    unset = api.upsert(email, traits={"tier": None}, timestamp="2026-05-01T00:00:00Z")
    assert "tier" not in traits_of(unset["customer"])


def test_traits_latest_wins_across_identifiers_of_a_merged_profile(api):
    api.upsert(("email", "anna@example.com"), traits={"name": "Anna"}, source="web", timestamp="2026-01-02T00:00:00Z")
    api.upsert(("phone", "+79161234567"), traits={"name": "Anya"}, source="pos", timestamp="2026-01-01T00:00:00Z")
    merged = api.upsert(("email", "anna@example.com"), ("phone", "+79161234567"))
    name = merged["customer"]["sections"]["profile"]["traits"]["name"]
    assert (name["value"], name["source"]) == ("Anna", "web")


# --- blocked values --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shared",
    [("email", "test@test.com"), ("anonymous_id", "anonymous"), ("user_id", "-1"), ("user_id", "null"),
     ("device_id", "0000-0000"), ("phone", "000-000-0000"), ("phone", "0"), ("email", "NULL")],
)
def test_blocked_values_never_link_two_profiles(api, shared):
    first = api.upsert(("email", "anna@example.com"), shared)
    second = api.upsert(("email", "boris@example.com"), shared)
    assert first["customer"]["id"] != second["customer"]["id"]
    assert second["created"] is True and second["merged_customer_ids"] == [] and second["conflict_ids"] == []
    for result in (first, second):
        assert len(result["ignored_identifiers"]) == 1
        ignored = result["ignored_identifiers"][0]
        assert ignored["type"] == shared[0] and ignored["reason"] == "blocked"
        assert shared[0] not in {t for t, _ in identifiers_of(result["customer"])} - {"email"}
        assert len(identifiers_of(result["customer"])) == 1
    assert api.lookup(**{shared[0]: shared[1]}).status_code in (404, 422)


def test_all_blocked_is_422(api):
    response = api.client.post(
        "/v1/customers",
        json={"identifiers": ids(("email", "test@test.com"), ("anonymous_id", "anonymous"))},
        headers=api.write,
    )
    error = assert_error(response, 422, "no_usable_identifier")
    assert {(b["type"], b["value"]) for b in error["details"]["blocked"]} == {
        ("email", "test@test.com"),
        ("anonymous_id", "anonymous"),
    }
    assert api.listing()["items"] == []


def test_configured_shared_phone_is_blocked(database, settings_for, write_headers):
    settings = settings_for(database.url, blocked_extra_values=["8 (495) 123-45-67"])
    with TestClient(create_app(settings, database=database)) as client:
        api = Api(client, write_headers, write_headers)
        store_phone = ("phone", "+7 495 123 45 67")
        first = api.upsert(("email", "anna@example.com"), store_phone)
        second = api.upsert(("email", "boris@example.com"), store_phone)
        assert first["customer"]["id"] != second["customer"]["id"]
        assert second["ignored_identifiers"] == [{"type": "phone", "value": "+74951234567", "reason": "blocked"}]


# --- merge rules and conflicts ---------------------------------------------------------------


def _two_accounts_through_one_browser(api) -> tuple[int, int, dict[str, Any]]:
    first = api.upsert(("user_id", "acct-1"), ("anonymous_id", "cookie-1"))
    second = api.upsert(("user_id", "acct-2"), ("anonymous_id", "cookie-1"))
    return first["customer"]["id"], second["customer"]["id"], second


def test_two_user_ids_through_a_shared_anonymous_id_do_not_merge(api):
    p1, p2, second = _two_accounts_through_one_browser(api)
    assert p1 != p2
    assert second["merged_customer_ids"] == []
    assert len(second["conflict_ids"]) == 1
    assert identifiers_of(api.get(p1)) == {("user_id", "acct-1"), ("anonymous_id", "cookie-1")}
    assert identifiers_of(api.get(p2)) == {("user_id", "acct-2")}

    (conflict,) = api.conflicts()
    assert conflict["id"] == second["conflict_ids"][0]
    assert conflict["status"] == "open"
    assert {conflict["profile_a_id"], conflict["profile_b_id"]} == {p1, p2}
    assert conflict["violations"] == {"user_id": {"limit": 1, "would_have": 2}}

    # Replaying the request does not record the conflict again.
    again = api.upsert(("user_id", "acct-2"), ("anonymous_id", "cookie-1"))
    assert again["conflict_ids"] == [] and again["customer"]["id"] == p2
    assert len(api.conflicts()) == 1


def test_resolving_a_conflict_with_merge_merges(api):
    p1, p2, second = _two_accounts_through_one_browser(api)
    conflict_id = second["conflict_ids"][0]
    response = api.resolve(conflict_id, "merge")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "merged"
    assert response.json()["resolved_by"].startswith("apikey:")

    merged = api.get(p2)
    assert merged["id"] == min(p1, p2)
    assert identifiers_of(merged) == {("user_id", "acct-1"), ("user_id", "acct-2"), ("anonymous_id", "cookie-1")}
    assert api.conflicts() == []
    assert [c["id"] for c in api.conflicts("merged")] == [conflict_id]
    history = api.merges(p1)
    assert [m["reason"] for m in history] == ["conflict_resolution"]

    # Retrying the same decision is harmless; changing it is refused.
    assert api.resolve(conflict_id, "merge").status_code == 200
    assert_error(api.resolve(conflict_id, "dismiss"), 409, "conflict_already_resolved")
    assert len(api.merges(p1)) == 1


def test_dismissing_a_conflict_keeps_profiles_apart(api):
    p1, p2, second = _two_accounts_through_one_browser(api)
    conflict_id = second["conflict_ids"][0]
    response = api.resolve(conflict_id, "dismiss")
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "dismissed"
    assert api.get(p1)["id"] == p1 and api.get(p2)["id"] == p2
    assert identifiers_of(api.get(p2)) == {("user_id", "acct-2")}
    assert api.conflicts() == [] and [c["id"] for c in api.conflicts("dismissed")] == [conflict_id]
    assert api.merges(p1) == [] and api.merges(p2) == []

    # The dismissed link is not applied again by a replay.
    replay = api.upsert(("user_id", "acct-2"), ("anonymous_id", "cookie-1"))
    assert replay["customer"]["id"] == p2 and replay["merged_customer_ids"] == [] and replay["conflict_ids"] == []
    assert_error(api.resolve(conflict_id, "merge"), 409, "conflict_already_resolved")
    assert_error(api.resolve(999999, "merge"), 404, "conflict_not_found")


def test_resolve_needs_a_known_action(api):
    _, _, second = _two_accounts_through_one_browser(api)
    assert_error(api.resolve(second["conflict_ids"][0], "split"), 422, "validation_error")
    assert len(api.conflicts()) == 1


def test_sixth_email_conflicts_by_default(api):
    emails = [("email", f"anna{i}@example.com") for i in range(1, 6)]
    five = api.upsert(*emails)
    assert len(identifiers_of(five["customer"])) == 5
    pid = five["customer"]["id"]

    sixth = api.upsert(("email", "anna1@example.com"), ("email", "anna6@example.com"))
    assert sixth["customer"]["id"] == pid
    assert len(sixth["conflict_ids"]) == 1
    (conflict,) = api.conflicts()
    assert conflict["violations"] == {"email": {"limit": 5, "would_have": 6}}
    assert len(identifiers_of(api.get(pid))) == 5
    other = api.lookup(email="anna6@example.com").json()
    assert other["id"] != pid
    assert {conflict["profile_a_id"], conflict["profile_b_id"]} == {pid, other["id"]}


def test_six_emails_in_one_request_keep_five(api):
    result = api.upsert(*[("email", f"boris{i}@example.com") for i in range(1, 7)])
    assert len(identifiers_of(result["customer"])) == 5
    assert len(result["conflict_ids"]) == 1
    assert len(api.listing()["items"]) == 2


def test_conflict_list_paginates(api):
    for i in range(3):
        api.upsert(("user_id", f"a{i}"), ("anonymous_id", f"c{i}"))
        api.upsert(("user_id", f"b{i}"), ("anonymous_id", f"c{i}"))
    first = api.client.get("/v1/identity-conflicts", params={"limit": 2}, headers=api.write).json()
    assert len(first["items"]) == 2 and first["next_cursor"]
    rest = api.client.get(
        "/v1/identity-conflicts", params={"limit": 2, "cursor": first["next_cursor"]}, headers=api.write
    ).json()
    assert rest["next_cursor"] is None
    all_ids = [c["id"] for c in first["items"] + rest["items"]]
    assert len(all_ids) == len(set(all_ids)) == 3


# --- manual merge and unmerge ----------------------------------------------------------------


def test_manual_merge_and_history(api):
    a = api.upsert(("email", "anna@example.com"))["customer"]["id"]
    b = api.upsert(("phone", "+79161234567"))["customer"]["id"]
    response = api.merge(b, a)  # order of the call does not matter: the older profile survives
    assert response.status_code == 200, response.text
    merge = response.json()
    assert (merge["survivor_id"], merge["absorbed_id"], merge["reason"]) == (a, b, "manual")
    assert merge["undone_at"] is None
    assert api.get(b)["id"] == a
    assert identifiers_of(api.get(a)) == {("email", "anna@example.com"), ("phone", "+79161234567")}
    assert [m["id"] for m in api.merges(a)] == [merge["id"]]
    assert [m["id"] for m in api.merges(b)] == [merge["id"]]  # a merged id leads to its survivor's history

    assert_error(api.merge(a, b), 409, "same_customer")
    assert_error(api.merge(a, 999999), 404, "customer_not_found")


def test_manual_merge_of_two_accounts_needs_force(api):
    a = api.upsert(("user_id", "acct-1"))["customer"]["id"]
    b = api.upsert(("user_id", "acct-2"))["customer"]["id"]
    error = assert_error(api.merge(a, b), 409, "merge_rule_violation")
    assert error["details"]["violations"] == {"user_id": {"limit": 1, "would_have": 2}}
    assert api.get(b)["id"] == b  # still apart

    forced = api.merge(a, b, force=True)
    assert forced.status_code == 200, forced.text
    assert identifiers_of(api.get(b)) == {("user_id", "acct-1"), ("user_id", "acct-2")}


def test_merge_history_of_a_chain(api):
    a = api.upsert(("email", "a@example.com"))["customer"]["id"]
    b = api.upsert(("email", "b@example.com"))["customer"]["id"]
    c = api.upsert(("email", "c@example.com"))["customer"]["id"]
    api.upsert(("email", "b@example.com"), ("email", "c@example.com"))
    api.upsert(("email", "a@example.com"), ("email", "b@example.com"))
    history = api.merges(a)
    assert [(m["survivor_id"], m["absorbed_id"]) for m in history] == [(b, c), (a, b)]
    assert all(m["reason"] == "link" and m["link_id"] for m in history)
    assert api.get(c)["id"] == a


def test_unmerge_restores_both_sides_with_later_changes(api):
    anna = api.upsert(
        ("email", "anna@example.com"),
        traits={"name": "Anna"},
        consents=[consent("email", "marketing", True)],
        source="web",
        timestamp="2026-01-01T00:00:00Z",
    )["customer"]["id"]
    boris = api.upsert(
        ("phone", "+79161234567"),
        traits={"name": "Boris", "city": "Tver"},
        consents=[consent("sms", "service", True)],
        source="pos",
        timestamp="2026-01-02T00:00:00Z",
    )["customer"]["id"]
    before_anna, before_boris = api.get(anna), api.get(boris)

    linked = api.upsert(("email", "anna@example.com"), ("phone", "+79161234567"), source="callcenter")
    assert linked["merged_customer_ids"] == [boris]
    # Later, a new identifier is linked to Boris's side only.
    later = api.upsert(("phone", "8 916 123-45-67"), ("device_id", "ios-777"), traits={"app": "ios"},
                       timestamp="2026-01-03T00:00:00Z")
    assert later["customer"]["id"] == anna
    assert identifiers_of(api.get(anna)) == {
        ("email", "anna@example.com"), ("phone", "+79161234567"), ("device_id", "ios-777")
    }
    (merge,) = api.merges(anna)

    response = api.undo(merge["id"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert sorted(body["customer_ids"]) == sorted([anna, boris])
    assert body["merge"]["undone_at"] is not None
    assert len(body["revoked_link_ids"]) == 1

    after_anna, after_boris = api.get(anna), api.get(boris)
    assert after_boris["id"] == boris and after_boris["status"] == "active"
    assert identifiers_of(after_anna) == identifiers_of(before_anna)
    assert traits_of(after_anna) == traits_of(before_anna) == {"name": "Anna"}
    assert consents_of(after_anna) == consents_of(before_anna) == {("email", "marketing"): True}
    # Boris gets back what he had, plus what was later linked to his phone.
    assert identifiers_of(after_boris) == identifiers_of(before_boris) | {("device_id", "ios-777")}
    assert traits_of(after_boris) == {"name": "Boris", "city": "Tver", "app": "ios"}
    assert consents_of(after_boris) == consents_of(before_boris) == {("sms", "service"): True}
    assert api.lookup(device_id="ios-777").json()["id"] == boris

    # Retrying the undo is harmless.
    retry = api.undo(merge["id"])
    assert retry.status_code == 200, retry.text
    assert sorted(retry.json()["customer_ids"]) == sorted([anna, boris])
    assert retry.json()["merge"]["undone_at"] == body["merge"]["undone_at"]
    assert api.get(anna) == after_anna and api.get(boris) == after_boris
    assert [m["undone_at"] for m in api.merges(anna)] == [body["merge"]["undone_at"]]

    # Replaying the linking request does not silently merge them again.
    replay = api.upsert(("email", "anna@example.com"), ("phone", "+79161234567"), source="callcenter")
    assert replay["merged_customer_ids"] == []
    assert api.get(boris)["id"] == boris

    assert_error(api.undo(999999), 404, "merge_not_found")


def test_unmerge_of_a_manual_merge(api):
    a = api.upsert(("user_id", "acct-1"), traits={"tier": "gold"})["customer"]["id"]
    b = api.upsert(("user_id", "acct-2"), traits={"tier": "silver"})["customer"]["id"]
    merge = api.merge(a, b, force=True).json()
    body = api.undo(merge["id"]).json()
    assert sorted(body["customer_ids"]) == [a, b]
    assert identifiers_of(api.get(a)) == {("user_id", "acct-1")} and traits_of(api.get(a)) == {"tier": "gold"}
    assert identifiers_of(api.get(b)) == {("user_id", "acct-2")} and traits_of(api.get(b)) == {"tier": "silver"}
    # Both are live profiles again: each can be listed and merged anew.
    assert {c["id"] for c in api.listing()["items"]} == {a, b}
    assert api.merge(a, b, force=True).status_code == 200


# --- consents --------------------------------------------------------------------------------


def test_consents_give_and_withdraw(api):
    cid = api.upsert(("email", "anna@example.com"))["customer"]["id"]
    given = api.consents(cid, consent("email", "marketing", True, source="web"), consent("sms", "service", True))
    assert given.status_code == 200, given.text
    state = {(c["channel"], c["purpose"]): (c["granted"], c["source"]) for c in given.json()}
    assert state == {("email", "marketing"): (True, "web"), ("sms", "service"): (True, "api")}

    withdrawn = api.consents(cid, consent("email", "marketing", False, source="unsubscribe_link"))
    assert withdrawn.status_code == 200
    state = {(c["channel"], c["purpose"]): (c["granted"], c["source"]) for c in withdrawn.json()}
    assert state == {("email", "marketing"): (False, "unsubscribe_link"), ("sms", "service"): (True, "api")}
    assert consents_of(api.get(cid)) == {("email", "marketing"): False, ("sms", "service"): True}
    listed = api.client.get(f"/v1/customers/{cid}/consents", headers=api.write)
    assert listed.status_code == 200 and listed.json() == withdrawn.json()

    # Repeating the current state adds nothing to the history.
    api.consents(cid, consent("email", "marketing", False))
    history = api.export(cid)["sections"]["consents"]["history"]
    assert [(h["channel"], h["granted"]) for h in history] == [("email", True), ("sms", True), ("email", False)]


def test_consents_in_upsert(api):
    result = api.upsert(
        ("phone", "+79161234567"), consents=[consent("whatsapp", "marketing", True)], source="store_42"
    )
    (given,) = result["customer"]["sections"]["consents"]
    assert (given["channel"], given["purpose"], given["granted"], given["source"]) == (
        "whatsapp", "marketing", True, "store_42",
    )
    withdrawn = api.upsert(("phone", "+79161234567"), consents=[consent("whatsapp", "marketing", False)])
    assert consents_of(withdrawn["customer"]) == {("whatsapp", "marketing"): False}


def test_consent_errors(api):
    cid = api.upsert(("email", "anna@example.com"))["customer"]["id"]
    error = assert_error(api.consents(cid, consent("fax", "marketing", True)), 422, "unknown_consent_channel")
    assert "email" in error["details"]["known"]
    assert_error(api.consents(cid, consent("email", "spam", True)), 422, "unknown_consent_purpose")
    assert_error(api.consents(cid), 422, "empty_request")
    assert_error(api.consents(987654, consent("email", "marketing", True)), 404, "customer_not_found")
    assert api.get(cid)["sections"]["consents"] == []


# --- privacy: export and erase ---------------------------------------------------------------


def test_export_holds_everything(api):
    a = api.upsert(
        ("email", "anna@example.com"),
        traits={"name": "Anna"},
        consents=[consent("email", "marketing", True)],
        source="web",
    )["customer"]["id"]
    api.upsert(("phone", "+79161234567"), traits={"city": "Moscow"}, source="pos")
    api.upsert(("email", "anna@example.com"), ("phone", "+79161234567"), source="callcenter")
    api.consents(a, consent("email", "marketing", False))

    document = api.export(a)
    assert document["format"] == "seamline.customer-export/1"
    assert document["customer"]["id"] == a
    sections = document["sections"]
    assert {(i["type"], i["value"]) for i in sections["identities"]} == {
        ("email", "anna@example.com"),
        ("phone", "+79161234567"),
    }
    assert sections["profile"]["traits"]["name"]["value"] == "Anna"
    assert {(t["key"], t["source"]) for t in sections["profile"]["traits_by_identity"]} == {
        ("name", "web"),
        ("city", "pos"),
    }
    assert [c["granted"] for c in sections["consents"]["history"]] == [True, False]
    assert sections["consents"]["current"][0]["granted"] is False
    (merge,) = document["merges"]
    assert merge["reason"] == "link" and merge["source"] == "callcenter" and merge["survivor_id"] == a
    assert [link["source"] for link in document["links"]] == ["callcenter"]


def test_erase(api, database):
    email = "erase.me.please@example.com"
    cid = api.upsert(
        ("email", email),
        ("phone", "+79161234567"),
        traits={"name": "Erasable"},
        consents=[consent("email", "marketing", True)],
    )["customer"]["id"]
    other = api.upsert(("email", "keep@example.com"))["customer"]["id"]

    response = api.erase(cid)
    assert response.status_code == 200, response.text
    record = response.json()
    assert record["profile_id"] == cid
    assert record["removed_counts"] == {"email": 1, "phone": 1, "traits": 1, "consents": 1}
    assert record["reason"] == "Data-subject request #17"

    error = assert_error(api.client.get(f"/v1/customers/{cid}", headers=api.write), 410, "customer_erased")
    assert error["details"] == {"customer_id": cid}
    assert_error(api.lookup(email=email), 404, "customer_not_found")
    assert_error(api.lookup(phone="+79161234567"), 404, "customer_not_found")
    assert cid not in {c["id"] for c in api.listing()["items"]}
    assert_error(api.client.get(f"/v1/customers/{cid}/export", headers=api.admin), 410, "customer_erased")
    assert_error(api.consents(cid, consent("email", "marketing", True)), 410, "customer_erased")
    assert_error(api.merge(other, cid), 409, "customer_erased")

    # No personal data is left anywhere in the database.
    dump = dump_database(database)
    for pii in (email, "+79161234567", "9161234567", "Erasable"):
        assert pii not in dump, pii

    # Repeating the request returns the same record.
    again = api.erase(cid)
    assert again.status_code == 200
    assert again.json() == record

    # The person comes back: a new profile, never the erased one.
    back = api.upsert(("email", email))
    assert back["created"] is True
    assert back["customer"]["id"] not in (cid, other)
    assert traits_of(back["customer"]) == {}
    assert api.lookup(email=email).json()["id"] == back["customer"]["id"]
    assert_error(api.erase(987654), 404, "customer_not_found")


def test_erase_through_a_merged_id(api, database):
    a = api.upsert(("email", "a.person@example.com"))["customer"]["id"]
    b = api.upsert(("phone", "+79161234567"))["customer"]["id"]
    merge = api.upsert(("email", "a.person@example.com"), ("phone", "+79161234567"))
    assert merge["merged_customer_ids"] == [b]

    record = api.erase(b)  # the absorbed id stands for the person it now belongs to
    assert record.status_code == 200, record.text
    assert record.json()["profile_id"] == a
    assert record.json()["removed_counts"]["email"] == 1 and record.json()["removed_counts"]["phone"] == 1
    assert_error(api.client.get(f"/v1/customers/{a}", headers=api.write), 410, "customer_erased")
    assert_error(api.client.get(f"/v1/customers/{b}", headers=api.write), 410, "customer_erased")
    again = api.erase(b)
    assert again.status_code == 200, again.text
    assert again.json() == record.json()
    assert api.erase(a).json() == record.json()
    dump = dump_database(database)
    assert "a.person@example.com" not in dump and "+79161234567" not in dump
    # The merge of the erased person cannot be undone into a profile again.
    (merge_id,) = merge_history_rows(database)
    assert_error(api.undo(merge_id), 409, "merge_side_gone")


def test_erase_needs_a_reason(api):
    cid = api.upsert(("email", "anna@example.com"))["customer"]["id"]
    response = api.client.post(f"/v1/customers/{cid}/erase", json={}, headers=api.admin)
    assert_error(response, 422, "validation_error")
    assert api.get(cid)["status"] == "active"


# --- idempotency -----------------------------------------------------------------------------


def test_replaying_an_upsert_changes_nothing(api):
    api.upsert(("email", "anna@example.com"))
    api.upsert(("phone", "+79161234567"))
    request = dict(
        traits={"name": "Anna"},
        consents=[consent("email", "marketing", True)],
        source="app",
        timestamp="2026-01-01T00:00:00Z",
    )
    pairs = (("email", "anna@example.com"), ("phone", "8 916 123 45 67"), ("device_id", "android-1"))
    first = api.upsert(*pairs, **request)
    assert len(first["merged_customer_ids"]) == 1
    cid = first["customer"]["id"]
    before = api.export(cid)

    second = api.upsert(*pairs, **request)
    assert second["created"] is False
    assert second["merged_customer_ids"] == [] and second["conflict_ids"] == []
    assert second["customer"] == first["customer"] | {"updated_at": second["customer"]["updated_at"]}
    after = api.export(cid)
    assert after["links"] == before["links"]
    assert after["merges"] == before["merges"]
    assert after["sections"] == before["sections"]
    assert len(api.listing()["items"]) == 1


def test_merge_chains_are_followed_for_many_profiles_at_once(api, database):
    """`canonical_profiles` and `merged_profile_ids_many` (a batch of inbound messages reads its
    senders' people with them) agree with their one-profile versions on a chain of merges."""
    from seamline.customers import resolution
    from seamline.customers import service as customers_service
    from seamline.customers.models import CustomerProfile

    a, b, c, d = (api.upsert(("email", f"{n}@example.com"))["customer"]["id"] for n in "abcd")
    assert api.merge(b, c).status_code == 200  # the newer into the older: c into b
    assert api.merge(a, b).status_code == 200  # b (holding c) into a: c -> b -> a
    with database.read() as session:
        assert session.get(CustomerProfile, c).merged_into_id == b  # a chain of two steps
        canonical = resolution.canonical_profiles(session, [a, b, c, d, 10**9])
        assert {k: v.id for k, v in canonical.items()} == {a: a, b: a, c: a, d: d}  # an unknown id is left out
        assert all(canonical[i].id == resolution.canonical_profile(session, i).id for i in (a, b, c, d))
        many = customers_service.merged_profile_ids_many(session, [a, d])
        assert sorted(many[a]) == [a, b, c] and many[d] == [d]
        assert sorted(customers_service.merged_profile_ids(session, a)) == [a, b, c]
