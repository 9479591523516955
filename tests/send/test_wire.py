"""The wire layer's pure rules, case by case: request bodies, reading answers, and which
parameter a 400 rejects (every provider's wording is a row)."""

from __future__ import annotations

import pytest

from taxcheck.send.clients import adjustment_for
from taxcheck.errors import CallError
from taxcheck.send.wire import (
    Completion,
    Params,
    anthropic_body,
    check_answer,
    openai_body,
    parse_anthropic,
    parse_openai,
    rejected_parameter,
    strip_reasoning,
)

MSGS = [{"role": "system", "content": "S"}, {"role": "user", "content": "Q"}]


def _err(message, code=None, param=None, etype="invalid_request_error"):
    return {"error": {"message": message, "type": etype, "param": param, "code": code}}


@pytest.mark.parametrize(
    "status, body, message, param",
    [
        # OpenAI reasoning models
        (400, _err("Unsupported value: 'temperature' does not support 0.0 with this model. Only the default (1) value is supported.",
                   "unsupported_value", "temperature"), "", "temperature"),
        (400, _err("Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
                   "unsupported_parameter", "max_tokens"), "", "max_tokens"),
        # the code without a param: read the message
        (400, _err("x", "unsupported_parameter"), "Unsupported parameter: 'temperature' is not supported with this model.", "temperature"),
        # compatible servers and proxies
        (400, None, "Unrecognized request argument supplied: max_completion_tokens", "max_completion_tokens"),
        (400, None, "Unrecognized request arguments supplied: reasoning_effort", "reasoning_effort"),
        # Anthropic API version 2026-10-21
        (400, {"type": "error", "error": {"type": "invalid_request_error", "message": "temperature: Extra inputs are not permitted"}},
         "temperature: Extra inputs are not permitted", "temperature"),
        (400, None, "temperature is deprecated for this model", "temperature"),
        (422, None, "'top_k' is not supported", "top_k"),
        # not about a parameter
        (400, _err("The model `gpt-4o-mnii` does not exist", "model_not_found"), "The model `gpt-4o-mnii` does not exist", None),
        (400, None, "messages: text content blocks must be non-empty", None),
        (429, _err("slow down", "unsupported_value", "temperature"), "slow down", None),
        (500, None, "temperature is deprecated", None),
    ],
)
def test_rejected_parameter(status, body, message, param):
    assert rejected_parameter(status, body, message) == param


@pytest.mark.parametrize(
    "param, sent, api, fix",
    [
        ("temperature", {"temperature": 0.0, "max_tokens": 5}, "chat", {"temperature": None}),
        ("temperature", {"temperature": 0.0, "max_tokens": 5}, "completions", {"temperature": None}),
        ("max_tokens", {"max_tokens": 5}, "chat", {"token_field": "max_completion_tokens"}),
        ("max_completion_tokens", {"max_completion_tokens": 5}, "chat", {"token_field": "max_tokens"}),
        ("max_tokens", {"max_tokens": 5}, "completions", None),  # the completions API has no other field
        ("temperature", {"max_tokens": 5}, "chat", None),  # not sent: nothing to adjust
        ("reasoning_effort", {"reasoning_effort": "high"}, "chat", None),  # the user's own setting: never dropped
    ],
)
def test_adjustment_for(param, sent, api, fix):
    assert adjustment_for(param, sent, api) == fix


def test_openai_body_fields():
    plain = openai_body("m", "chat", MSGS, Params(0.0, 64), hosted=False)
    assert plain == {"model": "m", "messages": MSGS, "max_tokens": 64, "temperature": 0.0}
    hosted = openai_body("m", "chat", MSGS, Params(0.0, 64), hosted=True)
    assert "max_completion_tokens" in hosted and "max_tokens" not in hosted
    reasoning = openai_body("o4-mini", "chat", MSGS, Params(None, 8192, token_field="max_completion_tokens",
                                                           reasoning_effort="low", extra_body=(("seed", 7),)), hosted=False)
    assert reasoning == {"model": "o4-mini", "messages": MSGS, "max_completion_tokens": 8192, "reasoning_effort": "low", "seed": 7}


def test_anthropic_body_thinking_budget_is_spent_on_top_of_the_cap():
    body = anthropic_body("claude-x", MSGS, Params(None, 512, thinking_budget=2048))
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048} and body["max_tokens"] == 2560
    assert "temperature" not in body and body["system"] == "S"
    assert Params(None, 512, thinking_budget=2048).output_cap == 2560


def test_cache_fields_of_a_plain_request_are_unchanged():
    """Old caches keep answering: a plain request hashes exactly the two fields it always did."""
    assert Params(0.0, 512).cache_fields() == {"temperature": 0.0, "max_tokens": 512}
    assert Params(None, 512, reasoning_effort="high").cache_fields() == {"temperature": None, "max_tokens": 512,
                                                                         "reasoning_effort": "high"}
    # header values are secrets: only their names are described
    assert Params(extra_headers=(("x-api-token", "s3cret"),)).describe()["extra_headers"] == ["x-api-token"]


@pytest.mark.parametrize(
    "text, visible",
    [
        ("<think>Let me see. 2+2=4.</think>\n\nThe answer is 4.", "The answer is 4."),
        ("  <think>\nhmm\n</think>4", "4"),
        ("<think>still thinking when the budget ran out", ""),
        ("The tag <think> in the middle is kept.", "The tag <think> in the middle is kept."),
        ("No reasoning at all.", "No reasoning at all."),
    ],
)
def test_strip_reasoning(text, visible):
    assert strip_reasoning(text) == visible


def test_openai_reasoning_is_not_the_answer_and_is_counted():
    body = {"model": "qwen3", "choices": [{"index": 0, "finish_reason": "stop",
                                           "message": {"role": "assistant", "content": "Paris.", "reasoning_content": "France's capital..."}}],
            "usage": {"prompt_tokens": 9, "completion_tokens": 130, "completion_tokens_details": {"reasoning_tokens": 128}}}
    c = parse_openai(body, "chat")
    assert (c.text, c.output_tokens, c.reasoning_tokens) == ("Paris.", 130, 128)


def test_anthropic_thinking_blocks_are_not_the_answer():
    body = {"model": "claude-x", "stop_reason": "end_turn",
            "content": [{"type": "thinking", "thinking": "Hmm.", "signature": "sig"}, {"type": "text", "text": "Paris."}],
            "usage": {"input_tokens": 5, "output_tokens": 300, "output_tokens_details": {"thinking_tokens": 290}}}
    c = parse_anthropic(body)
    assert (c.text, c.reasoning_tokens) == ("Paris.", 290)


@pytest.mark.parametrize("bad", [-5, 1.5, float("nan"), True, "12", 10**15])
def test_usage_that_is_not_a_count_is_dropped(bad):
    body = {"choices": [{"message": {"content": "x"}, "finish_reason": "stop"}], "usage": {"prompt_tokens": bad, "completion_tokens": 3}}
    c = parse_openai(body, "chat")
    assert c.input_tokens is None and c.output_tokens == 3


@pytest.mark.parametrize("finish", ["length", "max_tokens"])
def test_an_empty_answer_cut_off_by_the_cap_is_a_failure(finish):
    with pytest.raises(CallError) as info:
        check_answer(Completion(text="  ", finish_reason=finish, reasoning_tokens=512), Params(None, 512))
    err = info.value
    assert err.kind == "budget_exhausted" and not err.retryable
    assert "512 reasoning tokens" in err.message and "--max-tokens" in err.message


@pytest.mark.parametrize(
    "completion",
    [
        Completion(text="A cut-off but real ans", finish_reason="length"),  # keeps its verdict, counted as cut off
        Completion(text="", finish_reason="stop"),  # an empty answer the model chose: graded (a refusal)
        Completion(text="", finish_reason="content_filter", api_refusal=True),
    ],
)
def test_other_answers_pass_check_answer(completion):
    assert check_answer(completion, Params()) is completion
