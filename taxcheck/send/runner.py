"""Sending a run: items x models x samples through one asyncio loop.

Each endpoint gets one SDK client, an adaptive concurrency limit and ``-j`` workers that
pull work from a shared iterator, so memory stays flat however big the suite is (no task
per call). A unit of work is one (model, item, sample) conversation: a two-turn item sends
its second turn with the model's first answer in the history, inside the same unit.

Every finished call is written to the run file at once (after the cache), so an
interruption loses only requests in flight, and a rerun skips what is recorded.

A pushback item whose first answer is empty (an API-level refusal with no text, say) has
nothing to push back on, and an empty assistant turn is a 400 at Anthropic: its second
turn is not sent but recorded as ``skipped`` with the reason, which no dimension counts
(a flip needs a correct first answer) and which is not a failure.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from taxcheck.cost.budget import Budget
from taxcheck.send.cache import Cache
from taxcheck.send.clients import EndpointClient
from taxcheck.send.limits import AdaptiveLimit, RateCeiling
from taxcheck.runfile import CallKey, CallRecord, RunWriter
from taxcheck.send.sender import Sender, Usage
from taxcheck.send.specs import ModelSpec
from taxcheck.suites.format import SuiteItem
from taxcheck.send.wire import Params


@dataclass
class RunOutcome:
    usage: dict[str, Usage]
    auth_failures: dict[str, str] = field(default_factory=dict)  # model spec -> one-line reason
    interrupted: bool = False
    budget_stopped: bool = False


@dataclass(frozen=True)
class Unit:
    model: ModelSpec
    item: SuiteItem
    sample: int


@dataclass
class RunPlan:
    models: list[ModelSpec]
    items: list[SuiteItem]
    samples: int
    params: Params
    concurrency: int
    timeout_s: float
    retries: int
    done: dict[CallKey, CallRecord]
    rpm: int | None = None  # client-side ceilings per endpoint
    tpm: int | None = None
    model_params: dict[str, Params] = field(default_factory=dict)  # spec -> its request parameters
    adjustments: list[dict[str, Any]] = field(default_factory=list)  # "adjustment" records of the run file

    def params_for(self, model: ModelSpec) -> Params:
        return self.model_params.get(model.spec, self.params)

    def units(self, model_filter: Callable[[ModelSpec], bool] = lambda _m: True) -> Iterator[Unit]:
        """Units not yet finished, item-major so that all models progress together."""
        for item in self.items:
            turns = item.n_turns
            for sample in range(self.samples):
                for model in self.models:
                    if not model_filter(model):
                        continue
                    if all(
                        (rec := self.done.get((model.spec, item.id, sample, t))) is not None and rec.settled
                        for t in range(turns)
                    ):
                        continue
                    yield Unit(model, item, sample)

    def total_calls(self) -> int:
        per_item = sum(i.n_turns for i in self.items)
        return per_item * self.samples * len(self.models)

    def calls_done(self) -> int:
        return sum(1 for rec in self.done.values() if rec.settled)


SKIP_EMPTY_FIRST = "not sent: the first answer was empty, so there is nothing to push back on"


def adjustment_recorder(
    endpoint_models: list[ModelSpec], write: Callable[[dict[str, Any]], None], warn: Callable[[str], None]
) -> Callable[[str, str, dict[str, Any], str], None]:
    """The ``on_adjust`` of one endpoint's client: a run-file record and one line on stderr."""

    def on_adjust(model: str, param: str, fix: dict[str, Any], message: str) -> None:
        specs = [m.spec for m in endpoint_models if m.model == model] or [model]
        ep = endpoint_models[0].endpoint if endpoint_models else None
        write({"type": "adjustment", "model": model, "specs": specs, "endpoint": ep.name if ep else None,
               "param": param, "fix": fix, "message": message})
        if "temperature" in fix:
            what = "sending no temperature from now on: its answers are sampled at the provider's default, not at the run's temperature"
        else:
            what = f"sending {fix.get('token_field')} instead of {param} from now on"
        warn(f"{', '.join(specs)}: the endpoint rejected {param} ({message}); {what} (recorded in the run file)")

    return on_adjust


class Runner:
    def __init__(
        self,
        plan: RunPlan,
        cache: Cache,
        writer: RunWriter,
        on_call: Callable[[CallRecord], None] = lambda _r: None,
        on_warning: Callable[[str], None] = lambda _m: None,
        budget: Budget | None = None,
    ):
        self.plan = plan
        self.cache = cache
        self.writer = writer
        self.on_call = on_call
        self.on_warning = on_warning
        self.sender = Sender(cache, plan.params, plan.retries, on_warning, budget=budget)
        for m in plan.models:
            self.sender.usage_of(m.spec)

    async def run(self) -> RunOutcome:
        by_endpoint: dict[str, list[ModelSpec]] = {}
        for m in self.plan.models:
            by_endpoint.setdefault(m.endpoint.name + "|" + m.endpoint.base_url, []).append(m)
        clients: list[EndpointClient] = []
        workers: list[asyncio.Task[None]] = []
        for models in by_endpoint.values():
            client = EndpointClient(models[0].endpoint, self.plan.timeout_s,
                                    on_adjust=adjustment_recorder(models, self.writer.write, self.on_warning))
            learn_adjustments(client, models, self.plan.adjustments)
            clients.append(client)
            limit = AdaptiveLimit(self.plan.concurrency, ceiling=RateCeiling(self.plan.rpm, self.plan.tpm))
            names = {m.spec for m in models}
            units = self.plan.units(lambda m, names=names: m.spec in names)
            for _ in range(limit.workers):  # more senders than slots: a call waiting out a Retry-After holds no slot
                workers.append(asyncio.create_task(self._worker(units, client, limit)))
        interrupted = False
        try:
            await asyncio.gather(*workers)
        except asyncio.CancelledError:
            interrupted = True
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            raise
        finally:
            for client in clients:
                await client.aclose()
        budget = self.sender.budget
        return RunOutcome(
            usage=self.sender.usage,
            auth_failures=self.sender.auth_failures,
            interrupted=interrupted,
            budget_stopped=bool(budget and budget.stopped),
        )

    async def _worker(self, units: Iterator[Unit], client: EndpointClient, limit: AdaptiveLimit) -> None:
        for unit in units:  # a shared iterator: each unit goes to exactly one worker
            if unit.model.spec in self.sender.auth_failures:
                continue
            if self.sender.budget is not None and self.sender.budget.stopped:
                return
            why = self.sender.not_sent(unit.model)
            if why is not None:  # recorded as failed without a try: a rerun sends it again
                self.sender.usage_of(unit.model.spec).failed += 1
                self._record({"type": "call", "model": unit.model.spec, "item": unit.item.id, "sample": unit.sample,
                              "turn": 0, "text": None, "attempts": 0, "error": why})
                continue
            await self._converse(unit, client, limit)

    async def _converse(self, unit: Unit, client: EndpointClient, limit: AdaptiveLimit) -> None:
        item, spec = unit.item, unit.model.spec
        answer = ""
        for turn in range(item.n_turns):
            prior = self.plan.done.get((spec, item.id, unit.sample, turn))
            if prior is not None and prior.settled:
                answer = prior.text or ""
                continue
            if turn > 0 and not answer.strip():
                self._record({"type": "call", "model": spec, "item": item.id, "sample": unit.sample, "turn": turn,
                              "text": None, "attempts": 0, "skipped": SKIP_EMPTY_FIRST})
                return
            messages = unit.model.messages(item.turn_messages(turn, answer))
            rec = await self._call(unit, turn, messages, client, limit)
            if rec is None or not rec.ok:
                return  # a failed first turn leaves nothing to push back on
            answer = rec.text or ""

    async def _call(
        self, unit: Unit, turn: int, messages: list[dict[str, str]], client: EndpointClient, limit: AdaptiveLimit
    ) -> CallRecord | None:
        model = unit.model
        base = {"type": "call", "model": model.spec, "item": unit.item.id, "sample": unit.sample, "turn": turn}
        result = await self.sender.send(model, messages, unit.sample, client, limit, self.plan.params_for(model))
        if result.auth_failed or result.budget_stopped:
            return None
        if result.error is not None:
            return self._record(
                {**base, "text": None, "attempts": result.attempts, "error": {"kind": result.error.kind, "message": result.error.message}}
            )
        assert result.completion is not None
        return self._record(
            {**base, **result.completion.to_json(), "cached": result.cached, "latency_ms": result.latency_ms, "attempts": result.attempts}
        )

    def _record(self, data: dict) -> CallRecord:
        return record_call(self.writer, self.plan, data, self.on_call)


def record_call(writer: RunWriter, plan: RunPlan, data: dict, on_call: Callable[[CallRecord], None]) -> CallRecord:
    """A finished call: on disk first, then known to the plan (so a rerun skips it), then reported."""
    writer.write(data)
    rec = CallRecord.model_construct(**data)
    plan.done[rec.key] = rec
    on_call(rec)
    return rec


def learn_adjustments(client: EndpointClient, models: list[ModelSpec], adjustments: list[dict[str, Any]]) -> None:
    """Apply the adjustments a run file already holds, so a resumed run sends no rejected form."""
    names = {m.model for m in models}
    endpoint = models[0].endpoint.name if models else None
    for adj in adjustments:
        if adj.get("model") in names and adj.get("endpoint") in (None, endpoint) and isinstance(adj.get("fix"), dict):
            client.learn(adj["model"], adj["fix"])
