"""Benchmark: phone and email normalization, the libraries alone vs the fast paths (issue 20).

Times `IdentifierRules._phone` / `_email` per value (distinct values, so no memo) on the shapes
`bench/customers_import.py` generates (a Russian mobile in four formats, `Person.N@Example.com`
and its upper-case duplicate) and a few others, twice: with the fast paths of
`customers/fast_normalize.py` switched off (what every value cost before) and on. Each figure
is the best of `--repeat` rounds. Prints markdown rows, then the CPU time of the import's
validation for a million people of that file (1M phones spread over the four formats, 0.75M
emails).

    .venv/bin/python bench/normalize.py
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from unittest import mock

sys.path.insert(0, str(Path(__file__).resolve().parent))

from customers_import import phone  # noqa: E402

from seamline.core.config import Settings  # noqa: E402
from seamline.core.errors import Unprocessable  # noqa: E402
from seamline.customers import identifiers  # noqa: E402

PHONE_SHAPES = {
    "`+79xxxxxxxxx`": lambda i: phone(i, 0),
    "`8 (9xx) xxx-xx-xx`": lambda i: phone(i, 1),
    "`+7 9xx xxx xx xx`": lambda i: phone(i, 2),
    "`89xxxxxxxxx`": lambda i: phone(i, 3),
    "`9xxxxxxxxx` (no prefix)": lambda i: f"9{i:09d}",
    "`+49 151 xxxxxxxx`": lambda i: f"+49 151 {i:08d}",
    "`+44 20 xxxx xxxx`": lambda i: f"+44 20 {i:08d}",
    "`+7 9xx xxx xx xx доб. 12` (library)": lambda i: phone(i, 2) + " доб. 12",
    "`+7 123 ...` invalid (library)": lambda i: f"+7 123 {i:07d}",
}
EMAIL_SHAPES = {
    "`Person.N@Example.com`": lambda i: f"Person.{i}@Example.com",
    "`PERSON.N@EXAMPLE.COM`": lambda i: f"PERSON.{i}@EXAMPLE.COM",
    "`anna.n+shop@mail.yandex.ru`": lambda i: f"anna.{i}+shop@mail.yandex.ru",
    "`person.n@пример.рф` (library)": lambda i: f"person.{i}@пример.рф",
    "`person.n@example` invalid (library)": lambda i: f"person.{i}@example",
}


def per_value(function, type_name: str, values: list[str], repeat: int) -> float:
    """Best µs per value over `repeat` rounds."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        for value in values:
            try:
                function(type_name, value)
            except Unprocessable:
                pass
        best = min(best, time.perf_counter() - started)
    return best / len(values) * 1e6


def measure(rules, kind: str, shapes: dict, count: int, repeat: int) -> dict[str, tuple[float, float]]:
    function = rules._phone if kind == "phone" else rules._email
    fast_name = f"fast_{kind}"
    results = {}
    for name, make in shapes.items():
        values = [make(i) for i in range(count)]
        with mock.patch.object(identifiers, fast_name, lambda *args: None):
            old = per_value(function, kind, values, repeat)
        new = per_value(function, kind, values, repeat)
        results[name] = (old, new)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--values", type=int, default=20_000, help="Distinct values per shape")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rules = identifiers.IdentifierRules(Settings(_env_file=None, log_level="WARNING"))
    phones = measure(rules, "phone", PHONE_SHAPES, args.values, args.repeat)
    emails = measure(rules, "email", EMAIL_SHAPES, args.values, args.repeat)
    print("| value | libraries only (µs/value) | with the fast path (µs/value) | speed-up |")
    print("|---|---|---|---|")
    for kind, results in (("phone", phones), ("email", emails)):
        for name, (old, new) in results.items():
            print(f"| {kind} {name} | {old:.1f} | {new:.1f} | {old / new:.1f}x |")
    # The import file: 1M phones, a quarter in each of the four formats; 0.75M emails as written.
    formats = list(PHONE_SHAPES)[:4]
    old_s = sum(phones[f][0] for f in formats) / 4 * 1.0 + emails["`Person.N@Example.com`"][0] * 0.75
    new_s = sum(phones[f][1] for f in formats) / 4 * 1.0 + emails["`Person.N@Example.com`"][1] * 0.75
    print(f"\nvalidation CPU per million people of bench/customers_import.py's file (phones + emails): "
          f"{old_s:.0f} s -> {new_s:.0f} s")


if __name__ == "__main__":
    main()
