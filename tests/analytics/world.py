"""A small operational world whose metrics are computed by hand in the tests' docstrings.

Rows go straight into the operational tables (with the times the metrics need); the services'
own paths into those tables are tested by their modules, and the mirror's sync of real merges,
unmerges and erasures by test_mirror.py.

People: Anna (profile 1; her anonymous web profile 4 was merged into it), Boris (2), Vera (3).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from seamline.commerce.models import (
    CommerceCart,
    CommerceCartChange,
    CommerceLocation,
    CommerceOrder,
    CommerceOrderStatus,
    CommerceReturn,
)
from seamline.customers.models import CustomerIdentity, CustomerProfile, CustomerTrait
from seamline.events.models import EventRecord, EventSource
from seamline.inbox.models import InboxAgent, InboxConversation, InboxSurvey

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=timezone.utc)
START, END = datetime(2026, 11, 1), datetime(2026, 12, 1)  # the metrics' naive UTC period


def h(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def build(database) -> None:  # noqa: ANN001
    with database.write() as s:
        s.add_all([CustomerProfile(id=i, status="active", created_at=T0, updated_at=T0) for i in (1, 2, 3)])
        s.flush()
        s.add(CustomerProfile(id=4, status="merged", merged_into_id=1, created_at=T0, updated_at=T0))
        s.flush()
        s.add_all([
            CustomerIdentity(id=1, type="user_id", value="anna", profile_id=1, source="test", created_at=T0),
            CustomerIdentity(id=2, type="anonymous_id", value="anon-anna", profile_id=1, source="test", created_at=T0),
            CustomerIdentity(id=3, type="user_id", value="boris", profile_id=2, source="test", created_at=T0),
            CustomerIdentity(id=4, type="user_id", value="vera", profile_id=3, source="test", created_at=T0),
            CustomerIdentity(id=5, type="email", value="vera@example.com", profile_id=3, source="test", created_at=T0),
        ])
        s.flush()
        s.add_all([  # Anna is gold (her browser once claimed silver, unverified: not what counts), Boris silver
            CustomerTrait(identity_id=1, key="tier", value="gold", source="test", observed_at=T0, verified=True),
            CustomerTrait(identity_id=2, key="tier", value="silver", source="web", observed_at=h(1), verified=False),
            CustomerTrait(identity_id=3, key="tier", value="silver", source="test", observed_at=T0, verified=True),
        ])
        s.add_all([
            CommerceLocation(id=1, code="S1", kind="store", name_ru="Тверская", name_en="Tverskaya", pickup_enabled=True),
            CommerceLocation(id=2, code="S2", kind="store", name_ru="Арбат", name_en="Arbat", pickup_enabled=True),
        ])
        s.flush()
        order = dict(payment_method="card", currency="RUB")
        s.add_all([
            # 1: Anna, started on the web, paid in the app, picked up in store S1, returned in S2
            CommerceOrder(id=1, profile_id=1, channel="app", completed_channel="store", status="completed",
                          fulfilment="click_and_collect", pickup_location_id=1, total=1000, created_at=h(5), updated_at=h(30), **order),
            # 2: Boris, started in the app, ordered on the web, shipped
            CommerceOrder(id=2, profile_id=2, channel="web", status="shipped", fulfilment="delivery", total=3000,
                          created_at=h(24), updated_at=h(30), **order),
            # 3: Vera, app, cancelled
            CommerceOrder(id=3, profile_id=3, channel="app", status="cancelled", fulfilment="click_and_collect", pickup_location_id=2,
                          total=700, created_at=h(72), updated_at=h(80), **order),
            # 4: Boris at the till, no cart
            CommerceOrder(id=4, profile_id=2, channel="store", completed_channel="store", status="completed",
                          fulfilment="in_store", total=400, created_at=h(100), updated_at=h(100), **order),
            # 5: Vera by phone, waiting in store S2
            CommerceOrder(id=5, profile_id=3, channel="call_center", status="ready_for_pickup", fulfilment="click_and_collect",
                          pickup_location_id=2, total=900, created_at=h(96), updated_at=h(98), **order),
        ])
        s.flush()
        s.add_all([
            CommerceOrderStatus(order_id=1, status="confirmed", channel="app", created_at=h(5)),
            CommerceOrderStatus(order_id=1, status="ready_for_pickup", channel="store", created_at=h(6)),
            CommerceOrderStatus(order_id=1, status="completed", channel="store", created_at=h(30)),
            CommerceOrderStatus(order_id=5, status="ready_for_pickup", channel="store", created_at=h(98)),
            CommerceOrderStatus(order_id=3, status="cancelled", channel="app", created_at=h(80)),
        ])
        cart = dict(status="ordered")
        s.add_all([
            CommerceCart(id=1, profile_id=1, channel="app", order_id=1, created_at=h(0), updated_at=h(5), **cart),
            CommerceCart(id=2, profile_id=2, channel="web", order_id=2, created_at=h(20), updated_at=h(24), **cart),
            CommerceCart(id=4, profile_id=3, channel="web", status="active", created_at=h(48), updated_at=h(48)),
            CommerceCart(id=5, profile_id=3, channel="app", order_id=3, created_at=h(70), updated_at=h(72), **cart),
        ])
        s.flush()
        s.add(CommerceCart(id=3, profile_id=2, channel="app", status="merged", merged_into_id=2, created_at=h(12),
                           updated_at=h(20)))
        s.flush()
        s.add_all([
            CommerceCartChange(cart_id=1, kind="product_added", sku="A", quantity=1, channel="web", created_at=h(0)),
            CommerceCartChange(cart_id=1, kind="merged", channel="app", created_at=h(4)),
            CommerceCartChange(cart_id=1, kind="ordered", channel="app", created_at=h(5)),
            CommerceCartChange(cart_id=3, kind="product_added", sku="B", quantity=1, channel="app", created_at=h(12)),
            CommerceCartChange(cart_id=2, kind="product_added", sku="C", quantity=1, channel="web", created_at=h(20)),
            CommerceCartChange(cart_id=2, kind="ordered", channel="web", created_at=h(24)),
            CommerceCartChange(cart_id=4, kind="product_added", sku="A", quantity=1, channel="web", created_at=h(48)),
            CommerceCartChange(cart_id=5, kind="product_added", sku="A", quantity=1, channel="app", created_at=h(70)),
            CommerceCartChange(cart_id=5, kind="ordered", channel="app", created_at=h(72)),
        ])
        s.add(CommerceReturn(order_id=1, profile_id=1, location_id=2, channel="store", amount=500, currency="RUB",
                             full=False, created_at=h(80)))
        s.add_all([InboxAgent(id=1, name="Olga", email="olga@example.com"),
                   InboxAgent(id=2, name="Pavel", email="pavel@example.com")])
        s.flush()
        conversation = dict(reply_channel="telegram", status="open")
        s.add_all([
            InboxConversation(id=1, customer_id=1, channel="telegram", assignee_id=1, created_at=h(0),
                              first_response_at=h(10 / 60), resolved_at=h(70 / 60), **{**conversation, "status": "resolved"}),
            InboxConversation(id=2, customer_id=2, channel="web", assignee_id=2, created_at=h(0),
                              first_response_at=h(0.5), sla_breaches=["first_response"], **conversation),
            InboxConversation(id=3, customer_id=3, channel="telegram", created_at=h(1), **conversation),
        ])
        s.flush()
        survey = dict(conversation_id=1, customer_id=1, agent_id=1)
        s.add_all([
            InboxSurvey(kind="nps", channel="web", score=10, sent_at=h(2), answered_at=h(3), **survey),
            InboxSurvey(kind="nps", channel="telegram", score=9, sent_at=h(2), answered_at=h(3), **survey),
            InboxSurvey(kind="nps", channel="telegram", score=7, sent_at=h(2), answered_at=h(3), **survey),
            InboxSurvey(kind="nps", channel="web", score=3, sent_at=h(2), answered_at=h(3), **{**survey, "agent_id": 2}),
            InboxSurvey(kind="nps", channel="web", score=None, sent_at=h(2), **survey),  # not answered
            InboxSurvey(kind="csat", channel="telegram", score=5, sent_at=h(2), answered_at=h(3), **survey),
            InboxSurvey(kind="csat", channel="telegram", score=4, sent_at=h(2), answered_at=h(3), **survey),
            InboxSurvey(kind="csat", channel="web", score=2, sent_at=h(2), answered_at=h(3), **survey),
            InboxSurvey(kind="csat", channel="web", score=5, sent_at=h(2), answered_at=datetime(2026, 12, 5, tzinfo=timezone.utc),
                        **survey),  # after the period
        ])
        s.add(EventSource(id=1, name="site", channel="web", created_at=T0))
        s.flush()


def add_events(database, rows: list[tuple[str, str, str, float]]) -> None:  # noqa: ANN001
    """(person key, channel, event name, hours after T0) -> track events."""
    with database.write() as s:
        start = (s.query(EventRecord).count() or 0) + 1
        for n, (person, channel, name, hours) in enumerate(rows, start):
            s.add(EventRecord(source_id=1, message_id=f"m{n}", type="track", name=name, person=person, channel=channel,
                              user_id=person[2:] if person.startswith("u:") else None,
                              anonymous_id=person[2:] if person.startswith("a:") else None,
                              timestamp=h(hours), received_at=h(hours), payload="{}"))


# --- recommendations: products, order lines and recommendation clicks ----------------------------

LATE_ORDER_HOURS = 240  # order 6: Boris, nine days after his click on the hat


def add_recommendations(database) -> None:  # noqa: ANN001
    """Products SHOE (variants 1, 2), HAT (3), BAG (4); lines of orders 1-5 and a sixth order (Boris,
    a hat on the web at h240, 500); "Product Clicked" events, the recommendation clicks with the
    channel the list was shown in and the reason:

    1. Anna (anonymous key) SHOE, email, for_you, h1     5. Boris HAT, app, popular, h24
    2. Anna BAG, app, popular, h2                          6. Boris BAG, web, similar, h30 (after his order)
    3. Anna SHOE, web, similar, h3                         7. Vera SHOE, app, popular_in_store, h90
    4. Boris BAG, email, for_you, h10                      8. a stranger HAT, web, popular, h50
    and Vera's click on SHOE in a search list (h95), not a recommendation.
    """
    from seamline.commerce.models import CommerceOrderLine, CommerceProduct, CommerceVariant

    with database.write() as s:
        s.add_all([CommerceProduct(id=i, code=code, name_ru=code, name_en=code, created_at=T0, updated_at=T0)
                   for i, code in ((1, "SHOE"), (2, "HAT"), (3, "BAG"))])
        s.flush()
        s.add_all([CommerceVariant(id=i, sku=f"SKU-{i}", product_id=product) for i, product in ((1, 1), (2, 1), (3, 2), (4, 3))])
        s.add(CommerceOrder(id=6, profile_id=2, channel="web", status="completed", fulfilment="delivery", total=500,
                            created_at=h(LATE_ORDER_HOURS), updated_at=h(LATE_ORDER_HOURS), payment_method="card",
                            currency="RUB"))
        s.flush()
        line = dict(unit_price=0, quantity=1)
        s.add_all([
            CommerceOrderLine(id=1, order_id=1, variant_id=2, sku="SKU-2", name="shoe", total=600, **line),  # Anna
            CommerceOrderLine(id=2, order_id=1, variant_id=3, sku="SKU-3", name="hat", total=400, **line),  # no click
            CommerceOrderLine(id=3, order_id=2, variant_id=4, sku="SKU-4", name="bag", total=3000, **line),  # Boris
            CommerceOrderLine(id=4, order_id=3, variant_id=1, sku="SKU-1", name="shoe", total=700, **line),  # cancelled
            CommerceOrderLine(id=5, order_id=4, variant_id=3, sku="SKU-3", name="hat", total=400, **line),  # Boris, till
            CommerceOrderLine(id=6, order_id=5, variant_id=1, sku="SKU-1", name="shoe", total=900, **line),  # Vera
            CommerceOrderLine(id=7, order_id=6, variant_id=3, sku="SKU-3", name="hat", total=500, **line),  # too late
        ])
        s.flush()
    clicks = [("a:anon-anna", "SHOE", "email", "for_you", 1), ("u:anna", "BAG", "app", "popular", 2),
              ("u:anna", "SHOE", "web", "similar", 3), ("u:boris", "BAG", "email", "for_you", 10),
              ("u:boris", "HAT", "app", "popular", 24), ("u:boris", "BAG", "web", "similar", 30),
              ("u:vera", "SHOE", "app", "popular_in_store", 90), ("a:stranger", "HAT", "web", "popular", 50)]
    rows = [(person, {"product_id": code, "sku": f"{code}-1", "list_id": "recommendations", "recommendation": reason,
                      "position": 1, "model_version": 3, "shown_in": shown_in}, hours)
            for person, code, shown_in, reason, hours in clicks]
    rows.append(("u:vera", {"product_id": "SHOE", "list_id": "search", "position": 2}, 95))
    add_product_clicks(database, rows)


def add_product_clicks(database, rows: list[tuple[str, dict, float]]) -> None:  # noqa: ANN001
    """(person key, properties, hours after T0) -> "Product Clicked" track events on the web."""
    import json

    with database.write() as s:
        start = (s.query(EventRecord).count() or 0) + 1
        for n, (person, properties, hours) in enumerate(rows, start):
            message = {"type": "track", "event": "Product Clicked", "properties": properties,
                       "timestamp": h(hours).isoformat()}
            s.add(EventRecord(source_id=1, message_id=f"m{n}", type="track", name="Product Clicked", person=person,
                              channel="web", user_id=person[2:] if person.startswith("u:") else None,
                              anonymous_id=person[2:] if person.startswith("a:") else None,
                              timestamp=h(hours), received_at=h(hours), payload=json.dumps(message)))
