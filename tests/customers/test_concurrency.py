"""Concurrent upserts that link the same people from many threads: no error, no lost link,
and the profiles equal what the batch rebuild computes (both databases)."""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import select

from seamline.customers import service
from seamline.customers.identifiers import IdentifierRules
from seamline.customers.models import CustomerIdentity
from seamline.customers.rebuild import rebuild_profiles
from seamline.customers.schemas import CustomerUpsert, IdentifierIn


def test_concurrent_linking_converges(database, settings):
    rules = IdentifierRules(settings)
    rng = random.Random(3)
    people = 6
    requests = []
    for person in range(people):
        ids = [
            ("anonymous_id", f"anon-{person}-{k}") for k in range(3)
        ] + [("email", f"p{person}@example.com"), ("phone", f"+7916100000{person}")]
        for _ in range(12):
            requests.append(rng.sample(ids, 2))
    rng.shuffle(requests)

    def send(pairs):
        body = CustomerUpsert(identifiers=[IdentifierIn(type=t, value=v) for t, v in pairs], traits={"seen": True})
        return database.run_write(lambda session: service.upsert_customer(session, rules=rules, data=body))

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(send, requests))
    assert len(results) == len(requests)

    with database.read() as session:
        rows = session.execute(select(CustomerIdentity.value, CustomerIdentity.profile_id)).all()
    by_person: dict[str, set[int]] = {}
    for value, profile_id in rows:
        person = value.split("-")[1] if value.startswith("anon-") else (value[1] if value.startswith("p") else value[-1])
        by_person.setdefault(person, set()).add(profile_id)
    assert len(rows) == people * 5
    # Every person is exactly one profile, and no two people share one.
    assert all(len(p) == 1 for p in by_person.values()), by_person
    assert len({next(iter(p)) for p in by_person.values()}) == people
    assert not rebuild_profiles(database, rules=rules).changed
