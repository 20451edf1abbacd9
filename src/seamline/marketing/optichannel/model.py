"""The next-best-channel model, without a database: what it knows about a person and how it chooses.

Each person's evidence per channel (and per local hour) is a pair of decayed counts: the messages
sent there and the response they earned (`REWARDS`: a click, a reply or a purchase is 1, an open
alone is half; an unsubscribe adds `UNSUBSCRIBE_PENALTY` unanswered sends). A channel's response
rate is a Beta posterior whose prior is pooled from people like them (`Counts` of their cohort,
worth `prior_strength` messages), so a new person starts where their peers are and their own
history takes over as it grows.

Choosing is Thompson sampling: draw a rate from each channel's posterior and take the highest.
A channel with little evidence has a wide posterior and is sometimes drawn high: that is the
exploring, and it fades by itself as the evidence narrows.

Old evidence fades with a half-life, by *forward decay* (Cormode et al., 2009): an event at time
`t` is stored with weight `2^((t - EPOCH) / half_life)`, and any sum of stored weights divided by
`2^((now - EPOCH) / half_life)` is the decayed sum at `now`. So recording is a plain addition (an
SQL upsert, no read), a cohort's evidence is a plain SUM, and both decay exactly.

Defaults, from `bench/optichannel_simulation.py` (bench/README.md, "Optichannel simulation"): the
half-life was 60 days and is 120: at response rates of a few per cent a person earns a handful of
responses a year, and forgetting them after two months cost more than following drift gained
(response per message 5.54 % at 60 days, 5.62 % at 120, 5.74 % never forgetting, prior strength
4; never forgetting is not taken, as it would never follow a person whose favourite channel
changed). The prior strength stays 4: 1, 4 and 16 were within noise of each other at 60-120 days.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

#: The reference time of forward decay (weights grow from 1 here; float64 holds them for
#: thousands of half-lives).
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)

#: What a message earns, by the best thing the person did with it.
REWARDS = {"opened": 0.5, "clicked": 1.0, "replied": 1.0, "converted": 1.0}
#: An unsubscribe counts as this many more sends that earned nothing.
UNSUBSCRIBE_PENALTY = 2.0

DEFAULT_HALF_LIFE_DAYS = 120.0
DEFAULT_PRIOR_STRENGTH = 4.0
#: The rate assumed for a channel nobody in the cohort was sent on yet, and its strength.
FALLBACK_RATE = 0.1


def weight(at: datetime, half_life_days: float) -> float:
    """The forward-decay weight of something that happened `at`."""
    return 2.0 ** ((at - EPOCH).total_seconds() / 86400.0 / half_life_days)


@dataclass(frozen=True)
class Counts:
    """Decayed sends and the response they earned (both as of one moment)."""

    responses: float = 0.0
    sends: float = 0.0

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.responses + other.responses, self.sends + other.sends)

    def scaled(self, factor: float) -> Counts:
        return Counts(self.responses * factor, self.sends * factor)

    @property
    def rate(self) -> float | None:
        return self.responses / self.sends if self.sends > 0 else None


def at(stored: Counts, now: datetime, half_life_days: float) -> Counts:
    """Stored forward-decay sums as the decayed counts at `now`."""
    return stored.scaled(1.0 / weight(now, half_life_days))


def prior_of(cohort: Counts | None, strength: float) -> tuple[float, float]:
    """Beta(a, b) worth `strength` messages at the cohort's smoothed rate."""
    rate = FALLBACK_RATE
    if cohort is not None and cohort.sends > 0:
        rate = (cohort.responses + FALLBACK_RATE * strength) / (cohort.sends + strength)
    rate = min(max(rate, 1e-3), 1 - 1e-3)
    return strength * rate, strength * (1 - rate)


def posterior(own: Counts | None, cohort: Counts | None, strength: float) -> tuple[float, float]:
    a, b = prior_of(cohort, strength)
    if own is not None:
        responses = min(max(own.responses, 0.0), own.sends)
        a, b = a + responses, b + max(own.sends - responses, 0.0)
    return a, b


@dataclass(frozen=True)
class Ranked:
    """One option (a channel or an hour) as the model saw it."""

    option: str | int
    #: The expected response rate (posterior mean) and the rate drawn this time.
    mean: float
    draw: float
    #: The person's own decayed evidence, and the rate of people like them.
    sends: float
    responses: float
    cohort_rate: float | None


def rank(options: Iterable[str | int], own: Mapping, cohort: Mapping, *, rng: random.Random | None,
         strength: float = DEFAULT_PRIOR_STRENGTH) -> list[Ranked]:
    """The options best first: by a Thompson draw (`rng`), or by the posterior mean when `rng`
    is None (a deterministic "what it believes" ranking, e.g. for the console)."""
    ranked = []
    for option in options:
        mine, theirs = own.get(option), cohort.get(option)
        a, b = posterior(mine, theirs, strength)
        mean = a / (a + b)
        draw = rng.betavariate(a, b) if rng is not None else mean
        ranked.append(Ranked(option, mean, draw, mine.sends if mine else 0.0, mine.responses if mine else 0.0,
                             theirs.rate if theirs else None))
    return sorted(ranked, key=lambda r: (-r.draw, -r.mean, isinstance(r.option, str), r.option if isinstance(r.option, int) else 0,
                                         str(r.option)))


def smooth_hours(counts: Mapping[int, Counts], *, spread: float = 0.5) -> dict[int, Counts]:
    """Hour evidence shared with the neighbouring hours (half weight): a response at 19:00 says
    something about 18:00 and 20:00 too, so the hours are learnt from a third of the messages."""
    smoothed: dict[int, Counts] = {}
    for hour, value in counts.items():
        for other, factor in ((hour, 1.0), ((hour - 1) % 24, spread), ((hour + 1) % 24, spread)):
            smoothed[other] = smoothed.get(other, Counts()) + value.scaled(factor)
    return smoothed


def seeded(*parts: object) -> random.Random:
    """A generator whose draws repeat for the same parts (a message retried draws the same hour)."""
    return random.Random("|".join(map(str, parts)))


def credit(before: float, after: float) -> float:
    """What to add to a channel's response when a message's best outcome rises from `before` to `after`."""
    return max(after - before, 0.0)


def reward_of(outcomes: Iterable[str]) -> float:
    return max((REWARDS.get(o, 0.0) for o in outcomes), default=0.0)
