"""Deterministic identity resolution: linking identifiers, merging, unmerging, conflicts.

Rules (docs/identity.md tells the story):
- A request's identifiers are ordered by priority; the first is the primary and every other
  identifier is linked to it, in that order. Each new link is applied once, when it is first
  seen: two groups join unless a per-type limit would be broken (then the link is a conflict
  kept for review). A link seen before is not applied again, so replays change nothing and the
  batch rebuild, which applies every link in id order, reaches the same profiles.
- The older profile (smaller id) survives a merge; the other is marked merged into it.
- Trust (docs/customers.md): identifiers a request only *claims* (what a browser with a public
  write key says) never join anything that already exists. A claim may add a brand-new
  identifier around an identifier the sender holds (its device's anonymous id) or vouches for;
  a claim of a known identifier is refused and reported. Every identifier the request vouches
  for is marked verified, and one that was only claimed before is first taken back from the
  profile that claimed it (its claim links revoked), so a claim made ahead of the real owner's
  login never hands that owner's account to the claimer.
- Locking (PostgreSQL): advisory locks on the request's identifiers, then the rows of their
  profiles in id order; if what was read changed while waiting, the transaction is re-run
  (`TransactionConflict`). SQLite serializes writers with BEGIN IMMEDIATE.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Collection, Hashable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import and_, func, or_, select, text, update
from sqlalchemy.orm import Session

from seamline.core.db import DriverSQL
from seamline.core.errors import Conflict, NotFound, TransactionConflict
from seamline.core.time import utcnow
from seamline.customers import changes
from seamline.customers.identifiers import DEVICE_TYPES, Identifier, IdentifierRules
from seamline.customers.models import (
    CustomerConflict,
    CustomerIdentity,
    CustomerLink,
    CustomerMerge,
    CustomerProfile,
)
from seamline.customers.unionfind import RuleUnionFind


@dataclass
class Resolution:
    profile_id: int
    primary_identity_id: int
    created_profile: bool
    merges: list[CustomerMerge] = field(default_factory=list)
    conflicts: list[CustomerConflict] = field(default_factory=list)
    #: Identities created by `create_profile`, with their ids.
    created_identities: dict[Identifier, int] = field(default_factory=dict)
    #: Claimed identifiers that were not linked: someone else already holds them.
    refused_claims: list[Identifier] = field(default_factory=list)
    #: Whether the request may speak for the primary identity (record traits and consents on it):
    #: false when its primary is a claim of an identifier that already existed.
    speaks_for_primary: bool = True


# --- locking and loading -------------------------------------------------------------------


def _advisory_key(identifier: Identifier) -> int:
    digest = hashlib.blake2b(f"{identifier.type}\x1f{identifier.value}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def lock_identifiers(session: Session, identifiers: Iterable[Identifier]) -> None:
    if session.get_bind().dialect.name != "postgresql":
        return
    for key in sorted({_advisory_key(i) for i in identifiers}):
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


def lock_profiles(session: Session, profile_ids: Iterable[int]) -> dict[int, CustomerProfile]:
    ids = sorted(set(profile_ids))
    if not ids:
        return {}
    rows = session.scalars(
        select(CustomerProfile)
        .where(CustomerProfile.id.in_(ids))
        .order_by(CustomerProfile.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return {p.id: p for p in rows}


def load_identities(session: Session, identifiers: Iterable[Identifier]) -> dict[Identifier, CustomerIdentity]:
    by_type: dict[str, list[str]] = defaultdict(list)
    for identifier in identifiers:
        by_type[identifier.type].append(identifier.value)
    if not by_type:
        return {}
    # `type = ? AND value IN (...)` per type: both databases use the unique (type, value) index
    # for this, while SQLite scans the table for a row-value `(type, value) IN (...)`.
    rows = session.scalars(
        select(CustomerIdentity)
        .where(or_(*(and_(CustomerIdentity.type == t, CustomerIdentity.value.in_(v)) for t, v in by_type.items())))
        .execution_options(populate_existing=True)
    )
    return {Identifier(r.type, r.value): r for r in rows}


def type_counts(session: Session, profile_ids: Iterable[int]) -> dict[int, dict[str, int]]:
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    ids = list(set(profile_ids))
    if ids:
        rows = session.execute(
            select(CustomerIdentity.profile_id, CustomerIdentity.type, func.count())
            .where(CustomerIdentity.profile_id.in_(ids))
            .group_by(CustomerIdentity.profile_id, CustomerIdentity.type)
        )
        for profile_id, type_name, count in rows:
            counts[profile_id][type_name] = count
    return counts


def identity_ids_by_profile(session: Session, profile_ids: Iterable[int]) -> dict[int, list[int]]:
    result: dict[int, list[int]] = defaultdict(list)
    ids = list(set(profile_ids))
    if ids:
        rows = session.execute(
            select(CustomerIdentity.profile_id, CustomerIdentity.id)
            .where(CustomerIdentity.profile_id.in_(ids))
            .order_by(CustomerIdentity.id)
        )
        for profile_id, identity_id in rows:
            result[profile_id].append(identity_id)
    return result


def _existing_pairs(session: Session, pairs: list[tuple[int, int]]) -> set[tuple[int, int]]:
    if not pairs:
        return set()
    rows = session.execute(
        select(CustomerLink.identity_a_id, CustomerLink.identity_b_id).where(
            or_(*(and_(CustomerLink.identity_a_id == a, CustomerLink.identity_b_id == b) for a, b in pairs))
        )
    )
    return {(a, b) for a, b in rows}


def _pair(a: int, b: int) -> tuple[int, int]:
    return (a, b) if a < b else (b, a)


# --- linking identifiers of one request ----------------------------------------------------


def fits_one_profile(rules: IdentifierRules, identifiers: list[Identifier]) -> bool:
    counts: dict[str, int] = defaultdict(int)
    for identifier in identifiers:
        counts[identifier.type] += 1
    return all(count <= rules.limit(type_name) for type_name, count in counts.items())


def vouched(identifier: Identifier, claimed: Collection[Identifier]) -> bool:
    """Whether a request that claims `claimed` vouches for this identifier (marks it verified)."""
    return identifier not in claimed and identifier.type not in DEVICE_TYPES


def anchor_first(identifiers: list[Identifier], claimed: Collection[Identifier]) -> list[Identifier]:
    """The request's identifiers in priority order, those it holds or vouches for first: the
    primary, which every other identifier is linked to, is never a claim when it can be helped."""
    return sorted(identifiers, key=lambda i: i in claimed)  # stable: priority order within each


def create_profile(
    session: Session, *, identifiers: list[Identifier], source: str, claimed: Collection[Identifier] = ()
) -> Resolution:
    """What `resolve_identifiers` does when none of the identifiers is known and together they
    break no limit: a new profile holding them all, the primary (first) linked to each other.
    Straight through the driver: first logins are the common case of collection."""
    sql = DriverSQL(session)
    now = sql.time(utcnow())
    profile_id = sql.execute(
        "INSERT INTO customer_profile (status, created_at, updated_at) VALUES ('active', ?, ?) RETURNING id", (now, now)
    ).fetchone()[0]
    identity_ids = [
        sql.execute(
            "INSERT INTO customer_identity (type, value, profile_id, source, created_at, verified_at, verified_by) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (i.type, i.value, profile_id, source, now, *((now, source) if vouched(i, claimed) else (None, None))),
        ).fetchone()[0]
        for i in identifiers
    ]
    primary = identity_ids[0]
    trusted = [identifiers[0] not in claimed and other not in claimed for other in identifiers[1:]]
    sql.executemany(
        "INSERT INTO customer_link (identity_a_id, identity_b_id, source, forced, revoked, trusted, created_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [(min(primary, other), max(primary, other), source, False, False, ok, now)
         for other, ok in zip(identity_ids[1:], trusted)],
    )
    return Resolution(
        profile_id=profile_id, primary_identity_id=primary, created_profile=True,
        created_identities=dict(zip(identifiers, identity_ids)),
    )


def _may_link(primary: Identifier, other: Identifier, claimed: Collection[Identifier],
              existing: dict[Identifier, CustomerIdentity]) -> bool:
    """Whether a request may link these two: a link with a claimed end joins only identifiers
    nobody had before this request."""
    return not any(end in existing for end in (primary, other) if end in claimed)


def _take_back_claims(
    session: Session, *, identifiers: list[Identifier], not_vouched: Collection[Identifier],
    existing: dict[Identifier, CustomerIdentity],
) -> bool:
    """Before a request vouches for an identifier that so far was only claimed, give it a profile
    of its own again unless it already shares one with the request's other identifiers: its claim
    links are revoked, so neither a replay nor the batch rebuild puts it back. True if any moved."""
    profile_of = {i: existing[i].profile_id for i in identifiers if i in existing}
    candidates = [
        existing[i] for i in identifiers
        if i in existing and vouched(i, not_vouched) and existing[i].verified_at is None
        and not any(p == existing[i].profile_id for o, p in profile_of.items() if o != i)
    ]
    if not candidates:
        return False
    counts = type_counts(session, {c.profile_id for c in candidates})
    moved = False
    for identity in candidates:
        if sum(counts[identity.profile_id].values()) <= 1:
            continue  # alone already
        touching = or_(CustomerLink.identity_a_id == identity.id, CustomerLink.identity_b_id == identity.id)
        if session.scalar(select(func.count()).select_from(CustomerLink).where(
                touching, CustomerLink.trusted.is_(True), CustomerLink.revoked.is_(False))):
            continue  # somebody trusted linked it: not a mere claim
        session.execute(update(CustomerLink).where(touching, CustomerLink.trusted.is_(False)).values(revoked=True))
        profile = CustomerProfile(status="active")
        session.add(profile)
        session.flush()
        identity.profile_id = profile.id
        counts[profile.id] = {identity.type: 1}
        moved = True
    session.flush()
    return moved


def _mark_verified(session: Session, identity_ids: list[int], source: str) -> None:
    if identity_ids:
        session.execute(
            update(CustomerIdentity)
            .where(CustomerIdentity.id.in_(identity_ids), CustomerIdentity.verified_at.is_(None))
            .values(verified_at=utcnow(), verified_by=source[:64])
        )


def resolve_identifiers(
    session: Session, *, rules: IdentifierRules, identifiers: list[Identifier], source: str,
    claimed: Collection[Identifier] = (), handles: Collection[Identifier] = (),
) -> Resolution:
    """Find or create the profile of `identifiers` (priority-ordered), merging where allowed.

    `claimed`: those of them the sender only asserts (a browser's public write key, a contact
    someone shared): they may be added when new, never join what exists (see the module doc).
    `handles`: known identifiers named only to mean "that profile" (the shop's backend links a
    cookie to a customer by id): linked to, but neither vouched for nor taken back.
    Everything else the request vouches for."""
    claimed = frozenset(claimed) & set(identifiers)
    not_vouched = claimed | (frozenset(handles) & set(identifiers))
    identifiers = anchor_first(identifiers, claimed)
    lock_identifiers(session, identifiers)
    existing = load_identities(session, identifiers)
    profiles = lock_profiles(session, {i.profile_id for i in existing.values()})
    # What we read before the locks may have moved (a concurrent merge, unmerge or erase).
    recheck = load_identities(session, identifiers)
    if {k: v.profile_id for k, v in recheck.items()} != {k: v.profile_id for k, v in existing.items()} or any(
        p.status != "active" for p in profiles.values()
    ):
        raise TransactionConflict()
    if _take_back_claims(session, identifiers=identifiers, not_vouched=not_vouched, existing=existing):
        return resolve_identifiers(session, rules=rules, identifiers=identifiers, source=source, claimed=claimed,
                                   handles=handles)

    if not existing and fits_one_profile(rules, identifiers):
        return create_profile(session, identifiers=identifiers, source=source, claimed=claimed)

    primary = identifiers[0]
    refused = [o for o in identifiers[1:] if not _may_link(primary, o, claimed, existing)]
    refused_new = {o for o in refused if o not in existing}
    if primary in claimed and primary in existing:  # nothing of the request is vouched for
        refused_new |= {o for o in identifiers[1:] if o not in existing}
        refused = [o for o in identifiers[1:]]
    identifiers = [i for i in identifiers if i not in refused_new]

    def node(identifier: Identifier) -> Hashable:
        known = existing.get(identifier)
        return ("p", known.profile_id) if known else ("n", identifier)

    uf = RuleUnionFind(rules.limit)
    for profile_id, counts in type_counts(session, profiles).items():
        uf.add(("p", profile_id), counts)
    for identifier in identifiers:
        if identifier not in existing:
            uf.add(("n", identifier), {identifier.type: 1})

    others = [o for o in identifiers[1:] if o not in refused]
    known_pairs = _existing_pairs(
        session,
        [
            _pair(existing[primary].id, existing[o].id)
            for o in others
            if primary in existing and o in existing
        ],
    )
    # (other identifier, outcome, members of each side just before the union)
    applied: list[tuple[Identifier, object, list[Hashable], list[Hashable]]] = []
    for other in others:
        if primary in existing and other in existing and _pair(existing[primary].id, existing[other].id) in known_pairs:
            continue  # this link was applied when first seen; replays change nothing
        side_a, side_b = uf.members(node(primary)), uf.members(node(other))
        applied.append((other, uf.union(node(primary), node(other)), side_a, side_b))

    # Every group gets a profile: its oldest existing one, or a new one.
    targets: dict[Hashable, int] = {}
    created = False
    for group in uf.groups():
        root = uf.find(group[0])
        profile_ids = [n[1] for n in group if n[0] == "p"]
        if profile_ids:
            targets[root] = min(profile_ids)
        elif any(n[0] == "n" for n in group):
            profile = CustomerProfile(status="active")
            session.add(profile)
            session.flush()
            targets[root] = profile.id
            created = created or uf.find(node(primary)) == root

    involved_profiles = {n[1] for g in uf.groups() for n in g if n[0] == "p"}
    ids_of_profile = identity_ids_by_profile(session, involved_profiles)  # before new ones join them

    identity_of: dict[Identifier, CustomerIdentity] = dict(existing)
    for identifier in identifiers:
        if identifier not in existing:
            row = CustomerIdentity(
                type=identifier.type,
                value=identifier.value,
                profile_id=targets[uf.find(("n", identifier))],
                source=source,
            )
            session.add(row)
            identity_of[identifier] = row
    session.flush()

    def identity_ids(nodes: list[Hashable]) -> list[int]:
        ids: list[int] = []
        for n in nodes:
            ids.extend(ids_of_profile[n[1]] if n[0] == "p" else [identity_of[n[1]].id])
        return sorted(ids)

    result = Resolution(
        profile_id=targets[uf.find(node(primary))],
        primary_identity_id=identity_of[primary].id,
        created_profile=created,
        refused_claims=sorted(refused),
        speaks_for_primary=not (primary in claimed and primary in existing),
    )
    absorbed_into: dict[int, int] = {}
    for other, outcome, side_a, side_b in applied:
        a, b = _pair(identity_of[primary].id, identity_of[other].id)
        link = CustomerLink(identity_a_id=a, identity_b_id=b, source=source,
                            trusted=primary not in claimed and other not in claimed)
        session.add(link)
        session.flush()
        profiles_a = [n[1] for n in side_a if n[0] == "p"]
        profiles_b = [n[1] for n in side_b if n[0] == "p"]
        if not outcome.joined:
            conflict = CustomerConflict(
                link_id=link.id,
                profile_a_id=targets[uf.find(node(primary))],
                profile_b_id=targets[uf.find(node(other))],
                violations=outcome.violations,
            )
            session.add(conflict)
            result.conflicts.append(conflict)
        elif not outcome.already_joined and profiles_a and profiles_b:
            if min(profiles_a) < min(profiles_b):
                survivor, absorbed, kept, gone = min(profiles_a), min(profiles_b), side_a, side_b
            else:
                survivor, absorbed, kept, gone = min(profiles_b), min(profiles_a), side_b, side_a
            merge = CustomerMerge(
                survivor_id=survivor,
                absorbed_id=absorbed,
                link_id=link.id,
                reason="link",
                source=source,
                survivor_identity_ids=identity_ids(kept),
                absorbed_identity_ids=identity_ids(gone),
            )
            session.add(merge)
            result.merges.append(merge)
            absorbed_into[absorbed] = survivor
    if absorbed_into:
        _retire_absorbed(session, absorbed_into, {p: targets[uf.find(("p", p))] for p in absorbed_into}, profiles)
    _mark_verified(session, [identity_of[i].id for i in identifiers if vouched(i, not_vouched)], source)
    session.flush()
    return result


def _retire_absorbed(
    session: Session,
    absorbed_into: dict[int, int],
    final_target: dict[int, int],
    profiles: dict[int, CustomerProfile],
) -> None:
    now = utcnow()
    for absorbed, survivor in absorbed_into.items():
        profile = profiles.get(absorbed) or session.get(CustomerProfile, absorbed)
        profile.status = "merged"
        profile.merged_into_id = survivor
        profile.updated_at = now
        session.execute(
            update(CustomerIdentity)
            .where(CustomerIdentity.profile_id == absorbed)
            .values(profile_id=final_target[absorbed])
        )
    for target in set(final_target.values()):
        survivor_profile = profiles.get(target) or session.get(CustomerProfile, target)
        survivor_profile.updated_at = now
    for listener in list(_merged_listeners):
        listener(session, dict(final_target))
    changes.changed(session, profile_ids=[*absorbed_into, *final_target.values()])


#: Called as `listener(session, {absorbed profile id: the profile it now lives in})` inside the
#: transaction of every merge by request or staff (not the batch rebuild, which moves only
#: identifiers); modules that hold per-person state (a loyalty account) bring it together.
_merged_listeners: list = []


def on_profiles_merged(listener) -> None:  # noqa: ANN001 - Callable[[Session, dict[int, int]], None]
    if listener not in _merged_listeners:
        _merged_listeners.append(listener)


# --- staff actions: manual merge, conflicts, unmerge ---------------------------------------


def canonical_profiles(session: Session, profile_ids: Iterable[int]) -> dict[int, CustomerProfile]:
    """`canonical_profile` of many ids at once, one query per step of the longest merge chain
    (a batch of inbound messages from known senders); an unknown id is left out."""
    profile_ids = list(profile_ids)
    found: dict[int, CustomerProfile] = {}
    links: dict[int, int | None] = {}  # id -> the id it was merged into (None: it is where its chain ends)
    frontier = set(profile_ids)
    while frontier:
        for profile in session.scalars(select(CustomerProfile).where(CustomerProfile.id.in_(sorted(frontier)))):
            found[profile.id] = profile
            links[profile.id] = profile.merged_into_id if profile.status == "merged" else None
        frontier = {target for target in links.values() if target is not None and target not in links}
    canonical = {}
    for profile_id in profile_ids:
        current, seen = profile_id, set()
        while links.get(current) is not None:
            if current in seen:
                raise Conflict("Merge chain loops", code="merge_chain_cycle")
            seen.add(current)
            current = links[current]
        if current in found:
            canonical[profile_id] = found[current]
    return canonical


def canonical_profile(session: Session, profile_id: int) -> CustomerProfile:
    """The profile a (possibly merged) id now lives in."""
    profile = session.get(CustomerProfile, profile_id)
    if profile is None:
        raise NotFound(f"Customer {profile_id} not found", code="customer_not_found")
    seen = {profile.id}
    while profile.status == "merged" and profile.merged_into_id is not None:
        profile = session.get(CustomerProfile, profile.merged_into_id)
        if profile.id in seen:  # defensive: a cycle would be a bug, not a reason to hang
            raise Conflict("Merge chain loops", code="merge_chain_cycle")
        seen.add(profile.id)
    return profile


def _link_profiles(
    session: Session,
    *,
    rules: IdentifierRules,
    profile_ids: tuple[int, int],
    pair: tuple[int, int] | None,
    forced: bool,
    reason: str,
    source: str,
) -> CustomerMerge:
    """Join two active profiles with a new link (added last, so the batch rebuild agrees)."""
    locked = lock_profiles(session, profile_ids)
    for pid in profile_ids:
        profile = locked.get(pid)
        if profile is None:
            raise NotFound(f"Customer {pid} not found", code="customer_not_found")
        if profile.status != "active":
            raise Conflict(
                f"Customer {pid} is {profile.status}", code=f"customer_{profile.status}", details={"customer_id": pid}
            )
    if profile_ids[0] == profile_ids[1]:
        raise Conflict("A profile cannot be merged with itself", code="same_customer")
    ids = identity_ids_by_profile(session, profile_ids)
    if not ids[profile_ids[0]] or not ids[profile_ids[1]]:
        raise Conflict("Both profiles need at least one identifier to be linked", code="customer_without_identifiers")
    uf = RuleUnionFind(rules.limit)
    counts = type_counts(session, profile_ids)
    for pid in profile_ids:
        uf.add(pid, counts[pid])
    outcome = uf.union(profile_ids[0], profile_ids[1], forced=forced)
    if not outcome.joined:
        raise Conflict(
            "Merging these profiles would break a merge rule; pass force=true to merge anyway",
            code="merge_rule_violation",
            details={"violations": outcome.violations},
        )
    a, b = pair or _pair(ids[profile_ids[0]][0], ids[profile_ids[1]][0])
    link = CustomerLink(identity_a_id=min(a, b), identity_b_id=max(a, b), source=source, forced=forced)
    session.add(link)
    session.flush()
    survivor, absorbed = sorted(profile_ids)
    merge = CustomerMerge(
        survivor_id=survivor,
        absorbed_id=absorbed,
        link_id=link.id,
        reason=reason,
        source=source,
        survivor_identity_ids=ids[survivor],
        absorbed_identity_ids=ids[absorbed],
    )
    session.add(merge)
    _retire_absorbed(session, {absorbed: survivor}, {absorbed: survivor}, locked)
    session.flush()
    return merge


def merge_profiles(
    session: Session, *, rules: IdentifierRules, profile_id: int, other_id: int, force: bool, actor: str
) -> CustomerMerge:
    a = canonical_profile(session, profile_id)
    b = canonical_profile(session, other_id)
    return _link_profiles(
        session, rules=rules, profile_ids=(a.id, b.id), pair=None, forced=force, reason="manual", source=actor
    )


def resolve_conflict(
    session: Session, *, rules: IdentifierRules, conflict_id: int, action: str, actor: str
) -> CustomerConflict:
    conflict = session.get(CustomerConflict, conflict_id, with_for_update=True)
    if conflict is None:
        raise NotFound(f"Conflict {conflict_id} not found", code="conflict_not_found")
    if conflict.status != "open":
        if conflict.status == {"merge": "merged", "dismiss": "dismissed"}[action]:
            return conflict  # a retried resolution is a no-op
        raise Conflict(f"Conflict {conflict_id} is already {conflict.status}", code="conflict_already_resolved")
    link = session.get(CustomerLink, conflict.link_id)
    if action == "dismiss":
        link.revoked = True  # staff said no: never join through this link, whatever the rules become
        conflict.status = "dismissed"
    else:
        a = session.get(CustomerIdentity, link.identity_a_id)
        b = session.get(CustomerIdentity, link.identity_b_id)
        if a.profile_id != b.profile_id:
            link.revoked = True  # superseded by the forced link added now
            session.flush()
            _link_profiles(
                session,
                rules=rules,
                profile_ids=(a.profile_id, b.profile_id),
                pair=(a.id, b.id),
                forced=True,
                reason="conflict_resolution",
                source=actor,
            )
        conflict.status = "merged"
    conflict.resolved_at = utcnow()
    conflict.resolved_by = actor
    session.flush()
    return conflict


@dataclass
class Unmerge:
    merge: CustomerMerge
    profile_ids: list[int]
    revoked_link_ids: list[int]


def unmerge(session: Session, *, rules: IdentifierRules, merge_id: int, actor: str) -> Unmerge:
    """Undo a merge: each side gets back its identifiers, and what came later follows its links."""
    merge = session.get(CustomerMerge, merge_id, with_for_update=True)
    if merge is None:
        raise NotFound(f"Merge {merge_id} not found", code="merge_not_found")
    if merge.undone_at is not None:
        return Unmerge(merge, [merge.survivor_id, merge.absorbed_id], [])  # retried: already done
    side_a, side_b = set(merge.survivor_identity_ids), set(merge.absorbed_identity_ids)
    current = dict(
        session.execute(
            select(CustomerIdentity.id, CustomerIdentity.profile_id).where(CustomerIdentity.id.in_(side_a | side_b))
        ).all()
    )
    if not any(i in current for i in side_b) or not any(i in current for i in side_a):
        raise Conflict("One side of this merge no longer exists (erased)", code="merge_side_gone")
    holders = set(current.values())
    if len(holders) > 1:
        merge.undone_at, merge.undone_by = utcnow(), actor  # already apart (an earlier unmerge split them)
        return Unmerge(merge, sorted(holders), [])
    (holder_id,) = holders
    holder = lock_profiles(session, [holder_id])[holder_id]
    if holder.status != "active":
        raise TransactionConflict()

    members = dict(
        session.execute(
            select(CustomerIdentity.id, CustomerIdentity.type).where(CustomerIdentity.profile_id == holder_id)
        ).all()
    )
    uf = RuleUnionFind(rules.limit)
    for identity_id, type_name in members.items():
        marks = frozenset({"a"}) if identity_id in side_a else frozenset({"b"}) if identity_id in side_b else frozenset()
        uf.add(identity_id, {type_name: 1}, marks)
    links = session.scalars(
        select(CustomerLink)
        .where(
            CustomerLink.revoked.is_(False),
            CustomerLink.identity_a_id.in_(members),
            CustomerLink.identity_b_id.in_(members),
        )
        .order_by(CustomerLink.id)
    ).all()
    revoked: list[int] = []
    for link in links:
        outcome = uf.union(link.identity_a_id, link.identity_b_id, forced=link.forced)
        if not outcome.joined and "separated" in outcome.violations:
            link.revoked = True
            revoked.append(link.id)

    absorbed = session.get(CustomerProfile, merge.absorbed_id)
    result_ids = [holder_id]
    now = utcnow()
    for group in uf.groups():
        if any(i in side_a for i in group):
            continue  # stays with the holder
        if any(i in side_b for i in group):
            target = absorbed
            target.status, target.merged_into_id, target.updated_at = "active", None, now
        else:  # no longer linked to either side: a profile of its own, as the rebuild would make
            target = CustomerProfile(status="active")
            session.add(target)
            session.flush()
        session.execute(update(CustomerIdentity).where(CustomerIdentity.id.in_(group)).values(profile_id=target.id))
        result_ids.append(target.id)
    holder.updated_at = now
    merge.undone_at, merge.undone_by = now, actor
    session.flush()
    changes.changed(session, profile_ids=result_ids)
    return Unmerge(merge, result_ids, revoked)


def merges_of(session: Session, profile_id: int) -> list[CustomerMerge]:
    """Merges that made this profile what it is: its own and those of profiles merged into it."""
    involved = {profile_id}
    frontier = [profile_id]
    while frontier:
        rows = session.scalars(
            select(CustomerProfile.id).where(CustomerProfile.merged_into_id.in_(frontier))
        ).all()
        frontier = [r for r in rows if r not in involved]
        involved.update(frontier)
    return list(
        session.scalars(
            select(CustomerMerge)
            .where(or_(CustomerMerge.survivor_id.in_(involved), CustomerMerge.absorbed_id.in_(involved)))
            .order_by(CustomerMerge.id)
        )
    )


def list_conflicts(session: Session, *, status: str | None, limit: int, after_id: int | None) -> list[CustomerConflict]:
    query = select(CustomerConflict).order_by(CustomerConflict.id).limit(limit)
    if status:
        query = query.where(CustomerConflict.status == status)
    if after_id:
        query = query.where(CustomerConflict.id > after_id)
    return list(session.scalars(query))

