"""The HTTP routes: who may read what, errors and limits, training on demand, erasure."""

from __future__ import annotations

from sqlalchemy import func, select

from seamline.core.auth.schemas import Scope
from seamline.recommendations.models import RecommendationForPerson
from tests.conftest import make_key
from tests.recommendations.conftest import train


def test_people_need_a_read_key_not_a_browsers_write_key(client, world, reco_settings, read_headers):
    world.shoppers()
    anna = world.person()
    world.order(anna, ["serum"], days_ago=5)
    train(world, reco_settings)
    assert client.get(f"/v1/recommendations/people/{anna}").status_code == 401
    track = {"Authorization": f"Bearer {make_key(world.database, Scope.track, name='browser')}"}
    answer = client.get(f"/v1/recommendations/people/{anna}", headers=track)
    assert answer.status_code == 403 and answer.json()["error"]["code"] == "insufficient_scope"
    answer = client.get(f"/v1/recommendations/people/{anna}?limit=3", headers=read_headers)
    assert answer.status_code == 200
    body = answer.json()
    assert len(body["items"]) == 3 and body["model_version"] == 1 and body["items"][0]["reason"] == "for_you"
    assert client.get("/v1/recommendations/people/999999", headers=read_headers).status_code == 404


def test_products_popular_and_cart(client, world, reco_settings, read_headers):
    world.shoppers()
    train(world, reco_settings)
    answer = client.get("/v1/recommendations/products/serum?kind=bought_together&limit=1", headers=read_headers)
    assert answer.status_code == 200 and answer.json()["items"][0]["code"] == "toner"
    assert client.get("/v1/recommendations/products/serum?kind=similar", headers=read_headers).json()["items"]
    missing = client.get("/v1/recommendations/products/nothing", headers=read_headers)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "product_not_found"
    assert client.get("/v1/recommendations/products/serum?limit=51", headers=read_headers).status_code == 422
    assert client.get("/v1/recommendations/products/serum?kind=other", headers=read_headers).status_code == 422
    unknown = client.get("/v1/recommendations/popular?location=Z", headers=read_headers)
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "unknown_location"
    popular = client.get("/v1/recommendations/popular?location=B&limit=2", headers=read_headers).json()["items"]
    assert [p["reason"] for p in popular] == ["popular_in_store"] * 2
    cart = client.post("/v1/recommendations/cart", json={"skus": ["SHAMPOO"], "limit": 2}, headers=read_headers)
    assert cart.status_code == 200 and cart.json()["items"][0]["code"] == "balm"
    bad = client.post("/v1/recommendations/cart", json={"skus": ["NOPE"]}, headers=read_headers)
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "unknown_sku"


def test_training_on_demand_is_for_admins(client, world, read_headers, admin_headers):
    world.shoppers()
    assert client.post("/v1/recommendations/train", headers=read_headers).status_code == 403
    answer = client.post("/v1/recommendations/train", headers=admin_headers)
    assert answer.status_code == 200 and answer.json()["status"] == "active" and answer.json()["counts"]["people"] == 12
    model = client.get("/v1/recommendations/model", headers=read_headers).json()
    assert model["version"] == answer.json()["version"]


def test_erasure_removes_the_persons_rows(client, world, reco_settings, admin_headers):
    world.shoppers()
    anna = world.person(user_id="anna")
    world.order(anna, ["serum"], days_ago=5)
    train(world, reco_settings)
    exported = client.get(f"/v1/customers/{anna}/export", headers=admin_headers).json()
    assert exported["sections"]["recommendations"] if "sections" in exported else exported["recommendations"]
    answer = client.post(f"/v1/customers/{anna}/erase", json={"reason": "asked"}, headers=admin_headers)
    assert answer.status_code == 200, answer.text
    with world.database.read() as session:
        assert session.scalar(select(func.count()).select_from(RecommendationForPerson)
                              .where(RecommendationForPerson.person_id == anna)) == 0
        assert session.scalar(select(func.count()).select_from(RecommendationForPerson)) > 0  # others' stay
    train(world, reco_settings)
    with world.database.read() as session:  # erased people are not trained on again
        assert session.scalar(select(func.count()).select_from(RecommendationForPerson)
                              .where(RecommendationForPerson.person_id == anna)) == 0
