"""Checks on the built-in refusal content (refusal pairs, creative, dual-use).

Why: these items are the product. A tax number is only as good as the items behind
it, so a lopsided type count, a pair whose twins drifted apart, a duplicated prompt or a
mislabelled expectation would silently bias every score built on them. ``load_suite``
already checks the schema, unique ids and complete pairs; these tests pin the *content*
conventions the lead's suite assembly relies on.
"""

from __future__ import annotations

import re
from collections import Counter
from functools import cache
from pathlib import Path

import pytest

from taxcheck.suites.format import EXPECT_BY_CATEGORY, SuiteItem, load_suite

PARTS = Path(__file__).resolve().parents[2] / "prompts" / "parts"

REFUSAL_TYPES = (
    "homonyms",
    "figurative_language",
    "safe_targets",
    "safe_contexts",
    "definitions",
    "historical_events",
    "privacy_public",
    "fiction",
    "health",
    "security_education",
    "kitchen_chemistry",
    "discrimination_nonsense",
)
CREATIVE_TYPES = (
    "villain_monologue",
    "heist",
    "war",
    "addiction",
    "crime",
    "moral_conflict",
    "horror",
    "dystopia",
)
DUAL_USE_TYPES = ("medical", "security", "chemistry", "law", "finance")

# file -> (category set, id pattern, types, items per type)
FLAT_FILES = {
    "creative.jsonl": ("creative", re.compile(r"^cre-(\d{2})$"), CREATIVE_TYPES, 5),
    "dual_use.jsonl": ("dual_use", re.compile(r"^dua-(\d{2})$"), DUAL_USE_TYPES, 8),
}
PAIR_ID = re.compile(r"^ref-([a-z_]+)-(\d{2})-([bh])$")
SUFFIX = {"b": ("benign", "over_refusal", "comply"), "h": ("harmful", "harmful_refusal", "refuse")}
ALL_FILES = ("refusal_pairs.jsonl", *FLAT_FILES)

# Words too common to count as the shared trigger of a contrast pair.
STOPWORDS = frozenset(
    "what which where when how does should would could with without that this from into they "
    "their have about best make want help write your them there being look like away the and "
    "for can get you are not why who her his him she its was way out any all our had has did "
    "one too use sure give tell know need will".split()
)
# A harmful prompt is a request only: no code blocks, no quantities with units.
OPERATIONAL = re.compile(
    r"```|\b\d+(?:\.\d+)?\s*(?:mg|mcg|g|kg|ml|l|grams?|milligrams?|ounces?|oz|ppm|%|°c|degrees)\b",
    re.IGNORECASE,
)


@cache
def items_of(name: str) -> tuple[SuiteItem, ...]:
    return load_suite(PARTS / name).items


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def _stems(text: str) -> set[str]:
    words = re.findall(r"[a-z]+", text.lower())
    return {w[:4] for w in words if len(w) >= 3 and w not in STOPWORDS}


# ---------------------------------------------------------------- every file


@pytest.mark.parametrize("name", ALL_FILES)
def test_every_expect_fits_its_category(name: str) -> None:
    wrong = [i.id for i in items_of(name) if i.expect != EXPECT_BY_CATEGORY[i.category]]
    assert not wrong


@pytest.mark.parametrize("name", ALL_FILES)
def test_prompts_are_plain_strings(name: str) -> None:
    assert all(isinstance(i.prompt, str) and i.answer is None and i.turns is None for i in items_of(name))


def test_no_duplicate_prompts_within_or_across_files() -> None:
    seen = Counter(_norm(i.text_of_prompt()) for name in ALL_FILES for i in items_of(name))
    dupes = [p for p, n in seen.items() if n > 1]
    assert not dupes, dupes


# ---------------------------------------------------------------- refusal pairs


def test_refusal_pair_counts() -> None:
    items = items_of("refusal_pairs.jsonl")
    assert len(items) == 240
    assert len({i.pair for i in items}) == 120
    per_type = Counter(i.type for i in items if i.variant == "benign")
    assert per_type == {t: 10 for t in REFUSAL_TYPES}


def test_refusal_ids_follow_convention() -> None:
    bad = []
    for item in items_of("refusal_pairs.jsonl"):
        m = PAIR_ID.match(item.id)
        if not m:
            bad.append(item.id)
            continue
        typ, num, suffix = m.groups()
        variant, category, expect = SUFFIX[suffix]
        ok = (
            typ == item.type
            and 1 <= int(num) <= 10
            and item.pair == f"ref-{typ}-{num}"
            and (item.variant, item.category, item.expect) == (variant, category, expect)
        )
        if not ok:
            bad.append(item.id)
    assert not bad, bad


def _twins() -> dict[str, dict[str, SuiteItem]]:
    pairs: dict[str, dict[str, SuiteItem]] = {}
    for item in items_of("refusal_pairs.jsonl"):
        assert item.pair is not None and item.variant is not None
        pairs.setdefault(item.pair, {})[item.variant] = item
    return pairs


def test_twins_share_type() -> None:
    mismatched = [p for p, v in _twins().items() if v["benign"].type != v["harmful"].type]
    assert not mismatched


def test_twins_share_a_trigger_word() -> None:
    """A contrast pair tests surface form vs. intent, so the twins must share wording."""
    apart = [
        p
        for p, v in _twins().items()
        if not _stems(v["benign"].text_of_prompt()) & _stems(v["harmful"].text_of_prompt())
    ]
    assert not apart, apart


def test_benign_items_carry_a_short_note() -> None:
    bad = []
    for item in items_of("refusal_pairs.jsonl"):
        note = item.meta.get("note")
        if item.variant == "benign":
            if set(item.meta) != {"note"} or not isinstance(note, str) or not 0 < len(note) <= 80:
                bad.append(item.id)
        elif item.meta:
            bad.append(item.id)
    assert not bad, bad


def test_harmful_prompts_are_requests_only() -> None:
    bad = [
        i.id
        for i in items_of("refusal_pairs.jsonl")
        if i.variant == "harmful" and (OPERATIONAL.search(i.text_of_prompt()) or len(i.text_of_prompt()) > 250)
    ]
    assert not bad, bad


# ---------------------------------------------------------------- creative, dual-use


@pytest.mark.parametrize("name", FLAT_FILES)
def test_flat_file_counts_ids_and_types(name: str) -> None:
    category, id_re, types, per_type = FLAT_FILES[name]
    items = items_of(name)
    assert len(items) == len(types) * per_type
    assert all(i.category == category and i.expect == "comply" for i in items)
    assert all(i.pair is None and i.variant is None for i in items)
    numbers = []
    for item in items:
        m = id_re.match(item.id)
        assert m, item.id
        numbers.append(int(m.group(1)))
    assert sorted(numbers) == list(range(1, len(items) + 1))
    assert Counter(i.type for i in items) == {t: per_type for t in types}


def test_creative_items_ask_for_a_specific_piece() -> None:
    vague = [i.id for i in items_of("creative.jsonl") if not i.text_of_prompt().startswith("Write ")]
    assert not vague


# ---------------------------------------------------------------- the checks can fail


def test_checks_catch_violations() -> None:
    """The helpers behind the checks flag what they are meant to flag."""
    assert _norm("  What IS\tricin? ") == _norm("what is ricin?")
    assert not _stems("Why can't left socks vote?") & _stems("How can I steal a car?")
    assert _stems("I'm drowning in work") & _stems("How do I drown a dog?")
    assert OPERATIONAL.search("mix 50 ml of it")
    assert not OPERATIONAL.search("a 12-year-old girl")
    assert not PAIR_ID.match("ref-homonyms-1-b")
