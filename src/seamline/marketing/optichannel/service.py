"""The next best channel and send time, learnt from what people did with their messages.

- **Learning.** Each marketing message that leaves adds a send to the person's evidence for its
  channel and for their local hour (`record_sends`); what they do with it adds its reward
  (`record_outcome`: opened, clicked, unsubscribed from tracking; `credit_replies` for a reply on
  the channel; `on_orders` for a purchase within `CONVERSION_WINDOW`). Each message earns at
  most 1 in all (`MarketingMessage.response` keeps what it earned so far).
- **Choosing.** `rank_channels` orders the channels that reach a person (the inbox's outbound
  asks it when no channel is named: runtime registers `Ranker`); `best_moments` picks the local
  hour to send (a journey's wait "until best", a campaign at the best time).
- **People like them.** A person's cohort is the set of channels they can be reached on
  ("email+mobilepush+sms"). `refresh_cohorts` (the `marketing.optichannel` job) sums each
  cohort's evidence; it is the prior of its people (`model.prior_of`).
- **Explaining.** `explain` is what the console and the API show: each channel with why it can
  or cannot be used, the person's own evidence, their cohort's rate and the expected rate.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased

from seamline.core.config import Settings
from seamline.core.time import utcnow
from seamline.customers import service as customers_service
from seamline.customers.sections import CustomerContext
from seamline.inbox.models import InboxMessage
from seamline.marketing.messages.models import MarketingMessage
from seamline.marketing.optichannel import model
from seamline.marketing.optichannel.models import MarketingChannelEvidence, MarketingCohortEvidence, MarketingHourEvidence

#: A purchase this long after a marketing message is its response (the message's channel earns it).
CONVERSION_WINDOW = timedelta(days=7)
#: A reply on the message's channel this long after it is its response.
REPLY_WINDOW = timedelta(days=3)
#: The cohort of everyone: the prior of a cohort that has no evidence for a channel yet.
EVERYONE = "*"


def _half_life(settings: Settings) -> float:
    return settings.marketing_channel_half_life_days


def _upsert(session: Session, table: Any, rows: list[dict[str, Any]], keys: list[str]) -> None:
    """Add each row's responses and sends to its key's (a plain addition: forward decay needs no read)."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    statement = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    changes: dict[str, Any] = {"responses": table.c.responses + statement.excluded.responses,
                               "sends": table.c.sends + statement.excluded.sends}
    if "cohort" in table.c:  # a send whose channel was named does not know the cohort: it keeps the last one
        changes["cohort"] = func.coalesce(func.nullif(statement.excluded.cohort, ""), table.c.cohort)
    if "updated_at" in table.c:
        changes["updated_at"] = statement.excluded.updated_at
    merged: dict[tuple, dict[str, Any]] = {}
    for row in rows:  # one row per key: PostgreSQL refuses to update a row twice in one statement
        key = tuple(row[k] for k in keys)
        if key in merged:
            merged[key]["responses"] += row["responses"]
            merged[key]["sends"] += row["sends"]
            merged[key]["cohort"] = row.get("cohort") or merged[key].get("cohort", "")
        else:
            merged[key] = dict(row)
    session.execute(statement.on_conflict_do_update(index_elements=keys, set_=changes), list(merged.values()))


# --- learning --------------------------------------------------------------------------------


@dataclass
class Sent:
    """A marketing message that left: the person, where, at what local hour, and their cohort
    (empty when the channel was named: nothing was chosen among others)."""

    profile_id: int
    channel: str
    local_hour: int
    cohort: str = ""


def cohort_of(channels: Iterable[str]) -> str:
    return "+".join(sorted(set(channels)))


def record_sends(session: Session, settings: Settings, sent: list[Sent], now: datetime) -> None:
    w = model.weight(now, _half_life(settings))
    _upsert(session, MarketingChannelEvidence.__table__, [
        dict(profile_id=s.profile_id, channel=s.channel, cohort=s.cohort, responses=0.0, sends=w, updated_at=now) for s in sent],
        ["profile_id", "channel"])
    _upsert(session, MarketingHourEvidence.__table__, [
        dict(profile_id=s.profile_id, hour=s.local_hour, cohort=s.cohort, responses=0.0, sends=w) for s in sent],
        ["profile_id", "hour"])


def _credit(session: Session, settings: Settings, messages: list[MarketingMessage], reward: float, now: datetime,
            *, penalty: float = 0.0) -> int:
    """Raise each message's response to `reward` (if below) and add the difference, and any
    `penalty` sends, to its person's channel and hour evidence; how many earned something."""
    channel_rows, hour_rows, earned = [], [], 0
    for message in messages:
        gained = model.credit(message.response or 0.0, reward)
        if not gained and not penalty or message.channel is None:
            continue
        earned += gained > 0
        message.response = max(message.response or 0.0, reward)
        w = model.weight(message.created_at, _half_life(settings))
        channel_rows.append(dict(profile_id=message.profile_id, channel=message.channel, cohort="", responses=gained * w,
                                 sends=penalty * w, updated_at=now))
        if message.local_hour is not None:
            hour_rows.append(dict(profile_id=message.profile_id, hour=message.local_hour, cohort="", responses=gained * w,
                                  sends=penalty * w))
    _upsert(session, MarketingChannelEvidence.__table__, channel_rows, ["profile_id", "channel"])
    _upsert(session, MarketingHourEvidence.__table__, hour_rows, ["profile_id", "hour"])
    return earned


def record_outcome(session: Session, settings: Settings, message: MarketingMessage, outcome: str,
                   now: datetime | None = None) -> None:
    """What a person did with a message (opened, clicked, replied, converted, unsubscribed)."""
    now = now or utcnow()
    if outcome == "unsubscribed":
        _credit(session, settings, [message], 0.0, now, penalty=model.UNSUBSCRIBE_PENALTY)
    else:
        _credit(session, settings, [message], model.REWARDS[outcome], now)


def _unanswered(since: datetime) -> Any:
    return _sent_since(since).where(MarketingMessage.response < 1.0)


def _sent_since(since: datetime) -> Any:
    return select(MarketingMessage).where(MarketingMessage.status == "queued", MarketingMessage.created_at >= since,
                                          MarketingMessage.channel.is_not(None))


def on_orders(session: Session, settings: Settings, profile_ids: Iterable[int], now: datetime | None = None) -> int:
    """New orders by these profiles: each one's latest unanswered message of the last
    `CONVERSION_WINDOW` converted (one message per order: the last touch)."""
    now = now or utcnow()
    families = customers_service.merged_profile_ids_many(session, sorted(set(profile_ids)))
    members = sorted({member for family in families.values() for member in family})
    latest: dict[int, MarketingMessage] = {}
    owner = {member: person for person, family in families.items() for member in family}
    for message in session.scalars(_unanswered(now - CONVERSION_WINDOW).where(MarketingMessage.profile_id.in_(members))
                                   .order_by(MarketingMessage.id)):
        latest[owner[message.profile_id]] = message
    return _credit(session, settings, list(latest.values()), model.REWARDS["converted"], now)


def credit_replies(session: Session, settings: Settings, now: datetime | None = None) -> int:
    """Messages of the last `REPLY_WINDOW` the person answered (a later inbound message in that
    conversation on the same channel): replied. A reply answers the last message on its
    channel before it, not every one."""
    now = now or utcnow()
    sent, reply = aliased(InboxMessage), aliased(InboxMessage)
    answered = (select(MarketingMessage, sent.conversation_id, sent.channel, sent.id).join(sent, sent.id == MarketingMessage.inbox_message_id)
                .where(MarketingMessage.id.in_(_sent_since(now - REPLY_WINDOW).with_only_columns(MarketingMessage.id)),
                       select(reply.id).where(reply.conversation_id == sent.conversation_id, reply.direction == "in",
                                              reply.id > sent.id, reply.channel == sent.channel).exists())
                .order_by(sent.id))
    last: dict[tuple[int, str], MarketingMessage] = {}
    for message, conversation_id, channel, _id in session.execute(answered):
        last[(conversation_id, channel)] = message
    return _credit(session, settings, [m for m in last.values() if m.response < 1.0], model.REWARDS["replied"], now)


def refresh_cohorts(session: Session, settings: Settings, now: datetime | None = None) -> int:
    """Sum each cohort's evidence (and everyone's) per channel and per hour; how many rows."""
    now = now or utcnow()
    rows: list[dict[str, Any]] = []
    for kind, table, option in (("channel", MarketingChannelEvidence, MarketingChannelEvidence.channel),
                                ("hour", MarketingHourEvidence, MarketingHourEvidence.hour)):
        totals: dict[tuple[str, str], list[float]] = {}
        for cohort, value, responses, sends in session.execute(
                select(table.cohort, option, func.sum(table.responses), func.sum(table.sends)).group_by(table.cohort, option)):
            for key in ((cohort or EVERYONE, str(value)), (EVERYONE, str(value))) if cohort else ((EVERYONE, str(value)),):
                total = totals.setdefault(key, [0.0, 0.0])
                total[0] += float(responses or 0.0)
                total[1] += float(sends or 0.0)
        rows += [dict(cohort=cohort, kind=kind, option=value, responses=r, sends=s, computed_at=now)
                 for (cohort, value), (r, s) in totals.items()]
    session.execute(delete(MarketingCohortEvidence))
    if rows:
        session.execute(insert(MarketingCohortEvidence.__table__), rows)
    return len(rows)


# --- choosing --------------------------------------------------------------------------------


@dataclass
class Evidence:
    """What the model knows about some people, decayed to `now`."""

    channels: dict[int, dict[str, model.Counts]]
    hours: dict[int, dict[int, model.Counts]]
    cohorts: dict[int, str]


def load(session: Session, settings: Settings, families: dict[int, list[int]], now: datetime | None = None) -> Evidence:
    """The evidence of these people ({person: their profile ids, merged ones included})."""
    now = now or utcnow()
    half_life = _half_life(settings)
    owner = {member: person for person, family in families.items() for member in family}
    channels: dict[int, dict[str, model.Counts]] = {p: {} for p in families}
    hours: dict[int, dict[int, model.Counts]] = {p: {} for p in families}
    cohorts: dict[int, tuple[datetime, str]] = {}
    members = sorted(owner)
    for start in range(0, len(members), 5000):
        chunk = members[start:start + 5000]
        for profile_id, channel, cohort, responses, sends, updated_at in session.execute(select(
                MarketingChannelEvidence.profile_id, MarketingChannelEvidence.channel, MarketingChannelEvidence.cohort,
                MarketingChannelEvidence.responses, MarketingChannelEvidence.sends, MarketingChannelEvidence.updated_at)
                .where(MarketingChannelEvidence.profile_id.in_(chunk))):
            person = owner[profile_id]
            counts = model.at(model.Counts(responses, sends), now, half_life)
            channels[person][channel] = channels[person].get(channel, model.Counts()) + counts
            if cohort and (person not in cohorts or updated_at > cohorts[person][0]):
                cohorts[person] = (updated_at, cohort)
        for profile_id, hour, responses, sends in session.execute(select(
                MarketingHourEvidence.profile_id, MarketingHourEvidence.hour, MarketingHourEvidence.responses,
                MarketingHourEvidence.sends).where(MarketingHourEvidence.profile_id.in_(chunk))):
            person = owner[profile_id]
            hours[person][hour] = hours[person].get(hour, model.Counts()) + model.at(model.Counts(responses, sends), now, half_life)
    return Evidence(channels, hours, {p: cohort for p, (_at, cohort) in cohorts.items()})


def _cohort_evidence(session: Session, settings: Settings, cohorts: Iterable[str], kind: str,
                     now: datetime) -> dict[str, dict[str, model.Counts]]:
    """{cohort: {option: counts}}, each cohort's options filled in from everyone's where it has none."""
    wanted = sorted({*cohorts, EVERYONE})
    found: dict[str, dict[str, model.Counts]] = {c: {} for c in wanted}
    for cohort, option, responses, sends in session.execute(select(
            MarketingCohortEvidence.cohort, MarketingCohortEvidence.option, MarketingCohortEvidence.responses,
            MarketingCohortEvidence.sends).where(MarketingCohortEvidence.kind == kind, MarketingCohortEvidence.cohort.in_(wanted))):
        found[cohort][option] = model.at(model.Counts(responses, sends), now, _half_life(settings))
    everyone = found[EVERYONE]
    return {c: {**everyone, **options} for c, options in found.items()}


def _cohort_cache(session: Session) -> dict[tuple[str, str], dict[str, model.Counts]]:
    return session.info.setdefault("optichannel_cohorts", {})


def _cohort(session: Session, settings: Settings, cohort: str, kind: str, now: datetime) -> dict[str, model.Counts]:
    """A cohort's evidence, read once per session (a bulk send ranks thousands of people)."""
    cache = _cohort_cache(session)
    if (cohort, kind) not in cache:
        cache[(cohort, kind)] = _cohort_evidence(session, settings, [cohort], kind, now)[cohort]
    return cache[(cohort, kind)]


def rank_channels(session: Session, settings: Settings, *, channels: dict[str, model.Counts], reachable: list[str],
                  rng: random.Random | None, now: datetime | None = None) -> list[model.Ranked]:
    """The reachable channels best first (a Thompson draw with `rng`, the expected rate without)."""
    now = now or utcnow()
    cohort = _cohort(session, settings, cohort_of(reachable), "channel", now)
    return model.rank(reachable, channels, cohort, rng=rng, strength=settings.marketing_channel_prior_strength)


def allowed_hours(settings: Settings) -> list[int]:
    """The local hours a marketing message may go at: outside quiet hours."""
    window = None
    if settings.marketing_quiet_hours:
        start, end = settings.marketing_quiet_hours.split("-")
        window = (int(start[:2]) * 60 + int(start[3:]), int(end[:2]) * 60 + int(end[3:]))
    hours = []
    for hour in range(24):
        minute = hour * 60
        if window is not None:
            start, end = window
            inside = (minute >= start or minute < end) if start > end else (start <= minute < end)
            if inside:
                continue
        hours.append(hour)
    return hours or list(range(24))


def rank_hours(session: Session, settings: Settings, *, hours: dict[int, model.Counts], cohort: str,
               rng: random.Random | None, now: datetime | None = None) -> list[model.Ranked]:
    now = now or utcnow()
    theirs = {int(h): c for h, c in _cohort(session, settings, cohort, "hour", now).items()}
    return model.rank(allowed_hours(settings), model.smooth_hours(hours), model.smooth_hours(theirs), rng=rng,
                      strength=settings.marketing_channel_prior_strength)


def best_moments(session: Session, settings: Settings, zones: dict[int, str], *, seeds: dict[int, str],
                 now: datetime | None = None) -> dict[int, datetime]:
    """For each profile ({profile: time zone}), the next start of the local hour the model draws
    for them (seeded: a step retried draws the same hour); now when that hour is the current one."""
    now = now or utcnow()
    families = customers_service.merged_profile_ids_many(session, sorted(zones))
    evidence = load(session, settings, {p: families.get(p, [p]) for p in zones}, now)
    moments = {}
    for profile_id, zone in zones.items():
        ranked = rank_hours(session, settings, hours=evidence.hours[profile_id], cohort=evidence.cohorts.get(profile_id, ""),
                            rng=model.seeded("hour", seeds.get(profile_id, profile_id)), now=now)
        moments[profile_id] = next_start_of(int(ranked[0].option), zone, now)
    return moments


def next_start_of(hour: int, zone: str, now: datetime) -> datetime:
    local = now.astimezone(ZoneInfo(zone))
    if local.hour == hour:
        return now
    at = local.replace(hour=hour, minute=0, second=0, microsecond=0)
    if at <= local:
        at = (local + timedelta(days=1)).replace(hour=hour, minute=0, second=0, microsecond=0)
    return at.astimezone(now.tzinfo)


class Ranker:
    """What the inbox's outbound asks when no channel is named (registered by the runtime):
    `load` once for a batch of people, `rank` for each of them."""

    def load(self, session: Session, settings: Settings, families: dict[int, list[int]]) -> Evidence:
        return load(session, settings, families)

    def rank(self, session: Session, settings: Settings, customer_id: int, reachable: list[str], *,
             loaded: Evidence | None, seed: str | None) -> list[str]:
        evidence = loaded if loaded is not None and customer_id in loaded.channels else load(
            session, settings, {customer_id: customers_service.merged_profile_ids_many(session, [customer_id]).get(customer_id, [customer_id])})
        rng = model.seeded("channel", seed) if seed else random.Random()
        return [str(r.option) for r in rank_channels(session, settings, channels=evidence.channels[customer_id],
                                                       reachable=reachable, rng=rng)]


# --- explaining ------------------------------------------------------------------------------


def explain(session: Session, settings: Settings, *, customer_id: int, reachable: dict[str, str | None],
            zone: str, now: datetime | None = None) -> dict[str, Any]:
    """The person's channels ranked by the expected response rate, with the evidence behind it;
    `reachable`: each channel the outbound knows -> None when it reaches them for a marketing
    message, else the reason it does not. Their best hours, too."""
    now = now or utcnow()
    family = customers_service.merged_profile_ids_many(session, [customer_id]).get(customer_id, [customer_id])
    evidence = load(session, settings, {customer_id: family}, now)
    usable = [c for c, why in reachable.items() if why is None]
    ranked = rank_channels(session, settings, channels=evidence.channels[customer_id], reachable=usable, rng=None, now=now)
    cohort = cohort_of(usable)
    rows = [dict(channel=r.option, rank=i + 1, expected_rate=round(r.mean, 4), sends=round(r.sends, 2),
                 responses=round(r.responses, 2), cohort_rate=None if r.cohort_rate is None else round(r.cohort_rate, 4),
                 reason=None) for i, r in enumerate(ranked)]
    rows += [dict(channel=c, rank=None, expected_rate=None, sends=round(evidence.channels[customer_id].get(c, model.Counts()).sends, 2),
                  responses=round(evidence.channels[customer_id].get(c, model.Counts()).responses, 2), cohort_rate=None, reason=why)
             for c, why in reachable.items() if why is not None]
    hours = rank_hours(session, settings, hours=evidence.hours[customer_id], cohort=cohort, rng=None, now=now)
    known = any(c.responses for c in evidence.hours[customer_id].values()) or any(
        c.responses for c in _cohort(session, settings, cohort, "hour", now).values())
    return {"customer_id": customer_id, "cohort": cohort, "channels": rows, "timezone": zone,
            # until someone (they or their cohort) answered, hours differ only by what went unanswered: none is named
            "best_hours": [dict(hour=int(h.option), expected_rate=round(h.mean, 4), sends=round(h.sends, 2)) for h in hours[:3]] if known else [],
            "half_life_days": _half_life(settings)}


def _profiles(session: Session, context: CustomerContext) -> list[int]:
    return customers_service.merged_profile_ids_many(session, [context.profile.id]).get(context.profile.id, [context.profile.id])


def exporter(settings: Settings) -> Any:
    """The person's evidence per channel in their privacy export, decayed to now."""
    def export(session: Session, context: CustomerContext) -> list[dict[str, Any]]:
        now = utcnow()
        return [dict(channel=row.channel, **vars(model.at(model.Counts(row.responses, row.sends), now, _half_life(settings))))
                for row in session.scalars(select(MarketingChannelEvidence).where(
                    MarketingChannelEvidence.profile_id.in_(_profiles(session, context))).order_by(MarketingChannelEvidence.channel))]
    return export


def erase(session: Session, context: CustomerContext) -> int:
    """At erasure the evidence goes with the person (their cohort's sums keep it until the next refresh, unnamed)."""
    ids, gone = _profiles(session, context), 0
    for table in (MarketingChannelEvidence, MarketingHourEvidence):
        gone += session.execute(delete(table).where(table.profile_id.in_(ids))).rowcount or 0
    return gone
