"""HTTP routes of recommendations. A person's list reveals what they bought, so every route needs
a server or staff key with the read scope (a browser's write key has only `track`); retraining
needs admin. Lists are read from the active model's precomputed rows (service.py)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request

from seamline.core.deps import AdminKey, AppSettings, ReadKey, ReadSession, get_database
from seamline.core.openapi import errors
from seamline.core.schemas import PathId
from seamline.recommendations import service, training
from seamline.recommendations.schemas import CartRecommendationRequest, ModelRead, RecommendationList, TrainResult

router = APIRouter(prefix="/v1/recommendations", tags=["recommendations"], responses=errors(401, 403, 422))

Location = Annotated[str | None, Query(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-]*$",
                                       description="A location code: only products in stock there")]
Limit = Annotated[int, Query(ge=1, le=service.MAX_LIMIT, description="How many products (at most 50)")]
ProductCode = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-]*$")]


def _list(items: list[dict]) -> RecommendationList:
    return RecommendationList(items=items, model_version=items[0]["model_version"] if items else None)


@router.get("/people/{profile_id}", response_model=RecommendationList, responses=errors(404, 410))
def for_person(profile_id: PathId, session: ReadSession, settings: AppSettings, _: ReadKey,
               location: Location = None, limit: Limit = 10) -> RecommendationList:
    """"for_you" for a person (any of their profile ids), topped up with popular_in_store and popular:
    in stock where they shop, without what they bought recently (unless consumable)."""
    return _list(service.for_person(session, settings, profile_id, location=location, limit=limit))


@router.get("/products/{code}", response_model=RecommendationList, responses=errors(404))
def for_product(code: ProductCode, session: ReadSession, settings: AppSettings, _: ReadKey,
                kind: Literal["bought_together", "similar"] = "bought_together", location: Location = None,
                limit: Limit = 10) -> RecommendationList:
    """Products bought together with this one, or similar to it (404 `product_not_found`)."""
    return _list(service.related(session, settings, code, kind=kind, location=location, limit=limit))


@router.get("/popular", response_model=RecommendationList)
def popular(session: ReadSession, settings: AppSettings, _: ReadKey, location: Location = None,
            limit: Limit = 10) -> RecommendationList:
    """Most bought recently: at a store (popular_in_store, then popular) or everywhere (popular)."""
    return _list(service.popular(session, settings, location=location, limit=limit))


@router.post("/cart", response_model=RecommendationList)
def for_cart(body: CartRecommendationRequest, session: ReadSession, settings: AppSettings, _: ReadKey) -> RecommendationList:
    """Bought together with the cart's products, merged; the cart's own products left out (422 `unknown_sku`)."""
    return _list(service.for_cart(session, settings, body.skus, location=body.location, limit=body.limit))


@router.get("/model", response_model=ModelRead | None)
def model(session: ReadSession, _: ReadKey) -> ModelRead | None:
    """The active model: version, when trained, counts and parameters (null before the first training)."""
    info = service.model_info(session)
    return ModelRead(**info) if info else None


@router.post("/train", response_model=TrainResult)
def train(request: Request, settings: AppSettings, _: AdminKey) -> TrainResult:
    """Train a new model now and make it the active one (what the periodic task does)."""
    result = training.train(get_database(request), settings)
    return TrainResult(**{k: result.get(k) for k in ("version", "status", "counts", "seconds") if k in result})
