"""``--batch``: a run sent through the providers' batch APIs instead of one request at a time.

Why: OpenAI's Batch API and Anthropic's Message Batches answer at about half the price and
outside the per-request rate limits, which is what an 80,000-prompt suite needs; the price
is latency (minutes, up to 24 hours). So the unit of work here is a *round*: every request
that can be sent now (first turns, second turns whose first answer is in, retries) goes
into one batch per model (OpenAI allows a single model per batch), the batch is polled
until it ends, and its answers are recorded exactly like synchronous calls: cache first,
then a call record (with ``batch: true``, so usage can apply the batch discount). Then the
next round, until nothing is left. Cached requests never reach a batch.

Durability: the batch record (provider, endpoint, batch id, custom_id -> call mapping) is
written to the run file the moment the provider accepts the batch, before the first poll,
so the rerun of an interrupted run polls the same batch instead of paying for it twice.
Once every result of a batch is recorded it gets a ``collected`` marker.

Failures: a request that errored inside a batch, or that an expired / failed / cancelled
batch never answered, is retried once in the next round's batch, then recorded as a failed
call with the reason. Uploads and batch creation go through the usual retry ladder; a 404
there means the endpoint has no batch API (``NoBatchAPI``). A poll that fails transiently
is simply repeated: a batch may take a day, and an outage of the status endpoint must not
throw away work that is already paid for. Requests have no timeout of their own here; only
the HTTP calls that upload, poll and download do.

Answers are parsed by the same rules as synchronous calls (``clients.py``): OpenAI's
``content_filter`` finish reason, a ``refusal`` message or a content-policy 400, and
Anthropic's ``refusal`` stop reason are API refusals, not errors.

Request forms: every line is built by the endpoint client (``EndpointClient.body``), so a
batch carries the form the model's profile and earlier adjustments call for. A model whose
form no request has confirmed yet first sends *one* of its requests synchronously: a
rejected parameter then costs one request, not a whole batch (OpenAI validates batch lines
only when the batch runs, so a wrong form would waste the round). A model its profile names,
or one with an answer in the run file already, needs no probe. A rejection that still
arrives inside a batch adjusts the model the same way, and the follow-up batch uses the new form.
"""

from __future__ import annotations

import asyncio
import io
import random
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from taxcheck.send.cache import Cache, cache_key
from taxcheck.send.clients import EndpointClient, _is_policy_error, _policy_code, _short
from taxcheck.errors import CallError, UserError
from taxcheck.jsonl import lines_of, read_lines, write_lines
from taxcheck.send.retry import backoff_delay, is_retryable_status
from taxcheck.runfile import BatchRecord, CallKey, CallRecord, RunWriter
from taxcheck.send.runner import SKIP_EMPTY_FIRST, RunOutcome, RunPlan, adjustment_recorder, learn_adjustments, record_call
from taxcheck.send.sender import Usage
from taxcheck.send.specs import ModelSpec
from taxcheck.send.wire import (
    Completion,
    check_answer,
    check_size,
    parse_anthropic,
    parse_openai,
    safe_messages,
)

MAX_BATCH_TRIES = 2  # a request's first batch and one follow-up
OPENAI_LIMITS = (50_000, 190 * 1024 * 1024)  # requests and bytes per batch (OpenAI: 50,000 / 200 MB)
ANTHROPIC_LIMITS = (100_000, 240 * 1024 * 1024)  # (Anthropic: 100,000 / 256 MB)
HTTP_TIMEOUT_S = 600.0  # one upload, poll or download; an input file can be ~200 MB
_OPENAI_ENDED = {"completed", "failed", "expired", "cancelled"}


class NoBatchAPI(UserError):
    """The endpoint answered 404 where its batch API should be: ``--batch`` cannot work there."""

    def __init__(self, url: str, where: str):
        super().__init__(f"{url} has no batch API (404 on {where}); drop --batch to send the requests one at a time")


@dataclass
class Pending:
    """One request ready to go into a batch."""

    key: CallKey
    messages: list[dict[str, str]]


async def run_batches(
    plan: RunPlan,
    cache: Cache,
    writer: RunWriter,
    *,
    known_batches: Iterable[BatchRecord] = (),
    on_call: Callable[[CallRecord], None] = lambda _r: None,
    on_warning: Callable[[str], None] = lambda _m: None,
    poll_s: float = 30.0,
) -> RunOutcome:
    """Send what ``plan`` has left through batch APIs; a drop-in for ``Runner(...).run()``.

    ``known_batches`` are the batch records of the run file (``RunData.batches.values()``):
    those not yet collected are polled, not resubmitted. Raises ``NoBatchAPI``.
    """
    return await BatchRunner(plan, cache, writer, on_call, on_warning, poll_s).run(list(known_batches))


class BatchRunner:
    def __init__(
        self,
        plan: RunPlan,
        cache: Cache,
        writer: RunWriter,
        on_call: Callable[[CallRecord], None] = lambda _r: None,
        on_warning: Callable[[str], None] = lambda _m: None,
        poll_s: float = 30.0,
    ):
        self.plan = plan
        self.cache = cache
        self.writer = writer
        self.on_call = on_call
        self.on_warning = on_warning
        self.poll_s = max(poll_s, 0.001)
        self.usage: dict[str, Usage] = {m.spec: Usage() for m in plan.models}
        self.auth_failures: dict[str, str] = {}
        self._items = {i.id: i for i in plan.items}
        self._rng = random.Random()
        self._clients: dict[str, EndpointClient] = {}  # model spec -> its endpoint's client

    async def run(self, known_batches: list[BatchRecord]) -> RunOutcome:
        clients: dict[str, EndpointClient] = {}
        tasks: list[asyncio.Task[None]] = []
        for model in self.plan.models:
            ep = model.endpoint
            same = [m for m in self.plan.models if m.endpoint == ep]
            ep_key = ep.name + "|" + ep.base_url
            if ep_key not in clients:
                clients[ep_key] = EndpointClient(ep, max(self.plan.timeout_s, HTTP_TIMEOUT_S),
                                                 on_adjust=adjustment_recorder(same, self.writer.write, self.on_warning))
                learn_adjustments(clients[ep_key], same, self.plan.adjustments)
            client = self._clients[model.spec] = clients[ep_key]
            resume = [b for b in known_batches if b.state == "submitted" and b.model == model.spec]
            tasks.append(asyncio.create_task(self._drive(model, client, resume)))
        try:
            await asyncio.gather(*tasks)
        except BaseException:  # Ctrl-C, or NoBatchAPI from one endpoint: stop the others too
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        finally:
            for client in clients.values():
                await client.aclose()
        return RunOutcome(usage=self.usage, auth_failures=self.auth_failures)

    # -- rounds -------------------------------------------------------------------------

    async def _drive(self, model: ModelSpec, client: EndpointClient, resume: list[BatchRecord]) -> None:
        tries: dict[CallKey, int] = {}  # failed batch attempts per request, this invocation
        settled: set[CallKey] = set()  # recorded as failed, or left in a batch to collect on a rerun
        if resume:
            await asyncio.gather(*(self._collect(model, client, b, tries, settled) for b in resume))
        while model.spec not in self.auth_failures:
            pending = self._ready(model, settled)
            if not pending:
                return
            if self._needs_probe(model, client):
                await self._probe(model, client, pending[0], tries, settled)
                continue
            submitted = []
            for chunk in self._chunks(model, pending):
                rec = await self._submit(model, client, chunk, tries, settled)
                if rec is not None:
                    submitted.append(rec)
            await asyncio.gather(*(self._collect(model, client, b, tries, settled) for b in submitted))

    def _ready(self, model: ModelSpec, settled: set[CallKey]) -> list[Pending]:
        """Requests that can be sent now; cache hits are recorded on the way (both turns)."""
        out: list[Pending] = []
        spec = model.spec
        for unit in self.plan.units(lambda m: m.spec == spec):
            item = unit.item
            answer = ""
            for turn in range(item.n_turns):
                key = (spec, item.id, unit.sample, turn)
                prior = self.plan.done.get(key)
                if prior is None or not prior.settled:
                    if key in settled:
                        break
                    if turn > 0 and not answer.strip():
                        self._record({**_base(key), "text": None, "attempts": 0, "skipped": SKIP_EMPTY_FIRST})
                        break
                    messages = model.messages(item.turn_messages(turn, answer))
                    hit = self.cache.get(self._cache_key(model, messages, unit.sample))
                    if hit is None:
                        out.append(Pending(key, messages))
                        break
                    self.usage[spec].cached += 1
                    prior = self._record(
                        {**_base(key), **Completion.from_json(hit).to_json(), "cached": True, "latency_ms": 0.0, "attempts": 0}
                    )
                answer = prior.text or ""
        return out

    def _chunks(self, model: ModelSpec, pending: list[Pending]) -> Iterable[list[Pending]]:
        max_n, max_bytes = ANTHROPIC_LIMITS if model.endpoint.wire == "anthropic" else OPENAI_LIMITS
        chunk: list[Pending] = []
        size = 0
        for p in pending:
            n = 300 + sum(len(m["content"].encode("utf-8", "replace")) + 40 for m in p.messages)
            if chunk and (len(chunk) >= max_n or size + n > max_bytes):
                yield chunk
                chunk, size = [], 0
            chunk.append(p)
            size += n
        if chunk:
            yield chunk

    # -- submit -------------------------------------------------------------------------

    async def _submit(
        self, model: ModelSpec, client: EndpointClient, chunk: list[Pending], tries: dict[CallKey, int], settled: set[CallKey]
    ) -> BatchRecord | None:
        by_id = {f"r{i}": p for i, p in enumerate(chunk)}
        input_file_id = None
        try:
            if model.endpoint.wire == "anthropic":
                requests = [{"custom_id": cid, "params": self._anthropic_params(model, p.messages)} for cid, p in by_id.items()]
                batch = await self._api(
                    client, "POST /v1/messages/batches", lambda c: c.messages.batches.create(requests=requests), submit=True
                )
            else:
                url = "/v1/completions" if model.api == "completions" else "/v1/chat/completions"
                buf = io.StringIO()
                write_lines(buf, ({"custom_id": cid, "method": "POST", "url": url, "body": self._openai_body(model, p.messages)}
                                  for cid, p in by_id.items()))
                data = buf.getvalue().encode("utf-8", errors="backslashreplace")
                upload = await self._api(
                    client, "POST /v1/files",
                    lambda c: c.files.create(file=("taxcheck-batch.jsonl", data, "application/jsonl"), purpose="batch"),
                    submit=True,
                )
                input_file_id = upload.id
                batch = await self._api(
                    client, "POST /v1/batches",
                    lambda c: c.batches.create(
                        input_file_id=upload.id, endpoint=url, completion_window="24h", metadata={"created_by": "taxcheck"}
                    ),
                    submit=True,
                )
        except CallError as err:
            if err.kind == "auth":
                self._auth_failed(model, err)
                return None
            for p in chunk:
                self._fail(p.key, tries.get(p.key, 0) + 1, err.kind, f"batch not submitted: {err.message}")
                settled.add(p.key)
            return None
        record = {
            "type": "batch",
            "id": batch.id,
            "state": "submitted",
            "provider": model.endpoint.wire,
            "endpoint": model.endpoint.name,
            "url": model.endpoint.display_url,
            "model": model.spec,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "input_file_id": input_file_id,
            "requests": {cid: [p.key[1], p.key[2], p.key[3]] for cid, p in by_id.items()},
        }
        self.writer.write(record)  # before the first poll: a rerun resumes this batch
        self.usage[model.spec].retries += sum(1 for p in chunk if tries.get(p.key))
        return BatchRecord.model_validate(record)

    def _openai_body(self, model: ModelSpec, messages: list[dict[str, str]]) -> dict[str, Any]:
        return self._clients[model.spec].body(model.model, model.api, safe_messages(messages), self.plan.params_for(model))

    _anthropic_params = _openai_body  # one builder: the client knows its wire format

    def _needs_probe(self, model: ModelSpec, client: EndpointClient) -> bool:
        """A model no profile names and no answer confirmed yet: its request form is a guess."""
        if model.profile.pattern != "default" or client.form_confirmed(model.model):
            return False
        return not any(r.ok and not r.cached for r in self.plan.done.values() if r.model == model.spec)

    async def _probe(self, model: ModelSpec, client: EndpointClient, first: Pending, tries: dict[CallKey, int],
                     settled: set[CallKey]) -> None:
        """Send one request synchronously, so that the model's request form is confirmed (or
        adjusted) before a whole batch is built in it; recorded like any synchronous call."""
        params = self.plan.params_for(model)
        attempt = 0
        while True:
            attempt += 1
            try:
                completion = await client.complete(model.model, model.api, first.messages, params)
            except asyncio.CancelledError:
                raise
            except CallError as err:
                if err.kind == "auth":
                    self._auth_failed(model, err)
                    return
                if err.retryable and attempt <= self.plan.retries:
                    await asyncio.sleep(backoff_delay(attempt, err.retry_after, self._rng))
                    continue
                self._fail(first.key, attempt, err.kind, err.message, batch=False)
                settled.add(first.key)
                return
            break
        usage = self.usage[model.spec]
        usage.requests += 1
        usage.input_tokens += completion.input_tokens or 0
        usage.output_tokens += completion.output_tokens or 0
        self.cache.put(self._cache_key(model, first.messages, first.key[2]), completion.to_json())
        self._record({**_base(first.key), **completion.to_json(), "cached": False, "latency_ms": None, "attempts": attempt})

    # -- poll and collect ---------------------------------------------------------------

    async def _collect(
        self, model: ModelSpec, client: EndpointClient, rec: BatchRecord, tries: dict[CallKey, int], settled: set[CallKey]
    ) -> None:
        keys = {cid: (model.spec, item, sample, turn) for cid, (item, sample, turn) in rec.requests.items()}
        try:
            status, answers, reason = await self._wait_and_fetch(model, client, rec)
        except CallError as err:
            if err.kind == "auth":
                self._auth_failed(model, err)
            else:
                self.on_warning(f"{model.spec}: could not download the results of batch {rec.id} ({err.message}); "
                                f"rerun the same command to collect them")
            settled.update(keys.values())  # left in the run file as "submitted": a rerun resumes it
            return
        again: dict[str, int] = {}  # error kind -> requests that go into the follow-up batch
        for cid, key in keys.items():
            prior = self.plan.done.get(key)
            if prior is not None and prior.settled or key[1] not in self._items:
                continue
            got = answers.get(cid)
            if isinstance(got, Completion):
                self._succeed(model, key, got, tries.get(key, 0) + 1)
                continue
            if got is None:
                got = CallError(f"batch_{status}", f"no answer: batch {rec.id} {status}{reason}", retryable=True)
            tries[key] = tries.get(key, 0) + 1
            if tries[key] >= MAX_BATCH_TRIES:
                self._fail(key, tries[key], got.kind, got.message)
                settled.add(key)
            else:
                again[got.kind] = again.get(got.kind, 0) + 1
        if again:
            kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(again.items()))
            self.on_warning(f"{model.spec}: {sum(again.values())} of {len(keys)} requests of batch {rec.id} got no answer "
                            f"({kinds}){reason}; sending them once more in a follow-up batch")
        self.writer.write({"type": "batch", "id": rec.id, "state": "collected", "status": status})

    async def _wait_and_fetch(
        self, model: ModelSpec, client: EndpointClient, rec: BatchRecord
    ) -> tuple[str, dict[str, Completion | CallError], str]:
        """Poll until the batch ends; (final status, answers by custom_id, reason for what is missing)."""
        anthropic = model.endpoint.wire == "anthropic"
        delay = min(1.0, self.poll_s)
        warned = False
        while True:
            try:
                if anthropic:
                    obj = await self._api(client, "poll", lambda c: c.messages.batches.retrieve(rec.id))
                    ended, status = obj.processing_status == "ended", "ended"
                else:
                    obj = await self._api(client, "poll", lambda c: c.batches.retrieve(rec.id))
                    ended, status = obj.status in _OPENAI_ENDED, str(obj.status)
            except CallError as err:
                if err.kind == "auth":
                    raise
                if not err.retryable:  # 404: the provider no longer knows it (deleted, wrong account)
                    return "lost", {}, f" ({err.message})"
                if not warned:
                    self.on_warning(f"{model.spec}: polling batch {rec.id} failed ({err.message}); still polling")
                    warned = True
                ended = False
            if ended:
                break
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.poll_s)
        if anthropic:
            return status, await self._anthropic_results(model, client, rec), ""
        reason = ""
        if status == "failed":
            errors = getattr(getattr(obj, "errors", None), "data", None) or []
            reason = f": {_short(errors[0].message)}" if errors and getattr(errors[0], "message", None) else ""
        answers: dict[str, Completion | CallError] = {}
        for file_id in (obj.output_file_id, obj.error_file_id):
            if file_id:
                content = await self._api(client, "download", lambda c, f=file_id: c.files.content(f))
                for line in read_lines(lines_of(content.text)):  # a line that is not JSON answers nothing
                    row = line.value
                    if isinstance(row, dict) and isinstance(row.get("custom_id"), str):
                        answers[row["custom_id"]] = self._openai_answer(model, rec.id, row)
        return status, answers, reason

    async def _anthropic_results(self, model: ModelSpec, client: EndpointClient, rec: BatchRecord) -> dict[str, Completion | CallError]:
        async def fetch(c: Any) -> list[Any]:
            return [r async for r in await c.messages.batches.results(rec.id)]

        answers: dict[str, Completion | CallError] = {}
        for row in await self._api(client, "download", fetch):
            result = row.result
            kind = getattr(result, "type", None)
            if kind == "succeeded":
                answers[row.custom_id] = self._answer(lambda: parse_anthropic(_as_dict(result.message)), model)
            elif kind == "errored":
                err = getattr(getattr(result, "error", None), "error", None)
                etype = str(getattr(err, "type", None) or "error")
                message = _short(str(getattr(err, "message", None) or "no detail"))
                answers[row.custom_id] = self._rejected(model, rec.id, 400, {"error": {"type": etype, "message": message}},
                                                        message) if etype == "invalid_request_error" else \
                    CallError(etype, f"{etype} inside batch {rec.id}: {message}", retryable=True)
            elif kind in ("expired", "canceled"):
                answers[row.custom_id] = CallError(f"batch_{kind}", f"no answer: batch {rec.id} ended before this request ran "
                                                   f"({kind})", retryable=True)
        return answers

    def _openai_answer(self, model: ModelSpec, batch_id: str, row: dict[str, Any]) -> Completion | CallError:
        response = row.get("response") if isinstance(row.get("response"), dict) else {}
        status, body = response.get("status_code"), response.get("body")
        if status == 200 and isinstance(body, dict):
            return self._answer(lambda: parse_openai(body, model.api), model)
        if status in (400, 403, 422) and isinstance(body, dict) and _is_policy_error(body):
            return Completion(text="", finish_reason=_policy_code(body), api_refusal=True)
        if status in (400, 422) and isinstance(body, dict):
            err = body.get("error", body)
            message = _short(str(err.get("message"))) if isinstance(err, dict) and err.get("message") else "no detail"
            return self._rejected(model, batch_id, status, body, message)
        error = row.get("error")
        if isinstance(error, dict) and not isinstance(status, int):
            code = str(error.get("code") or "batch_error")
            return CallError(code, f"{code} inside batch {batch_id}: {_short(str(error.get('message') or 'no detail'))}", retryable=True)
        err = body.get("error", body) if isinstance(body, dict) else None
        message = _short(str(err.get("message"))) if isinstance(err, dict) and err.get("message") else "no detail"
        code = status if isinstance(status, int) else 0
        return CallError(f"http_{code}", f"{code} inside batch {batch_id}: {message}",
                         retryable=is_retryable_status(code), status=code or None)

    # -- plumbing -----------------------------------------------------------------------

    async def _api(self, client: EndpointClient, where: str, fn: Callable[[Any], Awaitable[Any]], *, submit: bool = False) -> Any:
        """One SDK call with the run's retry ladder; failures arrive as ``CallError``."""
        sdk = client._get()
        attempt = 0
        while True:
            attempt += 1
            try:
                return await fn(sdk)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - translated like every wire error
                err = client._translate(exc)
            if submit and err.status in (404, 405):
                raise NoBatchAPI(client.endpoint.display_url, where)
            if err.kind == "auth" or not err.retryable or attempt > self.plan.retries:
                raise err
            await asyncio.sleep(backoff_delay(attempt, err.retry_after, self._rng))

    def _cache_key(self, model: ModelSpec, messages: list[dict[str, str]], sample: int) -> str:
        ep = model.endpoint
        params = self._clients[model.spec].effective(model.model, self.plan.params_for(model))
        return cache_key(ep.base_url, ep.wire, model.api, model.model, messages, params.cache_fields(), sample)

    def _rejected(self, model: ModelSpec, batch_id: str, status: int, body: Any, message: str) -> CallError:
        """A 400 inside a batch: adjusted (retried in the follow-up batch in the new form) or final."""
        client = self._clients[model.spec]
        sent = client.body(model.model, model.api, [], self.plan.params_for(model))
        error = client.note_rejection(model.model, model.api, sent, status, body, message)
        if error is None:
            return CallError("adjusted", f"sent again in the adjusted form after: {message}", retryable=True)
        return CallError(error.kind, f"inside batch {batch_id}: {error.message}", retryable=False, status=status)

    def _answer(self, parse: Callable[[], Completion], model: ModelSpec) -> Completion | CallError:
        """A batch answer, read and checked by the rules of the synchronous client."""
        try:
            return check_answer(check_size(parse(), model.endpoint.display_url), self.plan.params_for(model))
        except CallError as err:
            return err

    def _messages_for(self, key: CallKey) -> list[dict[str, str]] | None:
        """The conversation a request sent, rebuilt from the suite and the recorded first turn."""
        _spec, item_id, _sample, turn = key
        item = self._items.get(item_id)
        if item is None:
            return None
        if turn == 0:
            model = next((m for m in self.plan.models if m.spec == key[0]), None)
            return model.messages(item.turn_messages(0)) if model is not None else None
        first = self.plan.done.get((key[0], item_id, key[2], 0))
        model = next((m for m in self.plan.models if m.spec == key[0]), None)
        if item.turns is None or first is None or not first.ok or model is None:
            return None
        return model.messages(item.turn_messages(1, first.text or ""))

    def _succeed(self, model: ModelSpec, key: CallKey, completion: Completion, attempts: int) -> None:
        usage = self.usage[model.spec]
        usage.requests += 1
        usage.input_tokens += completion.input_tokens or 0
        usage.output_tokens += completion.output_tokens or 0
        messages = self._messages_for(key)
        if messages is not None:
            self.cache.put(self._cache_key(model, messages, key[2]), completion.to_json())
        self._record({**_base(key), **completion.to_json(), "cached": False, "latency_ms": None, "attempts": attempts, "batch": True})

    def _fail(self, key: CallKey, attempts: int, kind: str, message: str, batch: bool = True) -> None:
        self.usage[key[0]].failed += 1
        self._record({**_base(key), "text": None, "attempts": attempts, "error": {"kind": kind, "message": message}, "batch": batch})

    def _auth_failed(self, model: ModelSpec, err: CallError) -> None:
        if model.spec not in self.auth_failures:
            self.auth_failures[model.spec] = f"{model.spec}: {err.message}"
            self.on_warning(f"{model.spec}: {err.message}; skipping its remaining items")

    def _record(self, data: dict[str, Any]) -> CallRecord:
        return record_call(self.writer, self.plan, data, self.on_call)


def _base(key: CallKey) -> dict[str, Any]:
    return {"type": "call", "model": key[0], "item": key[1], "sample": key[2], "turn": key[3]}



def _as_dict(message: Any) -> Any:
    """The SDK's typed message as the plain body ``wire.parse_anthropic`` reads."""
    dump = getattr(message, "model_dump", None)
    return dump(mode="json") if callable(dump) else message
