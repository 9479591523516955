"""The fake is as strict as the providers: what the SDKs send passes, what the APIs reject is rejected.

Issue 10: a permissive fake agrees with the client's misunderstandings. These tests drive the
real SDK clients (nothing monkeypatched) and check both directions: many legitimate request
shapes are accepted, and each documented rejection comes back with the provider's status
and error shape; reasoning-token accounting adds up.
"""

from __future__ import annotations

import json
from typing import Any

import anthropic
import openai
import pytest
from pydantic import TypeAdapter

from fakeapi import FakeAPI, Reply, azure_content_filter, policy_error
from fakeapi_models import DEFAULT_REASONING_TOKENS, ModelProfile, spend
from fakeapi_validate import check_body
from test_fakeapi import make_client, raw_http

V2026 = {"anthropic-version": "2026-10-21"}
V2023 = {"anthropic-version": "2023-06-01"}
USER = [{"role": "user", "content": "hello there"}]


def chat(api: FakeAPI, **kwargs: Any) -> Any:
    kwargs.setdefault("model", "fake-model")
    kwargs.setdefault("messages", USER)
    with make_client(api, "openai", "sync") as client:
        return client.chat.completions.create(**kwargs)


def message(api: FakeAPI, **kwargs: Any) -> Any:
    kwargs.setdefault("model", "fake-model")
    kwargs.setdefault("messages", USER)
    kwargs.setdefault("max_tokens", 64)
    with make_client(api, "anthropic", "sync") as client:
        return client.messages.create(**kwargs)


def post(api: FakeAPI, path: str, body: dict[str, Any], headers: dict[str, str] | None = None) -> tuple[int, dict]:
    status, _, raw = raw_http(api, "POST", path, json.dumps(body).encode(), {"content-type": "application/json",
                                                                            **(headers or {})})
    return status, json.loads(raw)


# --------------------------------------------------------------------------- accepted: what the SDKs send

TOOL = {"type": "function", "function": {"name": "lookup", "description": "Find a word.",
                                          "parameters": {"type": "object", "properties": {"q": {"type": "string"}},
                                                         "required": ["q"], "additionalProperties": False}}}

OPENAI_CHAT_SHAPES = [
    {},
    {"temperature": 0.0, "max_tokens": 512},
    {"temperature": 0, "top_p": 0.9, "max_completion_tokens": 64, "seed": 7, "n": 2, "stop": "\n\n"},
    {"stop": ["a", "b"], "presence_penalty": -0.5, "frequency_penalty": 1.5, "logit_bias": {"50256": -100},
     "logprobs": True, "top_logprobs": 3, "user": "u-1", "metadata": {"k": "v"}, "store": False},
    {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "q1"},
                  {"role": "assistant", "content": ""}, {"role": "user", "content": "Are you sure?"}]},
    {"messages": [{"role": "developer", "content": [{"type": "text", "text": "Rules."}]},
                  {"role": "user", "name": "ann", "content": [
                      {"type": "text", "text": "Describe."},
                      {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"}}]}]},
    {"tools": [TOOL], "tool_choice": {"type": "function", "function": {"name": "lookup"}}, "parallel_tool_calls": False},
    {"messages": [{"role": "user", "content": "q"},
                  {"role": "assistant", "content": None, "tool_calls": [
                      {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{\"q\": \"x\"}"}}]},
                  {"role": "tool", "tool_call_id": "call_1", "content": "result"}], "tools": [TOOL]},
    {"response_format": {"type": "json_object"}},
    {"response_format": {"type": "json_schema", "json_schema": {"name": "answer", "strict": True, "schema": {
        "type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"], "additionalProperties": False}}}},
    {"reasoning_effort": "low", "verbosity": "low", "service_tier": "auto"},
    {"temperature": None, "max_tokens": None, "stop": None},
]


@pytest.mark.parametrize("shape", OPENAI_CHAT_SHAPES, ids=range(len(OPENAI_CHAT_SHAPES)))
def test_openai_chat_shapes_the_sdk_sends_are_accepted(fake_api: FakeAPI, shape: dict[str, Any]) -> None:
    response = chat(fake_api, **shape)
    assert response.choices[0].message.content.startswith("Echo:")
    assert fake_api.invalid_requests == [] and fake_api.successes == 1


@pytest.mark.parametrize("shape", [
    {"prompt": "User: hi\n\nAssistant:", "temperature": 0.0, "max_tokens": 512, "stop": ["\nUser:"]},
    {"prompt": ["one", "two"], "echo": True, "best_of": 2, "n": 2, "logprobs": 2, "suffix": "!", "seed": 1},
])
def test_openai_completions_shapes_are_accepted(fake_api: FakeAPI, shape: dict[str, Any]) -> None:
    with make_client(fake_api, "openai", "sync") as client:
        response = client.completions.create(model="base", **shape)
    assert response.choices[0].text.startswith("Echo:") and fake_api.invalid_requests == []


ANTHROPIC_SHAPES = [
    {},
    {"system": "Be brief.", "stop_sequences": ["\n\nHuman:"], "metadata": {"user_id": "u-1"}},
    {"system": [{"type": "text", "text": "Rules.", "cache_control": {"type": "ephemeral"}}]},
    {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "The answer is ("}]},  # prefill
    {"messages": [{"role": "user", "content": [
        {"type": "text", "text": "Describe."},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}]}]},
    {"tools": [{"name": "lookup", "description": "Find.", "input_schema": {
        "type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"], "additionalProperties": False}}],
     "tool_choice": {"type": "auto"}},
    {"messages": [{"role": "user", "content": "q"},
                  {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "lookup",
                                                     "input": {"q": "x"}}]},
                  {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "r"}]}]},
    {"thinking": {"type": "enabled", "budget_tokens": 1024}, "max_tokens": 2048},
    {"thinking": {"type": "adaptive", "display": "omitted"}, "max_tokens": 2048},
    {"thinking": {"type": "disabled"}, "service_tier": "auto"},
]


@pytest.mark.parametrize("shape", ANTHROPIC_SHAPES, ids=range(len(ANTHROPIC_SHAPES)))
def test_anthropic_shapes_the_sdk_sends_are_accepted(fake_api: FakeAPI, shape: dict[str, Any]) -> None:
    response = message(fake_api, **shape)
    assert response.content[-1].type == "text" and fake_api.invalid_requests == []


def test_the_sdk_sends_the_api_version_that_has_no_temperature(fake_api: FakeAPI) -> None:
    message(fake_api)
    assert fake_api.requests[0].headers["anthropic-version"] == anthropic._constants.ANTHROPIC_API_VERSION
    assert anthropic._constants.ANTHROPIC_API_VERSION >= "2026-10-21"


# --------------------------------------------------------------------------- rejected: invalid bodies


def test_unknown_top_level_field_gets_openais_400_and_is_recorded(fake_api: FakeAPI) -> None:
    fake_api.allow_invalid = True
    fake_api.enqueue("never consumed")
    with pytest.raises(openai.BadRequestError) as info:
        chat(fake_api, extra_body={"bogus": 1})
    assert info.value.body == {"message": "Unrecognized request argument supplied: bogus",
                               "type": "invalid_request_error", "param": None, "code": None}
    [record] = fake_api.invalid_requests
    assert (record.path, record.reason, record.model) == ("/v1/chat/completions",
                                                          "Unrecognized request argument supplied: bogus", "fake-model")
    assert chat(fake_api).choices[0].message.content == "never consumed"  # a scripted answer waits for a valid request


def test_anthropic_temperature_is_an_extra_input_on_the_current_api_version(fake_api: FakeAPI) -> None:
    fake_api.allow_invalid = True
    with pytest.raises(anthropic.BadRequestError) as info:
        message(fake_api, extra_body={"temperature": 0.0})
    assert info.value.body == {"type": "error", "error": {"type": "invalid_request_error",
                                                          "message": "temperature: Extra inputs are not permitted"}}
    assert [r.reason for r in fake_api.invalid_requests] == ["temperature: Extra inputs are not permitted"]


def test_anthropic_temperature_is_checked_on_older_api_versions(fake_api: FakeAPI) -> None:
    body = {"model": "m", "max_tokens": 8, "messages": USER, "temperature": 0.5, "top_k": 5}
    assert post(fake_api, "/v1/messages", body, V2023)[0] == 200
    fake_api.allow_invalid = True
    status, error = post(fake_api, "/v1/messages", {**body, "temperature": 1.5}, V2023)
    assert status == 400 and error["error"]["message"] == "temperature: Input should be less than or equal to 1"
    status, error = post(fake_api, "/v1/messages", {**body, "thinking": {"type": "enabled", "budget_tokens": 1024},
                                                    "max_tokens": 2048}, V2023)
    assert status == 400 and "`temperature` may only be set to 1 when thinking is enabled" in error["error"]["message"]
    status, error = post(fake_api, "/v1/messages", body)
    assert status == 400 and error["error"]["message"] == "anthropic-version: header is required"


# (kind, body, headers, expected message, expected OpenAI param and code)
INVALID = [
    ("chat", {"model": "m", "messages": [{"role": "user", "content": "hi", "id": "x"}]}, {},
     "Unknown parameter: 'messages[0].id'.", ("messages[0].id", "unknown_parameter")),
    ("chat", {"model": "m", "messages": [{"role": "user", "content": [{"type": "text", "text": "a", "zz": 1}]}]}, {},
     "Unknown parameter: 'messages[0].content[0].zz'.", ("messages[0].content[0].zz", "unknown_parameter")),
    ("chat", {"model": "m", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "u", "bogus": 1}}]}]}, {},
     "Unknown parameter: 'messages[0].content[0].image_url.bogus'.",
     ("messages[0].content[0].image_url.bogus", "unknown_parameter")),
    ("chat", {"model": "m", "messages": USER, "tools": [{"type": "function", "function": {"name": "f", "x": 1}}]}, {},
     "Unknown parameter: 'tools[0].function.x'.", ("tools[0].function.x", "unknown_parameter")),
    ("chat", {"model": "m", "messages": USER, "response_format": {"type": "json_schema",
                                                                  "json_schema": {"name": "n", "bogus": True}}}, {},
     "Unknown parameter: 'response_format.json_schema.bogus'.",
     ("response_format.json_schema.bogus", "unknown_parameter")),
    ("chat", {"model": "m"}, {}, "Missing required parameter: 'messages'.", ("messages", "missing_required_parameter")),
    ("chat", {"model": "m", "messages": [{"content": "hi"}]}, {},
     "Missing required parameter: 'messages[0].role'.", ("messages[0].role", "missing_required_parameter")),
    ("chat", {"model": "m", "messages": [{"role": "bot", "content": "hi"}]}, {},
     "Invalid value: 'bot'. Supported values are: 'developer', 'system', 'user', 'assistant', 'tool', and 'function'.",
     ("messages[0].role", "invalid_value")),
    ("chat", {"model": "m", "messages": USER, "max_tokens": "512"}, {},
     "Invalid type for 'max_tokens': expected an integer, but got a string instead.", ("max_tokens", "invalid_type")),
    ("chat", {"model": "m", "messages": USER, "max_tokens": 5.0}, {},
     "Invalid type for 'max_tokens': expected an integer, but got a decimal instead.", ("max_tokens", "invalid_type")),
    ("chat", {"model": "m", "messages": USER, "temperature": "0"}, {},
     "Invalid type for 'temperature': expected a decimal, but got a string instead.", ("temperature", "invalid_type")),
    ("chat", {"model": "m", "messages": USER, "n": True}, {},
     "Invalid type for 'n': expected an integer, but got a boolean instead.", ("n", "invalid_type")),
    ("chat", {"model": "m", "messages": [{"role": "user", "content": 5}]}, {},
     "Invalid type for 'messages[0].content': expected one of a string or an array, but got an integer instead.",
     ("messages[0].content", "invalid_type")),
    ("chat", {"model": "m", "messages": USER, "temperature": 2.5}, {},
     "Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but got 2.5 instead.",
     ("temperature", "decimal_above_max_value")),
    ("chat", {"model": "m", "messages": USER, "max_completion_tokens": 0}, {},
     "Invalid 'max_completion_tokens': integer below minimum value. Expected a value >= 1, but got 0 instead.",
     ("max_completion_tokens", "integer_below_min_value")),
    ("chat", {"model": "m", "messages": []}, {},
     "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
     ("messages", "empty_array")),
    ("chat", {"model": "m", "messages": [{"role": "assistant", "content": "a", "tool_calls": []}]}, {},
     "Invalid 'messages[0].tool_calls': empty array. Expected an array with minimum length 1, but got an empty array "
     "instead.", ("messages[0].tool_calls", "empty_array")),
    ("completions", {"model": "m", "prompt": "p", "messages": USER}, {},
     "Unrecognized request argument supplied: messages", (None, None)),
    ("anthropic", {"model": "m", "messages": USER}, V2026, "max_tokens: Field required", None),
    ("anthropic", {"model": "m", "max_tokens": 8, "messages": USER, "top_p": 0.9}, V2026,
     "top_p: Extra inputs are not permitted", None),
    ("anthropic", {"model": "m", "max_tokens": "8", "messages": USER}, V2026,
     "max_tokens: Input should be a valid integer", None),
    ("anthropic", {"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": "q", "name": "x"}]}, V2026,
     "messages.0.name: Extra inputs are not permitted", None),
    ("anthropic", {"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "a", "cache_control": {"type": "ephemeral", "zz": 1}}]}]}, V2026,
     "messages.0.content.0.text.cache_control.zz: Extra inputs are not permitted", None),
    ("anthropic", {"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": [{"type": "txt"}]}]}, V2026,
     "messages.0.content.0: Input tag 'txt' found using 'type' does not match any of the expected tags: 'text', "
     "'image', 'document', 'search_result', 'thinking', 'redacted_thinking', 'tool_use', 'tool_result', "
     "'server_tool_use', 'web_search_tool_result', 'web_fetch_tool_result', 'code_execution_tool_result', "
     "'bash_code_execution_tool_result', 'text_editor_code_execution_tool_result', 'tool_search_tool_result', "
     "'container_upload'", None),
    ("anthropic", {"model": "m", "max_tokens": 8, "messages": [{"role": "human", "content": "q"}]}, V2026,
     "messages.0.role: Input should be 'user', 'assistant' or 'system'", None),
    ("anthropic", {"model": "m", "max_tokens": 4096, "messages": USER, "thinking": {"type": "enabled",
                                                                                  "budget_tokens": 512}}, V2026,
     "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024", None),
    ("anthropic", {"model": "m", "max_tokens": 2048, "messages": USER, "thinking": {"type": "enabled",
                                                                                  "budget_tokens": 2048}}, V2026,
     "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our documentation at "
     "https://docs.claude.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-window-size", None),
    ("anthropic", {"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": "q"},
                                                             {"role": "assistant", "content": ""},
                                                             {"role": "user", "content": "Are you sure?"}]}, V2026,
     "messages.1: all messages must have non-empty content except for the optional final assistant message", None),
    ("anthropic", {"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": [
        {"type": "text", "text": ""}]}]}, V2026, "messages: text content blocks must be non-empty", None),
    ("anthropic", {"model": "m", "max_tokens": 8, "messages": USER,
                   "system": [{"type": "text", "text": ""}]}, V2026,
     "system: text content blocks must be non-empty", None),
]


@pytest.mark.parametrize("kind,body,headers,message_,openai_fields", INVALID, ids=[c[3][:60] for c in INVALID])
def test_invalid_bodies_get_the_providers_message(kind: str, body: dict[str, Any], headers: dict[str, str],
                                                  message_: str, openai_fields: tuple | None) -> None:
    rejection = check_body(kind, body, headers)
    assert rejection is not None and rejection.invalid and rejection.status == 400
    if kind == "anthropic":
        assert rejection.body == {"type": "error", "error": {"type": "invalid_request_error", "message": message_}}
    else:
        param, code = openai_fields
        assert rejection.body == {"error": {"message": message_, "type": "invalid_request_error",
                                            "param": param, "code": code}}


@pytest.mark.parametrize("kind,body", [
    ("chat", {"model": "m", "messages": [{"role": "user", "content": "hi", "x": 1}]}),
    ("chat", {"model": "m", "messages": USER, "tools": [{"type": "function", "function": {"name": "f", "x": 1}}]}),
    ("anthropic", {"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "a", "cache_control": {"type": "ephemeral", "zz": 1}}]}]}),
    ("anthropic", {"model": "m", "max_tokens": 8, "messages": USER, "thinking": {"type": "adaptive", "x": 1}}),
])
def test_nested_extras_are_forbidden_although_plain_pydantic_ignores_them(kind: str, body: dict[str, Any]) -> None:
    """The point of the schema rewrite: pydantic's own TypedDict validation lets these through."""
    from anthropic.types.message_create_params import MessageCreateParamsNonStreaming as AnthropicParams
    from openai.types.chat.completion_create_params import CompletionCreateParamsNonStreaming as ChatParams

    plain = TypeAdapter(AnthropicParams if kind == "anthropic" else ChatParams)
    validated = plain.validate_python(body)  # no error: extras ignored, iterables never looked at
    list(validated["messages"])
    rejection = check_body(kind, body, V2026)
    assert rejection is not None and rejection.invalid
    assert "Extra inputs are not permitted" in rejection.reason or "Unknown parameter" in rejection.reason


def test_nan_is_not_json_even_though_pythons_json_writes_it(fake_api: FakeAPI) -> None:
    fake_api.allow_invalid = True  # the SDKs refuse to encode NaN; a hand-rolled client may not
    status, body = post(fake_api, "/v1/chat/completions", {"model": "m", "messages": USER, "temperature": float("nan")})
    assert status == 400 and body["error"]["message"] == "We could not parse the JSON body of your request."
    deep: Any = "leaf"
    for _ in range(900):  # deep but parseable: checked without recursion
        deep = [deep]
    assert check_body("chat", {"model": "m", "messages": USER, "metadata": {"k": deep}}, {}) is not None


def test_iterable_fields_are_validated_not_deferred() -> None:
    """``messages: Iterable[...]`` is lazy in pydantic; here every message is looked at."""
    body = {"model": "m", "messages": [{"role": "user", "content": "fine"}, {"role": "user", "content": {"no": 1}}]}
    rejection = check_body("chat", body, {})
    assert rejection is not None and "messages[1].content" in rejection.reason


def test_openai_batch_lines_are_validated_and_recorded(fake_api: FakeAPI) -> None:
    fake_api.batches_enabled = True
    fake_api.allow_invalid = True
    lines = [
        {"custom_id": "ok", "method": "POST", "url": "/v1/chat/completions",
         "body": {"model": "m", "messages": USER, "max_tokens": 8}},
        {"custom_id": "bad", "method": "POST", "url": "/v1/chat/completions",
         "body": {"model": "m", "messages": USER, "max_tokens": 8, "bogus": True}},
    ]
    with make_client(fake_api, "openai", "sync") as client:
        upload = client.files.create(file=("in.jsonl", "".join(json.dumps(x) + "\n" for x in lines).encode()),
                                     purpose="batch")
        batch = client.batches.create(input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h")
        while (batch := client.batches.retrieve(batch.id)).status != "completed":
            pass
        errors = [json.loads(x) for x in client.files.content(batch.error_file_id).text.splitlines()]
        assert client.files.content(batch.output_file_id).text.count("\n") == 1
    [error] = errors
    assert error["custom_id"] == "bad" and error["response"]["status_code"] == 400
    assert error["response"]["body"]["error"]["message"] == "Unrecognized request argument supplied: bogus"
    assert [r.reason for r in fake_api.invalid_requests] == ["Unrecognized request argument supplied: bogus"]


def test_anthropic_batch_params_are_validated_and_recorded(fake_api: FakeAPI) -> None:
    fake_api.batches_enabled = True
    fake_api.allow_invalid = True
    with make_client(fake_api, "anthropic", "sync") as client:
        batch = client.messages.batches.create(requests=[
            {"custom_id": "ok", "params": {"model": "m", "max_tokens": 8, "messages": USER}},
            {"custom_id": "bad", "params": {"model": "m", "max_tokens": 8, "messages": [
                {"role": "user", "content": "q"}, {"role": "assistant", "content": ""},
                {"role": "user", "content": "Are you sure?"}]}},
        ])
        while (batch := client.messages.batches.retrieve(batch.id)).processing_status != "ended":
            pass
        results = {r.custom_id: r.result for r in client.messages.batches.results(batch.id)}
    assert results["ok"].type == "succeeded" and results["bad"].type == "errored"
    assert "all messages must have non-empty content" in results["bad"].error.error.message
    assert len(fake_api.invalid_requests) == 1


# --------------------------------------------------------------------------- ordering, recording, the fixture


def test_front_door_faults_win_over_validation_but_the_body_is_still_recorded(fake_api: FakeAPI) -> None:
    fake_api.allow_invalid = True
    fake_api.enqueue(Reply(status=429, headers={"retry-after": "1"}))
    with pytest.raises(openai.RateLimitError):
        chat(fake_api, extra_body={"bogus": 1})
    assert len(fake_api.invalid_requests) == 1


def test_a_scripted_failure_is_sent_as_scripted_and_an_invalid_body_still_recorded(fake_api: FakeAPI) -> None:
    fake_api.allow_invalid = True
    fake_api.enqueue(policy_error("cyber_policy"), "an answer")
    with pytest.raises(openai.BadRequestError) as info:
        chat(fake_api, messages=[{"role": "user", "content": "x", "bogus": 1}])
    assert info.value.body["code"] == "cyber_policy"
    with pytest.raises(openai.BadRequestError) as info:  # the scripted answer is not wasted on an invalid body
        chat(fake_api, messages=[{"role": "user", "content": "x", "bogus": 1}])
    assert info.value.body["code"] == "unknown_parameter"
    assert chat(fake_api).choices[0].message.content == "an answer"
    assert [r.reason for r in fake_api.invalid_requests] == ["Unknown parameter: 'messages[0].bogus'."] * 2


def test_reset_forgets_invalid_requests_and_profiles(fake_api: FakeAPI) -> None:
    fake_api.allow_invalid = True
    fake_api.profile("m", "openai_reasoning")
    with pytest.raises(openai.BadRequestError):
        chat(fake_api, model="m", temperature=0)
    assert fake_api.invalid_requests == []  # a model's refusal is behavioural, not an invalid body
    with pytest.raises(openai.BadRequestError):
        chat(fake_api, extra_body={"bogus": 1})
    assert fake_api.invalid_report().startswith("fakeapi rejected 1 request bodies")
    fake_api.reset()
    assert fake_api.invalid_requests == [] and fake_api.invalid_report() == ""
    assert chat(fake_api, model="m", temperature=0).choices[0].message.content.startswith("Echo:")


def test_validation_can_be_switched_off(fake_api: FakeAPI) -> None:
    fake_api.validate = False
    assert chat(fake_api, extra_body={"bogus": 1}).choices[0].message.content.startswith("Echo:")
    assert fake_api.invalid_requests == []


def test_the_fixture_fails_a_test_that_sent_an_invalid_body(fake_api: FakeAPI) -> None:
    """What the ``fake_api`` fixture runs at teardown (``conftest.fail_on_invalid``)."""
    from conftest import fail_on_invalid

    fail_on_invalid(fake_api)  # nothing rejected yet: no failure
    with pytest.raises(openai.BadRequestError):
        chat(fake_api, extra_body={"bogus": 1})
    with pytest.raises(openai.BadRequestError):
        chat(fake_api, extra_body={"bogus": 1})
    with pytest.raises(pytest.fail.Exception) as info:
        fail_on_invalid(fake_api)
    assert str(info.value).splitlines()[1:] == [
        "  2x POST /v1/chat/completions model=fake-model: Unrecognized request argument supplied: bogus"]
    fake_api.allow_invalid = True
    fail_on_invalid(fake_api)  # opted in: passes (and so does this test's own teardown)


# --------------------------------------------------------------------------- OpenAI reasoning models


@pytest.mark.parametrize("model", ["o4-mini", "o1", "o3-mini", "gpt-5-mini", "openai/o4-mini", "GPT-5.2"])
def test_reasoning_models_accept_only_the_default_temperature(fake_api: FakeAPI, model: str) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        chat(fake_api, model=model, temperature=0.0, max_completion_tokens=2000)
    assert info.value.status_code == 400
    assert info.value.body == {
        "message": "Unsupported value: 'temperature' does not support 0 with this model. "
                   "Only the default (1) value is supported.",
        "type": "invalid_request_error", "param": "temperature", "code": "unsupported_value"}
    assert chat(fake_api, model=model, temperature=1, reasoning_effort="high", max_completion_tokens=2000).choices
    assert fake_api.invalid_requests == []


def test_reasoning_models_refuse_max_tokens_and_null_too(fake_api: FakeAPI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        chat(fake_api, model="o3", max_tokens=512)
    assert info.value.body == {
        "message": "Unsupported parameter: 'max_tokens' is not supported with this model. "
                   "Use 'max_completion_tokens' instead.",
        "type": "invalid_request_error", "param": "max_tokens", "code": "unsupported_parameter"}
    with pytest.raises(openai.BadRequestError) as info:
        chat(fake_api, model="o3", max_tokens=None)
    assert info.value.body["code"] == "invalid_type"


def test_gpt6_refuses_the_temperature_parameter_itself(fake_api: FakeAPI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        chat(fake_api, model="gpt-6-astra", temperature=1)
    assert info.value.body["message"] == "Unsupported parameter: 'temperature' is not supported with this model."
    assert info.value.body["code"] == "unsupported_parameter"


def test_chat_models_refuse_reasoning_effort_and_chat_only_models_the_completions_api(fake_api: FakeAPI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        chat(fake_api, model="gpt-4o-mini", reasoning_effort="low")
    assert info.value.body["param"] == "reasoning_effort" and info.value.body["code"] == "unsupported_parameter"
    with make_client(fake_api, "openai", "sync") as client, pytest.raises(openai.NotFoundError) as info:
        client.completions.create(model="o4-mini", prompt="hi", max_tokens=5)
    assert "This is a chat model and not supported in the v1/completions endpoint" in info.value.body["message"]


def test_reasoning_tokens_are_spent_first_and_counted_in_completion_tokens(fake_api: FakeAPI) -> None:
    fake_api.respond(lambda r: "one two three four five")
    response = chat(fake_api, model="o4-mini", max_completion_tokens=1000)
    usage = response.usage
    assert response.choices[0].message.content == "one two three four five"
    assert response.choices[0].finish_reason == "stop"
    assert usage.completion_tokens == DEFAULT_REASONING_TOKENS + 5
    assert usage.completion_tokens_details.reasoning_tokens == DEFAULT_REASONING_TOKENS
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


@pytest.mark.parametrize("budget,content,finish,completion,reasoning", [
    (None, "one two three four five", "stop", 105, 100),  # no budget: all of it
    (105, "one two three four five", "stop", 105, 100),  # exactly enough
    (102, "one two", "length", 102, 100),  # ran out while answering: a cut answer
    (100, "", "length", 100, 100),  # ran out as the reasoning ended: empty content
    (40, "", "length", 40, 40),  # ran out while reasoning
])
def test_a_budget_that_runs_out(fake_api: FakeAPI, budget: int | None, content: str, finish: str,
                                completion: int, reasoning: int) -> None:
    fake_api.profile("o4-mini", reasoning_tokens=100)
    fake_api.respond(lambda r: "one two three four five")
    kwargs = {} if budget is None else {"max_completion_tokens": budget}
    response = chat(fake_api, model="o4-mini", **kwargs)
    choice = response.choices[0]
    assert (choice.message.content, choice.finish_reason) == (content, finish)
    assert response.usage.completion_tokens == completion
    assert response.usage.completion_tokens_details.reasoning_tokens == reasoning


def test_max_tokens_is_the_budget_where_a_profile_lets_it_through(fake_api: FakeAPI) -> None:
    """Behind some proxies a reasoning model takes ``max_tokens``; it still bounds reasoning + answer."""
    fake_api.profile("gpt-5-mini", unsupported={}, reasoning_tokens=600)
    response = chat(fake_api, model="gpt-5-mini", max_tokens=512, temperature=1)
    assert response.choices[0].message.content == "" and response.choices[0].finish_reason == "length"
    assert response.usage.completion_tokens == 512


def test_reasoning_effort_scales_the_reasoning_and_n_multiplies_usage(fake_api: FakeAPI) -> None:
    fake_api.profile("o4-mini", reasoning_tokens=100)
    low = chat(fake_api, model="o4-mini", reasoning_effort="low").usage
    assert low.completion_tokens_details.reasoning_tokens == 50
    three = chat(fake_api, model="o4-mini", n=3, reasoning_effort="high").usage
    assert three.completion_tokens_details.reasoning_tokens == 600
    assert three.completion_tokens == 3 * (200 + 3)  # "Echo: hello there" is 3 words


def test_scripted_usage_still_wins(fake_api: FakeAPI) -> None:
    fake_api.enqueue(Reply(text="a b", usage={"completion_tokens": 7, "total_tokens": 9}))
    usage = chat(fake_api, model="o4-mini").usage
    assert (usage.completion_tokens, usage.total_tokens) == (7, 9)


def test_an_explicit_profile_makes_any_name_a_reasoning_model_and_plain_undoes_it(fake_api: FakeAPI) -> None:
    fake_api.profile("my-deployment", "openai_reasoning")
    with pytest.raises(openai.BadRequestError):
        chat(fake_api, model="my-deployment", temperature=0.2)
    fake_api.profile("o4-mini", "plain")
    response = chat(fake_api, model="o4-mini", temperature=0.2, max_tokens=5)
    assert response.usage.completion_tokens_details is None


def test_bad_profiles_are_refused(fake_api: FakeAPI) -> None:
    with pytest.raises(ValueError):
        fake_api.profile("x", "nonsense")
    with pytest.raises(ValueError):
        fake_api.profile("x", reasoning_style="loud")
    with pytest.raises(TypeError):
        fake_api.profile("x", no_such_field=1)
    assert isinstance(fake_api.profile("x", reasoning_tokens=3), ModelProfile)


# --------------------------------------------------------------------------- local reasoning models


def test_vllm_style_reasoning_content(fake_api: FakeAPI) -> None:
    fake_api.profile("qwen3*", reasoning_tokens=4)
    response = chat(fake_api, model="Qwen/Qwen3-8B", temperature=0.7, max_tokens=100)
    msg = response.choices[0].message
    assert msg.content == "Echo: hello there"
    assert msg.model_extra["reasoning_content"] == "Let me work through"
    assert response.usage.completion_tokens == 7 and response.usage.completion_tokens_details is None
    cut = chat(fake_api, model="qwen3:8b", max_tokens=3)
    assert cut.choices[0].message.content is None and cut.choices[0].finish_reason == "length"
    assert cut.choices[0].message.model_extra["reasoning_content"] == "Let me work"


def test_inline_think_tags(fake_api: FakeAPI) -> None:
    fake_api.profile("deepseek-r1*", reasoning_tokens=3, reasoning_style="think_tags")
    whole = chat(fake_api, model="deepseek-r1-distill-qwen-7b", max_tokens=100).choices[0]
    assert whole.message.content == "<think>\nLet me work\n</think>\n\nEcho: hello there"
    cut = chat(fake_api, model="deepseek-r1-distill-qwen-7b", max_tokens=3).choices[0]
    assert cut.message.content == "<think>\nLet me" and cut.finish_reason == "length"


def test_gpt_oss_behind_a_local_server_spends_max_tokens(fake_api: FakeAPI) -> None:
    response = chat(fake_api, model="openai/gpt-oss-20b", max_tokens=DEFAULT_REASONING_TOKENS)
    assert response.choices[0].message.content is None and response.choices[0].finish_reason == "length"


# --------------------------------------------------------------------------- Anthropic thinking


def test_thinking_blocks_come_first_and_count_in_output_tokens(fake_api: FakeAPI) -> None:
    fake_api.respond(lambda r: "one two three")
    response = message(fake_api, model="claude-sonnet-4-6", max_tokens=4096,
                       thinking={"type": "enabled", "budget_tokens": 2048})
    assert [b.type for b in response.content] == ["thinking", "text"]
    assert response.content[1].text == "one two three" and response.stop_reason == "end_turn"
    assert response.usage.output_tokens == DEFAULT_REASONING_TOKENS + 3
    assert response.usage.output_tokens_details.thinking_tokens == DEFAULT_REASONING_TOKENS
    assert len(response.content[0].thinking.split()) == DEFAULT_REASONING_TOKENS and response.content[0].signature


def test_thinking_that_exhausts_max_tokens_leaves_no_text(fake_api: FakeAPI) -> None:
    fake_api.profile("claude*", reasoning_tokens=500)
    response = message(fake_api, model="claude-opus-5", max_tokens=300, thinking={"type": "adaptive"})
    assert [b.type for b in response.content] == ["thinking"]
    assert response.stop_reason == "max_tokens" and response.usage.output_tokens == 300


def test_thinking_is_capped_by_its_budget_and_can_be_omitted(fake_api: FakeAPI) -> None:
    fake_api.profile("claude*", reasoning_tokens=5000)
    fake_api.respond(lambda r: "a b c d")
    response = message(fake_api, model="claude-haiku-4-5", max_tokens=1026,
                       thinking={"type": "enabled", "budget_tokens": 1024, "display": "omitted"})
    assert response.content[0].thinking == "" and response.content[1].text == "a b"
    assert response.stop_reason == "max_tokens" and response.usage.output_tokens_details.thinking_tokens == 1024


def test_without_thinking_nothing_changes(fake_api: FakeAPI) -> None:
    response = message(fake_api, model="claude-sonnet-4-6")
    assert [b.type for b in response.content] == ["text"] and response.usage.output_tokens == 3


def test_empty_assistant_turn_is_rejected_but_an_empty_prefill_is_not(fake_api: FakeAPI) -> None:
    fake_api.allow_invalid = True
    with pytest.raises(anthropic.BadRequestError) as info:
        message(fake_api, messages=[{"role": "user", "content": "q"}, {"role": "assistant", "content": ""},
                                    {"role": "user", "content": "Are you sure?"}])
    assert info.value.body["error"]["message"].startswith("messages.1: all messages must have non-empty content")
    assert message(fake_api, messages=[{"role": "user", "content": "q"}, {"role": "assistant", "content": ""}]).content
    assert len(fake_api.invalid_requests) == 1


# --------------------------------------------------------------------------- policy errors


def test_openai_policy_refusals_have_their_codes(fake_api: FakeAPI) -> None:
    fake_api.enqueue(policy_error("cyber_policy"), policy_error("bio_policy"),
                     policy_error("misalignment_policy_violation"))
    with pytest.raises(openai.BadRequestError) as cyber:
        chat(fake_api)
    assert cyber.value.body["code"] == "cyber_policy" and cyber.value.body["type"] == "invalid_request"
    assert "high-risk cyber activity" in cyber.value.body["message"]
    with pytest.raises(openai.BadRequestError) as bio:
        chat(fake_api)
    assert bio.value.body["code"] == "bio_policy" and "biological risk" in bio.value.body["message"]
    with pytest.raises(openai.PermissionDeniedError) as misaligned:  # 403: not an auth failure
        chat(fake_api)
    assert misaligned.value.body["code"] == "misalignment_policy_violation"


def test_azure_content_filter(fake_api: FakeAPI) -> None:
    fake_api.respond_for("guarded", lambda r: azure_content_filter({"violence": "medium", "hate": "high"}))
    with pytest.raises(openai.BadRequestError) as info:
        chat(fake_api, model="guarded")
    body = info.value.body
    assert body["code"] == "content_filter" and body["param"] == "prompt" and body["status"] == 400
    result = body["innererror"]["content_filter_result"]
    assert result["violence"] == {"filtered": True, "severity": "medium"} and result["sexual"]["filtered"] is False
    with pytest.raises(ValueError):
        azure_content_filter({"gore": "high"})


# --------------------------------------------------------------------------- pure helpers


@pytest.mark.parametrize("budget,reasoning,answer,expected", [
    (None, 10, 5, (10, 5, False)), (15, 10, 5, (10, 5, False)), (12, 10, 5, (10, 2, True)),
    (10, 10, 5, (10, 0, True)), (4, 10, 5, (4, 0, True)), (3, 0, 5, (0, 3, True)),
])
def test_spend(budget: int | None, reasoning: int, answer: int, expected: tuple[int, int, bool]) -> None:
    spent = spend(budget, reasoning, answer)
    assert (spent.reasoning, spent.answer, spent.cut) == expected
