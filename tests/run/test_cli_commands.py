"""The small commands: --help, suites, validate, models; and start-up that loads no SDK."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from conftest import SMALL_SUITE, write_suite
from fakeapi import Reply

COMMANDS = ["run", "report", "regrade", "diff", "suites", "validate", "import", "models"]


def _modules_after(args: list[str]) -> set[str]:
    code = (
        "import sys, runpy\n"
        f"sys.argv = ['taxcheck'] + {args!r}\n"
        "try:\n    runpy.run_module('taxcheck', run_name='__main__')\nexcept SystemExit:\n    pass\n"
        "import json; print(json.dumps(sorted(sys.modules)), file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    return set(json.loads(done.stderr.strip().splitlines()[-1]))


@pytest.mark.parametrize("args", [["--help"], ["suites"], ["validate", "examples/custom-suite.jsonl"]])
def test_paths_that_send_nothing_import_no_sdk(args, monkeypatch):
    from pathlib import Path

    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    mods = _modules_after(args)
    assert "typer" in mods
    assert not {"openai", "anthropic", "httpx2"} & mods


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_teaches_with_an_example(command, taxcheck_cli):
    r = taxcheck_cli(command, "--help")
    assert r.code == 0
    assert "Example" in r.stdout or "example" in r.stdout
    assert "taxcheck " in r.stdout


def test_suites_lists_builtins_with_sizes(taxcheck_cli):
    r = taxcheck_cli("suites")
    assert r.code == 0
    assert "quick" in r.stdout and "standard" in r.stdout
    line = next(line for line in r.stdout.splitlines() if "quick" in line)
    assert "160" in line and "170" in line


def test_suites_show_counts_and_samples(taxcheck_cli):
    r = taxcheck_cli("suites", "show", "standard", "--examples", "2")
    assert r.code == 0
    assert "capability.code" in r.stdout and "homonyms" in r.stdout
    assert "720 items" in r.stdout


def test_suites_show_unknown_name_is_one_line(taxcheck_cli):
    r = taxcheck_cli("suites", "show", "nope")
    assert r.code == 2
    assert "nope" in r.stderr and "quick" in r.stderr and "Traceback" not in r.stderr


def test_validate_reports_every_problem_with_file_and_line(tmp_path, taxcheck_cli):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        json.dumps(SMALL_SUITE[4]) + "\n"
        + "{not json\n"
        + json.dumps({**SMALL_SUITE[5], "id": "m2", "answer": {"number": 1, "choice": "A"}}) + "\n"
        + json.dumps({**SMALL_SUITE[4]}) + "\n"
        + json.dumps({**SMALL_SUITE[2], "id": "s2", "colour": "red"}) + "\n",
        encoding="utf-8",
    )
    r = taxcheck_cli("validate", bad)
    assert r.code == 2
    lines = r.stdout.strip().splitlines()
    assert any(line.startswith(f"{bad}:2: not valid JSON") for line in lines)
    assert any(line.startswith(f"{bad}:3:") and "exactly one of" in line for line in lines)
    assert any(line.startswith(f"{bad}:4: duplicate id") for line in lines)
    assert any(line.startswith(f"{bad}:5:") and "colour" in line for line in lines)


def test_validate_accepts_a_good_suite(tmp_path, taxcheck_cli):
    r = taxcheck_cli("validate", write_suite(tmp_path / "ok.jsonl", SMALL_SUITE))
    assert r.code == 0 and "9 items" in r.stderr


def test_models_one_line_per_spec(taxcheck_cli, fake_api, monkeypatch):
    """The model listing checks key and name without sampling a token."""
    fake_api.listed_models = ["good", "claude", "gpt-4o-mini"]
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake_api.base_url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    r = taxcheck_cli("models", "openai:good", "openai:gpt-4o-mnii", "anthropic:claude", "nowhere:x")
    assert r.code == 2
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 4
    by_spec = {line.split()[1].rstrip(":"): line for line in lines}
    assert by_spec["openai:good"].startswith("ok") and "listed" in by_spec["openai:good"]
    assert by_spec["anthropic:claude"].startswith("ok")
    assert by_spec["openai:gpt-4o-mnii"].startswith("FAIL") and "did you mean gpt-4o-mini" in by_spec["openai:gpt-4o-mnii"]
    assert by_spec["nowhere:x"].startswith("FAIL") and "unknown provider" in by_spec["nowhere:x"]
    assert fake_api.count("chat") == fake_api.count("anthropic") == 0  # nothing was sampled
    assert all(line.count(line.split()[1]) == 1 for line in lines)  # the spec once per line


def test_models_refused_key_names_the_variable(taxcheck_cli, fake_api):
    fake_api.enqueue(Reply(status=401, text="invalid key"))
    r = taxcheck_cli("models", "openai:good")
    assert r.code == 2 and r.stdout.startswith("FAIL openai:good") and "OPENAI_API_KEY" in r.stdout


def test_models_probe_shows_the_adjustment_a_run_would_make(taxcheck_cli, fake_api):
    fake_api.listed_models = ["newmodel"]

    def no_temperature(req):
        if "temperature" in req.body:
            return Reply(status=400, error_code="unsupported_value", error_type="invalid_request_error",
                         text="Unsupported value: 'temperature' does not support 0.0 with this model.")
        return Reply(text="OK", usage={"completion_tokens": 1})

    fake_api.respond_for("newmodel", no_temperature)
    r = taxcheck_cli("models", "openai:newmodel", "--probe")
    assert r.code == 0, r.stdout
    assert "answered" in r.stdout and "rejected temperature" in r.stdout and "sends no temperature" in r.stdout
    assert fake_api.count("chat") == 2  # the rejected form once, then the adjusted one


def test_models_without_a_listing_is_probed(taxcheck_cli, fake_api):
    fake_api.enqueue(Reply(status=404, text="no such route"))
    fake_api.served_model["m"] = "m-2026-01-01"
    r = taxcheck_cli("models", "openai:m")
    assert r.code == 0 and "answered" in r.stdout and "serving m-2026-01-01" in r.stdout


def test_models_unreachable_endpoint_names_the_url(taxcheck_cli):
    r = taxcheck_cli("models", "vllm:x", "--endpoint", "vllm=http://127.0.0.1:9/v1", "--timeout", "2")
    assert r.code == 2
    assert "FAIL vllm:x" in r.stdout and "127.0.0.1:9" in r.stdout


def test_report_unknown_file_is_one_line(taxcheck_cli):
    r = taxcheck_cli("report", "missing.jsonl")
    assert r.code == 2 and "missing.jsonl" in r.stderr and "Traceback" not in r.stderr
