"""One SDK client per endpoint, and the boundary where wire errors become ``CallError``.

The SDKs are imported here and only here, lazily, so that ``taxcheck --help``,
``suites`` and ``validate`` never pay their import cost (the openai SDK alone costs
~0.6 s, anthropic ~2 s on this machine). Requests go through the SDK clients (their auth,
headers, base URLs and error types) with the body built, and the answer read, by
``wire.py``, the rules the batch path shares; the HTTP transport under them reads bodies
through a byte cap (``transport.py``).

Refusals by the API itself (OpenAI ``finish_reason: content_filter``, a content-policy 400
such as ``bio_policy`` or Azure's ``content_filter``, Anthropic ``stop_reason: refusal``) are
*outputs*, not errors: they are returned as a ``Completion`` with ``api_refusal=True`` and
counted as refusals, because that is what the user of the model experiences. The codes are
listed next to the model profiles (``prompts/profiles.json``).

**Request forms that adjust.** A model's profile decides the first form of its requests
(``profiles.py``); a model the table does not know may still reject a parameter. When a 400
names ``temperature`` (dropped: the provider's default applies) or ``max_tokens`` /
``max_completion_tokens`` (the other one is sent), the client adjusts that model once,
tells ``on_adjust`` (the runner records it in the run file and says it on stderr) and
resends. Until a model's first request has come back, its other requests wait, so an
unknown model costs one rejected request, not a whole wave of them. Any other parameter a
400 names fails the call with that name in the message: dropping a reasoning effort or a
field the user asked for would change the experiment behind their back.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from taxcheck.errors import CallError
from taxcheck.send.profiles import api_refusal_codes
from taxcheck.send.retry import is_retryable_status, retry_after_seconds
from taxcheck.send.specs import Endpoint
from taxcheck.send.wire import (  # noqa: F401 - Params, Completion and the template are re-exported
    COMPLETIONS_STOP,
    MAX_RESPONSE_CHARS,
    Completion,
    Params,
    anthropic_body,
    check_answer,
    check_size,
    completions_prompt,
    openai_body,
    parse_anthropic,
    parse_openai,
    rejected_parameter,
    safe_messages,
    wire_safe,
)

_MAX_ERROR_CHARS = 300
_MAX_ADJUSTMENTS = 3  # temperature, then the token field: more than that is not a form problem
_POLICY_MESSAGE = re.compile(
    r"content (?:management )?policy|safety system|flagged as potentially violating", re.I
)
# Called when a model rejected a parameter: (model, parameter, the fix applied, server message).
OnAdjust = Callable[[str, str, dict[str, Any], str], None]


def _short(text: str, secret: str | None = None) -> str:
    """One line of at most _MAX_ERROR_CHARS; ``secret`` is scrubbed *before* the cut, so an
    echoed key cannot survive as a prefix at the edge."""
    text = " ".join(str(text).split())
    if secret and len(secret) >= 6:
        text = text.replace(secret, "***")
    return text if len(text) <= _MAX_ERROR_CHARS else text[: _MAX_ERROR_CHARS - 1] + "…"


def _rate_headers(headers: Any) -> dict[str, str]:
    try:
        return {k.lower(): v for k, v in headers.items() if "ratelimit" in k.lower() or "retry-after" in k.lower()}
    except Exception:  # a malformed response object: no hints, not a failure
        return {}


def adjustment_for(param: str, sent: dict[str, Any], api: str) -> dict[str, Any] | None:
    """The change to ``Params`` that answers a 400 rejecting ``param``, or None if there is none.

    Pure and small, so that each case is a row in a table of tests.
    """
    if param not in sent:
        return None  # the server complains about something we did not send
    if param == "temperature":
        return {"temperature": None}
    if api == "chat" and param == "max_tokens":
        return {"token_field": "max_completion_tokens"}
    if api == "chat" and param == "max_completion_tokens":
        return {"token_field": "max_tokens"}
    return None


class EndpointClient:
    """Sends requests to one endpoint; translates every failure into ``CallError``."""

    def __init__(self, endpoint: Endpoint, timeout_s: float, on_adjust: OnAdjust | None = None):
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self.on_adjust = on_adjust
        self._client: Any = None
        self._response_type: Any = None
        self._openai_hosted = endpoint.wire == "openai" and "api.openai.com" in endpoint.base_url
        self._adjust: dict[str, dict[str, Any]] = {}  # model -> Params fields changed after a 400
        self._settled: set[str] = set()  # models whose first request has come back
        self._gates: dict[str, asyncio.Lock] = {}

    def _get(self) -> Any:
        if self._client is None:
            ep = self.endpoint
            import httpx2

            from taxcheck.send.transport import CappedTransport

            self._response_type = httpx2.Response
            if ep.wire == "anthropic":
                import anthropic

                http = anthropic.DefaultAsyncHttpxClient(
                    transport=CappedTransport(limits=anthropic._constants.DEFAULT_CONNECTION_LIMITS)
                )
                self._client = anthropic.AsyncAnthropic(
                    api_key=ep.api_key, base_url=ep.base_url, max_retries=0, timeout=self.timeout_s, http_client=http
                )
            else:
                import openai

                http = openai.DefaultAsyncHttpxClient(
                    transport=CappedTransport(limits=openai._constants.DEFAULT_CONNECTION_LIMITS)
                )
                self._client = openai.AsyncOpenAI(
                    api_key=ep.api_key, base_url=ep.base_url, max_retries=0, timeout=self.timeout_s, http_client=http
                )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            try:
                await self._client.close()
            except Exception:
                pass
            self._client = None

    # -- request forms ------------------------------------------------------------------

    @property
    def hosted_openai(self) -> bool:
        return self._openai_hosted

    def effective(self, model: str, params: Params) -> Params:
        """``params`` as they will be sent to ``model``, after what it rejected so far."""
        adj = self._adjust.get(model)
        return replace(params, **adj) if adj else params

    def form_confirmed(self, model: str) -> bool:
        """Whether a request to ``model`` has come back, so its request form is known."""
        return model in self._settled

    def learn(self, model: str, fix: dict[str, Any]) -> None:
        """Apply an adjustment found earlier (a resumed run reads them from its run file)."""
        self._adjust.setdefault(model, {}).update(fix)

    def body(self, model: str, api: str, messages: list[dict[str, str]], params: Params) -> dict[str, Any]:
        """The JSON body of one request as sent (the batch path builds its lines with this)."""
        p = self.effective(model, params)
        if self.endpoint.wire == "anthropic":
            return anthropic_body(model, messages, p)
        return openai_body(model, api, messages, p, self._openai_hosted)

    def note_rejection(self, model: str, api: str, sent: dict[str, Any], status: int | None, error_body: Any,
                       message: str) -> CallError | None:
        """Learn from a 400 that names a parameter. None: adjusted, send again; a CallError:
        the 400 names a parameter that cannot be adjusted (the caller fails the call with it)."""
        param = rejected_parameter(status, error_body, message)
        if param is None:
            return CallError(f"http_{status}", f"{status} from {self.endpoint.display_url}: {message}", retryable=False, status=status)
        fix = adjustment_for(param, sent, api)
        if fix is None or len(self._adjust.get(model, {})) >= _MAX_ADJUSTMENTS:
            return CallError(
                f"http_{status}",
                f"{status} from {self.endpoint.display_url}: the model does not accept {param!r} ({message}); "
                f"remove it from the variant or give the model a profile in taxcheck.toml",
                retryable=False, status=status, param=param,
            )
        self.learn(model, fix)
        if self.on_adjust is not None:
            self.on_adjust(model, param, fix, message)
        return None

    # -- sending ------------------------------------------------------------------------

    async def complete(self, model: str, api: str, messages: list[dict[str, str]], params: Params) -> Completion:
        """One request, bounded by the wall-clock timeout (a slow drip cannot hold a slot).

        The SDK client is built (and its package imported, ~1-2 s) *before* the clock starts:
        a blocking import inside the timeout made the first requests of a run with a short
        ``--timeout`` fail as timeouts without ever reaching the server.
        """
        self._get()
        messages = safe_messages(messages)
        if model not in self._settled:
            async with self._gates.setdefault(model, asyncio.Lock()):
                if model not in self._settled:  # those who waited here go together, not one by one
                    try:
                        return await self._complete(model, api, messages, params)
                    finally:
                        self._settled.add(model)
        return await self._complete(model, api, messages, params)

    async def _complete(self, model: str, api: str, messages: list[dict[str, str]], params: Params) -> Completion:
        for _ in range(_MAX_ADJUSTMENTS + 1):
            p = self.effective(model, params)
            sent = self.body(model, api, messages, params)
            outcome = await self._send_once(model, api, sent, p)
            if isinstance(outcome, Completion):
                return outcome
            # outside every except block: the SDK's exception (whose text may hold an echoed
            # key) must not ride along as __context__ of what we raise
            status, error_body, message, exc = outcome
            if exc is not None:
                raise exc
            if _is_policy_error(error_body, message):
                return Completion(text="", finish_reason=_policy_code(error_body), api_refusal=True)
            error = self.note_rejection(model, api, sent, status, error_body, message)
            if error is not None:
                raise self._scrub(error)
        raise CallError("http_400", f"400 from {self.endpoint.display_url}: the request was rejected after adjusting it "
                        f"{_MAX_ADJUSTMENTS} times", retryable=False, status=400)

    async def _send_once(self, model: str, api: str, sent: dict[str, Any], params: Params
                         ) -> Completion | tuple[int | None, Any, str, CallError | None]:
        """One POST: the answer, or (status, error body, message, None) for a 400 to look at,
        or (…, CallError) for any other failure, already translated."""
        path = "/v1/messages" if self.endpoint.wire == "anthropic" else (
            "/completions" if api == "completions" else "/chat/completions")
        try:
            async with asyncio.timeout(self.timeout_s + 1.0):
                raw, headers = await self._post(path, sent, params)
            c = parse_anthropic(raw) if self.endpoint.wire == "anthropic" else parse_openai(raw, api)
            return replace(check_answer(check_size(c, self.endpoint.display_url), params), headers=headers)
        except CallError as exc:
            return (None, None, "", exc)
        except TimeoutError:
            return (None, None, "", CallError("timeout", f"no response within {self.timeout_s:g} s", retryable=True))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - this is the translation boundary
            status = getattr(exc, "status_code", None)
            body = getattr(exc, "body", None)
            message = _error_message(exc, self.endpoint.api_key)
            # a 403 is a refused key, unless it is a content-policy refusal (misalignment_policy_violation)
            if status in (400, 422) or status == 403 and _is_policy_error(body, ""):
                return (status, body, message, None)
            return (status, None, "", self._translate(exc))

    async def _post(self, path: str, body: dict[str, Any], params: Params) -> tuple[Any, dict[str, str]]:
        """POST through the SDK (auth, headers, its error types) and read the raw JSON."""
        options = {"headers": dict(params.extra_headers)} if params.extra_headers else {}
        response = await self._client.post(path, body=body, cast_to=self._response_type, options=options)
        return json.loads(response.content), _rate_headers(response.headers)

    async def list_models(self) -> list[str]:
        """The model ids the endpoint lists (``GET /v1/models``): checks key and name without
        sampling anything. Raises ``CallError`` (``not_found`` when the server has no listing)."""
        self._get()
        path = "/v1/models?limit=1000" if self.endpoint.wire == "anthropic" else "/models"
        try:
            async with asyncio.timeout(self.timeout_s + 1.0):
                response = await self._client.get(path, cast_to=self._response_type)
            body = json.loads(response.content)
        except asyncio.CancelledError:
            raise
        except TimeoutError:
            error = CallError("timeout", f"no response within {self.timeout_s:g} s", retryable=True)
        except Exception as exc:  # noqa: BLE001 - the translation boundary, as for completions
            error = self._translate(exc)
        else:
            data = body.get("data") if isinstance(body, dict) else None
            if not isinstance(data, list):
                raise CallError("malformed", f"malformed model list from {self.endpoint.display_url}", retryable=False)
            return [m["id"] for m in data if isinstance(m, dict) and isinstance(m.get("id"), str)]
        raise error

    # -- errors -------------------------------------------------------------------------

    def _scrub(self, error: CallError) -> CallError:
        key = self.endpoint.api_key
        if len(key) >= 6 and key in error.message:  # a server that echoes the key back
            error.message = error.message.replace(key, "***")
            error.args = (error.message,)
        return error

    def _translate(self, exc: Exception) -> CallError:
        return self._scrub(self._translate_unscrubbed(exc))

    def _translate_unscrubbed(self, exc: Exception) -> CallError:
        url = self.endpoint.display_url
        status = getattr(exc, "status_code", None)
        name = type(exc).__name__
        if name == "BodyTooLarge" or isinstance(exc.__cause__, Exception) and type(exc.__cause__).__name__ == "BodyTooLarge":
            return CallError("oversized", f"{exc if name == 'BodyTooLarge' else exc.__cause__} (from {url})", retryable=False)
        if isinstance(status, int):
            response = getattr(exc, "response", None)
            headers = getattr(response, "headers", None)
            message = _error_message(exc, self.endpoint.api_key)
            if status in (401, 403):
                key = self.endpoint.key_env or "the API key"
                return CallError(
                    "auth",
                    f"{status} from {url}: the key was refused; check {key}",
                    retryable=False,
                    status=status,
                )
            if status == 404:
                return CallError("not_found", f"404 from {url}: {message}", retryable=False, status=status)
            if status == 429 and _is_quota_error(exc):  # out of credit: no amount of waiting helps
                return CallError("quota", f"429 from {url}: {message}", retryable=False, status=status)
            error = CallError(
                f"http_{status}",
                f"{status} from {url}: {message}",
                retryable=is_retryable_status(status),
                status=status,
                retry_after=retry_after_seconds(headers),
            )
            error.headers = _rate_headers(headers) if headers is not None else None  # for the rate controller
            return error
        if "Timeout" in name:
            return CallError("timeout", f"no response from {url} within {self.timeout_s:g} s", retryable=True)
        if "Connection" in name:
            cause = exc.__cause__ or exc.__context__
            detail = type(cause).__name__ if cause is not None else "connection error"
            return CallError("connection", f"cannot reach {url} ({detail})", retryable=True)
        if isinstance(exc, (json.JSONDecodeError, ValueError, TypeError, AttributeError, KeyError)) or "Validation" in name or "Decoding" in name:
            return CallError("malformed", f"malformed response from {url} ({name})", retryable=True)
        return CallError("error", f"{name} talking to {url}", retryable=True)


def _error_message(exc: Exception, secret: str | None = None) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return _short(err["message"], secret)
    return _short(getattr(exc, "message", None) or type(exc).__name__, secret)


def _is_quota_error(exc: Exception) -> bool:
    """OpenAI's 429 ``insufficient_quota`` (billing, not pace)."""
    err = _error_fields(getattr(exc, "body", None))
    return err is not None and "insufficient_quota" in (str(err.get("code") or "") + " " + str(err.get("type") or ""))


def _error_fields(body: Any) -> dict[str, Any] | None:
    err = body.get("error", body) if isinstance(body, dict) else None
    return err if isinstance(err, dict) else None


def _is_policy_error(body: Any, message: str = "") -> bool:
    """A 400 by which the provider refuses the content itself (OpenAI ``content_policy_violation``,
    ``bio_policy``, ``cyber_policy``, ``invalid_prompt``; Azure ``content_filter``): an API refusal."""
    err = _error_fields(body)
    if err is not None:
        codes = {str(err.get("code") or "").lower(), str(err.get("type") or "").lower()}
        inner = err.get("innererror")
        if isinstance(inner, dict):
            codes.add(str(inner.get("code") or "").lower())
        if codes & api_refusal_codes():
            return True
        message = str(err.get("message") or message)
    return bool(_POLICY_MESSAGE.search(message or ""))


def _policy_code(body: Any) -> str:
    """The finish reason an API refusal is recorded with: the provider's code when it gave one."""
    err = _error_fields(body) or {}
    for value in (err.get("code"), err.get("type")):
        if isinstance(value, str) and value.lower() in api_refusal_codes():
            return value.lower()
    return "content_policy"
