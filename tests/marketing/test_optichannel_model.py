"""The next-best-channel model without a database (optichannel/model.py): decay, pooling, exploring."""

from __future__ import annotations

import math
import random
from datetime import timedelta

import pytest

from seamline.marketing.optichannel import model
from seamline.marketing.optichannel.model import Counts

CHANNELS = ["email", "sms", "telegram"]


def test_forward_decay_equals_explicit_decay():
    half_life = 30.0
    events = [(model.EPOCH + timedelta(days=3), 1.0), (model.EPOCH + timedelta(days=40, hours=5), 0.5),
              (model.EPOCH + timedelta(days=200), 1.0)]
    now = model.EPOCH + timedelta(days=250)
    stored = Counts()
    for when, reward in events:  # what production adds on each send and response
        stored = stored + Counts(reward, 1.0).scaled(model.weight(when, half_life))
    decayed = model.at(stored, now, half_life)
    explicit = [0.5 ** ((now - when).total_seconds() / 86400 / half_life) for when, _ in events]
    assert decayed.sends == pytest.approx(sum(explicit), rel=1e-12)
    assert decayed.responses == pytest.approx(sum(f * r for f, (_, r) in zip(explicit, events)), rel=1e-12)
    # a cohort's evidence is the plain sum of its members' stored sums, and decays the same way
    other = Counts(0.0, 1.0).scaled(model.weight(now - timedelta(days=1), half_life))
    assert model.at(stored + other, now, half_life).sends == pytest.approx(sum(explicit) + 0.5 ** (1 / half_life))
    # no decay at all (an infinite half-life) keeps the plain counts
    assert model.at(Counts(2.0, 3.0).scaled(model.weight(now, math.inf)), now, math.inf) == Counts(2.0, 3.0)


def test_a_new_person_ranks_like_their_cohort():
    cohort = {"email": Counts(20, 1000), "sms": Counts(90, 1000), "telegram": Counts(40, 1000)}
    believed = model.rank(CHANNELS, {}, cohort, rng=None)
    assert [r.option for r in believed] == ["sms", "telegram", "email"]
    assert believed[0].sends == 0 and believed[0].cohort_rate == pytest.approx(0.09)
    rng = random.Random(1)
    firsts = [model.rank(CHANNELS, {}, cohort, rng=rng)[0].option for _ in range(2000)]
    assert firsts.count("sms") > firsts.count("telegram") > firsts.count("email")


def test_own_evidence_overrides_the_cohort():
    cohort = {"email": Counts(20, 1000), "sms": Counts(90, 1000), "telegram": Counts(40, 1000)}
    own = {"email": Counts(12, 30), "sms": Counts(0, 30)}
    assert model.rank(CHANNELS, own, cohort, rng=None)[0].option == "email"
    rng = random.Random(2)
    firsts = [model.rank(CHANNELS, own, cohort, rng=rng)[0].option for _ in range(2000)]
    assert firsts.count("email") > 1000 and firsts.count("sms") < 100


def test_a_channel_with_little_evidence_is_sometimes_explored():
    cohort = {"email": Counts(100, 1000), "sms": Counts(80, 1000)}
    own = {"email": Counts(5, 50)}  # well known; sms: never tried, believed a little worse
    assert model.rank(["email", "sms"], own, cohort, rng=None)[0].option == "email"
    rng = random.Random(3)
    firsts = [model.rank(["email", "sms"], own, cohort, rng=rng)[0].option for _ in range(2000)]
    assert 100 < firsts.count("sms") < 1000
    # with much evidence that it is worse, it is hardly tried any more
    own["sms"] = Counts(4, 200)
    firsts = [model.rank(["email", "sms"], own, cohort, rng=rng)[0].option for _ in range(2000)]
    assert firsts.count("sms") < 100


def test_a_channel_nobody_was_sent_on_starts_at_the_fallback_rate():
    assert model.prior_of(None, 4.0) == pytest.approx((4 * model.FALLBACK_RATE, 4 * (1 - model.FALLBACK_RATE)))
    a, b = model.posterior(Counts(3, 10), Counts(50, 1000), 4.0)
    assert a + b == pytest.approx(14.0) and a == pytest.approx(3 + 4 * (50 + 4 * model.FALLBACK_RATE) / 1004)


def test_smooth_hours_shares_evidence_with_the_neighbouring_hours():
    smoothed = model.smooth_hours({19: Counts(1, 2), 0: Counts(0, 4)})
    assert smoothed[19] == Counts(1, 2)
    assert smoothed[18] == smoothed[20] == Counts(0.5, 1)
    assert smoothed[23] == smoothed[1] == Counts(0, 2)  # midnight wraps
    assert set(smoothed) == {18, 19, 20, 23, 0, 1}
    assert model.smooth_hours({}) == {}
    # the best hour is the one the responses were near
    hours = list(range(9, 21))
    own = model.smooth_hours({19: Counts(3, 5), 10: Counts(0, 5)})
    assert model.rank(hours, own, {}, rng=None)[0].option == 19


def test_seeded_repeats():
    hours = list(range(9, 21))
    first = [r.option for r in model.rank(hours, {}, {}, rng=model.seeded("message", 42, "hour"))]
    again = [r.option for r in model.rank(hours, {}, {}, rng=model.seeded("message", 42, "hour"))]
    assert first == again
    assert model.seeded("message", 42).random() != model.seeded("message", 43).random()


def test_credit_adds_only_what_the_best_outcome_rose_by():
    assert model.reward_of([]) == 0.0
    assert model.reward_of(["delivered", "opened"]) == 0.5
    assert model.reward_of(["opened", "clicked"]) == 1.0
    opened = model.credit(0.0, model.reward_of(["opened"]))
    clicked = model.credit(0.5, model.reward_of(["opened", "clicked"]))
    assert (opened, clicked) == (0.5, 0.5)
    assert model.credit(1.0, model.reward_of(["opened", "clicked", "opened"])) == 0.0  # a second open adds nothing
    assert opened + clicked + model.credit(1.0, 1.0) == model.REWARDS["clicked"]
