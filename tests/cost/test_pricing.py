"""The built-in price table: current models priced, newer families never priced by an older pattern."""

from __future__ import annotations

import json

import pytest

from taxcheck.paths import prompts_dir
from taxcheck.cost.pricing import cost_usd, price_for


@pytest.mark.parametrize(
    "spec, price",
    [
        ("openai:gpt-5.5", (5.0, 30.0)),
        ("openai:gpt-5.4-mini", (0.75, 4.5)),
        ("openai:gpt-5.4-nano-2026-03-17", (0.2, 1.25)),
        ("openai:gpt-5.4", (2.5, 15.0)),
        ("openai:gpt-4o-2024-08-06", (2.5, 10.0)),
        ("anthropic:claude-opus-4-7", (5.0, 25.0)),
        ("anthropic:claude-opus-4-1-20250805", (15.0, 75.0)),
        ("anthropic:claude-sonnet-4-6", (3.0, 15.0)),
        ("anthropic:claude-haiku-4-5-20251001", (1.0, 5.0)),
        ("ollama:llama3.1", (0.0, 0.0)),
    ],
)
def test_known_prices(spec, price):
    assert price_for(spec) == price


@pytest.mark.parametrize(
    "spec",
    ["anthropic:claude-opus-4-8", "anthropic:claude-sonnet-5-5", "anthropic:claude-haiku-5-5", "openai:gpt-6-sol",
     "openai:gpt-5.6-terra", "openai:gpt-4oz", "openai:some-fine-tune"],
)
def test_models_without_a_known_price_cost_unknown_never_zero(spec):
    assert price_for(spec) is None and cost_usd(spec, 1000, 1000) is None


def test_the_table_says_when_it_was_read_and_to_check_it():
    data = json.loads((prompts_dir() / "prices.json").read_text(encoding="utf-8"))
    assert data["read_on"] >= "2026-12-01" and "check" in data["note"] and data["sources"]
