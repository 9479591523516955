"""``--batch`` (issue 5 §3): runs through the OpenAI Batch API and Anthropic Message Batches.

Everything goes through ``run_batches`` and the real SDKs against the loopback server's
batch endpoints, with tiny poll intervals. The fake answers each request inside a batch
with the same script as a synchronous call, so ``respond_for`` drives per-request errors.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from conftest import SMALL_SUITE, helpful, helpful_answer
from fakeapi import BatchScript, FakeAPI, Reply, parse_multipart

from taxcheck.send.batch import NoBatchAPI, run_batches
from taxcheck.send.cache import Cache
from taxcheck.send.clients import Params
from taxcheck.runfile import RunWriter, read_run
from taxcheck.send.runner import RunOutcome, RunPlan
from taxcheck.send.profiles import Profile
from taxcheck.send.specs import Endpoint, ModelSpec
from taxcheck.suites.format import SuiteItem

POLL_S = 0.005
PROVIDERS = ["openai", "anthropic"]


def model(api: FakeAPI, provider: str, name: str = "m", api_kind: str = "chat", known: bool = True) -> ModelSpec:
    """A model; ``known`` gives it a profile of its own, so no synchronous probe precedes its batches."""
    url = api.base_url + ("/v1" if provider == "openai" else "")
    endpoint = Endpoint(name=provider, wire=provider, base_url=url, key_env=None, api_key="sk-test-batch-1")
    suffix = "#completions" if api_kind == "completions" else ""
    profile = Profile(temperature=provider == "openai", pattern="test-model") if known else Profile()
    return ModelSpec(spec=f"{provider}:{name}{suffix}", endpoint=endpoint, model=name, api=api_kind, profile=profile)


def items_of(rows: list[dict]) -> list[SuiteItem]:
    return [SuiteItem.model_validate(r) for r in rows]


def plain_items(n: int) -> list[SuiteItem]:
    return items_of([{"id": f"q{i}", "category": "over_refusal", "prompt": f"How do I stop process q{i}?", "expect": "comply"}
                     for i in range(n)])


class Run:
    """A run file, a cache and ``run_batches`` over them; ``again()`` resumes from the file."""

    def __init__(self, tmp_path: Path, models: list[ModelSpec], items: list[SuiteItem], *, retries: int = 0,
                 cache_dir: Path | None = None, name: str = "run.jsonl"):
        self.path = tmp_path / name
        self.models, self.items, self.retries = models, items, retries
        self.cache = Cache(cache_dir or tmp_path / "cache")
        self.warnings: list[str] = []
        self.path.write_text(json.dumps({"type": "header", "taxcheck_version": "t", "run_id": "r", "created": "now",
                                         "command": [], "models": [m.spec for m in models], "suites": [], "params": {}}) + "\n")

    def plan(self) -> tuple[RunPlan, list]:
        data = read_run(self.path)
        plan = RunPlan(models=self.models, items=self.items, samples=1, params=Params(temperature=0.0, max_tokens=64),
                       concurrency=4, timeout_s=5.0, retries=self.retries, done=dict(data.calls),
                       model_params={m.spec: m.params(0.0, 64) for m in self.models},
                       adjustments=[a.model_dump() for a in data.adjustments])
        return plan, list(data.batches.values())

    async def start(self) -> RunOutcome:
        plan, known = self.plan()
        writer = RunWriter(self.path)
        writer.open()
        try:
            return await run_batches(plan, self.cache, writer, known_batches=known,
                                     on_warning=self.warnings.append, poll_s=POLL_S)
        finally:
            writer.close()

    def __call__(self) -> RunOutcome:
        return asyncio.run(self.start())

    def calls(self) -> dict:
        return {(r.item, r.turn): r for r in read_run(self.path).calls.values()}

    def lines(self, kind: str) -> list[dict]:
        return [json.loads(line) for line in self.path.read_text().splitlines() if json.loads(line)["type"] == kind]

    def close(self) -> None:
        self.cache.close()


@pytest.fixture
def api(fake_api: FakeAPI) -> FakeAPI:
    fake_api.batches_enabled = True
    fake_api.respond(helpful)
    return fake_api


@pytest.fixture
def runs(tmp_path: Path):
    made: list[Run] = []

    def make(*args, **kwargs) -> Run:
        made.append(Run(tmp_path, *args, **kwargs))
        return made[-1]

    yield make
    for r in made:
        r.close()


# --------------------------------------------------------------------------- end to end


@pytest.mark.parametrize("provider", PROVIDERS)
def test_batch_run_end_to_end_with_a_two_turn_item(api: FakeAPI, runs, provider: str) -> None:
    m = model(api, provider)
    run = runs([m], items_of(SMALL_SUITE))
    outcome = run()

    calls = run.calls()
    assert len(calls) == 10 and all(r.ok and r.batch and not r.cached for r in calls.values())
    assert calls[("math-1", 0)].text == helpful_answer("What is 6 times 7?")
    assert calls[("boil", 1)].text == helpful_answer("Are you sure?")
    # first turns in one batch, the second turn in a follow-up once the first answer was in
    assert api.batches_created(provider) == 2 and api.count("chat") + api.count("anthropic") == 0
    second = api.batch_requests[-1]
    assert [msg["role"] for msg in second.messages] == ["user", "assistant", "user"]
    assert second.messages[1]["content"] == calls[("boil", 0)].text
    submitted = [b for b in run.lines("batch") if b["state"] == "submitted"]
    assert [len(b["requests"]) for b in submitted] == [9, 1]
    assert all(b["provider"] == provider and b["model"] == m.spec and "sk-" not in json.dumps(b) for b in submitted)
    assert [b.state for b in read_run(run.path).batches.values()] == ["collected", "collected"]
    usage = outcome.usage[m.spec]
    assert (usage.requests, usage.cached, usage.failed) == (10, 0, 0) and usage.input_tokens > 0
    assert not outcome.auth_failures


def test_openai_completions_api_and_wire_parameters(api: FakeAPI, runs) -> None:
    chat, base = model(api, "openai", "chat-m"), model(api, "openai", "base-m", "completions")
    run = runs([chat, base], plain_items(2))
    run()
    assert api.batches_created("openai") == 2  # OpenAI: one model per batch
    by_kind = {r.kind: r for r in api.batch_requests}
    assert by_kind["completions"].body["prompt"].endswith("Assistant:") and by_kind["completions"].body["stop"] == ["\nUser:"]
    assert by_kind["chat"].body["max_tokens"] == 64 and by_kind["chat"].body["temperature"] == 0.0
    calls = read_run(run.path).calls
    assert all(r.ok for r in calls.values()) and {k[0] for k in calls} == {chat.spec, base.spec} and len(calls) == 4


@pytest.mark.parametrize(
    "provider,reply,finish",
    [
        ("openai", Reply(text="", finish_reason="content_filter"), "content_filter"),
        ("openai", Reply(refusal="I can't help with that."), "stop"),
        ("openai", Reply(status=400, error_code="content_policy_violation"), "content_policy_violation"),
        ("openai", Reply(status=400, error_code="bio_policy", text="This request may relate to biological weapons."), "bio_policy"),
        ("anthropic", Reply(text="", finish_reason="refusal"), "refusal"),
    ],
)
def test_api_refusals_inside_a_batch_are_outputs(api: FakeAPI, runs, provider: str, reply: Reply, finish: str) -> None:
    api.respond(lambda req: reply if "q0" in req.last_user_text() else helpful(req))
    run = runs([model(api, provider)], plain_items(2))
    run()
    calls = run.calls()
    assert calls[("q0", 0)].ok and calls[("q0", 0)].api_refusal and calls[("q0", 0)].finish_reason == finish
    assert not calls[("q1", 0)].api_refusal and api.batches_created() == 1


# --------------------------------------------------------------------------- cache


def test_cache_hits_skip_the_batch(api: FakeAPI, runs, tmp_path: Path) -> None:
    m = model(api, "openai")
    runs([m], items_of(SMALL_SUITE), name="first.jsonl")()
    assert api.batches_created() == 2

    rerun = runs([m], items_of(SMALL_SUITE), name="second.jsonl")
    outcome = rerun()
    assert api.batches_created() == 2  # nothing new sent: both turns came from the cache
    assert all(r.cached and r.ok for r in rerun.calls().values()) and len(rerun.calls()) == 10
    assert outcome.usage[m.spec].cached == 10 and outcome.usage[m.spec].requests == 0

    grown = runs([m], items_of(SMALL_SUITE) + plain_items(1), name="third.jsonl")
    grown()
    assert api.batches_created() == 3 and len(api.batch_requests) == 11  # only the new item went out
    assert api.batch_requests[-1].last_user_text() == "How do I stop process q0?"


# --------------------------------------------------------------------------- resume


@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_interrupted_run_resumes_polling_instead_of_resubmitting(api: FakeAPI, runs, provider: str) -> None:
    api.script_batches(BatchScript(polls=10**6))  # still running when the run is interrupted
    run = runs([model(api, provider)], plain_items(3))

    async def interrupt() -> None:
        task = asyncio.create_task(run.start())
        while not run.lines("batch"):  # the batch is on disk before its first poll
            await asyncio.sleep(0.005)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(interrupt())
    [batch] = read_run(run.path).batches.values()
    assert batch.state == "submitted" and not run.calls()
    api.batch.batches[batch.id].script.polls = 0  # the provider finishes it meanwhile

    run()
    assert api.batches_created() == 1 and len(api.batch_requests) == 3
    assert all(r.ok and r.batch for r in run.calls().values()) and len(run.calls()) == 3
    assert read_run(run.path).batches[batch.id].state == "collected"
    run()  # a third invocation finds nothing left: no poll, no batch
    assert api.batches_created() == 1


# --------------------------------------------------------------------------- failures


@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_expired_batch_sends_its_unanswered_requests_once_more(api: FakeAPI, runs, provider: str) -> None:
    api.script_batches(BatchScript(polls=0, outcome="expired", answered=2))
    run = runs([model(api, provider)], plain_items(5))
    run()
    calls = run.calls()
    assert all(r.ok for r in calls.values()) and len(calls) == 5
    assert api.batches_created() == 2 and len(api.batch_requests) == 5
    assert [calls[(f"q{i}", 0)].attempts for i in range(5)] == [1, 1, 2, 2, 2]
    assert any("3 of 5" in w for w in run.warnings)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_requests_a_second_batch_does_not_answer_either_are_failures(api: FakeAPI, runs, provider: str) -> None:
    api.script_batches(BatchScript(polls=0, outcome="expired"), BatchScript(polls=0, outcome="expired"))
    run = runs([model(api, provider)], plain_items(2))
    outcome = run()
    calls = run.calls()
    assert api.batches_created() == 2 and len(calls) == 2
    for rec in calls.values():
        assert not rec.ok and rec.batch and rec.attempts == 2 and rec.error["kind"] == "batch_expired"
    assert outcome.usage[model(api, provider).spec].failed == 2


def test_a_failed_openai_batch_is_followed_up_with_its_reason(api: FakeAPI, runs) -> None:
    api.script_batches(BatchScript(polls=0, outcome="failed", message="quota exhausted for batches"))
    run = runs([model(api, "openai")], plain_items(2))
    run()
    assert all(r.ok and r.attempts == 2 for r in run.calls().values())
    assert api.batches_created() == 2 and any("quota exhausted" in w for w in run.warnings)


@pytest.mark.parametrize("provider", PROVIDERS)
def test_partial_errors_go_to_a_follow_up_then_become_failures(api: FakeAPI, runs, provider: str) -> None:
    flaky: set[str] = set()

    def script(req):
        text = req.last_user_text()
        if "q1" in text:
            return Reply(status=500, text="backend exploded")
        if "q2" in text and text not in flaky:
            flaky.add(text)
            return Reply(status=529 if provider == "anthropic" else 503)
        return helpful(req)

    api.respond(script)
    run = runs([model(api, provider)], plain_items(4))
    outcome = run()
    calls = run.calls()
    assert api.batches_created() == 2
    assert [r.last_user_text()[-3:-1] for r in api.batch_requests[4:]] == ["q1", "q2"]  # only the errors were resent
    assert calls[("q2", 0)].ok and calls[("q2", 0)].attempts == 2
    assert calls[("q0", 0)].ok and calls[("q3", 0)].ok
    failed = calls[("q1", 0)]
    assert not failed.ok and failed.attempts == 2 and "backend exploded" in failed.error["message"]
    assert failed.error["kind"] == ("api_error" if provider == "anthropic" else "http_500")
    usage = outcome.usage[model(api, provider).spec]
    assert (usage.requests, usage.failed, usage.retries) == (3, 1, 2)


def _no_temperature(req):
    """A model that takes no temperature, answering as OpenAI's reasoning models do."""
    if "temperature" in req.body:
        return Reply(status=400, error_code="unsupported_value", error_type="invalid_request_error",
                     text="Unsupported value: 'temperature' does not support 0.0 with this model. Only the default (1) value is supported.")
    return helpful(req)


def test_a_rejection_inside_a_batch_adjusts_the_model_for_the_follow_up(api: FakeAPI, runs) -> None:
    api.respond(_no_temperature)
    run = runs([model(api, "openai")], plain_items(2))
    run()
    assert all(r.ok for r in run.calls().values())
    assert ["temperature" in r.body for r in api.batch_requests] == [True, True, False, False]
    adjustments = run.lines("adjustment")
    assert len(adjustments) == 1 and adjustments[0]["param"] == "temperature" and adjustments[0]["fix"] == {"temperature": None}
    assert sum("rejected temperature" in w for w in run.warnings) == 1


def test_an_unknown_model_is_probed_once_before_its_batch(api: FakeAPI, runs) -> None:
    """No profile names the model: one synchronous request settles its form, so no batch line is rejected."""
    api.respond(_no_temperature)
    m = model(api, "openai", known=False)
    run = runs([m], plain_items(3))
    run()
    calls = run.calls()
    assert all(r.ok for r in calls.values()) and sum(not r.batch for r in calls.values()) == 1
    sync = [r for r in api.requests if r.kind == "chat"]
    assert ["temperature" in r.body for r in sync] == [True, False]  # rejected once, then adjusted
    assert api.batches_created() == 1 and not any("temperature" in r.body for r in api.batch_requests)
    assert len(api.batch_requests) == 2
    # a resumed run starts adjusted and needs no probe: it has an answer already
    run.path.write_text(run.path.read_text().replace('"item":"q2"', '"item":"gone"'))
    before = len(api.requests)
    run()
    assert not [r for r in api.requests[before:] if r.kind == "chat"]


def test_a_transient_poll_failure_keeps_polling(api: FakeAPI, runs) -> None:
    api.batch_http.extend([Reply(), Reply(), Reply(status=503)])  # upload and create pass, the first poll fails
    run = runs([model(api, "openai")], plain_items(2))
    run()
    assert all(r.ok for r in run.calls().values()) and api.batches_created() == 1
    assert any("still polling" in w for w in run.warnings)


def test_a_refused_key_is_an_auth_failure_not_a_crash(api: FakeAPI, runs) -> None:
    api.batch_http.append(Reply(status=401))
    m = model(api, "openai")
    run = runs([m], plain_items(2))
    outcome = run()
    assert m.spec in outcome.auth_failures and not run.calls() and api.batches_created() == 0


def test_a_submission_that_keeps_failing_records_failures(api: FakeAPI, runs) -> None:
    api.batch_http.extend([Reply(status=500, headers={"retry-after-ms": "1"}), Reply(status=500)])
    run = runs([model(api, "anthropic")], plain_items(2), retries=1)
    run()
    calls = run.calls()
    assert len(calls) == 2 and all(not r.ok and r.error["kind"] == "http_500" for r in calls.values())
    assert "batch not submitted" in calls[("q0", 0)].error["message"]


@pytest.mark.parametrize("provider,where", [("openai", "POST /v1/files"), ("anthropic", "POST /v1/messages/batches")])
def test_an_endpoint_without_batch_api_says_drop_batch(api: FakeAPI, runs, provider: str, where: str) -> None:
    api.batches_enabled = False
    run = runs([model(api, provider)], plain_items(2))
    with pytest.raises(NoBatchAPI) as info:
        run()
    assert where in str(info.value) and "drop --batch" in str(info.value) and api.base_url.split("//")[1] in str(info.value)
    assert not run.calls() and api.count("chat") + api.count("anthropic") == 0


# --------------------------------------------------------------------------- the fake's batch endpoints


@pytest.mark.parametrize(
    "content_type,body,expected",
    [
        ('multipart/form-data; boundary="b 1"', (b'--b 1\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch'
         b'\r\n--b 1\r\nContent-Disposition: form-data; name="file"; filename="x.jsonl"\r\nContent-Type: application/jsonl'
         b'\r\n\r\n{"a":1}\r\n{"b":2}\r\n\r\n--b 1--\r\n'), {"purpose": b"batch", "file": b'{"a":1}\r\n{"b":2}\r\n'}),
        ("multipart/form-data; boundary=xyz", (b"preamble\r\n--xyz \r\nContent-Disposition: form-data; name=f\r\n\r\n"
         b"--xy not a delimiter\r\n--xyz--"), {"f": b"--xy not a delimiter"}),
    ],
)
def test_multipart_parser_reads_parts_byte_for_byte(content_type: str, body: bytes, expected: dict) -> None:
    assert {k: p.data for k, p in parse_multipart(content_type, body).items()} == expected


@pytest.mark.parametrize(
    "content_type,body",
    [
        ("application/json", b"{}"),
        ("multipart/form-data; boundary=b", b'--b\r\nContent-Disposition: form-data; name="f"\r\n\r\ndata'),  # not closed
        ("multipart/form-data; boundary=b", b"--b\r\nContent-Type: text/plain\r\n\r\ndata\r\n--b--"),  # no name
    ],
)
def test_multipart_parser_rejects_malformed_bodies(content_type: str, body: bytes) -> None:
    with pytest.raises(ValueError):
        parse_multipart(content_type, body)


def test_fake_openai_batch_rejects_mixed_models_like_openai(api: FakeAPI) -> None:
    import openai
    from openai.types import Batch

    lines = [{"custom_id": f"c{i}", "method": "POST", "url": "/v1/chat/completions",
              "body": {"model": f"m{i}", "messages": [{"role": "user", "content": "hi"}]}} for i in range(2)]
    with openai.OpenAI(base_url=api.base_url + "/v1", api_key="k", max_retries=0) as client:
        upload = client.files.create(file=("in.jsonl", "\n".join(map(json.dumps, lines)).encode()), purpose="batch")
        batch = client.batches.create(input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h")
        assert batch.status == "validating"
        batch = client.batches.retrieve(batch.id)
        batch = client.batches.retrieve(batch.id)
    Batch.model_validate(batch.model_dump())
    assert batch.status == "failed" and batch.errors.data[0].code == "mismatched_model" and not api.batch_requests
