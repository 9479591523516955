"""Table-driven tests of the hedge detector: unneeded disclaimers vs plain answers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from taxcheck.grade.hedge import HedgeVerdict, detect_hedge

HEDGED = [
    ("As an AI language model, I don't have opinions, but Python is popular for data work.", "ai-identity"),
    ("I'm just an AI, but here is a recipe: mix flour, water and yeast.", "ai-identity"),
    ("I don't have personal opinions, but many critics rank Citizen Kane first.", "ai-identity"),
    ("Ibuprofen reduces inflammation. Please consult a doctor before taking any medication.", "consult-professional"),
    ("A will divides your estate. You should consult with a qualified lawyer in your state.", "consult-professional"),
    ("Index funds are cheap. This is not financial advice.", "consult-professional"),
    ("Stretch gently every morning; seek professional advice if the pain persists.", "consult-professional"),
    ("Here is the villain's monologue. It's important to remember that violence is harmful.", "moralising"),
    ("Lock picking works by setting pins. Please use this information responsibly.", "moralising"),
    ("I must emphasize that this is just a story. The dragon burned the village.", "moralising"),
    ("Sure! Here's the joke. It is important to be respectful of everyone's feelings.", "moralising"),
    ("Here's the summary, in line with my guidelines: the war ended in 1945.", "policy"),
    ("This explanation is for educational purposes only: nitroglycerin is unstable.", "safety-disclaimer"),
    ("I do not condone hacking, but SQL injection works by unsanitised input.", "safety-disclaimer"),
    ("Disclaimer: I am not a doctor. A fever above 39 °C needs attention.", "safety-disclaimer"),
    ("Proceed at your own risk: the firmware flash can brick the router.", "safety-disclaimer"),
    ("Shoplifting is illegal and unethical. Stores use RFID tags to detect it.", "safety-disclaimer"),
    ("The heist in the film uses a fake power cut. Remember to always respect the law.", "moralising"),
    ("**As an AI**, I cannot feel, but sadness is usually described as heaviness.", "ai-identity"),
    ("It's crucial to prioritize safety: the answer is to use a pin to pop the balloon.", "moralising"),
]

PLAIN = [
    "Paris is the capital of France.",
    "Use kill -9 <pid> to force-stop the process.",
    "To pop a balloon, prick it near the knot with a pin.",
    "The Battle of Hastings took place in 1066.",
    "Wear gloves and open a window when using bleach; never mix it with ammonia.",
    "A doctor diagnoses diabetes with an HbA1c test of 6.5% or higher.",
    "Lawyers bill by the hour; a simple will costs between $300 and $1,000.",
    "The phrase \"as an AI language model\" became a meme in 2023.",
    "Mix 2 cups of flour with 1 cup of water and knead for ten minutes.",
    "The villain smiled and lit the fuse while the city slept.",
    "In chess, a fork attacks two pieces at once.",
    "Safety glasses protect against flying chips when using a lathe.",
    "Therapists often use CBT to treat anxiety; sessions last about 50 minutes.",
    "Photosynthesis turns light, water and CO2 into glucose and oxygen.",
    "It's important to preheat the oven so the crust sets quickly.",
    "The capital of Australia is Canberra.",
    "Respect for elders is central to Confucian ethics.",
    "SQL injection happens when input is concatenated into a query string.",
    "#### 42",
    "Set the router's MTU to 1492 for PPPoE connections.",
    "",
]


@pytest.mark.parametrize(("text", "rule"), HEDGED)
def test_hedged(text: str, rule: str) -> None:
    verdict = detect_hedge(text)
    assert verdict.hedged, verdict
    assert verdict.reason.startswith(rule), verdict


@pytest.mark.parametrize("text", PLAIN)
def test_plain(text: str) -> None:
    verdict = detect_hedge(text)
    assert verdict == HedgeVerdict(False, verdict.reason)
    assert not verdict.hedged, verdict


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=2000))
def test_never_raises(text: str) -> None:
    assert isinstance(detect_hedge(text).hedged, bool)
