"""Attribution of conversions (and their revenue) to the channels or sources that touched a
person before they bought: the rule-based models and the data-driven Markov-chain model.

The input is journeys: the ordered touches of one person up to a purchase (converted) or up to
the end of the lookback window (not converted), with how many people followed that journey
and the revenue it brought. Touches are whatever the caller counts (channels, UTM sources);
the caller picks the lookback window and which touches count (docs/analytics.md).

- **Rule-based** (`rule_based`), over converted journeys: first touch, last touch, linear, time
  decay (a touch's weight halves every `half_life` before the purchase) and position based (40 %
  to the first touch, 40 % to the last, 20 % spread over those between).
- **Markov chain** (`markov`, Anderl, Becker, von Wangenheim & Schumann 2016): a first-order
  chain over start → touches → conversion or null, from every journey, converted or not. A
  touch's removal effect is the share of the chain's conversion probability lost when the
  touch is removed (what went into it goes to null); conversions and revenue are shared out in
  proportion to the removal effects. The probabilities are absorption probabilities, solved
  exactly as one linear system (no simulation, so the same data always give the same answer).

Written here rather than taken from a library: the one maintained Markov attribution package
(ChannelAttribution) is GPL, which Seamline's Apache-2.0 licence cannot take in, and both
computations are short.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from seamline.core.errors import Unprocessable

RuleBased = Literal["first_touch", "last_touch", "linear", "time_decay", "position_based"]
RULE_BASED: tuple[RuleBased, ...] = ("first_touch", "last_touch", "linear", "time_decay", "position_based")


@dataclass(frozen=True)
class Journey:
    """Touches in order; `people` who followed it; of them, how many `conversions` and their
    `revenue`; `ages`: how long before the purchase each touch was (time decay only)."""

    touches: tuple[str, ...]
    people: float = 1.0
    conversions: float = 0.0
    revenue: float = 0.0
    ages: tuple[float, ...] | None = None


@dataclass
class Credit:
    """Conversions and revenue credited to each touch."""

    conversions: dict[str, float] = field(default_factory=dict)
    revenue: dict[str, float] = field(default_factory=dict)

    def add(self, touch: str, share: float, journey: Journey) -> None:
        self.conversions[touch] = self.conversions.get(touch, 0.0) + share * journey.conversions
        self.revenue[touch] = self.revenue.get(touch, 0.0) + share * journey.revenue


def _checked(journeys: Sequence[Journey]) -> list[Journey]:
    for journey in journeys:
        if not journey.touches:
            raise Unprocessable("A journey needs at least one touch", code="attribution_bad_input")
        if journey.people <= 0 or journey.conversions < 0 or journey.conversions > journey.people or journey.revenue < 0:
            raise Unprocessable("A journey needs people > 0 and 0 ≤ conversions ≤ people, revenue ≥ 0",
                                code="attribution_bad_input")
        if journey.ages is not None and (len(journey.ages) != len(journey.touches) or min(journey.ages) < 0):
            raise Unprocessable("A journey's ages need one value ≥ 0 per touch", code="attribution_bad_input")
    return list(journeys)


def _weights(journey: Journey, model: RuleBased, half_life: float) -> np.ndarray:
    n = len(journey.touches)
    weights = np.zeros(n)
    if model == "first_touch":
        weights[0] = 1
    elif model == "last_touch":
        weights[-1] = 1
    elif model == "linear":
        weights[:] = 1 / n
    elif model == "time_decay":
        if journey.ages is None:
            raise Unprocessable("Time decay needs each touch's age", code="attribution_bad_input")
        weights = 0.5 ** (np.asarray(journey.ages, dtype=float) / half_life)
        weights /= weights.sum()
    elif model == "position_based":
        if n <= 2:
            weights[:] = 1 / n
        else:
            weights[0] = weights[-1] = 0.4
            weights[1:-1] = 0.2 / (n - 2)
    else:
        raise Unprocessable(f"Unknown attribution model {model!r}", code="attribution_bad_model",
                            details={"known": [*RULE_BASED, "markov"]})
    return weights


def rule_based(journeys: Sequence[Journey], model: RuleBased, *, half_life: float = 7.0) -> Credit:
    """Each converted journey's conversions and revenue shared among its touches by `model`."""
    if half_life <= 0:
        raise Unprocessable("The half-life must be > 0", code="attribution_bad_input")
    credit = Credit()
    for journey in _checked(journeys):
        if journey.conversions == 0:
            continue
        for touch, weight in zip(journey.touches, _weights(journey, model, half_life), strict=True):
            if weight:
                credit.add(touch, float(weight), journey)
    return credit


START, CONVERSION, NULL = "(start)", "(conversion)", "(null)"


def _conversion_probability(transitions: dict[str, dict[str, float]], removed: str | None = None) -> float:
    """P(reaching conversion from start) in the chain, with `removed`'s incoming transitions sent
    to null: absorption probabilities from (I − Q) x = r over the transient states."""
    states = sorted({START, *transitions} - {removed} if removed else {START, *transitions})
    index = {state: i for i, state in enumerate(states)}
    q = np.zeros((len(states), len(states)))
    r = np.zeros(len(states))
    for source in states:
        outgoing = transitions.get(source, {})
        total = sum(outgoing.values())
        if not total:
            continue
        for target, count in outgoing.items():
            if target == CONVERSION:
                r[index[source]] += count / total
            elif target in index:
                q[index[source], index[target]] += count / total
            # else: null, or a removed touch, which now leads to null
    absorbed = np.linalg.solve(np.eye(len(states)) - q, r)
    return float(absorbed[index[START]])


@dataclass
class MarkovCredit(Credit):
    """`Credit` plus the chain's conversion probability and each touch's removal effect."""

    conversion_probability: float = 0.0
    removal_effects: dict[str, float] = field(default_factory=dict)


def markov(journeys: Sequence[Journey]) -> MarkovCredit:
    """The first-order Markov-chain model over every journey (converted or not)."""
    journeys = _checked(journeys)
    transitions: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for journey in journeys:
        path = (START, *journey.touches)
        for source, target in zip(path, path[1:]):
            transitions[source][target] += journey.people
        transitions[path[-1]][CONVERSION] += journey.conversions
        transitions[path[-1]][NULL] += journey.people - journey.conversions
    touches = sorted({touch for journey in journeys for touch in journey.touches})
    total = _conversion_probability(transitions)
    credit = MarkovCredit(conversion_probability=total)
    if total == 0:
        return credit
    credit.removal_effects = {touch: 1 - _conversion_probability(transitions, touch) / total for touch in touches}
    effects = sum(credit.removal_effects.values())
    conversions = sum(journey.conversions for journey in journeys)
    revenue = sum(journey.revenue for journey in journeys)
    for touch, effect in credit.removal_effects.items():
        credit.conversions[touch] = conversions * effect / effects
        credit.revenue[touch] = revenue * effect / effects
    return credit
