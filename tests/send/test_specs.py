"""Model specs and endpoints: presets, --endpoint, taxcheck.toml, #completions, key messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from taxcheck.errors import SpecError
from taxcheck.send.specs import ANTHROPIC_DEFAULT_URL, NO_KEY, OPENAI_DEFAULT_URL, Registry, redact_url


def reg(env=None, flags=None, config=None) -> Registry:
    return Registry.load(flags or [], config, environ=env or {})


@pytest.mark.parametrize(
    "spec, env, url, wire, api, model",
    [
        ("openai:gpt-4o-mini", {"OPENAI_API_KEY": "k"}, OPENAI_DEFAULT_URL, "openai", "chat", "gpt-4o-mini"),
        ("openai:m", {"OPENAI_BASE_URL": "http://h:1/v1/"}, "http://h:1/v1", "openai", "chat", "m"),
        ("anthropic:claude-haiku-4-5", {"ANTHROPIC_API_KEY": "k"}, ANTHROPIC_DEFAULT_URL, "anthropic", "chat", "claude-haiku-4-5"),
        ("ollama:llama3.1", {}, "http://localhost:11434/v1", "openai", "chat", "llama3.1"),
        ("vllm:org/model-7b", {}, "http://localhost:8000/v1", "openai", "chat", "org/model-7b"),
        ("llamacpp:any", {}, "http://localhost:8080/v1", "openai", "chat", "any"),
        ("lmstudio:m", {}, "http://localhost:1234/v1", "openai", "chat", "m"),
        ("vllm:base#completions", {}, "http://localhost:8000/v1", "openai", "completions", "base"),
        ("vllm:tuned#chat", {}, "http://localhost:8000/v1", "openai", "chat", "tuned"),
        ("ollama:qwen2.5:7b", {}, "http://localhost:11434/v1", "openai", "chat", "qwen2.5:7b"),
    ],
)
def test_resolve(spec, env, url, wire, api, model):
    m = reg(env).resolve(spec)
    assert (m.spec, m.endpoint.base_url, m.endpoint.wire, m.api, m.model) == (spec, url, wire, api, model)


@pytest.mark.parametrize(
    "spec, env, message",
    [
        ("openai:m", {}, "set OPENAI_API_KEY"),
        ("anthropic:m", {}, "set ANTHROPIC_API_KEY"),
        ("nope:m", {}, "unknown provider 'nope'"),
        ("nope:m", {}, "known: anthropic, llamacpp, lmstudio, ollama, openai, vllm"),
        ("gpt-4o", {}, "expected PROVIDER:MODEL"),
        ("openai:", {"OPENAI_API_KEY": "k"}, "expected PROVIDER:MODEL"),
        ("vllm:#completions", {}, "model name is empty"),
        ("vllm:m#base", {}, "must be chat or completions"),
        ("anthropic:m#completions", {"ANTHROPIC_API_KEY": "k"}, "#completions needs an OpenAI-compatible endpoint"),
    ],
)
def test_resolve_errors(spec, env, message):
    with pytest.raises(SpecError) as info:
        reg(env).resolve(spec)
    assert message in str(info.value)


def test_endpoint_flag_and_its_key():
    r = reg({"MYLAB_API_KEY": "lab-key"}, ["mylab=http://gpu:8000/v1"])
    m = r.resolve("mylab:m")
    assert m.endpoint.base_url == "http://gpu:8000/v1" and m.endpoint.api_key == "lab-key" and m.endpoint.key_env == "MYLAB_API_KEY"
    assert reg({}, ["my-lab=http://gpu/v1"]).resolve("my-lab:m").endpoint.api_key == NO_KEY
    assert reg({}, ["my-lab=http://gpu/v1"]).endpoints["my-lab"].key_env == "MY_LAB_API_KEY"
    # overriding a built-in keeps its wire and key variable
    over = reg({"ANTHROPIC_API_KEY": "k"}, ["anthropic=http://proxy:9"]).resolve("anthropic:m")
    assert over.endpoint.wire == "anthropic" and over.endpoint.base_url == "http://proxy:9" and over.endpoint.api_key == "k"


@pytest.mark.parametrize("flag", ["noequals", "=http://h", "bad name=http://h", "x=ftp://h", "x=", "x=not a url"])
def test_bad_endpoint_flags(flag):
    with pytest.raises(SpecError):
        reg({}, [flag])


def test_bad_endpoint_flag_does_not_echo_credentials():
    with pytest.raises(SpecError) as info:
        reg({}, ["x=ftp://user:hunter2@h/"])
    assert "hunter2" not in str(info.value)


def test_toml_endpoints(tmp_path: Path):
    cfg = tmp_path / "taxcheck.toml"
    cfg.write_text(
        '[endpoints.box]\nurl = "http://box:8000/v1"\napi = "completions"\n'
        '[endpoints.gw]\nurl = "https://gw.example/anthropic"\nwire = "anthropic"\napi_key_env = "GW_TOKEN"\n'
    )
    r = reg({"GW_TOKEN": "t"}, config=cfg)
    box = r.resolve("box:base")
    assert box.api == "completions" and box.endpoint.base_url == "http://box:8000/v1"
    assert r.resolve("box:tuned#chat").api == "chat"
    gw = r.resolve("gw:claude")
    assert gw.endpoint.wire == "anthropic" and gw.endpoint.api_key == "t"
    # flags override the file
    assert reg({}, ["box=http://other/v1"], cfg).resolve("box:m").endpoint.base_url == "http://other/v1"


def test_toml_default_location_is_cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "taxcheck.toml").write_text('[endpoints.here]\nurl = "http://here/v1"\n')
    assert reg().resolve("here:m").endpoint.base_url == "http://here/v1"


@pytest.mark.parametrize(
    "body, message",
    [
        ('[endpoints.x]\nurl = "http://h"\napi_key = "sk-123"\n', "keys are never read from files"),
        ('[endpoints.x]\nurl = "http://h"\ncolour = 1\n', "unknown keys"),
        ('[endpoints.x]\napi = "chat"\n', "needs url"),
        ('[endpoints.x]\nurl = "http://h"\nwire = "grpc"\n', "wire must be"),
        ('[endpoints.x]\nurl = "http://h"\napi = "embeddings"\n', "api must be"),
        ("[endpoints\n", "not valid TOML"),
        ('endpoints = "x"\n', "[endpoints.NAME] must be tables"),
    ],
)
def test_bad_toml(tmp_path, body, message):
    cfg = tmp_path / "taxcheck.toml"
    cfg.write_text(body)
    with pytest.raises(SpecError) as info:
        reg(config=cfg)
    assert message in str(info.value)
    assert "sk-123" not in str(info.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(SpecError, match="config file not found"):
        reg(config=tmp_path / "nope.toml")


@pytest.mark.parametrize(
    "url, expected",
    [
        ("http://h:8000/v1", "http://h:8000/v1"),
        ("http://user:pw@h:8000/v1", "http://***@h:8000/v1"),
        ("https://token@h/v1?x=1", "https://***@h/v1?x=1"),
        ("http://:pw@h/v1", "http://***@h/v1"),
        ("http://[::1", "<unparseable URL>"),
    ],
)
def test_redact_url(url, expected):
    assert redact_url(url) == expected


def test_custom_base_url_waives_required_key():
    m = reg({"OPENAI_BASE_URL": "http://local/v1"}).resolve("openai:m")
    assert m.endpoint.api_key == NO_KEY


@pytest.mark.parametrize("value", ["/v1", "localhost:8000/v1", "ftp://h/v1", "http://"])
def test_a_base_url_variable_that_is_not_a_url_is_named_before_anything_is_sent(value):
    # without a scheme the SDK fails every call with "UnsupportedProtocol": say so once, up front
    with pytest.raises(SpecError, match="OPENAI_BASE_URL.*not an http\\(s\\) URL"):
        reg({"OPENAI_BASE_URL": value}).resolve("openai:m")


def test_a_bad_base_url_of_a_provider_not_in_the_run_does_not_matter():
    m = reg({"ANTHROPIC_BASE_URL": "/v1", "OPENAI_API_KEY": "k"}).resolve("openai:m")
    assert m.endpoint.base_url == OPENAI_DEFAULT_URL
