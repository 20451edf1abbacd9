"""The CLV models (`analytics/clv.py`) against what was published on CDNOW, and against
populations simulated from known parameters.

CDNOW: the 2,357 customers of Fader, Hardie & Lee (2005), as the `lifetimes` package ships them
(read as a file; the package is not imported)."""

from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from seamline.analytics import clv
from seamline.core.errors import Unprocessable


@pytest.fixture(scope="module")
def cdnow() -> dict[str, np.ndarray]:
    spec = importlib.util.find_spec("lifetimes")
    assert spec is not None, "the test extra installs lifetimes for its CDNOW data"
    path = Path(spec.submodule_search_locations[0]) / "datasets" / "cdnow_customers_summary_with_transactions.csv"
    with path.open() as file:
        rows = list(csv.DictReader(file))
    return {key: np.array([float(row[key]) for row in rows]) for key in ("x", "t_x", "T", "zbar")}


def test_bgnbd_on_cdnow_matches_the_published_fit(cdnow):
    """Fader, Hardie & Lee (2005), table 1: r = 0.243, α = 4.414, a = 0.793, b = 2.426, LL = −9582.4."""
    model = clv.fit_bgnbd(cdnow["x"], cdnow["t_x"], cdnow["T"])
    assert model.people == 2357
    assert (round(model.r, 3), round(model.alpha, 3), round(model.a, 3), round(model.b, 3)) == (0.243, 4.414, 0.793, 2.426)
    assert round(model.log_likelihood, 1) == -9582.4
    # Hardie's spreadsheet of the paper: a customer with x = 2, t_x = 30.43, T = 38.86 buys 1.226 times in the next 39 weeks
    expected = model.expected_purchases(39, np.array([2.0]), np.array([30.43]), np.array([38.86]))
    assert expected[0] == pytest.approx(1.226, abs=0.001)


def test_gamma_gamma_on_cdnow_matches_the_published_fit(cdnow):
    """Fader & Hardie (2013), the 946 customers with repeat purchases: p = 6.25, q = 3.74, γ = 15.44."""
    model = clv.fit_gamma_gamma(cdnow["x"], cdnow["zbar"])
    assert model.people == 946
    assert (round(model.p, 2), round(model.q, 2)) == (6.25, 3.74) and model.v == pytest.approx(15.44, abs=0.02)
    # the population's mean spend p·γ/(q−1), and a person's estimate between it and their own average
    mean = model.p * model.v / (model.q - 1)
    own = model.expected_value(np.array([10.0]), np.array([100.0]))[0]
    assert mean < own < 100


def simulate_bgnbd(rng: np.random.Generator, people: int, r: float, alpha: float, a: float, b: float,
                   age: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Purchases of `people` from the model's own story: each buys at a rate λ ~ Gamma(r, α) and
    drops out after any purchase with probability p ~ Beta(a, b), watched for `age` weeks."""
    rate = rng.gamma(r, 1 / alpha, people)
    dropout = rng.beta(a, b, people)
    clock = np.zeros(people)
    frequency, recency = np.zeros(people), np.zeros(people)
    alive = np.ones(people, dtype=bool)  # the first purchase starts the watch; dropping out follows a repeat purchase
    while alive.any():
        clock = clock + np.where(alive, rng.exponential(1 / np.maximum(rate, 1e-12)), 0)
        bought = alive & (clock <= age)
        frequency += bought
        recency = np.where(bought, clock, recency)
        alive = bought & (rng.random(people) >= dropout)
    return frequency, recency, np.full(people, age)


def test_bgnbd_recovers_the_parameters_it_was_simulated_with():
    rng = np.random.default_rng(20)
    truth = {"r": 0.8, "alpha": 5.0, "a": 1.3, "b": 4.0}
    frequency, recency, age = simulate_bgnbd(rng, 30_000, **truth, age=52.0)
    model = clv.fit_bgnbd(frequency, recency, age)
    for name, value in truth.items():
        assert getattr(model, name) == pytest.approx(value, rel=0.1), name
    # and it predicts the simulated people's next half-year about as they behave in it
    assert model.expected_purchases(26, frequency, recency, age).mean() > 0


def test_gamma_gamma_recovers_the_parameters_it_was_simulated_with():
    rng = np.random.default_rng(21)
    p, q, v = 4.0, 3.0, 20.0
    people = 20_000
    frequency = rng.integers(1, 12, people).astype(float)
    scale = rng.gamma(q, 1 / v, people)  # each person's ν
    average = np.array([rng.gamma(p, 1 / nu, int(x)).mean() for nu, x in zip(scale, frequency, strict=True)])
    model = clv.fit_gamma_gamma(frequency, average)
    assert (model.p, model.q, model.v) == pytest.approx((p, q, v), rel=0.1)


def test_predicted_value_discounts_later_purchases(cdnow):
    purchases = clv.fit_bgnbd(cdnow["x"], cdnow["t_x"], cdnow["T"])
    value = clv.fit_gamma_gamma(cdnow["x"], cdnow["zbar"])
    people = {key: column[:50] for key, column in cdnow.items()}
    kwargs = {"frequency": people["x"], "recency": people["t_x"], "age": people["T"], "average_value": people["zbar"]}
    plain = clv.predicted_clv(purchases, value, **kwargs, discount_per_period=0.0)
    discounted = clv.predicted_clv(purchases, value, **kwargs, discount_per_period=0.05)
    expected = purchases.expected_purchases(12 * 4.345, people["x"], people["t_x"], people["T"]) * value.expected_value(
        people["x"], people["zbar"])
    assert plain == pytest.approx(expected)  # undiscounted: the year's purchases times the value of one
    assert np.all(discounted <= plain) and np.all(discounted > 0)


@pytest.mark.parametrize(("frequency", "recency", "age"), [
    ([1.0], [5.0], [4.0]),  # recency after the end
    ([-1.0], [0.0], [4.0]),  # negative purchases
    ([0.0], [2.0], [4.0]),  # a last purchase without repeat purchases
    ([1.5], [2.0], [4.0]),  # half a purchase
    ([1.0, 2.0], [2.0], [4.0]),  # columns of different lengths
])
def test_bad_summaries_are_refused_with_a_clear_error(frequency, recency, age):
    with pytest.raises(Unprocessable) as error:
        clv.fit_bgnbd(np.array(frequency), np.array(recency), np.array(age))
    assert error.value.code == "clv_bad_input"


def test_a_fit_needs_repeat_purchases():
    with pytest.raises(Unprocessable) as error:
        clv.fit_bgnbd(np.zeros(10), np.zeros(10), np.full(10, 20.0))
    assert error.value.code == "clv_not_enough_data"
    with pytest.raises(Unprocessable) as error:
        clv.fit_gamma_gamma(np.array([0.0, 3.0]), np.array([0.0, 12.0]))
    assert error.value.code == "clv_not_enough_data"
