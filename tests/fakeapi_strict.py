"""The FakeAPI's strictness: which request gets a 400 before any script runs, and the record of it.

Why a separate module: ``fakeapi.py`` owns HTTP, scripting and batches; this owns the
rules that make the fake as strict as the providers (bodies validated against the SDK
types in ``fakeapi_validate``, model behaviour from ``fakeapi_models``) and the bookkeeping
that turns a rejected body into a failing test. ``FakeAPI`` inherits ``StrictMixin``.

Order of events for one request, as at a real provider:

1. a scripted failure (any queued reply that is not a plain 200 answer: hang, reset,
   malformed, empty, 400, 401, 429, 5xx, ...) is sent as scripted whatever the body says:
   the test meant that request to fail that way;
2. the body is validated; an invalid one gets the provider's 400 and is recorded in
   ``invalid_requests`` (the ``fake_api`` fixture fails the test for it at teardown unless
   the test set ``allow_invalid = True``); it is recorded even when step 1 answered it;
3. the model's profile may refuse a parameter (a behavioural 400, not recorded);
4. only then is a scripted answer (a queued 200) consumed, or the responder called, and
   the success body shaped by the profile (reasoning tokens, thinking, budgets): no model
   runs on a request the API refused, so the answer waits for the next valid request.
"""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from fakeapi_models import ModelProfile, KINDS, applies, check_params, default_profile, matches, shape
from fakeapi_validate import Rejection, check_body, warm_up

if TYPE_CHECKING:  # fakeapi imports this module: no import cycle at run time
    from fakeapi import Reply, Request

__all__ = ["InvalidRequest", "StrictMixin", "is_scripted_failure"]

_VALIDATED_KINDS = ("chat", "completions", "anthropic")


@dataclass(frozen=True)
class InvalidRequest:
    """A body the provider would have rejected as invalid (whatever the model)."""

    path: str
    reason: str
    model: str | None
    request: Request


def is_scripted_failure(reply: Reply) -> bool:
    """A scripted failure, sent whatever the body; only a plain 200 answer waits for a valid body."""
    faults = reply.hang or reply.reset or reply.malformed or reply.empty
    return bool(faults) or reply.status != 200


class StrictMixin:
    """Validation, model profiles and the invalid-request record of a ``FakeAPI``."""

    _lock: threading.Lock

    def _init_strict(self) -> None:
        warm_up()  # once per process: building the validators must not stall the server's loop
        self.validate = True  # False: accept any body (profiles still apply), as before issue 10
        self.allow_invalid = False  # True: the test sends invalid bodies on purpose
        self.invalid_requests: list[InvalidRequest] = []
        self._profiles: list[tuple[str, ModelProfile]] = []

    def _reset_strict(self) -> None:
        self.invalid_requests.clear()
        self._profiles.clear()

    # ----------------------------------------------------------------- scripting

    def profile(self, pattern: str, kind: str | None = None, **changes: Any) -> ModelProfile:
        """Make models matching ``pattern`` (fnmatch, case-insensitive) behave as ``kind``.

        ``kind`` is one of ``fakeapi_models.KINDS`` ("plain", "openai_reasoning",
        "openai_chat", "local_reasoning", "anthropic"); without it, the built-in profile of
        ``pattern`` read as a model name is the start. ``changes`` replace profile fields,
        e.g. ``api.profile("o4-mini", reasoning_tokens=900)`` or
        ``api.profile("qwen3*", reasoning_style="think_tags")``. Later calls win.
        """
        if kind is not None and kind not in KINDS:
            raise ValueError(f"unknown profile kind {kind!r}; one of {sorted(KINDS)}")
        if kind is not None:
            base = KINDS[kind]
        else:
            base = default_profile(pattern, "anthropic" if matches("claude*", pattern) else "openai")
        profile = replace(base, **changes)
        with self._lock:
            self._profiles.insert(0, (pattern, profile))
        return profile

    def profile_for(self, model: str | None, wire: str) -> ModelProfile:
        """The profile a request for ``model`` on ``wire`` ("openai" / "anthropic") gets."""
        with self._lock:
            scripted = list(self._profiles)
        for pattern, profile in scripted:
            if matches(pattern, model) and applies(profile, wire):
                return profile
        return default_profile(model, wire)

    def invalid_report(self) -> str:
        """'' when every body was valid; else what was rejected, for a failing test."""
        with self._lock:
            records = list(self.invalid_requests)
        if not records:
            return ""
        counts = Counter((r.path, r.model, r.reason) for r in records)
        lines = [f"  {n}x POST {path} model={model}: {reason}" for (path, model, reason), n in counts.most_common(10)]
        more = len(counts) - 10
        tail = [f"  ... and {more} more distinct rejections"] if more > 0 else []
        return "\n".join([
            f"fakeapi rejected {len(records)} request bodies that the real API rejects as invalid "
            "(set fake_api.allow_invalid = True if the test sends them on purpose):", *lines, *tail,
        ])

    # ----------------------------------------------------------------- hooks for FakeAPI

    def _strict_gate(self, request: Request) -> Rejection | None:
        """The 400 the provider sends instead of running the model; records invalid bodies."""
        if request.kind not in _VALIDATED_KINDS:
            return None
        if self.validate:
            rejection = check_body(request.kind, request.body, request.headers)
            if rejection is not None:
                if rejection.invalid:
                    record = InvalidRequest(request.path, rejection.reason, request.model, request)
                    with self._lock:
                        self.invalid_requests.append(record)
                return rejection
        if not isinstance(request.body, dict):
            return None
        return check_params(request.kind, request.body, self.profile_for(request.model, _wire(request)))

    def _shaped(self, request: Request, reply: Reply, response: dict[str, Any]) -> dict[str, Any]:
        """A success body after the model's profile has spent its reasoning and budget."""
        if request.kind not in _VALIDATED_KINDS or not isinstance(request.body, dict):
            return response
        return shape(request.kind, request.body, reply, response, self.profile_for(request.model, _wire(request)))


def _wire(request: Request) -> str:
    return "anthropic" if request.kind == "anthropic" else "openai"
