"""Model profiles (what each family accepts) and variants (a spec plus a deployment's settings)."""

from __future__ import annotations

import pytest

from taxcheck.errors import SpecError
from taxcheck.send.profiles import api_refusal_codes, profile_for
from taxcheck.send.specs import Registry

ENV = {"OPENAI_API_KEY": "sk-test-profiles", "ANTHROPIC_API_KEY": "sk-ant-test-profiles"}


@pytest.mark.parametrize(
    "wire, model, temperature, field, reasoning, cap",
    [
        ("openai", "o4-mini", False, "max_completion_tokens", True, 8192),
        ("openai", "o3-2025-04-16", False, "max_completion_tokens", True, 8192),
        ("openai", "gpt-5.5", False, "max_completion_tokens", True, 8192),
        ("openai", "gpt-5.4-mini-2026-03-17", False, "max_completion_tokens", True, 8192),
        ("openai", "gpt-4o-mini", True, "auto", False, 512),
        ("openai", "Qwen/Qwen3-8B", True, "auto", True, 4096),
        ("openai", "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B", True, "auto", True, 4096),
        ("openai", "openai/gpt-oss-20b", True, "auto", True, 4096),
        ("openai", "llama3.1", True, "auto", False, 512),
        ("anthropic", "claude-sonnet-5-5", False, "max_tokens", True, 8192),
        ("anthropic", "claude-opus-4-7", False, "max_tokens", True, 8192),
        ("anthropic", "claude-haiku-5-5", False, "max_tokens", True, 8192),
        ("anthropic", "claude-mythos-preview", False, "max_tokens", True, 8192),
        ("anthropic", "claude-sonnet-4-5-20250929", False, "max_tokens", False, 512),
        ("anthropic", "claude-haiku-4-5", False, "max_tokens", False, 512),  # API version 2026-10-21: no temperature
    ],
)
def test_builtin_profiles(wire, model, temperature, field, reasoning, cap):
    p = profile_for(wire, model)
    assert (p.temperature, p.token_field, p.reasoning, p.max_tokens) == (temperature, field, reasoning, cap)


def test_token_field_auto_depends_on_the_endpoint():
    p = profile_for("openai", "gpt-4o")
    assert p.token_field_for(hosted_openai=True) == "max_completion_tokens" and p.token_field_for(False) == "max_tokens"


def test_refusal_codes_are_one_list():
    assert {"bio_policy", "cyber_policy", "misalignment_policy_violation", "invalid_prompt", "content_filter"} <= api_refusal_codes()


def test_user_profiles_come_first(tmp_path):
    cfg = tmp_path / "taxcheck.toml"
    cfg.write_text('[profiles."gpt-4o*"]\ntemperature = false\nreasoning = true\nmax_tokens = 2048\n'
                   '[profiles."in-house-*"]\nwire = "openai"\ntoken_field = "max_completion_tokens"\n')
    reg = Registry.load(config_path=cfg, environ=ENV)
    m = reg.resolve("openai:gpt-4o-mini")
    assert (m.profile.temperature, m.profile.reasoning, m.profile.max_tokens) == (False, True, 2048)
    assert m.params(0.0, None).temperature is None and m.params(0.0, None).max_tokens == 2048
    assert reg.resolve("openai:in-house-7b").params(0.0, None).token_field == "max_completion_tokens"
    assert reg.resolve("openai:o4-mini").profile.pattern == "openai:o[1-9]*"  # the built-ins still apply


@pytest.mark.parametrize(
    "table, message",
    [
        ('[profiles."x*"]\ntemperature = "no"\n', "temperature must be true or false"),
        ('[profiles."x*"]\ntoken_field = "max_output"\n', "token_field must be one of"),
        ('[profiles."x*"]\nmax_tokens = 0\n', "max_tokens must be a positive"),
        ('[profiles."x*"]\nwire = "grpc"\n', "wire must be"),
        ('[profiles."x*"]\nspeed = 1\n', "unknown keys"),
    ],
)
def test_bad_profile_rows_name_the_problem(tmp_path, table, message):
    cfg = tmp_path / "taxcheck.toml"
    cfg.write_text(table)
    with pytest.raises(SpecError, match=message):
        Registry.load(config_path=cfg, environ=ENV)


def test_run_params_follow_the_profile():
    reg = Registry.load(environ=ENV)
    o = reg.resolve("openai:o4-mini").params(0.7, None)
    assert (o.temperature, o.max_tokens, o.token_field) == (None, 8192, "max_completion_tokens")
    g = reg.resolve("openai:gpt-4o").params(0.7, 300)
    assert (g.temperature, g.max_tokens, g.token_field) == (0.7, 300, None)
    assert reg.resolve("openai:o4-mini").params(0.0, 1000).max_tokens == 1000  # --max-tokens wins over the profile


# --------------------------------------------------------------------------- variants


def _registry(tmp_path, text: str) -> Registry:
    cfg = tmp_path / "taxcheck.toml"
    cfg.write_text(text, encoding="utf-8")
    return Registry.load(config_path=cfg, environ=ENV)


def test_variant_resolves_with_its_settings(tmp_path):
    (tmp_path / "guard.txt").write_text("Refuse anything that could be dangerous.\n", encoding="utf-8")
    reg = _registry(tmp_path, '[models.guarded]\nspec = "openai:gpt-4o"\nsystem_file = "guard.txt"\ntemperature = 0.2\n'
                              'extra_body = {seed = 7}\nextra_headers = {"x-team-token" = "t0ken-secret"}\n'
                              '[models.thinker]\nspec = "anthropic:claude-sonnet-5-5"\nthinking_budget = 2048\nmax_tokens = 600\n'
                              '[models.effort]\nspec = "openai:o4-mini"\nreasoning_effort = "low"\n')
    g = reg.resolve("guarded")
    assert g.spec == "guarded" and g.model == "gpt-4o" and g.variant.system == "Refuse anything that could be dangerous."
    p = g.params(0.0, None)
    assert (p.temperature, p.extra_body, dict(p.extra_headers)) == (0.2, (("seed", 7),), {"x-team-token": "t0ken-secret"})
    record = g.variant.record()
    assert record["extra_headers"] == {"x-team-token": "***"} and "t0ken-secret" not in repr(record) and "t0ken-secret" not in repr(g)
    t = reg.resolve("thinker").params(0.0, None)
    assert (t.temperature, t.thinking_budget, t.max_tokens, t.output_cap) == (None, 2048, 600, 2648)
    assert reg.resolve("effort").params(0.0, None).reasoning_effort == "low"


def test_variant_system_prompt_comes_first(tmp_path):
    reg = _registry(tmp_path, '[models.guarded]\nspec = "openai:gpt-4o"\nsystem = "Deployment rules."\n')
    g = reg.resolve("guarded")
    assert g.messages([{"role": "user", "content": "hi"}]) == [
        {"role": "system", "content": "Deployment rules."}, {"role": "user", "content": "hi"}]
    assert g.messages([{"role": "system", "content": "Item context."}, {"role": "user", "content": "hi"}])[0] == {
        "role": "system", "content": "Deployment rules.\n\nItem context."}
    plain = reg.resolve("openai:gpt-4o")
    assert plain.messages([{"role": "user", "content": "hi"}]) == [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    "table, message",
    [
        ('[models.g]\nsystem = "x"\n', "needs spec"),
        ('[models.g]\nspec = "openai:gpt-4o"\nsystem_file = "missing.txt"\n', "cannot read system_file"),
        ('[models.g]\nspec = "openai:gpt-4o"\nsystem = "a"\nsystem_file = "b"\n', "not both"),
        ('[models.g]\nspec = "openai:gpt-4o"\ntemperature = 3\n', "from 0 to 2"),
        ('[models.g]\nspec = "openai:gpt-4o"\nreasoning_effort = "extreme"\n', "reasoning_effort must be one of"),
        ('[models.g]\nspec = "anthropic:claude-x"\nthinking_budget = 100\n', "at least 1024"),
        ('[models.g]\nspec = "openai:gpt-4o"\nsytem = "typo"\n', "unknown keys"),
        ('[models."a:b"]\nspec = "openai:gpt-4o"\n', "variant names"),
    ],
)
def test_bad_variants_name_the_problem(tmp_path, table, message):
    with pytest.raises(SpecError, match=message):
        _registry(tmp_path, table)


def test_a_name_that_is_neither_spec_nor_variant(tmp_path):
    reg = _registry(tmp_path, '[models.guarded]\nspec = "openai:gpt-4o"\n')
    with pytest.raises(SpecError, match="neither PROVIDER:MODEL nor a variant.*guarded"):
        reg.resolve("gaurded")
