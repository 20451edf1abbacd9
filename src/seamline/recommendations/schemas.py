"""The API contract of recommendations. `reason` is a code for the shop, console or template to
translate (RU/EN), never a sentence."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from seamline.core.schemas import RequestModel

Reason = Literal["for_you", "popular_in_store", "popular", "bought_together", "similar"]


class RecommendedPrice(BaseModel):
    amount: int = Field(description="Minor units: the lowest list price of the product's active SKUs")
    currency: str
    sku: str


class RecommendedProduct(BaseModel):
    product_id: int
    code: str
    name_ru: str
    name_en: str
    image: str | None
    category_id: int | None
    price: RecommendedPrice | None
    reason: Reason = Field(description="Which list it came from (a code to translate)")
    score: float
    rank: int
    model_version: int | None


class RecommendationList(BaseModel):
    items: list[RecommendedProduct]
    model_version: int | None = Field(description="The model the lists were read from; null before the first training")


class CartRecommendationRequest(RequestModel):
    skus: list[str] = Field(min_length=1, max_length=100, description="The SKUs in the cart")
    location: str | None = Field(default=None, min_length=1, max_length=64, description="Only products in stock at this location code")
    limit: int = Field(default=10, ge=1, le=50)


class TrainResult(BaseModel):
    version: int | None = None
    status: str
    counts: dict[str, Any] = Field(default_factory=dict)
    seconds: float | None = None


class ModelRead(BaseModel):
    version: int
    trained_at: datetime
    activated_at: datetime | None
    counts: dict[str, Any]
    params: dict[str, Any]
    seconds: float
