"""Attribution models (`analytics/attribution.py`) on journeys computed by hand."""

from __future__ import annotations

import pytest

from seamline.analytics.attribution import RULE_BASED, Journey, markov, rule_based
from seamline.core.errors import Unprocessable

# Three people: web then app, bought for 300; web only, did not buy; app only, bought for 100.
JOURNEYS = [
    Journey(("web", "app"), conversions=1, revenue=300, ages=(7.0, 0.0)),
    Journey(("web",)),
    Journey(("app",), conversions=1, revenue=100, ages=(0.0,)),
]


def test_markov_removal_effects_by_hand():
    """start→web 2/3, start→app 1/3; web→app 1/2, web→null 1/2; app→conversion 1.
    P(conversion) = 2/3·1/2 + 1/3 = 2/3. Without web: 1/3 (effect 1/2); without app: 0 (effect 1).
    So web gets 1/3 of the 2 conversions and of the 400, app 2/3."""
    credit = markov(JOURNEYS)
    assert credit.conversion_probability == pytest.approx(2 / 3)
    assert credit.removal_effects == pytest.approx({"web": 0.5, "app": 1.0})
    assert credit.conversions == pytest.approx({"web": 2 / 3, "app": 4 / 3})
    assert credit.revenue == pytest.approx({"web": 400 / 3, "app": 800 / 3})


def test_markov_counts_people_not_rows():
    """The same journeys as rows of many people give the same answer as one row each, scaled."""
    scaled = [Journey(j.touches, people=10 * j.people, conversions=10 * j.conversions, revenue=10 * j.revenue) for j in JOURNEYS]
    credit = markov(scaled)
    assert credit.conversion_probability == pytest.approx(2 / 3)
    assert credit.conversions == pytest.approx({"web": 20 / 3, "app": 40 / 3})


def test_markov_with_a_loop_and_nobody_converting():
    looped = markov([Journey(("email", "web", "email", "web"), conversions=1, revenue=50), Journey(("web",), people=3)])
    assert sum(looped.conversions.values()) == pytest.approx(1) and sum(looped.revenue.values()) == pytest.approx(50)
    nothing = markov([Journey(("web",), people=5)])
    assert nothing.conversion_probability == 0 and nothing.conversions == {}


@pytest.mark.parametrize(("model", "conversions", "revenue"), [
    ("first_touch", {"web": 1, "app": 1}, {"web": 300, "app": 100}),
    ("last_touch", {"app": 2}, {"app": 400}),
    ("linear", {"web": 0.5, "app": 1.5}, {"web": 150, "app": 250}),
    # ages 7 and 0 days with a half-life of 7: weights 1/2 and 1, so 1/3 and 2/3 of the first journey
    ("time_decay", {"web": 1 / 3, "app": 5 / 3}, {"web": 100, "app": 300}),
    # two touches: half each; one touch: all of it
    ("position_based", {"web": 0.5, "app": 1.5}, {"web": 150, "app": 250}),
])
def test_rule_based_models_by_hand(model, conversions, revenue):
    credit = rule_based(JOURNEYS, model)
    assert credit.conversions == pytest.approx(conversions) and credit.revenue == pytest.approx(revenue)


def test_position_based_gives_the_middle_a_fifth():
    credit = rule_based([Journey(("ad", "email", "sms", "store"), conversions=1, revenue=1000)], "position_based")
    assert credit.revenue == pytest.approx({"ad": 400, "email": 100, "sms": 100, "store": 400})


def test_every_model_shares_out_exactly_what_was_bought():
    for model in RULE_BASED:
        credit = rule_based(JOURNEYS, model)
        assert sum(credit.conversions.values()) == pytest.approx(2) and sum(credit.revenue.values()) == pytest.approx(400)
    assert sum(markov(JOURNEYS).revenue.values()) == pytest.approx(400)


@pytest.mark.parametrize("journey", [
    Journey(()),
    Journey(("web",), people=0),
    Journey(("web",), conversions=2),
    Journey(("web",), conversions=1, revenue=-5),
    Journey(("web", "app"), conversions=1, ages=(1.0,)),
])
def test_bad_journeys_are_refused_with_a_clear_error(journey):
    with pytest.raises(Unprocessable) as error:
        markov([journey])
    assert error.value.code == "attribution_bad_input"


def test_time_decay_needs_ages_and_an_unknown_model_is_named():
    with pytest.raises(Unprocessable) as error:
        rule_based([Journey(("web",), conversions=1)], "time_decay")
    assert error.value.code == "attribution_bad_input"
    with pytest.raises(Unprocessable) as error:
        rule_based([Journey(("web",), conversions=1)], "shapley")
    assert error.value.code == "attribution_bad_model" and "markov" in error.value.details["known"]
