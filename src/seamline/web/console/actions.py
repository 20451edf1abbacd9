"""Running a console action: the service's work in one write transaction; a domain error (an
AppError: out of stock, not found, already picked up...) or a form that does not validate becomes
a sentence for the page, in the person's language, and nothing of the action is written."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Request
from pydantic import ValidationError
from sqlalchemy.orm import Session

from seamline.core.errors import AppError
from seamline.web.console import labels
from seamline.web.console.deps import database
from seamline.web.console.templating import form_key, translate

__all__ = ["attempt", "explain", "form_key", "form_problem", "read"]

T = TypeVar("T")


def attempt(request: Request, work: Callable[[Session], T]) -> tuple[T | None, str | None]:
    """(result, None) after a commit, or (None, a translated message) after a rollback."""
    try:
        return database(request).run_write(work), None
    except AppError as exc:
        return None, explain(request, exc)
    except ValidationError as exc:
        return None, form_problem(request, exc)


def read(request: Request, work: Callable[[Session], T]) -> T:
    with database(request).read() as session:
        return work(session)


def explain(request: Request, exc: AppError) -> str:
    """A domain error as a sentence for the person at the screen, in their language."""
    details: dict[str, Any] = exc.details or {}
    t = lambda message, **values: translate(request, message, **values)  # noqa: E731
    if exc.code == "outside_store":  # web/staff/scope.py
        reason, store = details.get("reason"), details.get("store") or ""
        if reason == "no_store":
            return t("Your account has no store: ask an admin to set it.")
        if reason == "other_store":
            return t("You work in %(store)s: you cannot act for %(requested)s.", store=store,
                     requested=details.get("requested", ""))
        if reason == "delivery":
            return t("Delivery orders are shipped and delivered by the warehouse, not in a store.")
        if reason == "return_elsewhere":
            return t("You take returns into your own store (%(store)s) only, not into %(location)s.", store=store,
                     location=details.get("location") or "—")
        return t("Order #%(id)s belongs to %(other)s, not to %(store)s: a store acts only on its own orders.",
                 id=details.get("order_id", ""), other=details.get("order_store") or "—", store=store)
    if exc.code == "wrong_pickup_code":
        return t("The pickup code does not match this order.")
    if exc.code == "wrong_store":
        if details.get("pickup_location"):
            return t("This order is collected at %(location)s, not at %(store)s.", location=details["pickup_location"],
                     store=details.get("store", ""))
        return t("This order is not collected in a store.")
    if exc.code == "pickup_code_ambiguous":
        return t("Several orders waiting here have this code: enter the order number too.")
    if exc.code == "pickup_code_unknown":
        return t("No order waiting in this store has this pickup code.")
    if exc.code in ("order_not_found", "return_not_found"):
        return t("No order with this number.")
    if exc.code == "invalid_order_status":
        status = details.get("status", "?")
        return t("The order is %(status)s now: this cannot be done.", status=labels.for_reader(request).order_status(status))
    if exc.code == "insufficient_stock" and details.get("shortages"):
        first = details["shortages"][0]
        return t("Not enough %(sku)s: %(available)s of %(requested)s available.", sku=first["sku"],
                 available=first["available"], requested=first["requested"])
    if exc.code == "over_return" and details.get("lines"):
        first = details["lines"][0]
        return t("Only %(returnable)s of %(sku)s can be returned.", returnable=first["returnable"], sku=first["sku"])
    if exc.code == "nothing_to_return":
        return t("Everything of this order has been returned already.")
    if exc.code == "order_not_returnable":
        status = details.get("status", "?")
        return t("Only orders handed over to the customer can be returned; this one is %(status)s.",
                 status=labels.for_reader(request).order_status(status))
    if exc.code == "not_in_order":
        return t("Not in this order: %(skus)s.", skus=", ".join(details.get("skus", [])))
    if exc.code == "unknown_sku":
        return t("Unknown SKU: %(skus)s.", skus=", ".join(details.get("skus", [])))
    if exc.code == "insufficient_points":
        return t("Not enough points: %(available)s available.", available=details.get("available", 0))
    if exc.code == "points_over_cap":
        return t("Points may pay only part of the order: at most %(max)s points.", max=details.get("max_points", 0))
    if exc.code == "customer_required":
        return t("Spending points needs a known customer.")
    if exc.code == "card_blocked":
        return t("This loyalty card is blocked.")
    if exc.code == "customer_not_found":
        return t("No customer found.")
    if exc.code in ("store_not_found", "not_a_store"):
        return t("%(store)s is not a store.", store=details.get("store", ""))
    if exc.code == "unknown_location":
        return t("Unknown location %(location)s.", location=details.get("location", ""))
    if exc.code == "job_not_found":
        return t("This job is not dead any more (someone retried it already).")
    if exc.code == "customer_erased":
        return t("This customer was erased.")
    if exc.code.startswith(("segment", "journey", "campaign", "template", "enrollment", "invalid_rule", "invalid_template", "unknown_segment",
                            "unknown_template", "unknown_promotion", "promotion_required", "idempotency_key_reused")):
        return _explain_marketing(request, exc)
    return exc.message


def _explain_marketing(request: Request, exc: AppError) -> str:
    """Marketing's refusals (segments, journeys, campaigns, templates) in the reader's words."""
    from seamline.marketing.segments.rules import MAX_CONDITIONS, MAX_DEPTH

    details: dict[str, Any] = exc.details or {}
    t = lambda message, **values: translate(request, message, **values)  # noqa: E731
    ids = lambda key: ", ".join(str(v) for v in details.get(key, []))  # noqa: E731
    words = labels.for_reader(request)
    if exc.code == "invalid_rule":
        return t("A segment rule has at most %(conditions)s conditions and %(depth)s levels of nesting.", conditions=MAX_CONDITIONS,
                 depth=MAX_DEPTH)
    if exc.code == "unknown_segment":
        return t("The rule uses segments that do not exist or are archived: %(ids)s.", ids=ids("segment_ids"))
    if exc.code == "segment_cycle":
        return t("The rule would make the segment depend on itself.")
    if exc.code == "segment_archived":
        return t("The segment is archived: it is neither edited nor evaluated.")
    if exc.code == "segment_in_use":
        return t("Other segments use this one (%(ids)s): change their rules first.", ids=ids("segment_ids"))
    if exc.code == "segment_not_found":
        return t("No such segment.")
    if exc.code == "journey_status":
        status = words.journey_status(details.get("status"))
        if details.get("action") == "pause":
            return t("Only a running journey can be paused (now: %(status)s).", status=status)
        if details.get("action") == "start":
            return t("An archived journey cannot be started again.")
        return t("The journey cannot do this now (now: %(status)s).", status=status)
    if exc.code == "journey_archived":
        return t("An archived journey cannot be edited.")
    if exc.code in ("journey_not_found", "journey_version_not_found"):
        return t("No such journey.")
    if exc.code == "campaign_not_found":
        return t("No such campaign.")
    if exc.code == "campaign_status":
        status = details.get("status")
        if status == "sent":
            return t("The campaign's whole audience is already enrolled for sending: it can no longer be cancelled.")
        if status == "cancelled":
            return t("A cancelled campaign cannot be scheduled again: make a new one.")
        return t("The campaign cannot do this now (now: %(status)s).", status=words.campaign_status(status))
    if exc.code == "enrollment_not_found":
        return t("Nobody is in a journey under this number.")
    if exc.code == "promotion_required":
        return t("This journey gives a coupon: name the promotion (one that requires a coupon).")
    if exc.code == "unknown_promotion":
        return t("Coupons can only be given for promotions that require one: %(codes)s.", codes=ids("promotions"))
    if exc.code == "unknown_template":
        return t("The journey sends templates that do not exist: %(ids)s.", ids=ids("template_ids"))
    if exc.code == "template_not_found":
        return t("No such template.")
    if exc.code == "invalid_template":
        part = {"subject": t("the subject"), "text": t("the text"), "html": t("the HTML")}.get(details.get("part"), details.get("part", ""))
        detail = exc.message.split(": ", 1)[-1]
        if details.get("locale") == "en":
            return t("The English version: %(part)s does not parse (line %(line)s): %(detail)s", part=part,
                     line=details.get("line") or "?", detail=detail)
        return t("The Russian version: %(part)s does not parse (line %(line)s): %(detail)s", part=part,
                 line=details.get("line") or "?", detail=detail)
    if exc.code == "template_render_failed":
        return t("The template failed to render: %(detail)s", detail=exc.message.split(": ", 1)[-1])
    if exc.code == "template_too_long":
        return t("The message comes out too long (over 200,000 characters).")
    if exc.code == "idempotency_key_reused":
        return t("This form was already sent with other values: open the page again.")
    return exc.message


def form_problem(request: Request, exc: ValidationError) -> str:
    first = exc.errors()[0]
    field = ".".join(str(part) for part in first.get("loc", ()))
    return translate(request, "Check the form: %(problem)s", problem=f"{field}: {first.get('msg', '')}".strip(": "))
