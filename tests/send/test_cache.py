"""The response cache: a rerun asks nothing, --no-cache asks again, a broken cache is survivable.

Also the cache as a unit: what is and is not in the key, and two processes sharing it.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest
from conftest import SMALL_SUITE, call_records, helpful, refuser

from taxcheck.send.cache import Cache, cache_key

CALLS = 2 * (len(SMALL_SUITE) + 1)


def _run(cli, suite, out, *extra):
    return cli("run", "-m", "openai:A", "-b", "openai:B", "-s", suite, "-f", "json", "-o", out, *extra)


@pytest.fixture
def models(fake_api):
    fake_api.respond_for("A", refuser)
    fake_api.respond_for("B", helpful)
    return fake_api


def test_second_run_sends_nothing_and_no_cache_sends_again(taxcheck_cli, models, small_suite, tmp_path):
    first = _run(taxcheck_cli, small_suite, tmp_path / "1.jsonl")
    assert first.code == 0 and models.count() == CALLS
    second = _run(taxcheck_cli, small_suite, tmp_path / "2.jsonl")
    assert second.code == 0
    assert models.count() == CALLS  # zero requests reached the server
    doc = second.json()
    assert doc["rows"] == first.json()["rows"]
    assert doc["usage"]["openai:A"]["cached"] == CALLS // 2 and doc["usage"]["openai:A"]["requests"] == 0
    assert all(r["cached"] for r in call_records(tmp_path / "2.jsonl"))
    third = _run(taxcheck_cli, small_suite, tmp_path / "3.jsonl", "--no-cache")
    assert third.code == 0 and models.count() == 2 * CALLS
    assert third.json()["rows"] == first.json()["rows"]


def test_failures_are_not_cached(taxcheck_cli, fake_api, small_suite, tmp_path):
    from fakeapi import Reply

    fake_api.respond_for("A", lambda r: Reply(status=500))
    fake_api.respond_for("B", helpful)
    assert _run(taxcheck_cli, small_suite, tmp_path / "1.jsonl", "--retries", "0").code == 3
    fake_api.respond_for("A", refuser)
    before = fake_api.count(model="A")
    assert _run(taxcheck_cli, small_suite, tmp_path / "2.jsonl", "--retries", "0").code == 0
    assert fake_api.count(model="A") - before == len(SMALL_SUITE) + 1  # asked again, B not at all
    assert fake_api.count(model="B") == len(SMALL_SUITE) + 1


def test_corrupt_cache_is_moved_aside_and_run_continues(taxcheck_cli, models, small_suite, tmp_path):
    cache_dir = Path(os.environ["TAXCHECK_CACHE_DIR"])
    cache_dir.mkdir(parents=True)
    (cache_dir / "responses.sqlite3").write_bytes(b"\x00garbage, not a database\xff" * 500)
    res = _run(taxcheck_cli, small_suite, tmp_path / "1.jsonl")
    assert res.code == 0, res.stderr
    assert "moved it to" in res.stderr and "Traceback" not in res.stderr
    assert len(list(cache_dir.glob("responses.sqlite3.corrupt-*"))) == 1
    assert models.count() == CALLS
    assert _run(taxcheck_cli, small_suite, tmp_path / "2.jsonl").code == 0
    assert models.count() == CALLS  # the fresh cache works


def test_two_processes_share_one_cache(taxcheck_cli, fake_api, small_suite, tmp_path):
    """Two real ``taxcheck run`` processes on one cache directory at once both finish right."""
    fake_api.latency = 0.02
    fake_api.respond_for("A", refuser)
    fake_api.respond_for("B", helpful)
    outs = [tmp_path / "p1.jsonl", tmp_path / "p2.jsonl"]
    procs = [
        taxcheck_cli.popen("run", "-m", "openai:A", "-b", "openai:B", "-s", small_suite, "-f", "json", "-o", out, "-j", "4")
        for out in outs
    ]
    results = [p.communicate(timeout=60) for p in procs]
    for proc, (stdout, stderr) in zip(procs, results):
        assert proc.returncode == 0, stderr
        assert json.loads(stdout)["failures"] == {"openai:A": 0, "openai:B": 0}
    for out in outs:
        keys = [(r["model"], r["item"], r["sample"], r["turn"]) for r in call_records(out)]
        assert len(keys) == len(set(keys)) == CALLS
    db = sqlite3.connect(Path(os.environ["TAXCHECK_CACHE_DIR"]) / "responses.sqlite3")
    assert db.execute("SELECT count(*) FROM responses").fetchone()[0] == CALLS
    db.close()


KEY_ARGS = dict(base_url="http://h/v1", wire="openai", api="chat", model="m",
                messages=[{"role": "user", "content": "hi"}], params={"temperature": 0.0, "max_tokens": 5}, sample=0)


@pytest.mark.parametrize(
    "change",
    [
        {"base_url": "http://other/v1"},
        {"wire": "anthropic"},
        {"api": "completions"},
        {"model": "m2"},
        {"messages": [{"role": "user", "content": "hi!"}]},
        {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}]},
        {"params": {"temperature": 0.7, "max_tokens": 5}},
        {"params": {"temperature": 0.0, "max_tokens": 6}},
        {"sample": 1},
    ],
)
def test_cache_key_covers_what_changes_the_answer(change):
    assert cache_key(**{**KEY_ARGS, **change}) != cache_key(**KEY_ARGS)


def test_cache_key_is_stable_and_ignores_dict_order():
    assert cache_key(**KEY_ARGS) == cache_key(**{**KEY_ARGS, "params": {"max_tokens": 5, "temperature": 0.0}})
    odd = {**KEY_ARGS, "messages": [{"role": "user", "content": "a\ud800 \x00 😀"}]}
    assert cache_key(**odd) == cache_key(**odd)


def test_cache_roundtrip_disabled_and_unwritable(tmp_path):
    c = Cache(tmp_path / "c")
    value = {"text": "مرحبا 😀 \x00 \u202e", "finish_reason": "stop"}
    c.put("k", value)
    assert c.get("k") == value and c.get("missing") is None
    c.close()
    again = Cache(tmp_path / "c")
    assert again.get("k") == value
    again.close()
    off = Cache(None)
    off.put("k", value)
    assert off.get("k") is None and not off.enabled
    warnings: list[str] = []
    blocker = tmp_path / "file"
    blocker.write_text("x")
    broken = Cache(blocker / "sub", warn=warnings.append)  # a file where the directory should be
    assert not broken.enabled and warnings and "cache disabled" in warnings[0]


def test_unwritable_output_is_reported_before_any_request(taxcheck_cli, fake_api, small_suite, tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where a folder should be", encoding="utf-8")
    r = taxcheck_cli("run", "-m", "openai:A", "-s", small_suite, "-o", blocker / "run.jsonl")
    assert r.code == 2
    assert "cannot write the run file" in r.stderr and "-o" in r.stderr
    assert fake_api.count() == 0


def test_full_disk_is_reported_before_any_request(taxcheck_cli, fake_api, small_suite, tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _p: usage(10**9, 10**9 - 4096, 4096))
    r = taxcheck_cli("run", "-m", "openai:A", "-s", small_suite, "-o", tmp_path / "run.jsonl")
    assert r.code == 2
    assert "KiB free" in r.stderr
    assert fake_api.count() == 0
