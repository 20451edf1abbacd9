"""The identity work of collected events: queued with the events, applied after the answer,
never lost, and the same graph the batch rebuild would reach."""

from __future__ import annotations

from sqlalchemy import select

from seamline.core.time import utcnow
from seamline.customers.identifiers import IdentifierRules
from seamline.customers.models import CustomerIdentity, CustomerLink
from seamline.customers.rebuild import rebuild_profiles
from seamline.events import service as events_service
from seamline.events.ingest import check_message
from seamline.events.models import EventIdentityFeed
from seamline.events.writer import BatchWriter


def store(database, rules, *messages: dict, server_side: bool = False) -> None:
    """What collection commits before it answers (no identity work applied yet), from a website's
    source (or a server-side one)."""
    now = utcnow()
    checked = [check_message(m, default_type=None, batch_sent_at=None, received_at=now, max_bytes=32768) for m in messages]
    with database.write() as session:
        sources = [s for s in events_service.list_sources(session) if s.server_side == server_side]
        source = sources[0] if sources else events_service.create_source(
            session, name="Backend" if server_side else "Web", channel="server" if server_side else "web",
            server_side=server_side)[0]
        events_service.store_events(session, source=source, events=checked, received_at=now)


def holders(database) -> dict[tuple[str, str], int]:
    with database.read() as session:
        rows = session.execute(select(CustomerIdentity.type, CustomerIdentity.value, CustomerIdentity.profile_id))
        return {(t, v): p for t, v, p in rows}


def first_login(n: int) -> list[dict]:
    return [
        {"type": "page", "messageId": f"p{n}", "anonymousId": f"cookie-{n}"},
        {"type": "identify", "messageId": f"i{n}", "anonymousId": f"cookie-{n}", "userId": f"user-{n}",
         "traits": {"email": f"user-{n}@example.com", "name": "Анна"}},
        {"type": "track", "messageId": f"t{n}", "anonymousId": f"cookie-{n}", "userId": f"user-{n}", "event": "Cart Viewed"},
    ]


def test_work_left_by_a_crash_is_applied_when_the_writer_starts(database, settings):
    rules = IdentifierRules(settings)
    store(database, rules, *first_login(1))  # committed, answered; then the process died
    with database.read() as session:
        assert events_service.identity_work_backlog(session) == 1
    assert holders(database) == {}

    writer = BatchWriter(database, rules).start()
    try:
        assert writer.wait_idle()
    finally:
        writer.close()
    found = holders(database)
    assert set(found) == {("anonymous_id", "cookie-1"), ("user_id", "user-1"), ("email", "user-1@example.com")}
    assert len(set(found.values())) == 1
    with database.read() as session:
        assert events_service.identity_work_backlog(session) == 0


def test_a_row_that_cannot_be_applied_is_set_aside_and_the_rest_go_on(database, settings):
    rules = IdentifierRules(settings)
    store(database, rules, *first_login(1))
    with database.write() as session:  # a row no code can read (e.g. written by a newer version)
        session.add(EventIdentityFeed(origin="events:web", items=[{"type": "identify", "userId": "x"}]))
    store(database, rules, *first_login(2))

    writer = BatchWriter(database, rules).start()
    try:
        assert writer.wait_idle()
    finally:
        writer.close()
    found = holders(database)
    assert ("user_id", "user-1") in found and ("user_id", "user-2") in found
    with database.read() as session:
        aside = session.scalars(select(EventIdentityFeed)).all()
        assert events_service.identity_work_backlog(session) == 0
    assert len(aside) == 1 and "KeyError" in aside[0].error


def test_first_logins_make_the_graph_the_rebuild_makes(database, settings):
    """New people go through the three-insert path: the batch rebuild, which replays every link
    by the rules, must find nothing to change."""
    rules = IdentifierRules(settings)
    # From the shop's backend (a browser may not join anything to a known user id: test_trust.py).
    store(database, rules, *[m for n in range(30) for m in first_login(n)], server_side=True)
    # A known person's second email, and an alias from an old device: the full resolution path.
    store(database, rules,
          {"type": "identify", "messageId": "x1", "userId": "user-3", "traits": {"email": "other@example.com"}},
          {"type": "alias", "messageId": "x2", "userId": "user-4", "previousId": "old-device"}, server_side=True)
    writer = BatchWriter(database, rules).start()
    try:
        assert writer.wait_idle()
    finally:
        writer.close()
    found = holders(database)
    assert len(set(found.values())) == 30
    assert found[("email", "other@example.com")] == found[("user_id", "user-3")]
    assert found[("anonymous_id", "old-device")] == found[("user_id", "user-4")] == found[("anonymous_id", "cookie-4")]
    with database.read() as session:
        links = session.scalars(select(CustomerLink)).all()
    assert len(links) == 30 * 2 + 2
    assert {link.source for link in links} == {"events:server"}

    report = rebuild_profiles(database, rules=rules, dry_run=True)
    assert report.identities_moved == 0 and report.profiles_created == 0 and report.profiles_retired == 0
