"""Hostile input (issue 7 §5): suites, responses and unicode that try to break a run.

Property tests (hypothesis) feed arbitrary bytes and JSON structures to the suite parser
and arbitrary text to every extractor and classifier: none may raise. Broken, wrong-typed
and oversized API responses must become recorded failures with a reason; odd unicode must
survive the run file, the cache and every report format.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest
from conftest import call_records, helpful, write_suite
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fakeapi import Reply
from taxcheck.grade.extract import contains_answer, extract_choice, extract_number, number_matches, regex_answer, score_answer
from taxcheck.grade.hedge import detect_hedge
from taxcheck.grade.refusal import classify_refusal
from taxcheck.suites.format import Answer, SuiteItem, parse_lines

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
FIELDS = ["id", "category", "type", "pair", "variant", "system", "prompt", "turns", "expect", "answer", "meta"]
item_like = st.fixed_dictionaries({}, optional={f: json_values for f in FIELDS}) | st.dictionaries(
    st.sampled_from(FIELDS + ["extra"]), json_values, max_size=8
)
any_text = st.text(alphabet=st.characters(codec=None, exclude_categories=()), max_size=300)


@FAST
@given(st.lists(st.binary(max_size=200), max_size=6))
def test_parse_lines_survives_arbitrary_bytes(lines):
    items, problems = parse_lines(lines, "x.jsonl")
    assert all(isinstance(p, str) and p.startswith("x.jsonl:") for p in problems)
    assert len(items) <= len(lines)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(item_like, max_size=4))
def test_parse_lines_survives_arbitrary_structures(objs):
    lines = [json.dumps(o) for o in objs]
    items, problems = parse_lines(lines, "s.jsonl")
    assert len(items) <= len(objs)
    assert all(isinstance(i, SuiteItem) for i in items)
    assert all(p.startswith("s.jsonl:") for p in problems)
    if any(not isinstance(o, dict) or "id" not in o for o in objs):
        assert problems  # an object without an id can never be an item


@pytest.mark.parametrize("line", ["[" * 100_000, '{"a":' * 50_000, "\x00\x00", '"\\ud800"', "1e999999", '{"id": 1e400}'])
def test_parse_lines_pathological_lines_are_problems(line):
    items, problems = parse_lines([line], "p.jsonl")
    assert items == [] and len(problems) == 1 and problems[0].startswith("p.jsonl:1:")


@FAST
@given(any_text, st.sampled_from(["ABCD", "ABCDEFGHIJ", "AB"]), st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=10))
def test_extractors_never_raise(text, options, number, needle):
    assert extract_choice(text, options) in (None, *options)
    value = extract_number(text)
    assert value is None or isinstance(value, float)
    assert isinstance(number_matches(text, number), bool)
    assert isinstance(contains_answer(text, needle), bool)
    assert isinstance(contains_answer(text, [needle, "x"]), bool)
    assert isinstance(regex_answer(text, needle), bool)  # even when needle is no valid regex
    for answer in (Answer(choice="C"), Answer(number=42), Answer(contains=["Canberra"]), Answer(regex=r"\bok\b")):
        assert isinstance(score_answer(text, answer).ok, bool)


@FAST
@given(any_text)
def test_refusal_and_hedge_never_raise(text):
    assert classify_refusal(text).label in ("comply", "partial", "refuse")
    assert isinstance(detect_hedge(text).hedged, bool)


def test_scorers_on_huge_and_odd_text():
    for text in ("I'm sorry" * 200_000, "\x00" * 10_000, "\ud800" * 100, "9" * 100_000, "**" * 50_000):
        classify_refusal(text)
        detect_hedge(text)
        extract_choice(text)
        extract_number(text)


# ----------------------------------------------------------------- broken responses in a run

BROKEN = {
    "not json": Reply(malformed=True),
    "empty body": Reply(empty=True),
    "choices not a list": Reply(body={"id": "x", "choices": "nope"}),
    "content a number": Reply(body={"id": "x", "object": "chat.completion", "created": 1, "model": "m",
                                    "choices": [{"index": 0, "message": {"role": "assistant", "content": 5}, "finish_reason": "stop"}]}),
    "message null": Reply(body={"id": "x", "choices": [{"index": 0, "message": None, "finish_reason": "stop"}]}),
    "body a list": Reply(body=[1, 2, 3]),
    "body a string": Reply(body="hello"),
    "reset": Reply(reset=True),
}


def test_broken_responses_become_recorded_failures(taxcheck_cli, fake_api, tmp_path):
    items = [{"id": f"k{i}", "category": "over_refusal", "prompt": f"broken case {name}", "expect": "comply"}
             for i, name in enumerate(BROKEN)]
    suite = write_suite(tmp_path / "s.jsonl", items)
    fake_api.respond(lambda r: BROKEN[r.last_user_text().removeprefix("broken case ")])
    out = tmp_path / "run.jsonl"
    res = taxcheck_cli("run", "-m", "openai:A", "-s", suite, "-o", out, "--retries", "0", "-f", "json")
    assert res.code == 3, res.stderr
    assert res.json()["failures"] == {"openai:A": len(BROKEN)}
    calls = call_records(out)
    assert len(calls) == len(BROKEN)
    for c in calls:
        assert c["error"]["kind"] in ("malformed", "connection") and c["error"]["message"], c


def test_oversized_response_is_a_recorded_failure(taxcheck_cli, fake_api, tmp_path):
    suite = write_suite(tmp_path / "s.jsonl", [{"id": "big", "category": "dual_use", "prompt": "big", "expect": "comply"},
                                                {"id": "ok", "category": "dual_use", "prompt": "fine", "expect": "comply"}])
    fake_api.respond(lambda r: Reply(text="x" * 50_000_000) if r.last_user_text() == "big" else Reply(text="Fine."))
    out = tmp_path / "run.jsonl"
    res = taxcheck_cli("run", "-m", "openai:A", "-s", suite, "-o", out, "-f", "json", "--timeout", "60")
    assert res.code == 3, res.stderr
    assert fake_api.count() == 2  # not retried: the same server would send the same thing
    big = next(c for c in call_records(out) if c["item"] == "big")
    # the body is cut at the transport's cap while it arrives, never read whole
    assert big["error"]["kind"] == "oversized" and "over 32 MiB" in big["error"]["message"]
    assert out.stat().st_size < 100_000
    cache = sqlite3.connect(Path(os.environ["TAXCHECK_CACHE_DIR"]) / "responses.sqlite3")
    assert cache.execute("SELECT max(length(value)) FROM responses").fetchone()[0] < 10_000
    cache.close()


# ----------------------------------------------------------------- unicode round trip

ODD = {
    "rtl": "\u05e9\u05dc\u05d5\u05dd \u202eRTL override\u202c مرحبا",
    "emoji": "family 👨‍👩‍👧‍👦 flag 🇺🇦 skin 👍🏽",
    "nul": "before\x00after",
    "controls": "bell\x07 esc\x1b[31m red \r\n crlf \u2028 line sep",
    "combining": "Z̷̢͎a̶l̸g̵o\ufeff bom",
}


def test_unicode_survives_run_file_cache_and_reports(taxcheck_cli, fake_api, tmp_path):
    items = [{"id": f"u-{k}", "category": "creative", "prompt": f"Echo this: {v}", "expect": "comply"} for k, v in ODD.items()]
    items.append({"id": "u-lone", "category": "creative", "prompt": "lone \ud800 surrogate", "expect": "comply"})
    suite = tmp_path / "u.jsonl"
    suite.write_text("".join(json.dumps(i) + "\n" for i in items), encoding="utf-8")  # \ud800 stays an escape

    def echo_back(request):
        text = request.last_user_text()
        return Reply(text=f"Reply: {text} \U0001f600" if "surrogate" not in text else "Reply with lone \ud800 surrogate")

    fake_api.respond(echo_back)
    out = tmp_path / "run.jsonl"
    res = taxcheck_cli("run", "-m", "openai:A", "-b", "openai:B", "-s", suite, "-o", out, "-f", "json")
    assert res.code == 0, res.stderr
    recs = {(c["model"], c["item"]): c for c in call_records(out)}
    for k, v in ODD.items():
        assert recs[("openai:A", f"u-{k}")]["text"] == f"Reply: Echo this: {v} \U0001f600"
    assert recs[("openai:A", "u-lone")]["text"] == "Reply with lone \ud800 surrogate"  # read back exactly
    sent = [r.last_user_text() for r in fake_api.requests if "lone" in r.last_user_text()]
    assert sent and all(s == "lone \ufffd surrogate" for s in sent)  # made sendable, not crashed
    from taxcheck.runfile import read_run

    data = read_run(out)
    assert data.items["u-nul"].prompt == f"Echo this: {ODD['nul']}"
    # the cache answers the second run with the same strings
    again = tmp_path / "again.jsonl"
    res2 = taxcheck_cli("run", "-m", "openai:A", "-b", "openai:B", "-s", suite, "-o", again, "-f", "json")
    assert res2.code == 0 and len(fake_api.requests) == 2 * len(items)
    recs2 = {(c["model"], c["item"]): c["text"] for c in call_records(again)}
    assert recs2 == {k: c["text"] for k, c in recs.items()}
    assert all(c["cached"] for c in call_records(again))
    for fmt in ("table", "json", "markdown", "csv"):
        rep = taxcheck_cli("report", out, "-f", fmt)
        assert rep.code == 0 and "creative" in rep.stdout, (fmt, rep.stderr)
    assert json.loads(res.stdout)["rows"][0]["dimension"] == "creative"


def test_unicode_model_names_and_ids_render(taxcheck_cli, fake_api, tmp_path):
    fake_api.respond(helpful)
    suite = write_suite(tmp_path / "s.jsonl", [{"id": "מזהה-😀|x,y", "category": "dual_use", "prompt": "p", "expect": "comply"}])
    out = tmp_path / "r.jsonl"
    res = taxcheck_cli("run", "-m", "openai:模型|a,b", "-s", suite, "-o", out, "-f", "csv")
    assert res.code == 0, res.stderr
    assert '"openai:模型|a,b"' in res.stdout  # csv quoting
    md = taxcheck_cli("report", out, "-f", "markdown")
    assert "openai:模型\\|a,b" in md.stdout  # the pipe cannot break the markdown table


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=300), rival=st.text(max_size=20), number=st.floats(allow_nan=False, allow_infinity=False))
def test_rival_aware_scoring_never_raises(text, rival, number):
    from taxcheck.grade.extract import score_answer
    from taxcheck.suites.format import Answer

    for answer in (Answer(contains="Canberra"), Answer(number=number)):
        assert isinstance(score_answer(text, answer, rival=rival).ok, bool)
