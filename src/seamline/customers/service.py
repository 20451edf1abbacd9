"""Customer profiles: upsert, lookup, search, traits, consents, the 360, export and erase."""

from __future__ import annotations

import functools
import json
import re
from collections import Counter
from collections.abc import Collection, Iterable, Iterator
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import phonenumbers
from sqlalchemy import String, and_, cast, delete, func, or_, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from seamline.core.db import DriverSQL
from seamline.core.errors import Gone, NotFound, TransactionConflict, Unprocessable
from seamline.core.pagination import decode_cursor, encode_cursor
from seamline.core.time import utcnow
from seamline.customers import changes, resolution
from seamline.customers.identifiers import DEVICE_TYPES, Identifier, IdentifierRules
from seamline.customers.models import (
    CustomerConflict,
    CustomerConsent,
    CustomerErasure,
    CustomerIdentity,
    CustomerLink,
    CustomerMerge,
    CustomerProfile,
    CustomerTrait,
)
from seamline.customers.schemas import ConsentIn, CustomerUpsert
from seamline.customers.sections import CustomerContext, SectionRegistry
from seamline.customers.timeline import TimelineItem, TimelineQuery, TimelineRegistry


@dataclass
class UpsertOutcome:
    resolution: resolution.Resolution
    ignored: list[Identifier]


def claims(rules: IdentifierRules, pairs: list[tuple[str, str]]) -> frozenset[Identifier]:
    """The normalized identifiers of `pairs` (type, raw value), to pass as what a request only
    claims; values that do not normalize are left out (they fail or are ignored elsewhere)."""
    found = set()
    for type_name, value in pairs:
        try:
            found.add(rules.normalize(type_name, value))
        except Exception:  # noqa: BLE001 - an invalid value is reported by `prepare`
            continue
    return frozenset(found)


def anchor_identity(session: Session, profile_id: int) -> CustomerIdentity | None:
    """The identity a trusted request should name to mean "this profile": a verified one, else a
    device's, else the oldest. Naming a mere claim would vouch for it (and a claim vouched for
    from outside its profile leaves that profile: resolution's take-back)."""
    return session.scalar(
        select(CustomerIdentity).where(CustomerIdentity.profile_id == profile_id)
        .order_by(CustomerIdentity.verified_at.is_(None), CustomerIdentity.type.notin_(DEVICE_TYPES), CustomerIdentity.id)
        .limit(1)
    )


def claimable_traits(rules: IdentifierRules, traits: dict[str, Any]) -> dict[str, Any]:
    """Traits as an untrusted source may set them: privileged ones (`vip`, ...) dropped."""
    privileged = rules.settings.privileged_traits
    return {k: v for k, v in traits.items() if k not in privileged}


def upsert_customer(
    session: Session, *, rules: IdentifierRules, data: CustomerUpsert, claimed: frozenset[Identifier] | bool = frozenset()
) -> UpsertOutcome:
    """Identify the person behind `data.identifiers`, merging profiles where they link, and
    record traits and consents against the request's primary identifier.

    `claimed`: the identifiers the sender only asserts (True: all but device ids), see
    `resolution.resolve_identifiers`; with any claim, the traits are unverified and privileged
    ones are dropped."""
    usable, blocked = rules.prepare([(i.type, i.value) for i in data.identifiers])
    if not usable:
        raise Unprocessable(
            "No usable identifier: every value given is blocked from identifying anyone",
            code="no_usable_identifier",
            details={"blocked": [{"type": b.type, "value": b.value} for b in blocked]},
        )
    check_consents(rules, data.consents)
    observed_at = data.timestamp or utcnow()
    if isinstance(claimed, bool):
        claimed = frozenset(i for i in usable if i.type not in DEVICE_TYPES) if claimed else frozenset()
    result = resolution.resolve_identifiers(session, rules=rules, identifiers=usable, source=data.source, claimed=claimed)
    if not result.speaks_for_primary:
        return UpsertOutcome(result, blocked)
    trusted = not claimed
    set_traits(
        session, identity_id=result.primary_identity_id, traits=data.traits if trusted else claimable_traits(rules, data.traits),
        source=data.source, observed_at=observed_at, verified=trusted,
    )
    if data.consents:
        record_consents(
            session,
            profile_id=result.profile_id,
            identity_id=result.primary_identity_id,
            consents=data.consents,
            source=data.source,
        )
    return UpsertOutcome(result, blocked)


# --- traits ---------------------------------------------------------------------------------


def set_traits(
    session: Session, *, identity_id: int, traits: dict[str, Any], source: str, observed_at: datetime,
    verified: bool = True,
) -> None:
    """Latest wins per trait: an older observation never overwrites a newer one, and an
    unverified one (a browser's) never overwrites a verified one."""
    set_traits_many(session, [(identity_id, traits, source, observed_at, verified)])


#: (identity id, traits, source, observed at, verified)
TraitObservation = tuple[int, dict[str, Any], str, datetime, bool]


def set_traits_many(session: Session, observations: list[TraitObservation]) -> None:
    """`set_traits` for many observations in one statement: an upsert whose update applies only
    when the stored observation is not newer and not verified when this one is not."""
    latest: dict[tuple[int, str], dict[str, Any]] = {}
    for identity_id, traits, source, observed_at, verified in observations:
        for key, value in traits.items():
            seen = latest.get((identity_id, key))
            if seen is None or (seen["verified"], seen["observed_at"]) <= (verified, observed_at):
                latest[(identity_id, key)] = {
                    "identity_id": identity_id, "key": key, "value": value, "source": source, "observed_at": observed_at,
                    "verified": verified,
                }
    if latest:
        session.execute(_trait_upsert(session.get_bind().dialect.name), list(latest.values()))
        changes.changed(session, identity_ids={identity_id for identity_id, _ in latest})


def insert_trait_rows(session: Session, observations: list[TraitObservation]) -> None:
    """`set_traits_many` through the driver, for a bulk import: the same upsert and rule, one
    multi-row statement per 100 rows instead of SQLAlchemy's per-row parameter processing. Of
    observations of one (identity, key) with the same trust and time, the last wins."""
    if not observations:
        return
    sql = DriverSQL(session)
    latest: dict[tuple[int, str], tuple] = {}
    for identity_id, traits, source, observed_at, verified in observations:
        for key, value in traits.items():
            seen = latest.get((identity_id, key))
            if seen is None or (seen[5], seen[4]) <= (verified, observed_at):
                latest[(identity_id, key)] = (identity_id, key, json.dumps(value), source, observed_at, verified)
    rows = [(*row[:4], sql.time(row[4]), row[5]) for row in latest.values()]
    changes.changed(session, identity_ids={identity_id for identity_id, _ in latest})
    columns = "identity_id, key, value, source, observed_at, verified"
    # `_trait_upsert`'s rule written as text for the driver: change the two together.
    upsert = ("ON CONFLICT (identity_id, key) DO UPDATE SET value = excluded.value, source = excluded.source, "
              "observed_at = excluded.observed_at, verified = excluded.verified "
              "WHERE customer_trait.observed_at <= excluded.observed_at AND (excluded.verified OR NOT customer_trait.verified)")
    if sql.sqlite or len(rows) < 1000:
        sql.insert_rows("customer_trait", columns.split(", "), rows, suffix=upsert)
        return
    # PostgreSQL: COPY into a temporary table, then one upsert (a row-by-row upsert is 10x slower).
    sql.execute("CREATE TEMPORARY TABLE IF NOT EXISTS tmp_customer_trait (identity_id BIGINT, key TEXT, value JSON, "
                "source TEXT, observed_at TIMESTAMPTZ, verified BOOLEAN) ON COMMIT DROP")
    sql.execute("TRUNCATE tmp_customer_trait")
    with sql.cursor.copy(f"COPY tmp_customer_trait ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    sql.execute(f"INSERT INTO customer_trait ({columns}) SELECT {columns} FROM tmp_customer_trait {upsert}")


@functools.cache
def _trait_upsert(dialect: str) -> Any:
    """The trait upsert statement, built once per dialect (building it costs more than running it)."""
    table = CustomerTrait.__table__
    statement = (postgresql_insert if dialect == "postgresql" else sqlite_insert)(table)
    return statement.on_conflict_do_update(
        index_elements=[table.c.identity_id, table.c.key],
        set_={"value": statement.excluded.value, "source": statement.excluded.source,
              "observed_at": statement.excluded.observed_at, "verified": statement.excluded.verified},
        where=and_(table.c.observed_at <= statement.excluded.observed_at,
                   or_(statement.excluded.verified, table.c.verified.is_(False))),
    )


def traits_of(session: Session, identity_ids: list[int]) -> dict[str, dict[str, Any]]:
    """A profile's traits: per key, the latest verified observation through any of its
    identities, else the latest unverified one. A trait whose value so chosen is null is unset."""
    return traits_by_profile(session, {0: identity_ids})[0]


def count_new_customers(session: Session, *, since: datetime) -> int:
    """People whose profile appeared since `since` (profiles merged away are not new people)."""
    return session.scalar(select(func.count()).select_from(CustomerProfile)
                          .where(CustomerProfile.created_at >= since, CustomerProfile.status != "merged")) or 0


def display_name(traits: dict[str, Any]) -> str | None:
    """A person's name from their traits (plain values, or the 360's {"value": ...} entries):
    `name`, else first and last name; None when they gave none."""
    value = {k: (v.get("value") if isinstance(v, dict) else v) for k, v in traits.items()}
    name = value.get("name") or " ".join(
        str(value[k]).strip() for k in ("first_name", "firstName", "last_name", "lastName")
        if isinstance(value.get(k), str) and value[k].strip()) or None
    return str(name).strip() or None if name else None


def traits_by_profile(session: Session, identity_ids: dict[int, list[int]]) -> dict[int, dict[str, dict[str, Any]]]:
    """`traits_of` for several profiles ({profile id: its identity ids}) in one query."""
    owner = {i: pid for pid, ids in identity_ids.items() for i in ids}
    latest: dict[int, dict[str, dict[str, Any]]] = {pid: {} for pid in identity_ids}
    if owner:
        rows = session.execute(
            select(CustomerTrait.identity_id, CustomerTrait.key, CustomerTrait.value, CustomerTrait.source, CustomerTrait.observed_at)
            .where(CustomerTrait.identity_id.in_(list(owner)))
            .order_by(CustomerTrait.verified, CustomerTrait.observed_at, CustomerTrait.identity_id)
        )
        for identity_id, key, value, source, observed_at in rows:
            latest[owner[identity_id]][key] = {"value": value, "source": source, "observed_at": observed_at}
    return {pid: {k: v for k, v in t.items() if v["value"] is not None} for pid, t in latest.items()}


# --- consents -------------------------------------------------------------------------------


def _check_consent_vocabulary(rules: IdentifierRules, consent: ConsentIn) -> None:
    settings = rules.settings
    if consent.channel not in settings.consent_channels:
        raise Unprocessable(
            f"Unknown consent channel {consent.channel!r}",
            code="unknown_consent_channel",
            details={"channel": consent.channel, "known": settings.consent_channels},
        )
    if consent.purpose not in settings.consent_purposes:
        raise Unprocessable(
            f"Unknown consent purpose {consent.purpose!r}",
            code="unknown_consent_purpose",
            details={"purpose": consent.purpose, "known": settings.consent_purposes},
        )


def check_consents(rules: IdentifierRules, consents: list[ConsentIn]) -> None:
    for consent in consents:
        _check_consent_vocabulary(rules, consent)


def record_consents(
    session: Session, *, profile_id: int, identity_id: int, consents: list[ConsentIn], source: str
) -> list[CustomerConsent]:
    """Append to the consent log; a consent equal to the current state is not repeated.
    A consent that names its own source (`ConsentCreate`) keeps it; others get `source`."""
    current = {(c["channel"], c["purpose"]): c["granted"] for c in current_consents(session, identity_ids_of(session, profile_id))}
    added = []
    now = utcnow()
    for consent in consents:
        key = (consent.channel, consent.purpose)
        if current.get(key) == consent.granted:
            continue
        row = CustomerConsent(
            identity_id=identity_id,
            channel=consent.channel,
            purpose=consent.purpose,
            granted=consent.granted,
            source=getattr(consent, "source", source),
            recorded_at=now,
        )
        session.add(row)
        current[key] = consent.granted
        added.append(row)
    session.flush()
    if added:
        changes.changed(session, profile_ids=[profile_id])
    return added


def consent_history(session: Session, identity_ids: list[int]) -> list[CustomerConsent]:
    if not identity_ids:
        return []
    return list(
        session.scalars(
            select(CustomerConsent)
            .where(CustomerConsent.identity_id.in_(identity_ids))
            .order_by(CustomerConsent.recorded_at, CustomerConsent.id)
        )
    )


def current_consents(session: Session, identity_ids: list[int]) -> list[dict[str, Any]]:
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for row in consent_history(session, identity_ids):
        latest[(row.channel, row.purpose)] = {
            "channel": row.channel,
            "purpose": row.purpose,
            "granted": row.granted,
            "source": row.source,
            "recorded_at": row.recorded_at,
        }
    return sorted(latest.values(), key=lambda c: (c["channel"], c["purpose"]))


def add_consents(
    session: Session, *, rules: IdentifierRules, customer_id: int, consents: list[ConsentIn], source: str
) -> CustomerProfile:
    check_consents(rules, consents)
    profile = get_profile(session, customer_id)
    resolution.lock_profiles(session, [profile.id])
    identity_ids = identity_ids_of(session, profile.id)
    record_consents(session, profile_id=profile.id, identity_id=identity_ids[0], consents=consents, source=source)
    return profile


# --- reading --------------------------------------------------------------------------------


def identity_ids_of(session: Session, profile_id: int) -> list[int]:
    return list(
        session.scalars(
            select(CustomerIdentity.id).where(CustomerIdentity.profile_id == profile_id).order_by(CustomerIdentity.id)
        )
    )


def get_profile(session: Session, customer_id: int) -> CustomerProfile:
    """The live profile for an id; a merged id leads to the profile it was merged into."""
    profile = resolution.canonical_profile(session, customer_id)
    if profile.status == "erased":
        raise Gone(f"Customer {customer_id} was erased", code="customer_erased", details={"customer_id": customer_id})
    return profile


def merged_profile_ids(session: Session, profile_id: int) -> list[int]:
    """The profile and every profile merged into it (directly or through others): records that
    other modules keep by profile id (orders, conversations) follow a merge without being
    rewritten, and go back with an unmerge. Memoized in read-only sessions: one page (the
    agent's window, the 360) asks it of every section."""
    memo = session.info.setdefault("merged_profile_ids", {}) if session.info.get("read_only") else None
    if memo is not None and profile_id in memo:
        return list(memo[profile_id])
    found = merged_profile_ids_many(session, [profile_id])[profile_id]
    if memo is not None:
        memo[profile_id] = tuple(found)
    return found


def merged_profile_ids_many(session: Session, profile_ids: Iterable[int]) -> dict[int, list[int]]:
    """`merged_profile_ids` of many canonical profiles (none merged into another of them) at once:
    one query per level of the deepest merge tree, whatever their number (a batch of inbound
    messages)."""
    found = {profile_id: [profile_id] for profile_id in profile_ids}
    root_of = {profile_id: profile_id for profile_id in found}
    frontier = list(found)
    while frontier:
        rows = session.execute(select(CustomerProfile.id, CustomerProfile.merged_into_id).where(
            CustomerProfile.merged_into_id.in_(frontier), CustomerProfile.status == "merged")).all()
        frontier = []
        for merged_id, into_id in rows:
            if merged_id not in root_of:  # a loop would be a bug, not a reason to hang
                root_of[merged_id] = root_of[into_id]
                found[root_of[into_id]].append(merged_id)
                frontier.append(merged_id)
    return found


def context_of(session: Session, profile: CustomerProfile) -> CustomerContext:
    identities = list(
        session.scalars(
            select(CustomerIdentity).where(CustomerIdentity.profile_id == profile.id).order_by(CustomerIdentity.id)
        )
    )
    return CustomerContext(profile=profile, identities=identities)


def timeline_page(
    session: Session, *, timeline: TimelineRegistry, customer_id: int, query: TimelineQuery
) -> tuple[list[TimelineItem], str | None]:
    profile = get_profile(session, customer_id)
    return timeline.page(session, context_of(session, profile), query)


def customer_360(session: Session, *, sections: SectionRegistry, customer_id: int) -> dict[str, Any]:
    profile = get_profile(session, customer_id)
    return _render(session, sections, profile)


#: The sections of this module: what an upsert writes, and all its answer carries (the other
#: modules' sections, the person's orders, points and conversations, are the 360's:
#: `GET /v1/customers/{id}`; rendering them was 70 % of an upsert's transaction).
OWN_SECTIONS = ("profile", "identities", "consents")


def _render(session: Session, sections: SectionRegistry, profile: CustomerProfile, *,
            only: Collection[str] | None = None) -> dict[str, Any]:
    return {
        "id": profile.id,
        "status": profile.status,
        "created_at": profile.created_at,
        "updated_at": profile.updated_at,
        "sections": sections.build(session, context_of(session, profile), only=only),
    }


def render_customer(session: Session, *, sections: SectionRegistry, profile_id: int,
                    only: Collection[str] | None = None) -> dict[str, Any]:
    return _render(session, sections, get_profile(session, profile_id), only=only)


def lookup(session: Session, *, rules: IdentifierRules, type_name: str, value: str) -> CustomerProfile:
    identifier = rules.normalize(type_name, value)
    row = session.scalar(
        select(CustomerIdentity).where(CustomerIdentity.type == identifier.type, CustomerIdentity.value == identifier.value)
    )
    if row is None:
        raise NotFound(
            f"No customer with {identifier.type} {identifier.value!r}",
            code="customer_not_found",
            details={"type": identifier.type, "value": identifier.value},
        )
    return session.get(CustomerProfile, row.profile_id)


def _search_candidates(rules: IdentifierRules, q: str) -> list[Identifier]:
    """Exact identifiers `q` could be (a phone in any format, an email in any case)."""
    found = []
    for type_name, kind in rules.types.items():
        if kind == "text":
            continue
        try:
            found.append(rules.normalize(type_name, q))
        except Unprocessable:
            continue
    return found


def list_customers(
    session: Session,
    *,
    rules: IdentifierRules,
    q: str | None,
    identifier_type: str | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Active profiles by id; `q` matches an identifier exactly after normalization or by prefix."""
    after = decode_cursor(cursor)
    query = select(CustomerProfile.id).where(CustomerProfile.status == "active")
    if after:
        query = query.where(CustomerProfile.id > after)
    if identifier_type:
        rules.check_type(identifier_type)
    if q or identifier_type:
        match = select(CustomerIdentity.profile_id)
        if identifier_type:
            match = match.where(CustomerIdentity.type == identifier_type)
        if q:
            escaped = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            conditions = [CustomerIdentity.value.like(f"{escaped}%", escape="\\")]
            conditions += [
                (CustomerIdentity.type == c.type) & (CustomerIdentity.value == c.value)
                for c in _search_candidates(rules, q)
            ]
            match = match.where(or_(*conditions))
        query = query.where(CustomerProfile.id.in_(match))
    ids = list(session.scalars(query.order_by(CustomerProfile.id).limit(limit + 1)))
    has_more = len(ids) > limit
    ids = ids[:limit]
    return _list_items(session, ids), encode_cursor(ids[-1]) if has_more else None


def _list_items(session: Session, ids: list[int]) -> list[dict[str, Any]]:
    """Rows of a customer list: status, identifiers, current trait values."""
    identities: dict[int, list[CustomerIdentity]] = {i: [] for i in ids}
    if ids:
        for row in session.scalars(
            select(CustomerIdentity).where(CustomerIdentity.profile_id.in_(ids)).order_by(CustomerIdentity.id)
        ):
            identities[row.profile_id].append(row)
    profiles = {p.id: p for p in session.scalars(select(CustomerProfile).where(CustomerProfile.id.in_(ids)))}
    traits = traits_by_profile(session, {pid: [i.id for i in rows] for pid, rows in identities.items()})
    return [
        {
            "id": pid,
            "status": profiles[pid].status,
            "identifiers": identities[pid],
            "traits": {k: v["value"] for k, v in traits[pid].items()},
            "updated_at": profiles[pid].updated_at,
        }
        for pid in ids
    ]


#: Traits a staff search by name looks in.
NAME_TRAITS = ("first_name", "last_name", "name", "firstName", "lastName", "middle_name")


def search_customers(session: Session, *, rules: IdentifierRules, q: str, limit: int) -> list[dict[str, Any]]:
    """What a person at the console means by a search box: an identifier (exactly after
    normalization, or its beginning), a phone number typed in part in any format ("8 916 12"),
    or words of the name. Rows as `list_customers`, identifier matches first."""
    items, _ = list_customers(session, rules=rules, q=q, identifier_type=None, limit=limit, cursor=None)
    seen = {i["id"] for i in items}
    prefix = phone_prefix(q, rules.settings.default_region)
    if prefix and prefix != q:
        more, _ = list_customers(session, rules=rules, q=prefix, identifier_type="phone", limit=limit, cursor=None)
        items += [i for i in more if i["id"] not in seen]
        seen |= {i["id"] for i in more}
    by_name = [pid for pid in profiles_by_name(session, q, limit) if pid not in seen]
    items += _list_items(session, by_name)
    return items[:limit]


def phone_prefix(q: str, region: str) -> str | None:
    """The stored (E.164) start of a phone number typed in part, in any format: "8 916 12" -> "+791612"."""
    if not re.fullmatch(r"[\d\s()+\-.]+", q):
        return None
    digits = re.sub(r"\D", "", q)
    if len(digits) < 4:
        return None
    code = str(phonenumbers.country_code_for_region(region))
    if q.lstrip().startswith("+") or digits.startswith(code):
        return "+" + digits
    if region == "RU" and digits.startswith("8"):  # the Russian trunk prefix
        return "+7" + digits[1:]
    return "+" + code + digits.lstrip("0")


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def profiles_by_name(session: Session, q: str, limit: int) -> list[int]:
    """Active profiles whose name traits contain every word of `q`. Trait values are JSON
    (non-ASCII letters stored \\u-escaped), so each word is looked for as typed, in usual cases,
    and escaped (SQLite's LIKE folds ASCII only)."""
    found: set[int] | None = None
    for word in q.split()[:4]:
        forms = {word, word.lower(), word.capitalize(), word.upper()}
        patterns = forms | {json.dumps(f)[1:-1] for f in forms}
        text = cast(CustomerTrait.value, String)
        ids = set(session.scalars(
            select(CustomerIdentity.profile_id)
            .join(CustomerTrait, CustomerTrait.identity_id == CustomerIdentity.id)
            .join(CustomerProfile, CustomerProfile.id == CustomerIdentity.profile_id)
            .where(CustomerProfile.status == "active", CustomerTrait.key.in_(NAME_TRAITS),
                   or_(*[text.like(_like(p), escape="\\") for p in patterns]))
            .limit(1000)))
        found = ids if found is None else found & ids
    return sorted(found or ())[:limit]


def trait_values(session: Session, key: str, *, limit: int = 1_000_000) -> dict[int, Any]:
    """{active profile id: its value of the trait `key`}, as the 360 shows it (the chosen
    observation: `traits_of`), for everyone who has one (an analytics breakdown)."""
    candidates = list(session.scalars(
        select(CustomerIdentity.profile_id).distinct()
        .join(CustomerTrait, CustomerTrait.identity_id == CustomerIdentity.id)
        .join(CustomerProfile, CustomerProfile.id == CustomerIdentity.profile_id)
        .where(CustomerProfile.status == "active", CustomerTrait.key == key).limit(limit)))
    return {profile_id: chosen[key]["value"] for profile_id, chosen in _chosen_traits(session, candidates)
            if key in chosen}


def _chosen_traits(session: Session, profile_ids: list[int]) -> Iterator[tuple[int, dict[str, dict[str, Any]]]]:
    """(profile id, its traits as `traits_of` chooses them) for many profiles, 2,000 at a time."""
    for start in range(0, len(profile_ids), 2000):
        batch = profile_ids[start:start + 2000]
        identities: dict[int, list[int]] = {p: [] for p in batch}
        for profile_id, identity_id in session.execute(
                select(CustomerIdentity.profile_id, CustomerIdentity.id).where(CustomerIdentity.profile_id.in_(batch))):
            identities[profile_id].append(identity_id)
        yield from traits_by_profile(session, identities).items()


def profiles_with_traits(session: Session, traits: dict[str, str]) -> list[int]:
    """Active profiles whose traits, as the 360 shows them (per key the chosen observation, see
    `traits_of`), equal every value given, compared as text (`"gold"`, `5`, `true`): a segment.
    Found in two steps: profiles with any observation of the value, then the rule that chooses."""
    forms: dict[str, set[str]] = {}
    for key, wanted in traits.items():
        forms[key] = {json.dumps(wanted), json.dumps(wanted, ensure_ascii=False)}
        try:
            forms[key].add(json.dumps(json.loads(wanted)))  # a number, true, false
        except ValueError:
            pass
    found: set[int] | None = None
    for key, texts in forms.items():
        ids = set(session.scalars(
            select(CustomerIdentity.profile_id).distinct()
            .join(CustomerTrait, CustomerTrait.identity_id == CustomerIdentity.id)
            .join(CustomerProfile, CustomerProfile.id == CustomerIdentity.profile_id)
            .where(CustomerProfile.status == "active", CustomerTrait.key == key, cast(CustomerTrait.value, String).in_(texts))))
        found = ids if found is None else found & ids
    return sorted(profile_id for profile_id, chosen in _chosen_traits(session, sorted(found or ()))
                  if all(key in chosen and json.dumps(chosen[key]["value"]) in texts for key, texts in forms.items()))


# --- privacy: export and erase --------------------------------------------------------------


def export_customer(session: Session, *, sections: SectionRegistry, customer_id: int) -> dict[str, Any]:
    """Everything held about a person, as one document (a data-subject access request)."""
    profile = get_profile(session, customer_id)
    context = context_of(session, profile)
    ids = context.identity_ids
    links = list(
        session.scalars(
            select(CustomerLink)
            .where(CustomerLink.identity_a_id.in_(ids) | CustomerLink.identity_b_id.in_(ids))
            .order_by(CustomerLink.id)
        )
    ) if ids else []
    return {
        "format": "seamline.customer-export/1",
        "exported_at": utcnow(),
        "customer": {
            "id": profile.id,
            "status": profile.status,
            "created_at": profile.created_at,
            "updated_at": profile.updated_at,
        },
        "sections": sections.export(session, context),
        "links": [
            {
                "identity_a_id": link.identity_a_id,
                "identity_b_id": link.identity_b_id,
                "source": link.source,
                "forced": link.forced,
                "revoked": link.revoked,
                "created_at": link.created_at,
            }
            for link in links
        ],
        "merges": [
            {
                "id": m.id,
                "survivor_id": m.survivor_id,
                "absorbed_id": m.absorbed_id,
                "reason": m.reason,
                "source": m.source,
                "created_at": m.created_at,
                "undone_at": m.undone_at,
            }
            for m in resolution.merges_of(session, profile.id)
        ],
    }


def erase_customer(
    session: Session, *, customer_id: int, reason: str, actor: str, sections: SectionRegistry | None = None
) -> CustomerErasure:
    """Remove a person's personal data; keep an audit record that holds none.

    Identifiers are deleted with everything hanging off them (traits, consents, links), so none
    of them can ever lead back to this profile; if the person comes back, they start afresh.
    Repeating the request returns the first erasure's record.
    """
    # A merged id stands for the profile it was merged into, also when that one is already erased.
    profile = resolution.canonical_profile(session, customer_id)
    if profile.status == "erased":
        return session.scalar(select(CustomerErasure).where(CustomerErasure.profile_id == profile.id))
    if resolution.lock_profiles(session, [profile.id])[profile.id].status != "active":
        raise TransactionConflict()  # merged or erased while we waited for the lock: look again
    ids = identity_ids_of(session, profile.id)
    # Other modules' personal data first (events keyed by these identifiers, ...), while the
    # identifiers still say whose it is.
    removed_elsewhere = sections.erase(session, context_of(session, profile)) if sections else {}
    counts: Counter[str] = Counter(
        dict(
            session.execute(
                select(CustomerIdentity.type, func.count())
                .where(CustomerIdentity.profile_id == profile.id)
                .group_by(CustomerIdentity.type)
            ).all()
        )
    )
    if ids:
        counts["traits"] = session.scalar(select(func.count()).where(CustomerTrait.identity_id.in_(ids))) or 0
        counts["consents"] = session.scalar(select(func.count()).where(CustomerConsent.identity_id.in_(ids))) or 0
        link_ids = select(CustomerLink.id).where(
            CustomerLink.identity_a_id.in_(ids) | CustomerLink.identity_b_id.in_(ids)
        )
        # Explicit deletes (not only ON DELETE CASCADE), so SQLite and PostgreSQL behave alike.
        session.execute(delete(CustomerConflict).where(CustomerConflict.link_id.in_(link_ids)))
        session.execute(
            CustomerMerge.__table__.update().where(CustomerMerge.link_id.in_(link_ids)).values(link_id=None)
        )
        session.execute(delete(CustomerLink).where(CustomerLink.id.in_(link_ids)))
        session.execute(delete(CustomerTrait).where(CustomerTrait.identity_id.in_(ids)))
        session.execute(delete(CustomerConsent).where(CustomerConsent.identity_id.in_(ids)))
        session.execute(delete(CustomerIdentity).where(CustomerIdentity.id.in_(ids)))
    counts.update({name: n for name, n in removed_elsewhere.items() if n})
    profile.status = "erased"
    profile.updated_at = utcnow()
    changes.changed(session, profile_ids=[profile.id])
    erasure = CustomerErasure(profile_id=profile.id, requested_by=actor, reason=reason, removed_counts=dict(counts))
    session.add(erasure)
    session.flush()
    return erasure


# --- the sections this module contributes to the 360 -----------------------------------------


def _profile_section(session: Session, context: CustomerContext) -> dict[str, Any]:
    return {"traits": traits_of(session, context.identity_ids)}


def _identities_section(_session: Session, context: CustomerContext) -> list[dict[str, Any]]:
    return [
        {"id": i.id, "type": i.type, "value": i.value, "source": i.source, "created_at": i.created_at}
        for i in context.identities
    ]


def _consents_section(session: Session, context: CustomerContext) -> list[dict[str, Any]]:
    return current_consents(session, context.identity_ids)


def _consents_export(session: Session, context: CustomerContext) -> dict[str, Any]:
    history = [
        {
            "channel": c.channel,
            "purpose": c.purpose,
            "granted": c.granted,
            "source": c.source,
            "recorded_at": c.recorded_at,
            "identity_id": c.identity_id,
        }
        for c in consent_history(session, context.identity_ids)
    ]
    return {"current": current_consents(session, context.identity_ids), "history": history}


def _profile_export(session: Session, context: CustomerContext) -> dict[str, Any]:
    rows = session.scalars(
        select(CustomerTrait).where(CustomerTrait.identity_id.in_(context.identity_ids)).order_by(CustomerTrait.key)
    ) if context.identity_ids else []
    return {
        "traits": traits_of(session, context.identity_ids),
        "traits_by_identity": [
            {"identity_id": t.identity_id, "key": t.key, "value": t.value, "source": t.source, "observed_at": t.observed_at}
            for t in rows
        ],
    }


def register_sections(registry: SectionRegistry, *, timeline: TimelineRegistry | None = None) -> None:
    registry.register("profile", _profile_section, export=_profile_export)
    registry.register("identities", _identities_section)
    registry.register("consents", _consents_section, export=_consents_export)
    if timeline is not None:
        # The 360 shows the latest 20 items; the timeline endpoint pages through the rest.
        registry.register(
            "timeline",
            lambda session, context: [
                asdict(item) for item in timeline.page(session, context, TimelineQuery(limit=20))[0]
            ],
        )
