"""HTTP routes of the loyalty domain: the program, accounts and balances, the ledger, staff
adjustments, cards, the wallet, and the till's card lookup."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from sqlalchemy.orm import Session

from seamline.commerce.api import CodePath
from seamline.commerce.pos import store_by_code
from seamline.core.openapi import errors, replayed
from seamline.core.auth.models import ApiKey
from seamline.core.auth.schemas import Scope
from seamline.core.deps import (
    AdminKey,
    IdempotencyKey,
    ReadKey,
    ReadSession,
    WriteKey,
    WriteSession,
    get_database,
    require,
)
from seamline.core.errors import NotFound, Unprocessable
from seamline.core.pagination import BeforeIdQuery, CursorQuery, before, page
from seamline.core.schemas import path_id
from seamline.customers.api import Rules
from seamline.loyalty import cards, ledger, rules, service, wallet
from seamline.loyalty.models import LoyaltyAccount
from seamline.loyalty.schemas import (
    AccountCreate,
    AccountRead,
    AdjustmentCreate,
    BalanceRead,
    CardBlock,
    CardCreate,
    CardRead,
    CardReissue,
    EntryPage,
    EntryRead,
    ProgramPatch,
    ProgramPut,
    WalletEntryPage,
    WalletEntryRead,
    WalletPayment,
    WalletTopUp,
)

router = APIRouter(prefix="/v1", tags=["loyalty"])

CustomerId = Annotated[int, path_id()]
CardPath = Annotated[str, Path(min_length=4, max_length=32, pattern=r"^[0-9]+$")]
AdjustKey = Annotated[ApiKey, Depends(require(Scope.loyalty_adjust))]
Limit = Annotated[int, Query(ge=1, le=500)]


def _account(session: Session, customer_id: int):  # noqa: ANN202 - a LoyaltyAccount
    account = service.account_of_customer(session, customer_id)
    if account is None:
        raise NotFound(f"Customer {customer_id} has no loyalty account", code="no_loyalty_account")
    return account


@router.get("/loyalty/program", response_model=ProgramPut)
def get_program(session: ReadSession, _: ReadKey) -> Any:
    return rules.get_program(session)


@router.put("/loyalty/program", response_model=ProgramPut)
def put_program(body: ProgramPut, session: WriteSession, _: AdminKey) -> Any:
    """Replace the program's rules (earning, hold, expiry, cap, tiers, cards) with this whole
    document: every field is required (a missing one is a 422 naming it, so `{}` cannot reset
    the program by accident). To change some fields, PATCH. They apply from now on: what was
    earned before keeps its terms."""
    rules.check_complete(body)
    return rules.put_program(session, body)


@router.patch("/loyalty/program", response_model=ProgramPut)
def patch_program(body: ProgramPatch, session: WriteSession, _: AdminKey) -> Any:
    """Change the fields given and keep the others (`{}` changes nothing)."""
    return rules.patch_program(session, body.model_dump(exclude_unset=True))


@router.post("/loyalty/accounts", response_model=AccountRead, status_code=201,
             responses={200: {"model": AccountRead, "description": "Enrolled before: the account, unchanged"}})
def open_account(body: AccountCreate, request: Request, response: Response, _: WriteKey) -> Any:
    """Enrol a customer (with the welcome bonus). Enrolling again returns the account (200)."""
    def work(session: Session) -> dict[str, Any]:
        existed = service.account_of_customer(session, body.customer_id) is not None
        account = service.enroll(session, customer_id=body.customer_id, channel=body.channel)
        if existed:
            response.status_code = 200
        return service.account_view(session, account)

    return get_database(request).run_write(work)


@router.get("/customers/{customer_id}/loyalty", response_model=AccountRead)
def get_account(customer_id: CustomerId, session: ReadSession, _: ReadKey) -> Any:
    """Balance, pending points with their dates, what expires when, tier, cards, last entries."""
    return service.account_view(session, _account(session, customer_id))


@router.get("/customers/{customer_id}/loyalty/balance", response_model=BalanceRead)
def get_balance(customer_id: CustomerId, session: ReadSession, _: ReadKey) -> Any:
    """The balance alone: what a checkout page or an app's home screen asks for."""
    quick = service.quick_balance(session, customer_id)
    if quick is not None:
        return quick
    return service.balance_view(session, _account(session, customer_id), rules.get_program(session))


@router.get("/customers/{customer_id}/loyalty/entries", response_model=EntryPage)
def get_entries(customer_id: CustomerId, session: ReadSession, _: ReadKey, limit: Limit = 50, cursor: CursorQuery = None,
                before_id: BeforeIdQuery = None) -> Any:
    """The points ledger, newest first, a page at a time (`next_cursor`)."""
    account = _account(session, customer_id)
    items, next_cursor = page(service.entries(session, account.id, limit=limit + 1, before_id=before(cursor, before_id)), limit)
    return {"items": [service.entry_view(e) for e in items], "next_cursor": next_cursor}


@router.post("/customers/{customer_id}/loyalty/adjustments", response_model=EntryRead, status_code=201,
             responses={**replayed(EntryRead), **errors(409, notes={409: "`insufficient_points`"})})
def adjust(
    customer_id: CustomerId, body: AdjustmentCreate, request: Request, response: Response, key: AdjustKey,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    """Add or take points by hand (`loyalty_adjust` scope): the staff member and the comment are
    kept in the ledger. A retry with the same `Idempotency-Key` returns the first entry (200)."""
    def work(session: Session) -> dict[str, Any]:
        entry, created = service.adjust(session, customer_id=customer_id, data=body, api_key=key,
                                        idempotency_key=idempotency_key)
        if not created:
            response.status_code = 200
        return service.entry_view(entry)

    return get_database(request).run_write(work)


@router.get("/loyalty/adjustments", response_model=EntryPage)
def list_adjustments(session: ReadSession, _: AdjustKey, limit: Limit = 50, cursor: CursorQuery = None,
                     before_id: BeforeIdQuery = None) -> Any:
    """The audit trail of manual adjustments and campaign credits, newest first, a page at a time."""
    items, next_cursor = page(service.adjustments(session, limit=limit + 1, before_id=before(cursor, before_id)), limit)
    return {"items": [service.entry_view(e) for e in items], "next_cursor": next_cursor}


@router.get("/loyalty/check")
def check(session: ReadSession, _: AdminKey) -> Any:
    """Prove every account's balances against its ledgers; `problems` lists any that differ."""
    problems = ledger.check(session)
    return {"ok": not problems, "problems": problems[:100]}


# --- cards ------------------------------------------------------------------------------------------


@router.post("/customers/{customer_id}/loyalty/cards", response_model=CardRead, status_code=201)
def issue_card(customer_id: CustomerId, body: CardCreate, request: Request, rules_: Rules, _: WriteKey) -> Any:
    """Register a printed card (its check digit is validated) or issue a virtual one. The card
    becomes an identifier of the customer; registering the same printed card again is a no-op."""
    def work(session: Session) -> dict[str, Any]:
        program = rules.get_program(session)
        account = service.enroll(session, customer_id=customer_id, channel=body.channel)
        return cards.card_view(session, cards.issue_card(session, rules=rules_, program=program, account=account, data=body))

    return get_database(request).run_write(work)


@router.get("/loyalty/cards/{number}", response_model=CardRead)
def get_card(number: CardPath, session: ReadSession, _: ReadKey) -> Any:
    return cards.card_view(session, cards.card_by_number(session, number))


@router.post("/loyalty/cards/{number}/block", response_model=CardRead)
def block_card(number: CardPath, body: CardBlock, session: WriteSession, _: WriteKey) -> Any:
    """A lost or stolen card: it can no longer spend points. The balance stays on the account."""
    return cards.card_view(session, cards.block_card(session, cards.card_by_number(session, number), reason=body.reason))


@router.post("/loyalty/cards/{number}/reissue", response_model=CardRead, status_code=201)
def reissue_card(number: CardPath, body: CardReissue, request: Request, rules_: Rules, _: WriteKey) -> Any:
    """Block the card and issue its replacement on the same account (the balance stays).
    Reissuing again returns the same replacement."""
    def work(session: Session) -> dict[str, Any]:
        program = rules.get_program(session)
        card = cards.card_by_number(session, number)
        data = CardCreate(kind=body.kind, number=body.number)
        return cards.card_view(session, cards.reissue_card(session, rules=rules_, program=program, card=card, data=data,
                                                           reason=body.reason))

    return get_database(request).run_write(work)


@router.get("/pos/stores/{code}/loyalty/cards/{number}", response_model=BalanceRead, tags=["store"],
            responses=errors(409, notes={409: "`card_blocked`, with the replacement's number"}))
def till_card(code: CodePath, number: CardPath, session: ReadSession, _: ReadKey) -> Any:
    """At the till: the balance behind a scanned card (a blocked card is a 409 `card_blocked`).
    Spend points with the sale: `POST /v1/pos/stores/{code}/sales` with `points` and the card among
    its `identifiers`."""
    store_by_code(session, code)
    card = cards.usable_card(session, number)
    account = session.get(LoyaltyAccount, card.account_id)
    return service.balance_view(session, account, rules.get_program(session))


# --- wallet -------------------------------------------------------------------------------------------


@router.post("/customers/{customer_id}/loyalty/wallet/topups", response_model=WalletEntryRead, status_code=201)
def top_up(
    customer_id: CustomerId, body: WalletTopUp, request: Request, key: WriteKey, idempotency_key: IdempotencyKey = None,
) -> Any:
    """Money paid into the wallet (on the site after its payment, at a store's till). An
    `Idempotency-Key` is required: a retry adds nothing."""
    if not idempotency_key:
        raise Unprocessable("A top-up needs an Idempotency-Key header", code="idempotency_key_required")

    def work(session: Session) -> Any:
        program = rules.get_program(session)
        account = service.enroll(session, customer_id=customer_id, channel=body.channel)
        return wallet.entry_view(wallet.top_up(session, account, program=program, amount=body.amount, channel=body.channel,
                                               reference=body.reference, key=ledger.client_key("topup", idempotency_key), api_key_id=key.id))

    return get_database(request).run_write(work)


@router.post("/loyalty/wallet/payments", response_model=WalletEntryRead, status_code=201,
             responses=errors(404, 409, notes={404: "`order_not_found`", 409: "`invalid_order_status`, not enough money"}))
def pay_with_wallet(body: WalletPayment, request: Request, _: WriteKey) -> Any:
    """Pay what an order owes from its customer's wallet (any channel). Paying again is a no-op."""
    return get_database(request).run_write(
        lambda session: wallet.entry_view(wallet.pay_order(session, program=rules.get_program(session),
                                                           order_id=body.order_id, channel=body.channel)))


@router.get("/customers/{customer_id}/loyalty/wallet", response_model=WalletEntryPage)
def wallet_entries(customer_id: CustomerId, session: ReadSession, _: ReadKey, limit: Limit = 50, cursor: CursorQuery = None) -> Any:
    """The wallet's top-ups, payments and refunds, newest first, a page at a time."""
    account = _account(session, customer_id)
    items, next_cursor = page(wallet.entries(session, account.id, limit=limit + 1, before_id=before(cursor)), limit)
    return {"items": [wallet.entry_view(e) for e in items], "next_cursor": next_cursor}

