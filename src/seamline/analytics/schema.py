"""The logical tables every metric reads, and where each comes from.

The same names and columns exist on every backend: tables in the DuckDB mirror (`mirror.py`),
views in the `analytics` schema of PostgreSQL (`warehouse.POSTGRES_VIEWS`), Parquet files for
Spark. Times are UTC without a zone; money is in minor units; nothing here holds a message's
text, an email or a phone number.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa

from seamline.commerce.models import (
    CommerceCart,
    CommerceCartChange,
    CommerceLocation,
    CommerceOrder,
    CommerceOrderLine,
    CommerceOrderStatus,
    CommerceProduct,
    CommerceReturn,
    CommerceVariant,
)
from seamline.customers.models import CustomerIdentity, CustomerProfile
from seamline.events.models import EventRecord
from seamline.inbox.models import InboxAgent, InboxConversation, InboxMessage, InboxSurvey

#: Logical table -> column -> DuckDB type.
LOGICAL: dict[str, dict[str, str]] = {
    "profiles": {"id": "BIGINT", "status": "VARCHAR", "merged_into_id": "BIGINT", "created_at": "TIMESTAMP",
                 "updated_at": "TIMESTAMP"},
    # identifiers that events are filed under (user_id, anonymous_id) only
    "identities": {"id": "BIGINT", "type": "VARCHAR", "value": "VARCHAR", "profile_id": "BIGINT"},
    # every profile -> the person it belongs to now (the end of its merge chain)
    "people": {"profile_id": "BIGINT", "person_id": "BIGINT", "status": "VARCHAR"},
    # every event person key (u:<userId>, a:<anonymousId>) -> the person
    "event_people": {"person_key": "VARCHAR", "person_id": "BIGINT"},
    "events": {"id": "BIGINT", "type": "VARCHAR", "name": "VARCHAR", "person_key": "VARCHAR", "channel": "VARCHAR",
               "ts": "TIMESTAMP", "utm_source": "VARCHAR", "utm_medium": "VARCHAR", "utm_campaign": "VARCHAR",
               # a product event's properties (Segment e-commerce spec): the product's code, the list it
               # was shown in; a recommendation click's reason and the channel the list was shown in.
               # Added after the others (an older mirror gets them by ALTER TABLE, its old rows null).
               "product_code": "VARCHAR", "list_id": "VARCHAR", "rec_reason": "VARCHAR", "shown_in": "VARCHAR"},
    "orders": {"id": "BIGINT", "profile_id": "BIGINT", "channel": "VARCHAR", "completed_channel": "VARCHAR",
               "status": "VARCHAR", "fulfilment": "VARCHAR", "pickup_location_id": "BIGINT", "total": "BIGINT",
               "currency": "VARCHAR", "created_at": "TIMESTAMP", "updated_at": "TIMESTAMP"},
    "order_lines": {"id": "BIGINT", "order_id": "BIGINT", "variant_id": "BIGINT", "quantity": "BIGINT", "total": "BIGINT"},
    # an order line's variant -> its product -> the product's code (what product events name)
    "variants": {"id": "BIGINT", "product_id": "BIGINT"},
    "products": {"id": "BIGINT", "code": "VARCHAR"},
    "order_statuses": {"id": "BIGINT", "order_id": "BIGINT", "status": "VARCHAR", "channel": "VARCHAR",
                       "created_at": "TIMESTAMP"},
    "carts": {"id": "BIGINT", "profile_id": "BIGINT", "merged_into_id": "BIGINT", "order_id": "BIGINT",
              "created_at": "TIMESTAMP", "updated_at": "TIMESTAMP"},
    "cart_changes": {"id": "BIGINT", "cart_id": "BIGINT", "kind": "VARCHAR", "channel": "VARCHAR",
                     "created_at": "TIMESTAMP"},
    "returns": {"id": "BIGINT", "order_id": "BIGINT", "profile_id": "BIGINT", "location_id": "BIGINT",
                "channel": "VARCHAR", "amount": "BIGINT", "created_at": "TIMESTAMP"},
    "locations": {"id": "BIGINT", "code": "VARCHAR", "kind": "VARCHAR", "name_ru": "VARCHAR", "name_en": "VARCHAR"},
    "conversations": {"id": "BIGINT", "customer_id": "BIGINT", "channel": "VARCHAR", "status": "VARCHAR",
                      "assignee_id": "BIGINT", "created_at": "TIMESTAMP", "first_response_at": "TIMESTAMP",
                      "resolved_at": "TIMESTAMP", "sla_breached": "BOOLEAN", "merged_into_id": "BIGINT",
                      "updated_at": "TIMESTAMP"},
    "messages": {"id": "BIGINT", "conversation_id": "BIGINT", "direction": "VARCHAR", "kind": "VARCHAR",
                 "channel": "VARCHAR", "author_agent_id": "BIGINT", "created_at": "TIMESTAMP"},
    "surveys": {"id": "BIGINT", "conversation_id": "BIGINT", "customer_id": "BIGINT", "kind": "VARCHAR",
                "channel": "VARCHAR", "agent_id": "BIGINT", "score": "BIGINT", "sent_at": "TIMESTAMP",
                "answered_at": "TIMESTAMP"},
    "agents": {"id": "BIGINT", "name": "VARCHAR"},
}


@dataclass(frozen=True)
class Mirrored:
    """How one logical table is copied into the mirror (see `mirror.py`)."""

    name: str
    source: sa.Table
    columns: tuple[str, ...]
    #: appended (by id), stamped (by change stamp), whole (re-read), identities (by touched profile)
    mode: str
    #: stamped: the change stamp (a column, or an expression over the table)
    stamp: str | None = None
    #: DuckDB expressions for logical columns that are not copied as they are
    derived: dict[str, str] = field(default_factory=dict)
    #: JSON columns copied as JSON text
    json_columns: tuple[str, ...] = ()
    #: only rows matching this (a SQLAlchemy clause over the source) are copied
    where: sa.ColumnElement | None = None

    def stamp_expression(self) -> sa.ColumnElement:
        if self.name == "surveys":
            return sa.func.coalesce(self.source.c.answered_at, self.source.c.sent_at)
        return self.source.c[self.stamp]


def _campaign(part: str) -> str:
    return f"json_extract_string(payload, '$.context.campaign.{part}')"


def _property(name: str) -> str:
    return f"json_extract_string(payload, '$.properties.{name}')"


MIRRORED: list[Mirrored] = [
    # profiles first: the others may be re-attributed by their merges
    Mirrored("profiles", CustomerProfile.__table__, ("id", "status", "merged_into_id", "created_at", "updated_at"),
             "stamped", stamp="updated_at"),
    Mirrored("events", EventRecord.__table__, ("id", "type", "name", "person", "channel", "timestamp", "payload"), "appended",
             derived={"person_key": "person", "ts": '"timestamp"', "utm_source": _campaign("source"),
                      "utm_medium": _campaign("medium"), "utm_campaign": _campaign("name"),
                      "product_code": _property("product_id"), "list_id": _property("list_id"),
                      "rec_reason": _property("recommendation"), "shown_in": _property("shown_in")}),
    # Appended: a variant never moves to another product (catalog.put_product refuses a SKU of
    # another product) and a product's code is its key (PUT /products/{code}); neither is deleted.
    # Copied before the order lines: a line's variant is there already (but for one created in
    # between, which the next sync brings; until then the line counts for no product).
    Mirrored("variants", CommerceVariant.__table__, ("id", "product_id"), "appended"),
    Mirrored("products", CommerceProduct.__table__, ("id", "code"), "appended"),
    Mirrored("orders", CommerceOrder.__table__, ("id", "profile_id", "channel", "completed_channel", "status", "fulfilment",
                                                "pickup_location_id", "total", "currency", "created_at", "updated_at"),
             "stamped", stamp="updated_at"),
    Mirrored("order_lines", CommerceOrderLine.__table__, ("id", "order_id", "variant_id", "quantity", "total"), "appended"),
    Mirrored("order_statuses", CommerceOrderStatus.__table__, ("id", "order_id", "status", "channel", "created_at"), "appended"),
    Mirrored("carts", CommerceCart.__table__, ("id", "profile_id", "merged_into_id", "order_id", "created_at", "updated_at"),
             "stamped", stamp="updated_at"),
    Mirrored("cart_changes", CommerceCartChange.__table__, ("id", "cart_id", "kind", "channel", "created_at"), "appended"),
    Mirrored("returns", CommerceReturn.__table__, ("id", "order_id", "profile_id", "location_id", "channel", "amount",
                                                  "created_at"), "appended"),
    Mirrored("locations", CommerceLocation.__table__, ("id", "code", "kind", "name_ru", "name_en"), "whole"),
    Mirrored("conversations", InboxConversation.__table__,
             ("id", "customer_id", "channel", "status", "assignee_id", "created_at", "first_response_at", "resolved_at",
              "sla_breaches", "merged_into_id", "updated_at"),
             "stamped", stamp="updated_at", json_columns=("sla_breaches",),
             derived={"sla_breached": "coalesce(json_array_length(sla_breaches), 0) > 0"}),
    Mirrored("messages", InboxMessage.__table__, ("id", "conversation_id", "direction", "kind", "channel", "author_agent_id",
                                                 "created_at"), "appended"),
    Mirrored("surveys", InboxSurvey.__table__, ("id", "conversation_id", "customer_id", "kind", "channel", "agent_id", "score",
                                               "sent_at", "answered_at"), "stamped"),
    Mirrored("agents", InboxAgent.__table__, ("id", "name"), "whole"),
    Mirrored("identities", CustomerIdentity.__table__, ("id", "type", "value", "profile_id"), "identities",
             where=CustomerIdentity.__table__.c.type.in_(("user_id", "anonymous_id"))),  # noqa: E501
]
