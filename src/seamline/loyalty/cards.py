"""Loyalty cards: printed ones scanned at the till, virtual ones in the app.

A card is an identifier of the customer's profile (`loyalty_card`), linked in the identity graph
to the profile's first identifier, so scanning it in a store finds the same person as the app.
Printed numbers are validated by the program's check digit (Luhn, or EAN-13 for barcode cards;
python-stdnum computes both); virtual numbers are generated with the program's prefix and the
same check digit.

A lost card is blocked: it can no longer spend points or be looked up at the till (409
`card_blocked`, naming its replacement), but stays on the profile, so its past purchases keep
pointing to the person. Reissue blocks the old card and issues a new one on the same account:
the balance does not move, it never belonged to the card.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session
from stdnum import ean, luhn

from seamline.core.errors import Conflict, NotFound, Unprocessable
from seamline.core.time import utcnow
from seamline.customers import resolution
from seamline.customers import service as customers_service
from seamline.customers.identifiers import Identifier, IdentifierRules
from seamline.customers.models import CustomerIdentity
from seamline.loyalty.models import LoyaltyAccount, LoyaltyCard
from seamline.loyalty.schemas import CardCreate, ProgramPut

CARD_TYPE = "loyalty_card"
#: Length of generated virtual numbers, by check-digit scheme.
_LENGTHS = {"luhn": 16, "ean13": 13, "none": 16}


class CardBlocked(Conflict):
    code = "card_blocked"


def check_number(program: ProgramPut, number: str) -> None:
    valid = {"luhn": luhn.is_valid, "ean13": lambda n: len(n) == 13 and ean.is_valid(n)}.get(program.card_check_digit)
    if valid is not None and not valid(number):
        raise Unprocessable(f"{number} is not a valid card number (its check digit is wrong)", code="invalid_card_number",
                            details={"number": number, "check_digit": program.card_check_digit})


def generate_number(program: ProgramPut) -> str:
    length = _LENGTHS[program.card_check_digit]
    body = program.card_prefix + "".join(str(secrets.randbelow(10)) for _ in range(length - 1 - len(program.card_prefix)))
    if program.card_check_digit == "ean13":
        return body + ean.calc_check_digit(body)
    if program.card_check_digit == "luhn":
        return body + luhn.calc_check_digit(body)
    return body + str(secrets.randbelow(10))


def card_by_number(session: Session, number: str) -> LoyaltyCard:
    card = session.scalar(select(LoyaltyCard).where(LoyaltyCard.number == number.strip()))
    if card is None:
        raise NotFound(f"No loyalty card {number}", code="card_not_found")
    return card


def usable_card(session: Session, number: str) -> LoyaltyCard:
    """A card that may spend points: known and not blocked."""
    card = card_by_number(session, number)
    if card.status == "blocked":
        replacement = session.get(LoyaltyCard, card.replaced_by_id) if card.replaced_by_id else None
        raise CardBlocked(f"Card {card.number} is blocked ({card.block_reason})",
                          details={"number": card.number, "replaced_by": replacement.number if replacement else None})
    return card


def refuse_blocked(session: Session, numbers: Sequence[str]) -> None:
    for number in numbers:
        if session.scalar(select(LoyaltyCard.status).where(LoyaltyCard.number == number.strip())) == "blocked":
            usable_card(session, number)


def cards_of(session: Session, account_id: int) -> list[LoyaltyCard]:
    return list(session.scalars(select(LoyaltyCard).where(LoyaltyCard.account_id == account_id).order_by(LoyaltyCard.id)))


def _link_to_profile(session: Session, rules: IdentifierRules, account: LoyaltyAccount, number: str) -> None:
    """Make the number an identifier of the account's person (refused if it is someone else's)."""
    card = Identifier(CARD_TYPE, number)
    owner = session.scalar(select(CustomerIdentity).where(CustomerIdentity.type == CARD_TYPE, CustomerIdentity.value == number))
    if owner is not None:
        if resolution.canonical_profile(session, owner.profile_id).id != account.profile_id:
            raise Conflict(f"Card {number} identifies another customer", code="card_taken", details={"number": number})
        return
    anchor = customers_service.anchor_identity(session, account.profile_id)
    if anchor is None:
        raise Conflict("The customer has no identifier to attach a card to", code="customer_erased")
    handle = Identifier(anchor.type, anchor.value)
    result = resolution.resolve_identifiers(session, rules=rules, identifiers=[handle, card], source="loyalty",
                                            handles=[handle])
    if result.profile_id != account.profile_id:
        raise Conflict(f"Card {number} cannot join this customer (too many cards on the profile)", code="card_limit",
                       details={"number": number, "limit": rules.limit(CARD_TYPE)})


def issue_card(
    session: Session, *, rules: IdentifierRules, program: ProgramPut, account: LoyaltyAccount, data: CardCreate,
    now: datetime | None = None,
) -> LoyaltyCard:
    """Give the account a card. Registering the same printed card again is a no-op."""
    if data.number is not None:
        check_number(program, data.number)
        existing = session.scalar(select(LoyaltyCard).where(LoyaltyCard.number == data.number))
        if existing is not None:
            if existing.account_id != account.id:
                raise Conflict(f"Card {data.number} belongs to another account", code="card_taken",
                               details={"number": data.number})
            return existing
        number = data.number
    else:
        number = generate_number(program)
        while session.scalar(select(LoyaltyCard.id).where(LoyaltyCard.number == number)):
            number = generate_number(program)
    _link_to_profile(session, rules, account, number)
    card = LoyaltyCard(account_id=account.id, number=number, kind=data.kind, status="active", channel=data.channel,
                       issued_at=now or utcnow())
    session.add(card)
    session.flush()
    return card


def block_card(session: Session, card: LoyaltyCard, *, reason: str, now: datetime | None = None) -> LoyaltyCard:
    if card.status != "blocked":  # blocking twice is a no-op
        card.status, card.block_reason, card.blocked_at = "blocked", reason, now or utcnow()
    return card


def reissue_card(
    session: Session, *, rules: IdentifierRules, program: ProgramPut, card: LoyaltyCard, data: CardCreate, reason: str,
) -> LoyaltyCard:
    """Block a card and issue its replacement on the same account; repeating it returns the replacement."""
    if card.replaced_by_id is not None:
        return session.get(LoyaltyCard, card.replaced_by_id)
    account = session.get(LoyaltyAccount, card.account_id)
    replacement = issue_card(session, rules=rules, program=program, account=account, data=data)
    block_card(session, card, reason=reason)
    card.replaced_by_id = replacement.id
    return replacement


def card_view(session: Session, card: LoyaltyCard) -> dict:
    replacement = session.get(LoyaltyCard, card.replaced_by_id) if card.replaced_by_id else None
    return {"number": card.number, "kind": card.kind, "status": card.status, "block_reason": card.block_reason,
            "replaced_by": replacement.number if replacement else None, "issued_at": card.issued_at,
            "blocked_at": card.blocked_at}
