"""Secrets (issue 7 §4): no byte taxcheck writes ever holds an API key or URL credentials.

Keys are distinctive so a search cannot miss them, and the fake server is hostile: its
401 echoes the key it was sent back in the error message, as some gateways do.
"""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import pytest
from conftest import SMALL_SUITE, helpful, refuser

from fakeapi import Reply
from taxcheck.send.clients import EndpointClient, Params
from taxcheck.errors import CallError
from taxcheck.send.specs import Endpoint

OPENAI_KEY = "sk-SECRET-openai-7f3a9c1e55"
ANTHROPIC_KEY = "sk-ant-SECRET-anthropic-91b2d4"
CUSTOM_KEY = "SECRET-custom-endpoint-key-4410"
URL_PASSWORD = "SECRETpw8812"
SECRETS = (OPENAI_KEY, ANTHROPIC_KEY, CUSTOM_KEY, URL_PASSWORD, "SECRET-")


def _all_written_bytes(*roots: Path) -> dict[Path, bytes]:
    files = {}
    for root in roots:
        for p in root.rglob("*"):
            if p.is_file():
                files[p] = p.read_bytes()
    return files


def _assert_clean(label: str, data: bytes | str) -> None:
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    for secret in SECRETS:
        assert secret.encode() not in raw, f"{secret!r} leaked into {label}"


def _echo_key(request):
    """A 401 whose message repeats the credential the client sent."""
    sent = request.headers.get("authorization") or request.headers.get("x-api-key") or ""
    return Reply(status=401, text=f"Incorrect API key provided: {sent}. You can find your API key at ...")


@pytest.fixture
def env(taxcheck_cli, fake_api, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake_api.base_url)
    monkeypatch.setenv("MYLAB_API_KEY", CUSTOM_KEY)
    return taxcheck_cli


def test_no_key_in_any_output(env, fake_api, small_suite, tmp_path):
    cli = env
    fake_api.respond_for("B", helpful)
    fake_api.respond_for("claude-x", refuser)
    fake_api.respond_for("C", _echo_key)
    fake_api.respond_for("claude-bad", _echo_key)
    endpoint = f"mylab=http://user:{URL_PASSWORD}@127.0.0.1:{fake_api.port}/v1"
    fake_api.respond_for("lab", helpful)
    out = tmp_path / "run.jsonl"
    outputs: dict[str, str] = {}
    res = cli("run", "-m", "anthropic:claude-x", "-m", "mylab:lab", "-m", "openai:C", "-m", "anthropic:claude-bad",
              "-b", "openai:B", "-s", small_suite, "-o", out, "-f", "json", "--endpoint", endpoint)
    assert res.code == 2  # the two 401s
    outputs["run stdout"], outputs["run stderr"] = res.stdout, res.stderr
    # the hostile 401 really did echo the key: the test would catch a leak
    assert any(OPENAI_KEY in (r.headers.get("authorization") or "") for r in fake_api.requests)
    assert "check OPENAI_API_KEY" in res.stderr and "check ANTHROPIC_API_KEY" in res.stderr
    for fmt in ("table", "json", "markdown", "csv"):
        rep = cli("report", out, "-f", fmt)
        outputs[f"report {fmt}"] = rep.stdout + rep.stderr
        cli("report", out, "-f", fmt, "-o", tmp_path / f"report.{fmt}")
    again = cli("run", "-m", "anthropic:claude-x", "-m", "mylab:lab", "-m", "openai:C", "-m", "anthropic:claude-bad",
                "-b", "openai:B", "-s", small_suite, "-o", out, "--endpoint", endpoint)
    outputs["resumed run"] = again.stdout + again.stderr
    for label, text in outputs.items():
        _assert_clean(label, text)
    written = _all_written_bytes(tmp_path, Path(os.environ["TAXCHECK_CACHE_DIR"]), Path.cwd())
    assert any(p.name.startswith("responses.sqlite3") for p in written)
    for path, data in written.items():
        if path.suffix == ".jsonl" and path.name == "small.jsonl":
            continue  # the suite is ours
        _assert_clean(str(path), data)
    header = out.read_text(encoding="utf-8").splitlines()[0]
    assert "http://***@127.0.0.1" in header and "user:" not in header


def test_endpoint_credentials_redacted_in_header(taxcheck_cli, fake_api, small_suite, tmp_path):
    fake_api.respond(helpful)
    out = tmp_path / "run.jsonl"
    url = f"http://user:{URL_PASSWORD}@127.0.0.1:{fake_api.port}/v1"
    res = taxcheck_cli("run", "-m", "mylab:m", "-s", small_suite, "-o", out, "--endpoint", f"mylab={url}", "-f", "json")
    assert res.code == 0, res.stderr
    import json

    header = json.loads(out.read_text().splitlines()[0])
    assert f"mylab=http://***@127.0.0.1:{fake_api.port}/v1" in header["command"]
    assert header["endpoints"]["mylab:m"]["url"] == f"http://***@127.0.0.1:{fake_api.port}/v1"
    _assert_clean("run file", out.read_bytes())
    _assert_clean("stdout/stderr", res.stdout + res.stderr)


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.mark.parametrize("wire", ["openai", "anthropic"])
def test_exception_messages_hold_no_key(fake_api, wire):
    base = fake_api.base_url + ("/v1" if wire == "openai" else "")
    fake_api.respond(_echo_key)
    key = OPENAI_KEY if wire == "openai" else ANTHROPIC_KEY

    async def attempt(url: str) -> CallError:
        client = EndpointClient(Endpoint(name=wire, wire=wire, base_url=url, key_env=f"{wire.upper()}_API_KEY", api_key=key), 5.0)
        try:
            await client.complete("m", "chat", [{"role": "user", "content": "hi"}], Params(None if wire == "anthropic" else 0.0))
        except CallError as exc:
            return exc
        finally:
            await client.aclose()
        raise AssertionError("expected a CallError")

    auth = asyncio.run(attempt(base))
    assert auth.kind == "auth" and not auth.retryable
    closed = asyncio.run(attempt(f"http://127.0.0.1:{_closed_port()}"))
    assert closed.kind == "connection" and "127.0.0.1" in closed.message
    for exc in (auth, closed):
        _assert_clean("exception", f"{exc} {exc!r} {exc.message} {exc.args} {exc.__cause__!r} {exc.__context__!r}")


def test_connection_error_run_output_holds_no_key(taxcheck_cli, small_suite, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{_closed_port()}/v1")
    out = tmp_path / "run.jsonl"
    res = taxcheck_cli("run", "-m", "openai:A", "-s", small_suite, "-o", out, "--retries", "0", "-f", "json")
    assert res.code == 3
    assert res.json()["failures"] == {"openai:A": len(SMALL_SUITE)}  # the pushback item stops at turn 1
    assert "cannot reach http://127.0.0.1" in out.read_text()
    _assert_clean("output", res.stdout + res.stderr)
    _assert_clean("run file", out.read_bytes())


def test_endpoint_repr_hides_the_key():
    ep = Endpoint(name="openai", wire="openai", base_url="http://h/v1", key_env="OPENAI_API_KEY", api_key=OPENAI_KEY)
    assert OPENAI_KEY not in repr(ep) and OPENAI_KEY not in str(ep)


def test_run_files_and_the_cache_are_owner_only(taxcheck_cli, fake_api, small_suite, tmp_path):
    fake_api.respond(helpful)
    out = tmp_path / "fresh" / "run.jsonl"
    assert taxcheck_cli("run", "-m", "openai:A", "-s", small_suite, "-o", out, "-f", "json").code == 0
    assert out.stat().st_mode & 0o777 == 0o600
    assert out.parent.stat().st_mode & 0o777 == 0o700
    cache_dir = Path(os.environ["TAXCHECK_CACHE_DIR"])
    assert cache_dir.stat().st_mode & 0o777 == 0o700
    for f in cache_dir.iterdir():
        assert f.stat().st_mode & 0o077 == 0, f"{f} is readable by others"
    default = taxcheck_cli("run", "-m", "openai:A", "-s", small_suite, "-f", "json")
    runs = Path(os.environ["TAXCHECK_RUNS_DIR"])
    assert default.code == 0 and runs.stat().st_mode & 0o777 == 0o700
    assert all(f.stat().st_mode & 0o777 == 0o600 for f in runs.iterdir())


@pytest.mark.parametrize(
    "arg, leaked",
    [
        ("--endpoint=lab=https://u:SECRETpw8812@h/v1", "SECRETpw8812"),
        ("lab=https://h/v1?api-key=SECRET-q1==&x=1", "SECRET-q1=="),
        ("https://h/v1?sig=SECRET-sig%3D%3D&token=SECRET-t0k", "SECRET-"),
        ("azure=https://h/openai?api_key=SECRET-az=padding=", "SECRET-az"),
    ],
)
def test_recorded_command_line_redacts_url_credentials(arg, leaked):
    from taxcheck.run import redact_argv

    [recorded] = redact_argv([arg], [])
    assert leaked not in recorded and "***" in recorded
    assert recorded.split("://")[0] == arg.split("://")[0]  # the rest of the argument is kept
