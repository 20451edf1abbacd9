"""A small world of people for segment rules, each rule's answer worked out by hand.

Rows go straight into the operational tables with the times the rules need (the services' own
paths into them are tested by their modules; the reactor's tests go through the API).

- Anna (1): verified tier gold (her browser claimed silver, unverified), city Moscow, birthday
  1990-05-01, email verified, email marketing consent given; 3 "Product Viewed" of creams in the
  last 30 days on the web (through her anonymous id); orders: 2 in the app (5,000 + 7,000), one
  picked up in store MSK-1 with a cream; loyalty gold with 500 points; last NPS 9 (an earlier 3).
  Her old profile 4 was merged into her: its order (1,000, web) is hers.
- Boris (2): tier silver, city Kazan; phone (not verified); email marketing consent given, then
  withdrawn; 1 "Product Viewed" 40 days ago; 1 cancelled order; an open conversation; a cart
  with a line, untouched for 2 hours.
- Vera (3): no traits but age 30; no orders; last NPS 4; an empty active cart.
- Erased (5): erased, has an order: never in any segment.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from seamline.commerce.models import (CommerceCart, CommerceCartLine, CommerceCategory, CommerceLocation, CommerceOrder,
                                      CommerceOrderLine, CommerceProduct, CommerceVariant)
from seamline.customers.models import CustomerConsent, CustomerIdentity, CustomerProfile, CustomerTrait
from seamline.events.models import EventRecord, EventSource
from seamline.inbox.models import InboxConversation, InboxSurvey
from seamline.loyalty.models import LoyaltyAccount

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)


def ago(**delta: float) -> datetime:
    return NOW - timedelta(**delta)


def _event(source_id: int, n: int, person: str, name: str, at: datetime, properties: dict) -> EventRecord:
    import json

    return EventRecord(source_id=source_id, message_id=f"m{n}", type="track", name=name, anonymous_id=None, user_id=None,
                       person=person, channel="web", timestamp=at, received_at=at,
                       payload=json.dumps({"type": "track", "event": name, "properties": properties}))


def _order(id_: int, profile_id: int, channel: str, status: str, total: int, at: datetime, location: int | None = None) -> CommerceOrder:
    return CommerceOrder(id=id_, profile_id=profile_id, channel=channel, status=status, fulfilment="delivery", payment_method="test",
                         currency="RUB", subtotal=total, discount=0, total=total, pickup_location_id=location, created_at=at, updated_at=at)


def build(database) -> None:  # noqa: ANN001
    with database.write() as s:
        s.add_all([CustomerProfile(id=i, status="active", created_at=ago(days=100), updated_at=ago(days=100)) for i in (1, 2, 3)])
        s.add(CustomerProfile(id=5, status="erased", created_at=ago(days=100), updated_at=ago(days=1)))
        s.flush()
        s.add(CustomerProfile(id=4, status="merged", merged_into_id=1, created_at=ago(days=100), updated_at=ago(days=50)))
        s.flush()
        s.add_all([
            CustomerIdentity(id=1, type="user_id", value="anna", profile_id=1, source="test", verified_at=ago(days=90)),
            CustomerIdentity(id=2, type="anonymous_id", value="anon-anna", profile_id=1, source="test"),
            CustomerIdentity(id=3, type="email", value="anna@example.com", profile_id=1, source="test", verified_at=ago(days=90)),
            CustomerIdentity(id=4, type="user_id", value="boris", profile_id=2, source="test"),
            CustomerIdentity(id=5, type="phone", value="+79990000002", profile_id=2, source="test"),
            CustomerIdentity(id=6, type="user_id", value="vera", profile_id=3, source="test"),
            CustomerIdentity(id=7, type="anonymous_id", value="anon-vera", profile_id=3, source="test"),
        ])
        s.flush()
        s.add_all([
            CustomerTrait(identity_id=1, key="tier", value="gold", source="test", observed_at=ago(days=10), verified=True),
            CustomerTrait(identity_id=2, key="tier", value="silver", source="web", observed_at=ago(days=1), verified=False),
            CustomerTrait(identity_id=1, key="city", value="Moscow", source="test", observed_at=ago(days=10), verified=True),
            CustomerTrait(identity_id=1, key="birthday", value="1990-05-01", source="test", observed_at=ago(days=10), verified=True),
            CustomerTrait(identity_id=4, key="tier", value="silver", source="test", observed_at=ago(days=10), verified=True),
            CustomerTrait(identity_id=4, key="city", value="Kazan", source="test", observed_at=ago(days=10), verified=True),
            CustomerTrait(identity_id=6, key="age", value=30, source="test", observed_at=ago(days=10), verified=True),
            CustomerTrait(identity_id=6, key="vip", value=None, source="test", observed_at=ago(days=10), verified=True),
            CustomerConsent(identity_id=3, channel="email", purpose="marketing", granted=True, source="test", recorded_at=ago(days=20)),
            CustomerConsent(identity_id=4, channel="email", purpose="marketing", granted=True, source="test", recorded_at=ago(days=20)),
            CustomerConsent(identity_id=5, channel="email", purpose="marketing", granted=False, source="test", recorded_at=ago(days=2)),
        ])
        source = EventSource(id=1, name="Website", channel="web")
        s.add(source)
        s.flush()
        s.add_all([_event(1, n, "a:anon-anna", "Product Viewed", ago(days=n), {"category": "creams", "price": 100 * n})
                   for n in (1, 2, 3)])
        s.add_all([_event(1, 4, "u:boris", "Product Viewed", ago(days=40), {"category": "creams", "price": 50}),
                   _event(1, 5, "u:boris", "Product Viewed", ago(days=1), {"category": "shoes", "price": 900})])
        s.add_all([
            CommerceLocation(id=1, code="MSK-1", kind="store", name_ru="Москва 1", name_en="Moscow 1"),
            CommerceCategory(id=1, code="care", name_ru="Уход", name_en="Care"),
        ])
        s.flush()
        s.add(CommerceCategory(id=2, code="creams", parent_id=1, name_ru="Кремы", name_en="Creams"))
        s.flush()
        s.add(CommerceProduct(id=1, code="cream", category_id=2, name_ru="Крем", name_en="Cream"))
        s.flush()
        s.add(CommerceVariant(id=1, sku="CREAM-50", product_id=1))
        s.flush()
        s.add_all([
            _order(1, 1, "app", "completed", 5_000, ago(days=5), location=1),
            _order(2, 1, "app", "confirmed", 7_000, ago(days=50)),
            _order(3, 4, "web", "completed", 1_000, ago(days=60)),
            _order(4, 2, "web", "cancelled", 9_000, ago(days=3)),
            _order(5, 5, "web", "completed", 3_000, ago(days=3)),
        ])
        s.flush()
        s.add(CommerceOrderLine(order_id=1, variant_id=1, sku="CREAM-50", name="Cream", quantity=1, unit_price=5_000, total=5_000))
        s.add_all([
            LoyaltyAccount(id=1, profile_id=1, points_available=500, tier="gold"),
            LoyaltyAccount(id=2, profile_id=2, points_available=20, tier=None),
        ])
        s.add_all([
            InboxConversation(id=1, customer_id=2, channel="telegram", reply_channel="telegram", status="open",
                              created_at=ago(days=1), last_message_at=ago(days=1), updated_at=ago(days=1)),
            InboxConversation(id=2, customer_id=1, channel="web", reply_channel="web", status="resolved",
                              created_at=ago(days=9), last_message_at=ago(days=9), updated_at=ago(days=9)),
            InboxConversation(id=3, customer_id=3, channel="web", reply_channel="web", status="resolved",
                              created_at=ago(days=9), last_message_at=ago(days=9), updated_at=ago(days=9)),
        ])
        s.flush()
        s.add_all([
            InboxSurvey(conversation_id=2, customer_id=4, kind="nps", channel="web", score=3, sent_at=ago(days=30), answered_at=ago(days=30)),
            InboxSurvey(conversation_id=2, customer_id=1, kind="nps", channel="web", score=9, sent_at=ago(days=9), answered_at=ago(days=9)),
            InboxSurvey(conversation_id=3, customer_id=3, kind="nps", channel="web", score=4, sent_at=ago(days=9), answered_at=ago(days=9)),
        ])
        s.add_all([
            CommerceCart(id=1, profile_id=None, anonymous_id="anon-vera", status="active", channel="web",
                         created_at=ago(hours=3), updated_at=ago(hours=3)),
            CommerceCart(id=2, profile_id=2, status="active", channel="web", created_at=ago(hours=2), updated_at=ago(hours=2)),
        ])
        s.flush()
        s.add(CommerceCartLine(cart_id=2, variant_id=1, sku="CREAM-50", quantity=1, channel="web", updated_at=ago(hours=2)))
