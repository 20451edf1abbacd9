"""A small world with known structure, written as rows (fast): two taste groups that buy a pair
of products together, a consumable, a product out of stock everywhere and one stocked in one
store only."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import orjson
import pytest

from seamline.commerce.models import (
    CommerceLocation,
    CommerceOrder,
    CommerceOrderLine,
    CommercePrice,
    CommerceProduct,
    CommerceStock,
    CommerceVariant,
)
from seamline.core.time import utcnow
from seamline.customers.models import CustomerIdentity, CustomerProfile
from seamline.events.models import EventRecord, EventSource
from seamline.recommendations import training

#: skin: serum + toner bought together (cream and mask too); hair: shampoo + balm together.
PRODUCTS = {"serum": "skin", "toner": "skin", "cream": "skin", "mask": "skin", "shampoo": "hair", "balm": "hair",
            "oil": "hair", "vitamins": "health"}


@dataclass
class World:
    database: object
    now: datetime = field(default_factory=utcnow)
    product: dict[str, int] = field(default_factory=dict)
    location: dict[str, int] = field(default_factory=dict)
    _orders: int = 0

    def build(self) -> World:
        with self.database.write() as session:
            for code in ("A", "B"):
                loc = CommerceLocation(code=code, kind="store", name_ru=code, name_en=code, pickup_enabled=True)
                session.add(loc)
                session.flush()
                self.location[code] = loc.id
            for code, category in PRODUCTS.items():
                product = CommerceProduct(code=code, name_ru=code, name_en=code.title(), image_urls=[f"/img/{code}.jpg"],
                                          attributes={"consumable": True} if code == "vitamins" else {})
                session.add(product)
                session.flush()
                variant = CommerceVariant(sku=code.upper(), product_id=product.id)
                session.add(variant)
                session.flush()
                session.add(CommercePrice(variant_id=variant.id, channel="", amount=10000, currency="RUB"))
                self.product[code] = product.id
                # mask: out of stock everywhere; oil: only in store B
                for store in ("A", "B"):
                    on_hand = 0 if code == "mask" or (code == "oil" and store == "A") else 10
                    session.add(CommerceStock(variant_id=variant.id, location_id=self.location[store], on_hand=on_hand, reserved=0))
        return self

    def person(self, *, merged_into: int | None = None, user_id: str | None = None) -> int:
        with self.database.write() as session:
            profile = CustomerProfile(status="merged" if merged_into else "active", merged_into_id=merged_into)
            session.add(profile)
            session.flush()
            if user_id:
                session.add(CustomerIdentity(type="user_id", value=user_id, profile_id=merged_into or profile.id, source="test"))
            return profile.id

    def order(self, profile_id: int, codes: list[str], *, days_ago: float = 10, store: str | None = "A",
              status: str = "completed") -> None:
        with self.database.write() as session:
            when = self.now - timedelta(days=days_ago)
            order = CommerceOrder(profile_id=profile_id, channel="app", status=status, fulfilment="click_and_collect",
                                  pickup_location_id=self.location[store] if store else None, payment_method="test",
                                  currency="RUB", total=10000 * len(codes), created_at=when, updated_at=when)
            session.add(order)
            session.flush()
            for code in codes:
                variant = session.query(CommerceVariant).filter_by(sku=code.upper()).one()
                session.add(CommerceOrderLine(order_id=order.id, variant_id=variant.id, sku=variant.sku, name=code, quantity=1,
                                              unit_price=10000, total=10000))

    def view(self, user_id: str, code: str, *, days_ago: float = 1) -> None:
        with self.database.write() as session:
            source = session.query(EventSource).first()
            if source is None:
                source = EventSource(name="web", channel="web")
                session.add(source)
                session.flush()
            self._orders += 1
            when = self.now - timedelta(days=days_ago)
            payload = {"type": "track", "event": "Product Viewed", "userId": user_id, "properties": {"product_id": code}}
            session.add(EventRecord(source_id=source.id, message_id=f"m{self._orders}", type="track", name="Product Viewed",
                                    user_id=user_id, person=f"u:{user_id}", channel="web", timestamp=when, received_at=when,
                                    payload=orjson.dumps(payload).decode()))

    def shoppers(self) -> None:
        """Six skin buyers (serum + toner in one order, some a cream or the mask) and six hair
        buyers (shampoo + balm, some oil); every fourth also buys vitamins."""
        for i in range(6):
            skin = self.person()
            self.order(skin, ["serum", "toner"] + (["cream"] if i % 2 else ["mask"]), days_ago=100 + i)
            hair = self.person()
            self.order(hair, ["shampoo", "balm"] + (["oil"] if i % 2 else []), days_ago=100 + i, store="B")
            if i % 2 == 0:
                self.order(skin, ["vitamins"], days_ago=50)


@pytest.fixture
def reco_settings(settings):
    return settings.model_copy(update={"recommendations_factors": 8, "recommendations_iterations": 8,
                                       "recommendations_regularization": 0.01, "recommendations_top_n": 20})


@pytest.fixture
def world(database) -> World:
    return World(database).build()


def train(world: World, settings) -> dict:
    return training.train(world.database, settings, now=world.now)
