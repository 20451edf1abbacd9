"""Training on a small world with known structure and serving from it, on both databases."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from seamline.core.errors import NotFound
from seamline.recommendations import service
from seamline.recommendations.models import RecommendationForPerson, RecommendationModel
from tests.recommendations.conftest import train


def codes(items: list[dict]) -> list[str]:
    return [item["code"] for item in items]


def test_bought_together_is_the_pair_and_for_you_follows_the_taste(world, reco_settings):
    world.shoppers()
    anna = world.person()
    world.order(anna, ["serum"], days_ago=5)
    result = train(world, reco_settings)
    assert result["counts"]["people"] == 13 and result["status"] == "active"
    with world.database.read() as session:
        together = service.related(session, reco_settings, "serum", limit=3)
        assert together[0]["code"] == "toner" and together[0]["reason"] == "bought_together"
        assert together[0]["price"] == {"amount": 10000, "currency": "RUB", "sku": "TONER"}
        assert together[0]["model_version"] == result["version"]
        hair = service.related(session, reco_settings, "shampoo", limit=1)
        assert codes(hair) == ["balm"]
        mine = service.for_person(session, reco_settings, anna, limit=3)
    assert mine[0]["reason"] == "for_you"
    assert codes(mine)[:2] in (["toner", "cream"], ["cream", "toner"])  # her skin taste, in stock at her store
    assert "serum" not in codes(mine)  # bought five days ago, not consumable


def test_out_of_stock_and_recent_purchases_are_left_out_consumables_are_not(world, reco_settings):
    world.shoppers()
    anna = world.person()
    world.order(anna, ["serum", "vitamins"], days_ago=5)
    train(world, reco_settings)
    with world.database.read() as session:
        mine = codes(service.for_person(session, reco_settings, anna, limit=8))
        assert "mask" not in mine  # out of stock everywhere
        assert "serum" not in mine and "vitamins" in mine  # vitamins: consumable attribute
        assert "oil" not in mine  # her store is A, oil is in stock only in B
        assert "oil" in codes(service.for_person(session, reco_settings, anna, location="B", limit=8))
        assert "mask" not in codes(service.related(session, reco_settings, "serum", limit=10))


def test_an_old_purchase_may_come_back(world, reco_settings):
    world.shoppers()
    anna = world.person()
    world.order(anna, ["serum"], days_ago=200)
    train(world, reco_settings)
    with world.database.read() as session:
        assert "serum" in codes(service.for_person(session, reco_settings, anna, limit=8))


def test_cold_start_is_popular_in_the_store(world, reco_settings):
    world.shoppers()
    train(world, reco_settings)
    newcomer = world.person()
    with world.database.read() as session:
        items = service.for_person(session, reco_settings, newcomer, location="B", limit=3)
        assert [i["reason"] for i in items] == ["popular_in_store"] * 3
        assert set(codes(items)) <= {"shampoo", "balm", "oil"}
        everywhere = service.for_person(session, reco_settings, newcomer, limit=3)
        assert {i["reason"] for i in everywhere} == {"popular"}
        assert service.popular(session, reco_settings, location="B", limit=2)[0]["reason"] == "popular_in_store"


def test_a_merged_identitys_app_order_shapes_their_web_recommendations(world, reco_settings):
    world.shoppers()
    web = world.person(user_id="anna-web")
    app = world.person(merged_into=web)  # her app profile, merged into the web one
    world.order(app, ["shampoo"], days_ago=3)
    world.view("anna-web", "shampoo")
    result = train(world, reco_settings)
    assert result["counts"]["views"] == 1
    with world.database.read() as session:
        from_web = service.for_person(session, reco_settings, web, location="B", limit=2)
        from_app = service.for_person(session, reco_settings, app, location="B", limit=2)
        assert codes(from_web) == codes(from_app)
        assert codes(from_web)[0] == "balm" and "shampoo" not in codes(from_web)  # her hair taste; bought 3 days ago
        assert session.scalar(select(func.count()).select_from(RecommendationForPerson)
                              .where(RecommendationForPerson.person_id == app)) == 0  # one list per person


def test_views_alone_count(world, reco_settings):
    world.shoppers()
    browser = world.person(user_id="browser")
    world.view("browser", "shampoo")
    world.view("browser", "balm")
    train(world, reco_settings)
    with world.database.read() as session:
        assert codes(service.for_person(session, reco_settings, browser, location="B", limit=1)) in (["oil"], ["shampoo"], ["balm"])


def test_cart_merges_bought_together_without_the_carts_products(world, reco_settings):
    world.shoppers()
    train(world, reco_settings)
    with world.database.read() as session:
        items = service.for_cart(session, reco_settings, ["SERUM", "SHAMPOO"], limit=4)
        assert {"toner", "balm"} <= set(codes(items)) and not {"serum", "shampoo"} & set(codes(items))
        with pytest.raises(NotFound):
            service.related(session, reco_settings, "nothing")


def test_a_new_version_replaces_the_old_one(world, reco_settings):
    world.shoppers()
    first = train(world, reco_settings)["version"]
    second = train(world, reco_settings)["version"]
    assert second == first + 1
    with world.database.read() as session:
        statuses = dict(session.execute(select(RecommendationModel.version, RecommendationModel.status)).all())
        assert statuses == {first: "retired", second: "active"}
        assert set(session.scalars(select(RecommendationForPerson.model_version).distinct())) == {second}


def test_nothing_before_the_first_training(world, reco_settings):
    anna = world.person()
    with world.database.read() as session:
        assert service.for_person(session, reco_settings, anna) == []
        assert service.popular(session, reco_settings) == []
