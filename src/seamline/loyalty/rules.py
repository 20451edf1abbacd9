"""The program's rules: stored once (`loyalty_program`), read by every earning, redemption and tier.

Earning for an order, in points (whole points, rounded down on the order's sum):
    sum over lines of  line.total * earn_percent% * category multiplier * tier multiplier
                       * channel multiplier / point_value
    + the channel's fixed bonus points
`line.total` is what was paid for the line: after promotions and after the points spent on it
(`commerce.redemption`), so points never earn points. A category multiplier applies to a line
of that category or of any category under it (the nearest one set wins). A channel bonus with
`first_order_only` applies to the customer's first earning order placed in that channel.

Tiers: the highest tier whose `min_spend` the customer's spend over the last
`tier_window_days` reaches (spend: what earning orders paid, less what returns gave back).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from seamline.commerce.models import (
    CommerceCategory,
    CommerceOrderLine,
    CommerceProduct,
    CommerceVariant,
)
from seamline.core.errors import Unprocessable
from seamline.core.time import utcnow
from seamline.loyalty.models import (
    LoyaltyAccount,
    LoyaltyEntry,
    LoyaltyProgram,
    LoyaltyTierChange,
)
from seamline.loyalty.schemas import ProgramPut, Tier


def get_program(session: Session) -> ProgramPut:
    row = session.get(LoyaltyProgram, 1)
    if row is None:
        return ProgramPut()
    # ProgramPut refuses unknown fields (it is the request body): a rule stored by an older version is left out.
    return ProgramPut.model_validate({k: v for k, v in row.rules.items() if k in ProgramPut.model_fields})


_programs: dict[Any, ProgramPut] = {}


def program_as_of(session: Session, updated_at: Any) -> ProgramPut:
    """The program, parsed once per version (its `updated_at`, as a hot path read it beside
    its own row; None: no program stored): a balance read does not validate the rules again."""
    program = _programs.get(updated_at)
    if program is None:
        program = get_program(session)
        _programs.clear()  # one version at a time: an old one is never asked for again
        _programs[updated_at] = program
    return program


def check_complete(data: ProgramPut) -> None:
    """A whole program was given (PUT): a missing field would silently reset that rule."""
    missing = sorted(set(ProgramPut.model_fields) - data.model_fields_set)
    if missing:
        raise Unprocessable(
            f"PUT replaces the whole program: {', '.join(missing)} missing (PATCH changes some fields)",
            code="incomplete_program", details={"missing": missing},
        )


def patch_program(session: Session, changes: dict[str, Any]) -> ProgramPut:
    """Change some fields of the program, keep the others; the result must be a valid program."""
    merged = {**get_program(session).model_dump(mode="json"), **changes}
    try:
        program = ProgramPut.model_validate(merged)
    except ValidationError as exc:
        raise Unprocessable("The program would not be valid", code="invalid_program",
                            details={"errors": [{"field": ".".join(map(str, e["loc"])), "message": e["msg"]}
                                                for e in exc.errors()]}) from None
    return put_program(session, program)


def put_program(session: Session, data: ProgramPut) -> ProgramPut:
    row = session.get(LoyaltyProgram, 1)
    if row is None:
        row = LoyaltyProgram(id=1)
        session.add(row)
    row.rules, row.updated_at = data.model_dump(mode="json"), utcnow()
    session.flush()
    return data


def program_texts(program: ProgramPut) -> dict[str, str]:
    return {"name_ru": program.name_ru, "name_en": program.name_en, "points_name_ru": program.points_name_ru,
            "points_name_en": program.points_name_en}


# --- earning -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PaidLine:
    total: int
    category_id: int | None


def paid_lines(session: Session, order_id: int) -> list[PaidLine]:
    rows = session.execute(
        select(CommerceOrderLine.total, CommerceProduct.category_id)
        .join(CommerceVariant, CommerceVariant.id == CommerceOrderLine.variant_id)
        .join(CommerceProduct, CommerceProduct.id == CommerceVariant.product_id)
        .where(CommerceOrderLine.order_id == order_id)
    )
    return [PaidLine(total, category_id) for total, category_id in rows]


def _category_multipliers(session: Session, program: ProgramPut) -> dict[int, Fraction]:
    """{category id: multiplier} for every category, inherited from the nearest ancestor set."""
    if not program.category_multipliers:
        return {}
    categories = {c.id: (c.code, c.parent_id) for c in session.scalars(select(CommerceCategory))}
    found: dict[int, Fraction] = {}
    for category_id in categories:
        current: int | None = category_id
        seen = set()
        while current is not None and current not in seen:
            seen.add(current)
            code, parent = categories[current]
            if code in program.category_multipliers:
                found[category_id] = Fraction(program.category_multipliers[code]).limit_denominator(10**6)
                break
            current = parent
    return found


def tier_of(program: ProgramPut, code: str | None) -> Tier | None:
    return next((t for t in program.tiers if t.code == code), None)


def order_points(
    session: Session, program: ProgramPut, *, lines: list[PaidLine], tier: str | None, channel: str | None,
    first_in_channel: bool,
) -> int:
    """Points an order earns (see the module doc)."""
    multipliers = _category_multipliers(session, program)
    percent = Fraction(program.earn_percent).limit_denominator(10**6) / 100
    factor = percent / program.point_value
    current = tier_of(program, tier)
    if current is not None:
        factor *= Fraction(current.earn_multiplier).limit_denominator(10**6)
    bonus = 0
    for rule in program.channel_bonuses:
        if rule.channel == channel and (first_in_channel or not rule.first_order_only):
            factor *= Fraction(rule.multiplier).limit_denominator(10**6)
            bonus += rule.points
    value = sum((line.total * multipliers.get(line.category_id, Fraction(1)) for line in lines), Fraction(0))
    return int(value * factor) + bonus


def earned_before_in_channel(session: Session, account_id: int, channel: str | None) -> bool:
    return session.scalar(select(LoyaltyEntry.id).where(
        LoyaltyEntry.account_id == account_id, LoyaltyEntry.kind == "earn", LoyaltyEntry.channel == channel,
    ).limit(1)) is not None


# --- tiers ---------------------------------------------------------------------------------------


def rolling_spend(session: Session, account_id: int, *, program: ProgramPut, now: datetime) -> int:
    since = now - timedelta(days=program.tier_window_days)
    return int(session.scalar(select(func.coalesce(func.sum(LoyaltyEntry.spend_delta), 0)).where(
        LoyaltyEntry.account_id == account_id, LoyaltyEntry.created_at >= since)) or 0)


def tier_for_spend(program: ProgramPut, spend: int) -> Tier | None:
    reached = [t for t in program.tiers if spend >= t.min_spend]
    return max(reached, key=lambda t: t.min_spend) if reached else None


def evaluate_tier(session: Session, account: LoyaltyAccount, *, program: ProgramPut, now: datetime | None = None) -> str | None:
    """Set the account's tier from its rolling spend; a change is recorded. Returns the tier."""
    now = now or utcnow()
    spend = rolling_spend(session, account.id, program=program, now=now)
    tier = tier_for_spend(program, spend)
    code = tier.code if tier else None
    if code != account.tier:
        session.add(LoyaltyTierChange(account_id=account.id, from_tier=account.tier, to_tier=code, spend=spend, created_at=now))
        account.tier = code
    account.tier_spend, account.tier_evaluated_at = spend, now
    return code


def next_tier(program: ProgramPut, account: LoyaltyAccount) -> dict | None:
    """The next tier up and the spend still missing, for the customer's screen."""
    above = sorted((t for t in program.tiers if t.min_spend > account.tier_spend), key=lambda t: t.min_spend)
    if not above:
        return None
    return {"code": above[0].code, "name_ru": above[0].name_ru, "name_en": above[0].name_en,
            "spend_missing": above[0].min_spend - account.tier_spend}
