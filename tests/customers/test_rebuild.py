"""`seamline identity rebuild`: recomputing profiles from the graph."""

from __future__ import annotations

import json

from sqlalchemy import func, select
from typer.testing import CliRunner

from seamline.cli import app as cli
from seamline.customers import service
from seamline.customers.identifiers import IdentifierRules
from seamline.customers.models import CustomerConflict, CustomerLink, CustomerMerge, CustomerProfile
from seamline.customers.rebuild import rebuild_profiles
from seamline.customers.schemas import CustomerUpsert, IdentifierIn


def _upsert(database, rules, *pairs, traits=None):
    body = CustomerUpsert(identifiers=[IdentifierIn(type=t, value=v) for t, v in pairs], traits=traits or {})
    return database.run_write(lambda s: service.upsert_customer(s, rules=rules, data=body)).resolution


def test_rebuild_of_a_consistent_graph_changes_nothing(database, settings):
    rules = IdentifierRules(settings)
    _upsert(database, rules, ("anonymous_id", "a1"))
    _upsert(database, rules, ("email", "anna@example.com"), ("anonymous_id", "a1"))
    _upsert(database, rules, ("user_id", "u1"), ("email", "anna@example.com"))
    report = rebuild_profiles(database, rules=rules)
    assert report.identities == 3 and report.links == 2 and report.profiles == 1
    assert not report.changed


def test_tighter_rules_split_profiles_and_dry_run_writes_nothing(database, settings, settings_for):
    loose = IdentifierRules(settings)
    for i in range(3):
        _upsert(database, loose, ("phone", "+79161234567"), ("email", f"anna{i}@example.com"))
    with database.read() as session:
        assert session.scalar(select(func.count()).select_from(CustomerProfile).where(CustomerProfile.status == "active")) == 1

    strict = IdentifierRules(settings_for(database.url, identifier_default_limit=2))
    dry = rebuild_profiles(database, rules=strict, dry_run=True)
    assert dry.changed and dry.links_refused_by_rules == 1 and dry.profiles_created == 1
    with database.read() as session:
        assert session.scalar(select(func.count()).select_from(CustomerProfile)) == 1  # nothing written

    with database.read() as session:
        stamped_before = session.scalar(select(CustomerProfile.updated_at))
    report = rebuild_profiles(database, rules=strict)
    assert report.profiles == 2 and report.identities_moved == 1 and report.conflicts_recorded == 1
    with database.read() as session:
        assert session.scalar(select(func.count()).select_from(CustomerConflict)) == 1
        third = service.lookup(session, rules=strict, type_name="email", value="anna2@example.com")
        first = service.lookup(session, rules=strict, type_name="email", value="anna0@example.com")
        assert third.id != first.id
        # the profile that lost an identifier carries it in its stamp (the analytics mirror re-reads by it)
        assert session.get(CustomerProfile, first.id).updated_at > stamped_before
    assert not rebuild_profiles(database, rules=strict).changed


def test_rebuild_merges_profiles_that_bulk_loaded_links_join(database, settings):
    """Links added behind the API's back (a bulk import) are resolved by the rebuild, with a
    merge record per retired profile that can be undone."""
    rules = IdentifierRules(settings)
    a = _upsert(database, rules, ("email", "a@example.com"), traits={"name": "A"})
    b = _upsert(database, rules, ("phone", "+79161234567"), traits={"city": "Kazan"})
    with database.write() as session:
        session.add(
            CustomerLink(identity_a_id=a.primary_identity_id, identity_b_id=b.primary_identity_id, source="import")
        )
    report = rebuild_profiles(database, rules=rules)
    assert report.profiles_retired == 1 and report.identities_moved == 1
    with database.read() as session:
        merge = session.scalars(select(CustomerMerge)).one()
        assert (merge.survivor_id, merge.absorbed_id, merge.reason) == (a.profile_id, b.profile_id, "rebuild")
        assert merge.absorbed_identity_ids == [b.primary_identity_id]
        assert merge.survivor_identity_ids == [a.primary_identity_id]
        profile = service.lookup(session, rules=rules, type_name="phone", value="+79161234567")
        traits = service.traits_of(session, service.context_of(session, profile).identity_ids)
        assert profile.id == a.profile_id and set(traits) == {"name", "city"}


def test_cli_reports_json(database, monkeypatch):
    monkeypatch.setenv("SEAMLINE_DATABASE_URL", database.url)
    from seamline.core.config import get_settings

    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli, ["identity", "rebuild", "--dry-run"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["dry_run"] is True and report["changed"] is False


def test_integer_reader_unpacks_wide_and_packed_rows_alike(database):
    """The rebuild's bulk reader: SQLite packs columns into one integer when they fit in 63
    bits and falls back to plain rows when not; PostgreSQL reads binary COPY. Same arrays."""
    from seamline.customers.rebuild import _read_int_rows

    rows = "FROM (SELECT 1 AS a, 2 AS b, 3 AS c UNION ALL SELECT 7, 0, 5) AS t ORDER BY a"
    with database.write() as session:
        cursor = session.connection().connection.dbapi_connection.cursor()
        postgres = database.dialect == "postgresql"
        for maxima in ([7, 2, 5], [2**40, 2**40, 5]):  # packed, and too wide to pack
            got = _read_int_rows(cursor, postgres=postgres, columns=["a", "b", "c"], rest=rows, maxima=maxima)
            assert got.tolist() == [[1, 2, 3], [7, 0, 5]]
        empty = _read_int_rows(cursor, postgres=postgres, columns=["a"], rest=rows.replace("ORDER BY a", "WHERE a > 99"), maxima=[1])
        assert empty.shape == (0, 1)


def test_bulk_write_refuses_dangling_references(database):
    """SQLite skips row-by-row foreign key checks in a bulk write but proves them before the
    commit; PostgreSQL checks as always. Either way nothing dangling is committed."""
    import pytest
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    with pytest.raises((RuntimeError, IntegrityError)):
        with database.bulk_write(check_tables=("customer_profile",)) as session:
            session.execute(text(
                "INSERT INTO customer_profile (id, status, merged_into_id, created_at, updated_at) "
                "VALUES (900001, 'merged', 987654321, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            ))
    with database.read() as session:
        assert session.scalar(select(func.count()).select_from(CustomerProfile)) == 0
    with database.write() as session:  # foreign keys are enforced again on that connection
        with pytest.raises(IntegrityError):
            session.execute(text(
                "INSERT INTO customer_profile (id, status, merged_into_id, created_at, updated_at) "
                "VALUES (900002, 'merged', 987654321, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            ))
            session.flush()
