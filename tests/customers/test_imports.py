"""Bulk customer import (`seamline customers import`, POST /v1/customers/imports)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from seamline.customers import imports, service
from seamline.customers.identifiers import IdentifierRules
from seamline.customers.models import (
    CustomerConflict,
    CustomerConsent,
    CustomerIdentity,
    CustomerLink,
    CustomerProfile,
    CustomerTrait,
)
from seamline.customers.schemas import CustomerUpsert, IdentifierIn
from seamline.loyalty import ledger
from seamline.loyalty.models import LoyaltyAccount, LoyaltyEntry
from seamline.runtime import wire

FIXTURES = Path(__file__).parents[1] / "fixtures" / "customers"
CSV = (FIXTURES / "import.csv").read_bytes()
JSONL = (FIXTURES / "import.jsonl").read_bytes()
TABLES = (CustomerProfile, CustomerIdentity, CustomerLink, CustomerTrait, CustomerConsent, CustomerConflict,
          LoyaltyAccount, LoyaltyEntry)


@pytest.fixture(autouse=True)
def _wired():
    wire()  # loyalty's opening balances, as every process has them


def _counts(database) -> dict[str, int]:
    with database.read() as session:
        return {t.__tablename__: session.scalar(select(func.count()).select_from(t)) for t in TABLES}


def _import(database, settings, data: bytes, format: str = "csv") -> imports.ImportReport:
    return imports.import_customers(database, rules=IdentifierRules(settings), data=data, format=format)


def _profile_of(database, settings, type_name: str, value: str) -> int:
    with database.read() as session:
        return service.lookup(session, rules=IdentifierRules(settings), type_name=type_name, value=value).id


def _balance(client, headers, customer_id: int) -> int:
    answer = client.get(f"/v1/customers/{customer_id}/loyalty/balance", headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()["points"]


@pytest.mark.parametrize("data,format", [(CSV, "csv"), (JSONL, "jsonl")], ids=["csv", "jsonl"])
def test_a_file_imports_people_with_their_identifiers_traits_consents_and_balances(
    database, settings, client, admin_headers, data, format,
):
    report = _import(database, settings, data, format)
    assert report.rows == 4 and report.people == 3 and report.people_new == 3
    assert report.profiles_created == 3 and report.balances_credited == 2
    anna = _profile_of(database, settings, "phone", "+7 916 123 45 67")
    assert _profile_of(database, settings, "email", "anna.petrova@example.com") == anna
    assert _profile_of(database, settings, "loyalty_card", "2000000000017") == anna
    assert _profile_of(database, settings, "user_id", "CRM-0001") == anna
    # Two rows of Olga (the same phone in two formats) are one person.
    olga = _profile_of(database, settings, "email", "olga.s@example.com")
    assert _profile_of(database, settings, "user_id", "CRM-0003") == olga
    customer = client.get(f"/v1/customers/{anna}", headers=admin_headers).json()
    assert customer["sections"]["profile"]["traits"]["first_name"]["value"] == "Анна"
    consents = {(c["channel"], c["purpose"]): c for c in client.get(f"/v1/customers/{anna}/consents", headers=admin_headers).json()}
    assert consents[("email", "marketing")]["granted"] is True
    assert consents[("email", "marketing")]["recorded_at"].startswith("2023-04-01")
    assert consents[("sms", "marketing")]["granted"] is False
    assert _balance(client, admin_headers, anna) == 1500
    assert _balance(client, admin_headers, olga) == 250
    with database.read() as session:
        assert ledger.check(session) == []


def test_an_opening_balance_of_a_member_adds_to_the_account_they_have(database, settings, client, admin_headers):
    rules = IdentifierRules(settings)
    body = CustomerUpsert(identifiers=[IdentifierIn(type="phone", value="+79161234567")])
    anna = database.run_write(lambda s: service.upsert_customer(s, rules=rules, data=body)).resolution.profile_id
    adjusted = client.post(f"/v1/customers/{anna}/loyalty/adjustments", headers=admin_headers,
                           json={"points": 100, "reason": "adjust", "comment": "before the move", "staff": "boss"})
    assert adjusted.status_code == 201, adjusted.text
    report = _import(database, settings, b"phone,loyalty.opening_balance\n8 916 123 45 67,400\n")
    assert report.balances_credited == 1
    assert _balance(client, admin_headers, anna) == 500
    with database.read() as session:
        assert session.scalar(select(func.count()).select_from(LoyaltyAccount)) == 1
        assert ledger.check(session) == []


def test_bad_rows_are_reported_all_at_once_and_nothing_is_written(database, settings, monkeypatch):
    before = _counts(database)
    bad = (
        "email,phone,trait.name,consent.email.marketing,consent_at,loyalty.opening_balance,nickname\n"
        "anna@example.com,,Anna,yes,,10,x\n"
    ).encode()
    with pytest.raises(imports.ImportInvalid) as unknown_column:
        _import(database, settings, bad)
    assert [(e.row, e.column) for e in unknown_column.value.errors] == [(1, "nickname")]
    rows = (
        "email,phone,trait.name,consent.email.marketing,consent.fax.marketing,consent_at,loyalty.opening_balance\n"
        "anna@example.com,8 916 123-45-67,Anna,yes,,2024-01-01,100\n"   # 2: fine
        "not an email,,Bob,,,,\n"                                         # 3: email
        ",12,Carl,,,,\n"                                                  # 4: phone
        "dora@example.com,,Dora,maybe,,,\n"                               # 5: consent value
        "erik@example.com,,Erik,yes,,yesterday,\n"                        # 6: consent date
        "fay@example.com,,Fay,,,,-5\n"                                    # 7: balance
        "gus@example.com,,Gus,,,,1.5\n"                                   # 8: balance
        ",,Hal,,,,\n"                                                     # 9: no identifier
        "anna@example.com,8 916 123-45-67,Anna,yes,,2024-01-01,100\n"   # 10: duplicate of 2
        "ivy@example.com,,Ivy,,yes,,\n"                                   # 11: unknown channel
    ).encode()
    with pytest.raises(imports.ImportInvalid) as invalid:
        _import(database, settings, rows)
    found = [(e.row, e.column) for e in invalid.value.errors]
    assert found == [
        (3, "email"), (4, "phone"), (5, "consent.email.marketing"), (6, "consent.email.marketing.at"),
        (7, "loyalty.opening_balance"), (8, "loyalty.opening_balance"), (9, ""), (10, ""), (11, "consent.fax.marketing"),
    ], invalid.value.errors
    assert "duplicate of row 2" in invalid.value.errors[7].reason
    # The same answer when processes check pieces of the file (as they do for a large one).
    monkeypatch.setattr(imports, "VALIDATE_CHUNK", 3)
    with pytest.raises(imports.ImportInvalid) as in_pieces:
        imports.validate(rows, format="csv", rules=IdentifierRules(settings), workers=2)
    assert in_pieces.value.errors == invalid.value.errors
    assert _counts(database) == before


def test_rows_of_one_person_merge_and_a_row_matching_a_customer_attaches_to_it(database, settings):
    rules = IdentifierRules(settings)
    body = CustomerUpsert(identifiers=[IdentifierIn(type="phone", value="+79161234567")], traits={"city": "Тверь"})
    existing = database.run_write(lambda s: service.upsert_customer(s, rules=rules, data=body)).resolution.profile_id
    rows = (
        "email,phone,card,trait.first_name\n"
        "Anna@Example.com,8 916 123-45-67,,Анна\n"          # attaches to the existing customer
        "anna@example.com,,2000000000017,\n"                 # the same person by her email
        "boris@example.com,,2000000000024,Борис\n"
        "BORIS@example.com,+7 903 555 12 34,,\n"
    ).encode()
    report = _import(database, settings, rows)
    assert report.people == 2 and report.people_existing == 1 and report.profiles_created == 1
    assert _profile_of(database, settings, "loyalty_card", "2000000000017") == existing
    assert _profile_of(database, settings, "email", "anna@example.com") == existing
    boris = _profile_of(database, settings, "phone", "89035551234")
    assert _profile_of(database, settings, "loyalty_card", "2000000000024") == boris != existing
    with database.read() as session:
        traits = service.traits_of(session, service.identity_ids_of(session, existing))
    assert traits["first_name"]["value"] == "Анна" and traits["city"]["value"] == "Тверь"


def test_rows_that_join_two_customers_follow_the_merge_rules(database, settings):
    rules = IdentifierRules(settings)
    for value in ("+79161234567", "+79031112233"):
        body = CustomerUpsert(identifiers=[IdentifierIn(type="phone", value=value)])
        database.run_write(lambda s, b=body: service.upsert_customer(s, rules=rules, data=b))
    rows = (
        "external_id,phone\n"
        "CRM-1,+79161234567\n"           # merges the two existing customers through CRM-1
        "CRM-1,+79031112233\n"
        "CRM-2,+79161234567\n"           # a second user_id for that person: a conflict, no merge
    ).encode()
    report = _import(database, settings, rows)
    assert report.rows_resolved_one_by_one == 3
    assert _profile_of(database, settings, "phone", "+79161234567") == _profile_of(database, settings, "phone", "+79031112233")
    assert _profile_of(database, settings, "user_id", "CRM-2") != _profile_of(database, settings, "user_id", "CRM-1")
    assert _counts(database)["customer_conflict"] == 1


def test_re_importing_a_file_changes_nothing(database, settings, client, admin_headers):
    _import(database, settings, CSV)
    anna = _profile_of(database, settings, "phone", "+79161234567")
    before = _counts(database)
    with database.read() as session:
        traits = session.execute(select(CustomerTrait.identity_id, CustomerTrait.key, CustomerTrait.value)
                                 .order_by(CustomerTrait.identity_id, CustomerTrait.key)).all()
    report = _import(database, settings, CSV)
    assert report.profiles_created == report.identities_created == report.links_created == report.consents_recorded == 0
    assert report.balances_credited == 0 and report.balances_already_applied == 2
    assert _counts(database) == before
    with database.read() as session:
        assert session.execute(select(CustomerTrait.identity_id, CustomerTrait.key, CustomerTrait.value)
                               .order_by(CustomerTrait.identity_id, CustomerTrait.key)).all() == traits
    # The same people as JSONL: nothing new either (the balance keys are the people's, not the file's).
    _import(database, settings, JSONL, "jsonl")
    after = _counts(database)
    assert {k: v for k, v in after.items() if k != "customer_trait"} == {k: v for k, v in before.items() if k != "customer_trait"}
    assert _balance(client, admin_headers, anna) == 1500


def test_the_api_imports_for_an_admin_key_only(client, database, admin_headers, write_headers):
    csv_headers = {"Content-Type": "text/csv"}
    assert client.post("/v1/customers/imports", content=CSV, headers=csv_headers).status_code == 401
    assert client.post("/v1/customers/imports", content=CSV, headers={**write_headers, **csv_headers}).status_code == 403
    assert client.post("/v1/customers/imports", content=CSV,
                       headers={**admin_headers, "Content-Type": "application/pdf"}).status_code == 415
    bad = client.post("/v1/customers/imports", content=b"email,fax\nx,y\n", headers={**admin_headers, **csv_headers})
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "import_invalid"
    assert bad.json()["error"]["details"]["errors"][0] == {"row": 1, "column": "fax", "reason": "unknown column"}
    done = client.post("/v1/customers/imports", content=JSONL,
                       headers={**admin_headers, "Content-Type": "application/x-ndjson"})
    assert done.status_code == 200, done.text
    assert done.json()["people"] == 3 and done.json()["balances_credited"] == 2


def test_a_file_that_is_not_text_or_is_empty_is_refused_with_nothing_written(client, database, admin_headers):
    before = _counts(database)
    csv_headers = {**admin_headers, "Content-Type": "text/csv"}
    for body, reason in ((b"email\n\xff\xfeanna@example.com\n", "not UTF-8"), (b"", "empty file"),
                         (b"email\nanna@example.com\x00\n", "NUL")):
        refused = client.post("/v1/customers/imports", content=body, headers=csv_headers)
        assert refused.status_code == 422 and refused.json()["error"]["code"] == "import_invalid", refused.text
        assert reason in refused.json()["error"]["details"]["errors"][0]["reason"]
    assert _counts(database) == before


def _cli(settings, *args: str) -> subprocess.CompletedProcess[str]:
    """`seamline` as cron would run it: a new process, settings from the environment only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEAMLINE_")}
    env |= {"SEAMLINE_DATABASE_URL": settings.database_url, "SEAMLINE_LOG_LEVEL": "WARNING",
            "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    return subprocess.run([sys.executable, "-m", "seamline.cli", *args], env=env, capture_output=True, text=True, timeout=120)


def test_the_command_imports_in_a_process_of_its_own(database, settings, tmp_path):
    if not database.is_sqlite:
        pytest.skip("one backend is enough for the process boundary (SQLite, the embedded default)")
    bad = tmp_path / "bad.csv"
    bad.write_text("email,phone\nnot an email,\n,12\n")
    refused = _cli(settings, "customers", "import", str(bad))
    assert refused.returncode == 1
    assert "row 2, column email" in refused.stderr and "row 3, column phone" in refused.stderr
    assert _counts(database)["customer_profile"] == 0
    done = _cli(settings, "customers", "import", str(FIXTURES / "import.csv"))
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["people"] == 3
    assert "written: 3/3" in done.stderr  # progress
    again = _cli(settings, "customers", "import", str(FIXTURES / "import.csv"))
    assert json.loads(again.stdout)["identities_created"] == 0


def test_a_larger_file_sets_every_trait_once_and_again_changes_nothing(database, settings):
    lines = ["email,trait.first_name,trait.city"] + [f"person{i}@example.com,Имя {i},Город {i % 7}" for i in range(1500)]
    data = ("\n".join(lines) + "\n").encode()
    report = _import(database, settings, data)
    assert report.people == 1500 and report.traits_set == 3000
    with database.read() as session:
        pid = service.lookup(session, rules=IdentifierRules(settings), type_name="email", value="person1234@example.com").id
        traits = service.traits_of(session, service.identity_ids_of(session, pid))
    assert traits["first_name"]["value"] == "Имя 1234" and traits["city"]["value"] == "Город 2"
    before = _counts(database)
    assert _import(database, settings, data).identities_created == 0
    assert _counts(database) == before


def test_a_later_row_links_a_stored_identifier_to_one_the_file_created(database, settings):
    rules = IdentifierRules(settings)
    body = CustomerUpsert(identifiers=[IdentifierIn(type="phone", value="+79161234567"),
                                       IdentifierIn(type="loyalty_card", value="2000000000017")])
    anna = database.run_write(lambda s: service.upsert_customer(s, rules=rules, data=body)).resolution.profile_id
    rows = (
        "email,phone,card,trait.city\n"
        "anna@example.com,+79161234567,,\n"       # a new email beside her stored phone
        "anna@example.com,,2000000000017,\n"      # the new email beside her stored card: linked too
        "anna@example.com,+79161234567,,Тверь\n"  # a pair said before: not stored again
    ).encode()
    report = _import(database, settings, rows)
    assert report.people == 1 and report.people_existing == 1 and report.links_created == 2
    with database.read() as session:
        email = session.scalar(select(CustomerIdentity.id).where(CustomerIdentity.value == "anna@example.com"))
        linked = session.scalars(select(func.count()).select_from(CustomerLink).where(
            (CustomerLink.identity_a_id == email) | (CustomerLink.identity_b_id == email))).one()
    assert linked == 2
    assert _profile_of(database, settings, "email", "anna@example.com") == anna
