"""Next best channel and send time (issue 23), evaluated by simulation: the real model
(`seamline.marketing.optichannel.model`) against the usual rules, on a population whose true
preferences are known and drift.

    python bench/optichannel_simulation.py [--people 20000] [--weeks 52] [--seed 1]
                                           [--sensitivity-people 3000] [--no-sensitivity] [--jobs 2]

The world (built from `--seed`, the same for every policy):
- people reachable on a subset of email, sms, mobilepush, webpush, telegram, whatsapp (85 %, 65 %,
  30 %, 15 %, 15 %, 35 %, at least one); their cohort is that set, joined by "+";
- a true click probability per reachable channel: the channel's base rate on the logit scale +
  a cohort effect (sd 0.5) + an individual effect (sd 0.8), times an hour factor
  0.55 + 0.45 exp(-d^2 / 2 * 2.5^2), d the hours from the person's preferred local hour
  (morning, lunch, evening or late; most of a cohort share a mode);
- drift: every logit walks (sd 0.05 a week); a quarter of the people swap their favourite
  channel with another at a random week; 15 % of those without the app install it (mobilepush
  becomes reachable, their cohort changes); 10 % move their preferred hour by 3-6 h;
- one marketing message a week; an open is 5x (email) or 4x (whatsapp read) as likely as a click,
  and is seen with probability 0.6 (email pixel) or 0.7 (whatsapp read receipt), never elsewhere
  (a push or sms is only known by its click); a message that is not clicked is unwanted, and the
  chance to unsubscribe from the channel is its base rate times (1 + the channel's unwanted
  messages, decayed with a 4-week half-life); an unsubscribed channel is no longer reachable.
- common random numbers: one uniform per person x week x channel decides the click and the open
  (a click when u < p, an open when u < the open probability), one per person x week the open
  being seen, one per person x week x channel the unsubscribe: a policy changes only which of
  them it meets.

Policies: (a) always email (else the first reachable channel), (b) round robin over reachable
channels, (c) the highest ratio of opened-or-clicked to received over the last 26 weeks (no
history: email), (c') the same after one message on each reachable channel, (d) the model
choosing channel and hour, (d') the model choosing the channel at the fixed hour. Baselines send
at 10:00 local. The model's policies are run exactly as production uses the model: evidence as
forward-decay sums (`model.weight`, read back with `model.at`), the cohort's evidence the sum of
its members' sums refreshed before each send day, `model.rank(...)[0]` for the channel and
`model.rank(hours 9..20, smooth_hours(own), smooth_hours(cohort))` for the hour.

Measured: the response rate is the true click probability of what was sent (the expectation,
not the draw), per scheduled message (a person x week; 0 once a person has no channel left) and
per message sent; regret against the oracle that knows every current true probability (best
reachable channel at its best allowed hour); unsubscribes. The model's margin over (c) has a
95 % interval by bootstrap over people (2,000 resamples, paired: the same people in both).

Prints the markdown tables of bench/README.md on stdout, progress on stderr.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from datetime import timedelta

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "src"))

from seamline.marketing.optichannel import model  # noqa: E402

CHANNELS = ("email", "sms", "mobilepush", "webpush", "telegram", "whatsapp")
C = len(CHANNELS)
EMAIL, MOBILEPUSH = 0, 2
REACH_SHARE = np.array([0.85, 0.65, 0.30, 0.15, 0.15, 0.35])
#: The mean click probability of each channel at the person's best hour.
BASE_CLICK = np.array([0.03, 0.05, 0.06, 0.02, 0.08, 0.09])
OPEN_RATIO = np.array([5.0, 1.0, 1.0, 1.0, 1.0, 4.0])
OPEN_SEEN = np.array([0.6, 0.0, 0.0, 0.0, 0.0, 0.7])
UNSUBSCRIBE_BASE = np.array([0.0005, 0.0015, 0.001, 0.001, 0.001, 0.001])
UNWANTED_DECAY = 2.0 ** (-7 / 28)
HOUR_MODES = np.array([8.5, 12.5, 19.0, 21.5])
HOUR_MODE_SHARE = np.array([0.25, 0.25, 0.4, 0.1])
HOUR_FLOOR, HOUR_WIDTH = 0.55, 2.5
ALLOWED_HOURS = list(range(9, 21))  # outside the default quiet hours 21:00-09:00
FIXED_HOUR = 10
WINDOW_WEEKS = 26
CLICKED = model.reward_of(["clicked"])
OPENED = model.reward_of(["opened"])


def logit(p):
    return np.log(p / (1 - p))


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


class World:
    """The people, their true (drifting) preferences and the random numbers every policy meets."""

    def __init__(self, people: int, weeks: int, seed: int):
        rng = np.random.default_rng(seed)
        n, T = people, weeks
        self.n, self.weeks = n, T
        reach = rng.random((n, C)) < REACH_SHARE
        reach[~reach.any(1), EMAIL] = True
        codes = reach @ (1 << np.arange(C))
        # cohort effects per reachability set (64 possible), drawn for all so codes index them
        cohort_effect = rng.normal(0, 0.5, (1 << C, C))
        cohort_mode = rng.choice(len(HOUR_MODES), 1 << C, p=HOUR_MODE_SHARE)
        base = logit(BASE_CLICK)
        own = base + cohort_effect[codes] + rng.normal(0, 0.8, (n, C))
        mode = np.where(rng.random(n) < 0.6, cohort_mode[codes], rng.choice(len(HOUR_MODES), n, p=HOUR_MODE_SHARE))
        pref = HOUR_MODES[mode] + rng.normal(0, 1.0, n)
        # drift
        walk = rng.normal(0, 0.05, (T, n, C)).cumsum(0)
        logits = (own[None] + walk).astype(np.float32)
        switch_week = np.where(rng.random(n) < 0.25, rng.integers(1, T, n), T)
        for i in np.nonzero(switch_week < T)[0]:
            mine = np.nonzero(reach[i])[0]
            if len(mine) < 2:
                continue
            fav = mine[np.argmax(own[i, mine])]
            other = rng.choice(mine[mine != fav])
            w = switch_week[i]
            logits[w:, i, [fav, other]] = logits[w:, i, [other, fav]]
        self.install_week = np.where(~reach[:, MOBILEPUSH] & (rng.random(n) < 0.15), rng.integers(1, T, n), T + 1)
        new_app = self.install_week <= T
        logits[:, new_app, MOBILEPUSH] += 0.5  # a fresh install is an engaged user
        hour_week = np.where(rng.random(n) < 0.10, rng.integers(1, T, n), T)
        shift = rng.choice([-1, 1], n) * rng.uniform(3, 6, n)
        self.pref = np.where(np.arange(T)[:, None] >= hour_week[None], pref + shift, pref).astype(np.float32)
        self.logits = logits
        self.reach0 = reach
        self.u = rng.random((T, n, C), dtype=np.float32)
        self.seen = rng.random((T, n), dtype=np.float32)
        self.w = rng.random((T, n, C), dtype=np.float32)

    def reach_at(self, week: int) -> np.ndarray:
        reach = self.reach0.copy()
        reach[self.install_week <= week, MOBILEPUSH] = True
        return reach

    def hour_factor(self, week: int) -> np.ndarray:
        """[people, 24]: the response factor of sending at each local hour."""
        d = np.abs(np.arange(24)[None] - self.pref[week][:, None]) % 24
        d = np.minimum(d, 24 - d)
        return HOUR_FLOOR + (1 - HOUR_FLOOR) * np.exp(-d * d / (2 * HOUR_WIDTH ** 2))


def first_reachable(reach, prefer=EMAIL):
    return np.where(reach[:, prefer], prefer, np.argmax(reach, 1))


class AlwaysEmail:
    name = "(a) always email"

    def choose(self, week, people, reach):
        return first_reachable(reach), np.full(len(reach), FIXED_HOUR)

    def observe(self, *args):
        pass


class RoundRobin:
    name = "(b) round robin"

    def choose(self, week, people, reach):
        count = reach.sum(1)
        k = week % np.maximum(count, 1)
        pos = np.cumsum(reach, 1) - 1
        ch = np.argmax(reach & (pos == k[:, None]), 1)
        return ch, np.full(len(reach), FIXED_HOUR)

    def observe(self, *args):
        pass


class Engagement:
    """The channel with the highest ratio of opened-or-clicked to received over the last six months;
    no history: email. `warm_up`: first one message on each reachable channel (round robin)."""

    def __init__(self, world, warm_up=False):
        self.name = "(c') best 6-month engagement ratio, after one message per channel" if warm_up \
            else "(c) best 6-month engagement ratio (no history: email)"
        self.warm_up = warm_up
        self.received = np.zeros((world.weeks, world.n, C), np.int8)
        self.engaged = np.zeros((world.weeks, world.n, C), np.int8)
        self.rr = RoundRobin()

    def choose(self, week, people, reach):
        lo = max(0, week - WINDOW_WEEKS)
        rec = self.received[lo:week, people].sum(0)
        eng = self.engaged[lo:week, people].sum(0)
        known = reach & (rec > 0)
        ratio = np.where(known, eng / np.maximum(rec, 1), -1.0)
        ch = np.where(known.any(1), np.argmax(ratio, 1), first_reachable(reach))
        if self.warm_up:
            ch = np.where(week < reach.sum(1), self.rr.choose(week, people, reach)[0], ch)
        return ch, np.full(len(reach), FIXED_HOUR)

    def observe(self, week, people, ch, hour, click, open_seen, unsub):
        self.received[week, people, ch] = 1
        self.engaged[week, people, ch] = click | open_seen


class Model:
    """The model as production calls it (see the module docstring)."""

    def __init__(self, world, seed, *, hours=True, half_life=model.DEFAULT_HALF_LIFE_DAYS,
                 strength=model.DEFAULT_PRIOR_STRENGTH, hour_strength=None, name=None):
        self.name = name or ("(d) model: channel and hour" if hours else "(d') model: channel only, at 10:00")
        self.hours, self.half_life, self.strength = hours, half_life, strength
        self.hour_strength = strength if hour_strength is None else hour_strength
        n = world.n
        self.r = np.zeros((n, C))  # stored forward-decay sums per person x channel
        self.s = np.zeros((n, C))
        self.rh = np.zeros((n, 24))  # and per person x local hour
        self.sh = np.zeros((n, 24))
        # hour -> Counts: the stored sums, smoothed as they are added (smooth_hours is linear, so
        # smoothing each new observation and adding is smoothing the sum, read back decayed)
        self.own_hours = [dict() for _ in range(n)]
        self.rng = model.seeded("optichannel-simulation", seed, self.name, half_life, strength)

    def day(self, week):
        return model.EPOCH + timedelta(days=7 * week)

    def choose(self, week, people, reach):
        now, hl, strength, rng = self.day(week), self.half_life, self.strength, self.rng
        scale = 1.0 / model.weight(now, hl)  # what model.at does, for a whole array at once
        codes = reach @ (1 << np.arange(C))
        # the daily job: a cohort's evidence is the sum of its members' stored sums
        cohort_r = np.zeros((1 << C, C))
        cohort_s = np.zeros((1 << C, C))
        np.add.at(cohort_r, codes, self.r[people])
        np.add.at(cohort_s, codes, self.s[people])
        cohort_rh = np.zeros((1 << C, 24))
        cohort_sh = np.zeros((1 << C, 24))
        if self.hours:
            np.add.at(cohort_rh, codes, self.rh[people])
            np.add.at(cohort_sh, codes, self.sh[people])
        by_channel, by_hour, candidates = {}, {}, {}
        for code in np.unique(codes).tolist():
            mine = [c for c in range(C) if code >> c & 1]
            candidates[code] = [CHANNELS[c] for c in mine]
            by_channel[code] = {CHANNELS[c]: model.at(model.Counts(cohort_r[code, c], cohort_s[code, c]), now, hl)
                                for c in mine if cohort_s[code, c] > 0}
            by_hour[code] = model.smooth_hours({h: model.at(model.Counts(cohort_rh[code, h], cohort_sh[code, h]), now, hl)
                                                for h in range(24) if cohort_sh[code, h] > 0})
        index = {name: c for c, name in enumerate(CHANNELS)}
        r, s = (self.r[people] * scale).tolist(), (self.s[people] * scale).tolist()
        n = len(reach)
        ch = np.zeros(n, np.int64)
        hour = np.full(n, FIXED_HOUR)
        Counts, rank, hour_strength = model.Counts, model.rank, self.hour_strength
        own_hours_of = [self.own_hours[i] for i in people.tolist()]
        for i, code in enumerate(codes.tolist()):
            ri, si = r[i], s[i]
            own = {name: Counts(ri[index[name]], si[index[name]]) for name in candidates[code] if si[index[name]] > 0}
            ch[i] = index[rank(candidates[code], own, by_channel[code], rng=rng, strength=strength)[0].option]
            if self.hours:
                own_hours = {h: v.scaled(scale) for h, v in own_hours_of[i].items()}
                hour[i] = rank(ALLOWED_HOURS, own_hours, by_hour[code], rng=rng, strength=hour_strength)[0].option
        return ch, hour

    def observe(self, week, people, ch, hour, click, open_seen, unsub):
        sent_at = np.array([model.weight(self.day(week) + timedelta(hours=h), self.half_life) for h in range(24)])
        w = sent_at[hour]
        reward = np.where(click, CLICKED, np.where(open_seen, OPENED, 0.0)) * w
        sends = (1 + model.UNSUBSCRIBE_PENALTY * unsub) * w
        np.add.at(self.r, (people, ch), reward)
        np.add.at(self.s, (people, ch), sends)
        if self.hours:
            np.add.at(self.rh, (people, hour), reward)
            np.add.at(self.sh, (people, hour), sends)
            for i, h, rw, sn in zip(people.tolist(), hour.tolist(), reward.tolist(), sends.tolist()):
                mine = self.own_hours[i]
                for other, value in model.smooth_hours({h: model.Counts(rw, sn)}).items():
                    mine[other] = mine[other] + value if other in mine else value


def simulate(world: World, policy) -> dict:
    n, T = world.n, world.weeks
    unsubscribed = np.zeros((n, C), bool)
    unwanted = np.zeros((n, C))
    reward = np.zeros(n)
    regret = np.zeros(n)
    sent = np.zeros(n, np.int64)
    unsubs = 0
    hour_gain = []
    for week in range(T):
        reach = world.reach_at(week) & ~unsubscribed
        people = np.nonzero(reach.any(1))[0]
        reach = reach[people]
        ch, hour = policy.choose(week, people, reach)
        assert reach[np.arange(len(people)), ch].all()
        factor = world.hour_factor(week)[people]
        p_channel = sigmoid(world.logits[week, people])
        p = p_channel[np.arange(len(people)), ch] * factor[np.arange(len(people)), hour]
        oracle = np.where(reach, p_channel, 0).max(1) * factor[:, ALLOWED_HOURS].max(1)
        hour_gain.append(factor[np.arange(len(people)), hour].mean() / factor[:, FIXED_HOUR].mean())
        u = world.u[week, people, ch]
        click = u < p
        opened = u < np.minimum(0.9, p * OPEN_RATIO[ch])
        open_seen = opened & (world.seen[week, people] < OPEN_SEEN[ch])
        unwanted *= UNWANTED_DECAY
        unwanted[people, ch] += ~click
        p_unsub = UNSUBSCRIBE_BASE[ch] * (1 + unwanted[people, ch])
        unsub = ~click & (world.w[week, people, ch] < p_unsub)
        unsubscribed[people[unsub], ch[unsub]] = True
        unsubs += int(unsub.sum())
        policy.observe(week, people, ch, hour, click, open_seen, unsub)
        reward[people] += p
        regret[people] += oracle - p
        sent[people] += 1
    return {"name": policy.name, "reward": reward, "regret": regret, "sent": sent, "unsubs": unsubs,
            "lost_channel": unsubscribed.any(1).mean(), "hour_factor": float(np.mean(hour_gain))}


WORLDS: dict[int, World] = {}
SEED = 1


def _run(spec):
    kind, kwargs, people = spec
    world = WORLDS[people]
    started = time.perf_counter()
    policy = {"a": lambda: AlwaysEmail(), "b": lambda: RoundRobin(), "c": lambda: Engagement(world),
              "c'": lambda: Engagement(world, warm_up=True), "m": lambda: Model(world, SEED, **kwargs)}[kind]()
    result = simulate(world, policy)
    result["seconds"] = time.perf_counter() - started
    result["spec"] = spec
    print(f"  {people:,} people, {result['name']}: {result['seconds']:.1f} s", file=sys.stderr, flush=True)
    return result


def run_all(sizes, weeks, seed, specs, jobs):
    """Every spec on its world (built once per size before the workers fork), longest first."""
    global SEED
    SEED = seed
    for people in sizes:
        started = time.perf_counter()
        WORLDS[people] = World(people, weeks, seed)
        print(f"world of {people:,} people x {weeks} weeks (seed {seed}): {time.perf_counter() - started:.1f} s",
              file=sys.stderr, flush=True)
    if jobs > 1:
        with multiprocessing.get_context("fork").Pool(jobs) as pool:
            return pool.map(_run, specs, chunksize=1)
    return [_run(spec) for spec in specs]


def bootstrap_margin(a, b, total, resamples=2000, seed=0):
    """Mean of a - b over people and its 95 % interval (a, b: each person's total response)."""
    rng = np.random.default_rng(seed)
    diff = (a - b) / total
    means = []
    for _ in range(resamples // 200):
        idx = rng.integers(0, len(diff), (200, len(diff)))
        means.append(diff[idx].mean(1))
    means = np.concatenate(means)
    relative = diff.mean() / (b.mean() / total)
    lo, hi = np.percentile(means, [2.5, 97.5])
    return diff.mean(), lo, hi, relative, lo / (b.mean() / total), hi / (b.mean() / total)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--people", type=int, default=20000)
    parser.add_argument("--weeks", type=int, default=52)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sensitivity-people", type=int, default=3000)
    parser.add_argument("--no-sensitivity", action="store_true")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    started = time.perf_counter()

    main_specs = [("m", {"hours": True}, args.people), ("m", {"hours": False}, args.people),
                  ("a", {}, args.people), ("b", {}, args.people), ("c", {}, args.people), ("c'", {}, args.people)]
    lives = (30.0, 60.0, 120.0, float("inf"))
    strengths = (1.0, 4.0, 16.0)
    sensitivity_specs = [] if args.no_sensitivity else [
        ("m", {"half_life": hl, "strength": st, "name": f"hl={hl:g} s={st:g}"}, args.sensitivity_people)
        for hl in lives for st in strengths] + [("c", {}, args.sensitivity_people)]
    specs = main_specs[:1] + sensitivity_specs + main_specs[1:]
    sizes = sorted({spec[2] for spec in specs})
    everything = run_all(sizes, args.weeks, args.seed, specs, args.jobs)
    results = [r for r in everything if r["spec"] in main_specs]
    sensitivity = [r for r in everything if r["spec"] in sensitivity_specs]
    order = {"a": 0, "b": 1, "c": 2, "c'": 3}
    results.sort(key=lambda r: (order.get(r["spec"][0], 4), not r["spec"][1].get("hours", False)))
    scheduled = args.people * args.weeks
    print(f"\n{args.people:,} people x {args.weeks} weekly messages, seed {args.seed}\n")
    print("| policy | messages sent | response per scheduled message | per message sent | regret per message | "
          "total regret | unsubscribes per 1,000 sent | people who withdrew a channel | hour factor vs 10:00 |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        sent = r["sent"].sum()
        print(f"| {r['name']} | {sent:,} | {r['reward'].sum() / scheduled:.2%} | {r['reward'].sum() / sent:.2%} | "
              f"{r['regret'].sum() / sent:.2%} | {r['regret'].sum():,.0f} | {1000 * r['unsubs'] / sent:.2f} | "
              f"{r['lost_channel']:.1%} | {r['hour_factor']:.3f} |")
    by = {(r["spec"][0], r["spec"][1].get("hours")): r for r in results}
    print()
    print("| margin (response per scheduled message, 95 % bootstrap over people) | absolute (points) | relative |")
    print("|---|---|---|")
    for mine, label in (((("m", True)), "(d)"), ((("m", False)), "(d')")):
        for theirs, other in ((("c", None), "(c)"), (("c'", None), "(c')"), (("a", None), "(a)")):
            m, lo, hi, rel, rlo, rhi = bootstrap_margin(by[mine]["reward"], by[theirs]["reward"], args.weeks)
            print(f"| {label} over {other} | {m:+.2%} [{lo:+.2%}, {hi:+.2%}] | {rel:+.1%} [{rlo:+.1%}, {rhi:+.1%}] |")

    if sensitivity:
        scheduled = args.sensitivity_people * args.weeks
        baseline = sensitivity[-1]["reward"].sum() / scheduled
        table = {(r["spec"][1]["half_life"], r["spec"][1]["strength"]): r["reward"].sum() / scheduled for r in sensitivity[:-1]}
        print(f"\nSensitivity, model (d), {args.sensitivity_people:,} people, response per scheduled message "
              f"((c) on the same people: {baseline:.2%})\n")
        print("| half-life (days) | " + " | ".join(f"prior strength {st:g}" for st in strengths) + " |")
        print("|---|" + "---|" * len(strengths))
        for hl in lives:
            print(f"| {hl:g} | " + " | ".join(f"{table[hl, st]:.2%}" for st in strengths) + " |")
    print(f"\ntotal {time.perf_counter() - started:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
