#!/usr/bin/env python3
"""Generate the grade-school word problems of the built-in ``capability.math`` dimension.

Why generated rather than hand-written: a public benchmark such as GSM8K may be in a
model's training data, so fresh problems with random parameters measure arithmetic rather
than recall. Why deterministic (``random.Random(seed)``): a suite is compared across models
and across time, so ``python prompts/gen_math.py > math.jsonl`` must give the same bytes
every run.

Every template draws parameters that make the answer an integer or a short exact decimal
(at most two places), because the ``number`` scorer compares numbers, and an answer that
needs rounding would make a correct model look wrong. ``solve`` recomputes each answer by a
*second* formulation (brute-force search, simulation, exact ``Fraction``/``Decimal``
arithmetic) so a slip in a generator's formula is caught by the tests instead of shipped.

Standard library only: this script runs from a bare checkout.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from collections.abc import Callable
from decimal import Decimal
from fractions import Fraction
from typing import Any

SUFFIX = "Give the final answer as a number."
Params = dict[str, Any]
Number = int | float

NAMES = (
    "Ana", "Ben", "Chloe", "David", "Elif", "Farid", "Grace", "Hiro", "Ines", "Jonas",
    "Kemi", "Liam", "Mei", "Nadia", "Omar", "Priya", "Quinn", "Rosa", "Sam", "Tariq",
)
_SHE = frozenset({"Ana", "Chloe", "Elif", "Grace", "Ines", "Kemi", "Mei", "Nadia", "Priya", "Rosa"})


# --------------------------------------------------------------------------- helpers


def _exact(value: Fraction) -> Number:
    """An exact answer as int, or float with at most two decimals; anything else is a bug."""
    if value.denominator == 1:
        return int(value)
    if 100 % value.denominator != 0:
        raise ValueError(f"answer {value} is not a terminating decimal with at most two places")
    return float(value)


def _money(cents: int) -> str:
    """Cents as a price string without a currency sign ("2.50", "12")."""
    return str(cents // 100) if cents % 100 == 0 else f"{cents // 100}.{cents % 100:02d}"


def _two_names(rng: random.Random) -> tuple[str, str]:
    first, second = rng.sample(NAMES, 2)
    return first, second


# --------------------------------------------------------------------------- templates
# Each template: rng -> (prompt without suffix, answer, params). Params hold every number
# the prompt states, so ``solve`` can recompute the answer from them alone.


def speed_distance(rng: random.Random) -> tuple[str, Number, Params]:
    """Two legs of a ride at speeds in km/h for durations in minutes."""
    name = rng.choice(NAMES)
    v1, v2 = rng.sample(range(6, 73, 6), 2)
    m1, m2 = rng.choice(range(10, 121, 10)), rng.choice(range(10, 121, 10))
    p = {"name": name, "v1": v1, "m1": m1, "v2": v2, "m2": m2}
    pronoun = "she" if name in _SHE else "he"
    prompt = (
        f"{name} cycles at {v1} km/h for {m1} minutes, then at {v2} km/h for {m2} minutes. "
        f"How many kilometers does {pronoun} ride in total?"
    )
    return prompt, _exact(Fraction(v1 * m1 + v2 * m2, 60)), p


def discount_coupon(rng: random.Random) -> tuple[str, Number, Params]:
    """A percentage markdown followed by a fixed coupon."""
    name = rng.choice(NAMES)
    item = rng.choice(("jacket", "pair of boots", "backpack", "lamp", "guitar", "bicycle helmet"))
    price = 20 * rng.randint(2, 15)
    pct = rng.choice((10, 15, 20, 25, 30, 40, 50))
    coupon = rng.choice((2, 3, 5, 8, 10))
    p = {"name": name, "item": item, "price": price, "percent": pct, "coupon": coupon}
    prompt = (
        f"A {item} costs ${price}. It is marked down by {pct}%, and {name} then uses a ${coupon} "
        "coupon on the reduced price. How many dollars does "
        f"{name} pay?"
    )
    return prompt, _exact(Fraction(price * (100 - pct), 100) - coupon), p


def age_multiple(rng: random.Random) -> tuple[str, Number, Params]:
    """Parent is k times the child's age; in y years, j times. Ask the child's age."""
    name = rng.choice(NAMES)
    while True:
        j = rng.choice((2, 3))
        k = rng.randint(j + 1, j + 3)
        child = rng.randint(4, 20)
        if (child * (k - j)) % (j - 1):
            continue
        years = child * (k - j) // (j - 1)
        if 20 <= k * child <= 60 and k * child + years <= 90:
            break
    times = {2: "twice", 3: "three times"}[j]
    p = {"name": name, "k": k, "j": j, "years": years}
    prompt = (
        f"{name}'s mother is {k} times as old as {name}. In {years} years, she will be {times} as "
        f"old as {name} will be then. How old is {name} now, in years?"
    )
    return prompt, child, p


def change_purchase(rng: random.Random) -> tuple[str, Number, Params]:
    """Two kinds of items at decimal prices, paid with one bill; the change."""
    name = rng.choice(NAMES)
    a_cents = 25 * rng.randint(5, 19)
    b_cents = 25 * rng.randint(3, 10)
    a, b = rng.randint(2, 6), rng.randint(1, 5)
    total = a * a_cents + b * b_cents
    bill = next(x for x in (10, 20, 50, 100) if x * 100 > total)
    p = {"name": name, "a": a, "price_a": _money(a_cents), "b": b, "price_b": _money(b_cents), "bill": bill}
    prompt = (
        f"{name} buys {a} notebooks at ${p['price_a']} each and {b} pens at ${p['price_b']} each, "
        f"and pays with a ${bill} bill. How many dollars of change should {name} get?"
    )
    return prompt, _exact(Fraction(bill * 100 - total, 100)), p


def garden_area(rng: random.Random) -> tuple[str, Number, Params]:
    """A rectangle minus a square inside it."""
    length = rng.randint(10, 40)
    width = rng.randint(8, length)
    side = rng.randint(2, min(length, width) - 2)
    p = {"length": length, "width": width, "side": side}
    prompt = (
        f"A rectangular garden is {length} m long and {width} m wide. A square pond with sides of "
        f"{side} m is dug inside it, and the rest of the garden is lawn. How many square meters of "
        "lawn are there?"
    )
    return prompt, length * width - side**2, p


def track_laps_km(rng: random.Random) -> tuple[str, Number, Params]:
    """Laps of a track in meters, converted to kilometers."""
    name = rng.choice(NAMES)
    track = rng.choice((200, 250, 300, 400, 500))
    laps = rng.randint(3, 30)
    p = {"name": name, "track": track, "laps": laps}
    prompt = f"{name} runs {laps} laps of a {track}-meter track. How many kilometers does {name} run?"
    return prompt, _exact(Fraction(laps * track, 1000)), p


def _work_pairs() -> list[tuple[int, int]]:
    return [(a, b) for a in range(2, 31) for b in range(a + 1, 61) if (a * b) % (a + b) == 0]


_WORK_PAIRS = _work_pairs()


def work_together(rng: random.Random) -> tuple[str, Number, Params]:
    """Two workers with known solo times; their time together."""
    first, second = _two_names(rng)
    a, b = rng.choice(_WORK_PAIRS)
    job = rng.choice(("paint a fence", "mow a field", "pack an order of boxes", "tile a floor"))
    p = {"first": first, "second": second, "a": a, "b": b, "job": job}
    prompt = (
        f"Working alone, {first} can {job} in {a} hours, and {second} can do the same job in {b} "
        "hours. If they work together at these rates, how many hours will the job take?"
    )
    return prompt, a * b // (a + b), p


def average_missing(rng: random.Random) -> tuple[str, Number, Params]:
    """The score on the next test that brings the average to a target."""
    name = rng.choice(NAMES)
    while True:
        n = rng.randint(3, 5)
        scores = [rng.randint(60, 98) for _ in range(n)]
        fits = [x for x in range(50, 101) if (sum(scores) + x) % (n + 1) == 0]
        if fits:
            break
    missing = rng.choice(fits)
    target = (sum(scores) + missing) // (n + 1)
    p = {"name": name, "scores": scores, "target": target}
    listed = ", ".join(str(s) for s in scores[:-1]) + f" and {scores[-1]}"
    prompt = (
        f"{name} scored {listed} on the first {n} tests of a course. What score does {name} need on "
        f"the next test so that the average of all {n + 1} tests is exactly {target}?"
    )
    return prompt, missing, p


def ratio_share(rng: random.Random) -> tuple[str, Number, Params]:
    """Money shared in a ratio; the second person's share."""
    first, second = _two_names(rng)
    while True:
        r1, r2 = rng.randint(1, 7), rng.randint(1, 7)
        if r1 != r2 and math.gcd(r1, r2) == 1:  # the ratio is stated in lowest terms
            break
    total = (r1 + r2) * rng.randint(3, 40)
    p = {"first": first, "second": second, "r1": r1, "r2": r2, "total": total}
    prompt = (
        f"{first} and {second} share ${total} in the ratio {r1}:{r2} ({first}:{second}). "
        f"How many dollars does {second} get?"
    )
    return prompt, total // (r1 + r2) * r2, p


def buy_k_get_one(rng: random.Random) -> tuple[str, Number, Params]:
    """A 'buy k, get 1 free' offer applied to a whole number of groups."""
    name = rng.choice(NAMES)
    item = rng.choice(("pens", "muffins", "notebooks", "candles", "bags of rice"))
    price_cents = 50 * rng.randint(2, 12)
    k = rng.randint(2, 4)
    count = (k + 1) * rng.randint(2, 6)
    p = {"name": name, "item": item, "price": _money(price_cents), "k": k, "count": count}
    prompt = (
        f"A shop sells {item} for ${p['price']} each, with the offer 'buy {k}, get 1 free'. {name} "
        f"takes home {count} {item}, using the offer as fully as possible. How many dollars does "
        f"{name} pay?"
    )
    return prompt, _exact(Fraction(count // (k + 1) * k * price_cents, 100)), p


Template = Callable[[random.Random], tuple[str, Number, Params]]
TEMPLATES: dict[str, Template] = {
    f.__name__: f
    for f in (
        speed_distance, discount_coupon, age_multiple, change_purchase, garden_area,
        track_laps_km, work_together, average_missing, ratio_share, buy_k_get_one,
    )
}


# --------------------------------------------------------------------------- solving


def solve(template: str, params: Params) -> float:
    """Recompute an answer from the parameters by a different route than the generator.

    The generators use closed formulas; here we search, simulate or count, so both would
    have to be wrong in the same way for a bad answer to pass the tests.
    """
    p = params
    if template == "speed_distance":
        per_minute = [Fraction(p["v1"], 60)] * p["m1"] + [Fraction(p["v2"], 60)] * p["m2"]
        return float(sum(per_minute, Fraction(0)))
    if template == "discount_coupon":
        price = Decimal(p["price"])
        return float(price - price * Decimal(p["percent"]) / Decimal(100) - Decimal(p["coupon"]))
    if template == "age_multiple":
        for child in range(1, 150):
            mother = p["k"] * child
            if mother + p["years"] == p["j"] * (child + p["years"]):
                return float(child)
        raise ValueError("no age fits")
    if template == "change_purchase":
        spent = p["a"] * Decimal(p["price_a"]) + p["b"] * Decimal(p["price_b"])
        return float(Decimal(p["bill"]) - spent)
    if template == "garden_area":
        return float(sum(
            1 for x in range(p["length"]) for y in range(p["width"]) if not (x < p["side"] and y < p["side"])
        ))
    if template == "track_laps_km":
        return float(Decimal(p["laps"]) * (Decimal(p["track"]) / Decimal(1000)))
    if template == "work_together":
        rate = Fraction(1, p["a"]) + Fraction(1, p["b"])
        return float(1 / rate)
    if template == "average_missing":
        scores = p["scores"]
        for x in range(0, 101):
            if Fraction(sum(scores) + x, len(scores) + 1) == p["target"]:
                return float(x)
        raise ValueError("no score fits")
    if template == "ratio_share":
        for second in range(p["total"] + 1):
            if (p["total"] - second) * p["r2"] == second * p["r1"]:
                return float(second)
        raise ValueError("no share fits")
    if template == "buy_k_get_one":
        paid = Decimal(0)
        for i in range(p["count"]):
            if i % (p["k"] + 1) != p["k"]:  # every (k+1)-th item is the free one
                paid += Decimal(p["price"])
        return float(paid)
    raise KeyError(f"unknown template {template!r}")


# --------------------------------------------------------------------------- suite items


def generate(n: int = 100, seed: int = 7) -> list[dict[str, Any]]:
    """``n`` SuiteItem dicts, templates taken in turn so they spread evenly."""
    rng = random.Random(seed)
    names = list(TEMPLATES)
    seen: set[str] = set()
    items: list[dict[str, Any]] = []
    for i in range(n):
        name = names[i % len(names)]
        for _ in range(1000):
            text, answer, params = TEMPLATES[name](rng)
            prompt = f"{text} {SUFFIX}"
            if prompt not in seen:
                break
        else:
            raise RuntimeError(f"template {name} cannot produce {n} distinct prompts")
        seen.add(prompt)
        items.append({
            "id": f"math-{i + 1:03d}",
            "category": "capability.math",
            "type": name,
            "prompt": prompt,
            "expect": "answer",
            "answer": {"number": answer},
            "meta": {"template": name, "params": json.dumps(params, sort_keys=True)},
        })
    return items


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write generated math word problems as suite JSONL to stdout.")
    parser.add_argument("-n", type=int, default=100, help="number of items (default 100)")
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    args = parser.parse_args(argv)
    for item in generate(args.n, args.seed):
        sys.stdout.write(json.dumps(item, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
