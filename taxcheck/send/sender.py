"""One request, the one way: cache, budget, rate controller, retries, usage.

Both the models under test and the judge send through a ``Sender``, so caching, the
retry ladder, rate-limit control and the usage accounting behave identically for both.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from taxcheck.cost.budget import Budget, Reservation, may_have_been_billed
from taxcheck.send.cache import Cache, cache_key
from taxcheck.send.clients import EndpointClient
from taxcheck.errors import CallError
from taxcheck.cost.estimate import estimate_tokens
from taxcheck.send.limits import AdaptiveLimit, costs
from taxcheck.send.retry import RATE_LIMIT_DEADLINE_S, Tries, is_rate_limited_status, next_delay
from taxcheck.send.specs import ModelSpec
from taxcheck.send.wire import Completion, Params



@dataclass
class Usage:
    requests: int = 0
    cached: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    failed: int = 0
    retries: int = 0


@dataclass
class SendResult:
    completion: Completion | None = None
    error: CallError | None = None
    cached: bool = False
    attempts: int = 0
    latency_ms: float = 0.0
    auth_failed: bool = False
    budget_stopped: bool = False  # not sent (or not kept): it could have passed --max-cost


class Sender:
    """Sends requests for one run (or judge pass) and keeps its usage.

    Retries run through tenacity with the policy as one pure function (``retry.next_delay``,
    see ``_policy``); each attempt takes a slot of the rate controller and tells it how it
    ended, so the slot is free while a call waits out a Retry-After.
    """

    deadline_s = RATE_LIMIT_DEADLINE_S  # per call, from its first refusal: see retry.py

    def __init__(
        self,
        cache: Cache,
        params: Params,
        retries: int,
        on_warning: Callable[[str], None] = lambda _m: None,
        budget: Budget | None = None,
    ):
        self.budget = budget
        self.cache = cache
        self.params = params
        self.retries = retries
        self.on_warning = on_warning
        self.usage: dict[str, Usage] = {}
        self.auth_failures: dict[str, str] = {}  # model spec -> one line
        # Endpoints that never answered and then refused connections after every retry: a
        # server that is down (or a wrong URL) is not worth minutes of retries per item.
        self.unreachable: dict[str, str] = {}  # base URL -> one line
        # Models whose first answer was a 404 (a mistyped name, a wrong base path): every
        # other request would get the same, so none is sent; a rerun tries again.
        self.missing: dict[str, str] = {}  # model spec -> the 404's message
        self._answered: set[str] = set()
        self._answered_models: set[str] = set()
        self._rng = random.Random()

    def usage_of(self, spec: str) -> Usage:
        u = self.usage.get(spec)
        if u is None:
            u = self.usage[spec] = Usage()
        return u

    async def send(
        self, model: ModelSpec, messages: list[dict[str, str]], sample: int, client: EndpointClient, limit: AdaptiveLimit,
        params: Params | None = None,
    ) -> SendResult:
        """``params``: this model's request parameters (default: the sender's own, e.g. the judge's)."""
        base = params or self.params
        usage = self.usage_of(model.spec)
        key = None
        if self.cache.enabled:  # with --no-cache, no hashing of the conversation per request
            key = cache_key(
                model.endpoint.base_url, model.endpoint.wire, model.api, model.model, messages,
                client.effective(model.model, base).cache_fields(), sample,
            )
        hit = self.cache.get(key) if key is not None else None
        if hit is not None:
            usage.cached += 1
            return SendResult(completion=Completion.from_json(hit), cached=True)
        params = base
        reserved: Reservation | None = None
        if self.budget is not None:
            reserved = await self.budget.reserve(model.spec, messages, base.output_cap)
            if reserved is None:
                return SendResult(budget_stopped=True)
            params = self._within(base, reserved)
            if params is None:
                self.budget.release(reserved)
                return SendResult(budget_stopped=True)
        cost = costs(estimate_tokens(messages), params.output_cap)
        # Build the SDK client (importing the SDK takes a second or more) before the rate
        # controller times the send: a ceiling or bucket must see when the request leaves.
        client._get()
        tries = Tries()
        attempts = 0
        started = time.perf_counter()
        try:
            async for attempt in AsyncRetrying(**self._policy(tries)):
                with attempt:
                    if self.budget is not None and reserved is None:  # the last attempt was billed: reserve afresh
                        reserved = await self.budget.reserve(model.spec, messages, base.output_cap)
                        within = self._within(base, reserved) if reserved is not None else None
                        if within is None:
                            if reserved is not None:
                                self.budget.release(reserved)
                            usage.retries += max(0, attempts - 1)
                            return SendResult(budget_stopped=True, attempts=attempts)
                        params = within
                        cost = costs(estimate_tokens(messages), params.output_cap)
                    attempts += 1
                    ticket = await limit.acquire(model.model, cost, retry=attempts > 1)
                    gone = self._gone(model)  # decided while this call waited (a slot, a retry): do not send
                    if gone is not None:
                        limit.finish(ticket, None)
                        if reserved is not None:
                            self.budget.release(reserved)
                        attempts -= 1
                        usage.retries += max(0, attempts - 1)
                        if gone.kind == "auth":
                            return SendResult(auth_failed=True, attempts=attempts)
                        usage.failed += 1
                        return SendResult(error=gone, attempts=attempts)
                    try:
                        completion = await client.complete(model.model, model.api, messages, params)
                    except CallError as exc:
                        limit.finish(ticket, exc.status, getattr(exc, "headers", None))
                        if reserved is not None and may_have_been_billed(exc.status):
                            self.budget.charge(reserved)
                            reserved = None
                        raise
                    except BaseException:
                        limit.finish(ticket, None)
                        raise
                    limit.finish(ticket, 200, completion.headers)
        except CallError as exc:
            if reserved is not None:
                self.budget.release(reserved)
            usage.retries += max(0, attempts - 1)
            if exc.kind == "auth":
                if model.spec not in self.auth_failures:
                    self.auth_failures[model.spec] = f"{model.spec}: {exc.message}"
                    self.on_warning(f"{model.spec}: {exc.message}; skipping its remaining items")
                return SendResult(auth_failed=True, error=exc, attempts=attempts)
            usage.failed += 1
            url = model.endpoint.base_url
            if exc.kind == "connection" and url not in self._answered and url not in self.unreachable:
                self.unreachable[url] = exc.message
                self.on_warning(f"{exc.message} after {attempts} tries and never answered; "
                                "is the server running and the URL right? Its remaining items are skipped")
            if exc.kind == "not_found" and model.spec not in self._answered_models and model.spec not in self.missing:
                self.missing[model.spec] = exc.message
                self.on_warning(f"{model.spec}: {exc.message}; its remaining items are not sent "
                                f"(check the model name and the base URL: `taxcheck models {model.spec}`)")
            return SendResult(error=exc, attempts=attempts)
        self._answered.add(model.endpoint.base_url)
        self._answered_models.add(model.spec)
        usage.retries += attempts - 1
        usage.requests += 1
        usage.input_tokens += completion.input_tokens or 0
        usage.output_tokens += completion.output_tokens or 0
        if reserved is not None:
            self.budget.settle(reserved, model.spec, completion.input_tokens, completion.output_tokens)
            if reserved.reduced and completion.cut_off:
                self.budget.discard()  # cut by the smaller ceiling: not the answer the run asked for
                return SendResult(budget_stopped=True, attempts=attempts)
        if key is not None:
            self.cache.put(key, completion.to_json())
        latency = round((time.perf_counter() - started) * 1000, 1)
        return SendResult(completion=completion, attempts=attempts, latency_ms=latency)

    @staticmethod
    def _within(params: Params, reserved: Reservation) -> Params | None:
        """``params`` with the cap a reservation allows (thinking is spent on top of the cap:
        it stays whole); None when what is left would not hold an answer."""
        if reserved.max_tokens == params.output_cap:
            return params
        cap = reserved.max_tokens - (params.thinking_budget or 0)
        return replace(params, max_tokens=cap) if cap >= 1 else None

    def not_sent(self, model: ModelSpec) -> dict[str, str] | None:
        """The error recorded for a call of this model that will not be sent, or None: its
        endpoint never answered, or the model is not there (the same kind and message as the
        404 itself, so the report groups them as one cause)."""
        down = self.unreachable.get(model.endpoint.base_url)
        if down is not None:
            return {"kind": "unreachable", "message": f"not sent: {down}"}
        missing = self.missing.get(model.spec)
        if missing is not None:
            return {"kind": "not_found", "message": missing}
        return None

    def _gone(self, model: ModelSpec) -> CallError | None:
        """Why this model's requests are no longer sent, if they are not: its key was refused,
        or ``not_sent`` says so."""
        if model.spec in self.auth_failures:
            return CallError("auth", self.auth_failures[model.spec], retryable=False)
        why = self.not_sent(model)
        return CallError(why["kind"], why["message"], retryable=False) if why is not None else None

    def _policy(self, tries: Tries) -> dict:
        """The retry policy as tenacity's parts, all asking one pure function (``retry.next_delay``):
        ``stop`` decides and keeps the delay, ``wait`` hands it to tenacity's sleep. Only a
        retryable ``CallError`` is retried; anything else is re-raised as it was."""
        decided: list[float] = []

        def stop(state: RetryCallState) -> bool:
            delay = self._next_delay(tries, state.outcome.exception())
            decided[:] = [] if delay is None else [delay]
            return delay is None

        return {
            "retry": retry_if_exception(lambda e: isinstance(e, CallError) and e.retryable),
            "stop": stop,
            "wait": lambda _state: decided[0] if decided else 0.0,
            "reraise": True,
        }

    def _next_delay(self, tries: Tries, exc: CallError) -> float | None:
        """Count the failed attempt and ask ``retry.next_delay``; a call given up on for being
        rate-limited too long says so in its message."""
        limited = is_rate_limited_status(exc.status)
        now = time.monotonic()
        if limited:
            if not tries.rate_limited:  # the deadline runs from the first refusal, not from a queue
                tries.first_at = now
            tries.rate_limited += 1
        else:
            tries.other += 1
        delay = next_delay(tries, limited, exc.retry_after, self.retries, now, self.deadline_s, self._rng)
        if delay is None and limited and self.retries > 0:
            exc.message += (f" (rate-limited {tries.rate_limited} times in {now - tries.first_at:.0f} s; "
                            f"gave up at the {self.deadline_s:g} s deadline per call)")
            exc.args = (exc.message,)
        return delay
