"""Offline evaluation of the recommendation model (recommendations/training.py) against the
popularity baselines, with a split by time.

(a) a simulated purchase history with known structure: latent taste clusters, complementary
pairs bought in the same order, consumables bought again, a long tail of popularity, stores
whose clientele leans to some clusters; (b) the demo world (`seamline.demo`), read through the
same `training.load` the product uses.

Each person's purchases after the cutoff (the last `--test-share` of the period) are held out;
the model is trained on what came before (orders, with the product's weights; views where the
data has them). Hyper-parameters are chosen on a validation split inside the training period
(the same share cut off its end), never on the test split. Metrics: recall@10 (hits / min(10,
held-out items)) and NDCG@10, per person with at least one held-out product, with the serving
rule applied to every list alike (products bought in training leave the list unless consumable).
Bootstrap (1,000 resamples of people) 95 % intervals of the model's difference to each baseline.

    .venv/bin/python bench/recommendations_offline.py --seed 1
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import tempfile
import time
from collections import defaultdict
from datetime import datetime, timedelta, timezone

import numpy as np

from seamline.recommendations import training

K = 10


# --- the simulated history ----------------------------------------------------------------------


def simulate(seed: int, people: int = 6000, items: int = 1500, clusters: int = 25, stores: int = 8,
             days: int = 365) -> tuple[list[tuple[int, int, int, int, float]], set[int]]:
    """(order, person, item, store, day) rows and the consumable items."""
    rng = np.random.default_rng(seed)
    cluster_of = rng.integers(0, clusters, items)
    popularity = 1.0 / np.arange(1, items + 1) ** 0.9  # Zipf-like long tail
    rng.shuffle(popularity)
    members = [np.flatnonzero(cluster_of == c) for c in range(clusters)]
    in_cluster_p = [popularity[m] / popularity[m].sum() for m in members]
    complement = np.full(items, -1)
    for m in members:  # half of each cluster's items come in complementary pairs
        shuffled = rng.permutation(m)
        for a, b in zip(shuffled[0:len(m) // 2:2], shuffled[1:len(m) // 2:2], strict=False):
            complement[a], complement[b] = b, a
    consumable = set(rng.choice(items, items // 10, replace=False).tolist())
    store_lean = rng.dirichlet(np.full(clusters, 0.3), stores)
    global_p = popularity / popularity.sum()
    rows = []
    order = 0
    for person in range(people):
        store = int(rng.integers(0, stores))
        tastes = rng.choice(clusters, size=int(rng.integers(1, 3)), replace=False, p=store_lean[store] * 0.5 + 0.5 / clusters)
        n_orders = 1 + rng.poisson(4)
        owned: list[int] = []
        for day in np.sort(rng.uniform(0, days, n_orders)):
            order += 1
            basket = set()
            for _ in range(1 + rng.poisson(1.0)):
                if owned and rng.random() < 0.25:
                    again = [i for i in owned if i in consumable]
                    if again:
                        basket.add(int(rng.choice(again)))
                        continue
                if rng.random() < 0.8:
                    c = int(rng.choice(tastes))
                    item = int(rng.choice(members[c], p=in_cluster_p[c]))
                else:
                    item = int(rng.choice(items, p=global_p))
                basket.add(item)
                if complement[item] >= 0 and rng.random() < 0.5:
                    basket.add(int(complement[item]))
            for item in basket:
                rows.append((order, person, item, store + 1, float(day)))
                owned.append(item)
    return rows, consumable


# --- evaluation ---------------------------------------------------------------------------------


def split(rows, share: float):
    """(before, held out per person) at the time cutoff leaving `share` of the period at the end."""
    start, end = min(r[4] for r in rows), max(r[4] for r in rows)
    cutoff = end - share * (end - start)
    before = [r for r in rows if r[4] < cutoff]
    known = {r[1] for r in before}
    held: dict[int, set[int]] = defaultdict(set)
    for r in rows:
        if r[4] >= cutoff and r[1] in known:
            held[r[1]].add(r[2])
    return before, held, cutoff


def interactions(rows, views=()) -> training.Interactions:
    data = training.Interactions()
    for order, person, item, store, day in rows:
        data.add(person, item, "purchase")
        data.orders.append((order, person, item, store, datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(days=day)))
    for person, item in views:
        data.add(person, item, "view")
    return data


def metrics(ranked: list[int], truth: set[int]) -> tuple[float, float]:
    hits = [1.0 if item in truth else 0.0 for item in ranked[:K]]
    recall = sum(hits) / min(K, len(truth))
    dcg = sum(h / math.log2(i + 2) for i, h in enumerate(hits))
    ideal = sum(1 / math.log2(i + 2) for i in range(min(K, len(truth))))
    return recall, dcg / ideal


def evaluate(rows, held, params: training.Params, consumable_known=None,
             popular_days: float = 30.0, views=()) -> dict[str, np.ndarray]:
    data = interactions(rows, views)
    last = max(r[4] for r in rows)
    lists = training.build_lists(data, params, popular_since=datetime(2026, 1, 1, tzinfo=timezone.utc) + timedelta(days=last - popular_days))
    consumable = {p for p, (_, _, c) in lists.products.items() if c} | (consumable_known or set())
    bought: dict[int, set[int]] = defaultdict(set)
    store_of: dict[int, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for _, person, item, store, _ in rows:
        bought[person].add(item)
        store_of[person][store] += 1
    out: dict[str, list[tuple[float, float]]] = {"model": [], "popular": [], "popular_in_store": []}
    for person, truth in sorted(held.items()):
        exclude = bought[person] - consumable
        store = max(store_of[person], key=store_of[person].get) if store_of[person] else 0
        candidates = {
            "model": [p for p, _ in lists.for_person.get(person, [])],
            "popular": [p for p, _ in lists.popular.get(0, [])],
            "popular_in_store": [p for p, _ in lists.popular.get(store, [])] + [p for p, _ in lists.popular.get(0, [])],
        }
        for name, ranked in candidates.items():
            seen, clean = set(), []
            for p in ranked:
                if p not in exclude and p not in seen:
                    seen.add(p)
                    clean.append(p)
            out[name].append(metrics(clean, truth))
    return {name: np.asarray(values, dtype=float).reshape(-1, 2) for name, values in out.items()}


def bootstrap(a: np.ndarray, b: np.ndarray, seed: int, n: int = 1000) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    diffs = a - b
    means = [diffs[rng.integers(0, len(diffs), len(diffs))].mean() for _ in range(n)]
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def tune(rows, share: float, top_n: int, log) -> training.Params:
    """The grid on the validation split (the end of the training period), by NDCG@10."""
    train_rows, held, _ = split(rows, share)
    best, best_score = None, -1.0
    for factors, regularization, alpha, iterations in itertools.product((32, 64), (0.01, 0.1), (2.0, 10.0, 40.0), (15,)):
        params = training.Params(factors=factors, regularization=regularization, alpha=alpha, iterations=iterations,
                                 top_n=top_n, threads=2)
        ndcg = evaluate(train_rows, held, params)["model"][:, 1]
        score = float(ndcg.mean()) if len(ndcg) else 0.0
        log(f"  validation: factors={factors} reg={regularization} alpha={alpha} it={iterations}: NDCG@10 {score:.4f}")
        if score > best_score:
            best, best_score = params, score
    return best


def report(name: str, rows, share: float, seed: int, log, views=()) -> None:
    before, held, _ = split(rows, share)
    log(f"{name}: {len(rows)} purchase lines, {len({r[1] for r in rows})} people, {len({r[2] for r in rows})} products; "
        f"test: {len(held)} people with held-out purchases")
    if not held:
        print(f"| {name} | 0 | too small: no person bought both before and after the cutoff | | | | | |")
        return
    started = time.perf_counter()
    params = tune(before, share, 50, log)
    scores = evaluate(before, held, params, views=views)
    log(f"  chosen {params}; evaluated in {time.perf_counter() - started:.1f} s")
    model = scores["model"]
    for base in ("popular", "popular_in_store"):
        other = scores[base]
        lo_r, hi_r = bootstrap(model[:, 0], other[:, 0], seed)
        lo_n, hi_n = bootstrap(model[:, 1], other[:, 1], seed + 1)
        print(f"| {name} | {len(held):,} | ALS vs {base} | {model[:, 0].mean():.4f} vs {other[:, 0].mean():.4f} | "
              f"{model[:, 0].mean() - other[:, 0].mean():+.4f} [{lo_r:+.4f}, {hi_r:+.4f}] | "
              f"{model[:, 1].mean():.4f} vs {other[:, 1].mean():.4f} | "
              f"{model[:, 1].mean() - other[:, 1].mean():+.4f} [{lo_n:+.4f}, {hi_n:+.4f}] | "
              f"f={params.factors} reg={params.regularization} alpha={params.alpha} |")


def demo_rows(seed: int, log):
    """The demo world's orders and views, read as the product reads them."""
    from seamline import demo
    from seamline.core import migrations
    from seamline.core.config import Settings
    from seamline.core.db import Database

    url = f"sqlite:///{tempfile.mkdtemp()}/demo.db"
    migrations.upgrade(url)
    settings = Settings(_env_file=None, database_url=url, log_level="WARNING", serve_worker=False, recommendations_enabled=False)
    demo.fill_demo(settings, customers=1000, seed=seed)
    database = Database(settings)
    with database.read() as session:
        data = training.load(session, since=datetime(2000, 1, 1, tzinfo=timezone.utc))
    database.dispose()
    origin = min(o[4] for o in data.orders)
    rows = [(o[0], o[1], o[2], o[3], (o[4] - origin).total_seconds() / 86400) for o in data.orders]
    views = [(p, i) for p, i, w in zip(data.person, data.product, data.weight, strict=True) if w == training.WEIGHTS["view"]]
    return rows, views


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--test-share", type=float, default=0.2)
    parser.add_argument("--people", type=int, default=6000)
    parser.add_argument("--skip-demo", action="store_true")
    args = parser.parse_args()

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    print("| data | people tested | comparison | recall@10 model vs baseline | difference [95 % CI] | "
          "NDCG@10 model vs baseline | difference [95 % CI] | chosen on validation |")
    print("|---|---|---|---|---|---|---|---|")
    rows, _ = simulate(args.seed, people=args.people)
    report("simulation", rows, args.test_share, args.seed, log)
    if not args.skip_demo:
        rows, _views = demo_rows(args.seed, log)
        report("demo world", rows, args.test_share, args.seed, log)  # views carry no time here: left out (no leak)


if __name__ == "__main__":
    main()
