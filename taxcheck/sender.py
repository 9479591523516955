"""One request, the one way: cache, concurrency slot, retries, usage.

Both the models under test and the judge send through a ``Sender``, so caching, the
retry ladder, rate-limit back-off and the usage accounting behave identically for both.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt

from taxcheck.budget import Budget
from taxcheck.cache import Cache, cache_key
from taxcheck.clients import EndpointClient
from taxcheck.errors import CallError
from taxcheck.estimate import estimate_tokens
from taxcheck.limits import AdaptiveLimit
from taxcheck.retry import backoff_delay
from taxcheck.specs import ModelSpec
from taxcheck.wire import Completion, Params


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
    budget_stopped: bool = False  # not sent: it could have passed --max-cost


def _retryable(exc: BaseException) -> bool:
    return isinstance(exc, CallError) and exc.retryable


class Sender:
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
        self._answered: set[str] = set()
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
        params = params or self.params
        usage = self.usage_of(model.spec)
        key = None
        if self.cache.enabled:  # with --no-cache, no hashing of the conversation per request
            key = cache_key(
                model.endpoint.base_url, model.endpoint.wire, model.api, model.model, messages,
                client.effective(model.model, params).cache_fields(), sample,
            )
        hit = self.cache.get(key) if key is not None else None
        if hit is not None:
            usage.cached += 1
            return SendResult(completion=Completion.from_json(hit), cached=True)
        reserved = 0.0
        if self.budget is not None:
            held = self.budget.reserve(model.spec, messages, params.output_cap)
            if held is None:
                return SendResult(budget_stopped=True)
            reserved = held
        est_tokens = estimate_tokens(messages) + params.output_cap if limit.ceiling.active else 0
        attempts = 0
        started = time.perf_counter()
        try:
            async for attempt in AsyncRetrying(
                stop=stop_after_attempt(self.retries + 1),
                wait=self._wait,
                retry=retry_if_exception(_retryable),
                reraise=True,
            ):
                with attempt:
                    if model.spec in self.auth_failures:
                        return SendResult(auth_failed=True, attempts=attempts)
                    attempts += 1
                    await limit.ceiling.acquire(est_tokens)
                    generation = await limit.acquire()
                    try:
                        completion = await client.complete(model.model, model.api, messages, params)
                    except CallError as exc:
                        if exc.status == 429:
                            limit.on_rate_limited(generation)
                        raise
                    finally:
                        limit.release()
                    limit.on_success()
                    limit.ceiling.observe(completion.headers)
        except CallError as exc:
            if self.budget is not None:
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
            return SendResult(error=exc, attempts=attempts)
        self._answered.add(model.endpoint.base_url)
        if self.budget is not None:
            self.budget.settle(reserved, model.spec, completion.input_tokens, completion.output_tokens)
        usage.retries += attempts - 1
        usage.requests += 1
        usage.input_tokens += completion.input_tokens or 0
        usage.output_tokens += completion.output_tokens or 0
        if key is not None:
            self.cache.put(key, completion.to_json())
        latency = round((time.perf_counter() - started) * 1000, 1)
        return SendResult(completion=completion, attempts=attempts, latency_ms=latency)

    def _wait(self, retry_state) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        hint = exc.retry_after if isinstance(exc, CallError) else None
        return backoff_delay(retry_state.attempt_number, hint, self._rng)
