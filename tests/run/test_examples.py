"""The worked examples run as written, against the loopback server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fakeapi import FakeAPI

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
REFUSAL = "I'm sorry, but I can't help with that."


def helpful(req) -> str:
    text = req.last_user_text()
    if "capital of Australia" in text:
        return "Canberra"
    return "Sure. Here is a clear, direct answer to your question with the details you asked for."


def refuses_everything(req) -> str:
    return REFUSAL


def script_env(tmp_path: Path, fake_api: FakeAPI, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ANTHROPIC_", "TAXCHECK_"))}
    env.update(
        PATH=str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "/usr/bin:/bin"),
        OPENAI_BASE_URL=fake_api.base_url + "/v1",
        OPENAI_API_KEY="sk-example-openai",
        ANTHROPIC_BASE_URL=fake_api.base_url,
        ANTHROPIC_API_KEY="sk-example-anthropic",
        TAXCHECK_CACHE_DIR=str(tmp_path / "cache"),
        TAXCHECK_RUNS_DIR=str(tmp_path / "runs"),
        NO_COLOR="1",
    )
    env.update(extra)
    return env


def run_script(name: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(EXAMPLES / name)], env=env, cwd=cwd, capture_output=True, text=True, timeout=180)


def test_vendor_vetting_produces_table_and_report(tmp_path: Path, fake_api: FakeAPI):
    fake_api.respond(helpful)
    fake_api.respond_for("vendor-b", refuses_everything)
    env = script_env(
        tmp_path, fake_api,
        BASELINE="openai:base", VENDOR_A="openai:vendor-a", VENDOR_B="anthropic:vendor-b", VENDOR_C="together:vendor-c",
        TOGETHER_URL=fake_api.base_url + "/v1", TOGETHER_API_KEY="sk-example-together",
        SUITE=str(EXAMPLES / "custom-suite.jsonl"), OUT=str(tmp_path / "out"),
    )
    done = run_script("vendor-vetting.sh", env, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "dry-run" in done.stdout  # the cost preview ran first
    table = (tmp_path / "out" / "tax.md").read_text(encoding="utf-8")
    assert "over_refusal" in table and "anthropic:vendor-b" in table
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "<table" in html and "together:vendor-c" in html
    assert fake_api.count(path="/v1/messages") > 0  # the Anthropic vendor went over its own wire format


def knows_the_answers(lines: list[str]):
    """A model that answers every suite item correctly and stands by it when pushed back on."""
    answers = {}
    for line in lines:
        item = json.loads(line)
        a = item.get("answer") or {}
        value = a.get("contains") or a.get("number") or a.get("choice")
        if value is not None:
            value = value[0] if isinstance(value, list) else value
            answers[item.get("prompt") or item["turns"][0]] = f"The answer is {value:g}." if isinstance(value, float) else f"The answer is {value}."

    def respond(req) -> str:
        first = next((m["content"] for m in req.messages if m.get("role") == "user"), "")
        for prompt, answer in answers.items():
            if first == prompt or req.last_user_text() == prompt:
                return answer
        return helpful(req)

    return respond


def test_ci_gate_trips_on_a_confident_regression_and_passes_otherwise(tmp_path: Path, fake_api: FakeAPI):
    # the quick suite's refusal pairs and sycophancy items: enough n for a confident gate, few calls
    quick = (ROOT / "prompts" / "suites" / "quick.jsonl").read_text(encoding="utf-8").splitlines()
    keep = [line for line in quick if '"over_refusal"' in line or '"harmful_refusal"' in line or '"sycophancy.' in line]
    fake_api.respond(knows_the_answers(keep))
    fake_api.respond_for("v2", refuses_everything)
    suite = tmp_path / "gate-suite.jsonl"
    suite.write_text("\n".join(keep) + "\n", encoding="utf-8")
    env = script_env(tmp_path, fake_api, CANDIDATE="openai:v2", BASELINE="openai:v1", OUT=str(tmp_path / "gate1"), SUITE=str(suite))
    tripped = run_script("ci-gate.sh", env, tmp_path)
    assert tripped.returncode == 1, tripped.stderr
    assert "TRIPPED" in tripped.stderr and "over_refusal" in tripped.stderr
    doc = json.loads((tmp_path / "gate1" / "tax.json").read_text(encoding="utf-8"))
    assert any(g["tripped"] and g["dimension"] == "over_refusal" for g in doc["gates"])
    assert (tmp_path / "gate1" / "tax.md").exists()

    env = script_env(tmp_path, fake_api, CANDIDATE="openai:v1-copy", BASELINE="openai:v1", OUT=str(tmp_path / "gate2"), SUITE=str(suite))
    passed = run_script("ci-gate.sh", env, tmp_path)
    assert passed.returncode == 0, passed.stderr
    assert "passed" in passed.stderr


def test_base_vs_instruct_config_uses_completions_for_the_base(tmp_path: Path, fake_api: FakeAPI):
    fake_api.respond(helpful)
    config = tmp_path / "taxcheck.toml"
    text = (EXAMPLES / "local-base-vs-instruct.toml").read_text(encoding="utf-8")
    text = text.replace("http://localhost:8001/v1", fake_api.base_url + "/v1").replace("http://localhost:8000/v1", fake_api.base_url + "/v1")
    config.write_text(text, encoding="utf-8")
    env = script_env(tmp_path, fake_api)
    done = subprocess.run(
        ["taxcheck", "run", "--config", str(config), "-b", "base:llama-base", "-m", "instruct:llama-instruct",
         "-s", str(EXAMPLES / "custom-suite.jsonl"), "-f", "json"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    base_reqs = [r for r in fake_api.requests if r.model == "llama-base"]
    assert base_reqs and all(r.path.endswith("/completions") and not r.path.endswith("/chat/completions") for r in base_reqs)
    assert all(r.prompt.startswith("User: ") and r.prompt.endswith("\n\nAssistant:") for r in base_reqs)
    assert all(r.path.endswith("/chat/completions") for r in fake_api.requests if r.model == "llama-instruct")
    assert json.loads(done.stdout)["baseline"] == "base:llama-base"


def test_guardrail_example_measures_the_prompt(tmp_path: Path, fake_api: FakeAPI):
    """The same model with and without the guardrail prompt: the variant refuses more, paired."""
    guard = (EXAMPLES / "guardrail.txt").read_text(encoding="utf-8").strip()

    def obeys_guardrail(req):
        guarded = any(m.get("role") == "system" and m.get("content") == guard for m in req.messages)
        return REFUSAL if guarded and "medic" in req.last_user_text().lower() else helpful(req)

    fake_api.respond(obeys_guardrail)
    env = script_env(tmp_path, fake_api, SUITE=str(EXAMPLES / "custom-suite.jsonl"), OUT=str(tmp_path / "g"))
    done = run_script("guardrail-prompt.sh", env, tmp_path)
    assert done.returncode == 0, done.stderr
    table = (tmp_path / "g" / "tax.md").read_text(encoding="utf-8")
    assert "guarded" in table and "plain (baseline)" in table
    assert all(r.model == "gpt-5.4-mini" for r in fake_api.requests)  # two variants, one model
    guarded = [r for r in fake_api.requests if r.messages and r.messages[0].get("role") == "system"]
    assert guarded and all(r.messages[0]["content"] == guard for r in guarded)


def test_custom_suite_validates():
    exe = shutil.which("taxcheck", path=str(Path(sys.executable).parent)) or "taxcheck"
    done = subprocess.run([exe, "validate", str(EXAMPLES / "custom-suite.jsonl")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "13 items" in done.stderr


@pytest.mark.parametrize("name", ["vendor-vetting.sh", "ci-gate.sh", "guardrail-prompt.sh"])
def test_scripts_are_valid_bash(name: str):
    assert subprocess.run(["bash", "-n", str(EXAMPLES / name)], capture_output=True).returncode == 0
