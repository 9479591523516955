"""``taxcheck models``: can each spec be reached with its key, and does the endpoint serve it?

The check that costs nothing comes first: ``GET /v1/models`` (OpenAI, Anthropic and the local
servers all have it) proves the key and the base URL and says whether the model name is one
the endpoint serves, without sampling a token. ``--probe`` then sends one tiny request in the
form the run would use (the model's profile, a variant's settings), so a parameter the model
rejects shows up here, with the adjustment a run would make, instead of in the middle of a run.
A server without a model listing (404) is probed instead. Latency is the request's own:
the SDK is imported and its client built before the clock starts.
"""

from __future__ import annotations

import asyncio
import difflib
import sys
import time
from pathlib import Path

from taxcheck.console import printable
from taxcheck.errors import CallError, UserError
from taxcheck.send.specs import ModelSpec, Registry


def check_models(specs: list[str], endpoints: list[str], config: Path | None, timeout: float, probe: bool = False) -> int:
    """Print one ``ok``/``FAIL`` line per spec; exit 0 only when every spec checked out."""
    registry = Registry.load(endpoints, config)
    resolved: list[ModelSpec] = []
    lines: list[tuple[str, bool]] = []
    for spec in specs:
        try:
            resolved.append(registry.resolve(spec))
        except UserError as exc:
            lines.append((f"FAIL {spec}: {exc}", False))
    if resolved:
        lines += asyncio.run(_check_all(resolved, timeout, probe))
    for line, _ok in lines:
        print(printable(line))
    sys.stdout.flush()
    return 0 if all(ok for _line, ok in lines) else 2


async def _check_all(models: list[ModelSpec], timeout: float, probe: bool) -> list[tuple[str, bool]]:
    return list(await asyncio.gather(*(check_one(m, timeout, probe) for m in models)))


async def check_one(ms: ModelSpec, timeout: float, probe: bool) -> tuple[str, bool]:
    from taxcheck.send.clients import EndpointClient

    notes: list[str] = []

    def on_adjust(_model: str, param: str, fix: dict, message: str) -> None:
        change = "sends no temperature" if "temperature" in fix else f"sends {fix.get('token_field')} instead of {param}"
        notes.append(f"rejected {param} ({message}); a run {change}")

    client = EndpointClient(ms.endpoint, timeout, on_adjust=on_adjust)
    where = f"{ms.spec} at {ms.endpoint.display_url}"
    try:
        client._get()  # import the SDK and build the client before the clock starts
        listed: str | None = None
        started = time.perf_counter()
        try:
            ids = await client.list_models()
        except CallError as exc:
            if exc.kind != "not_found":
                return f"FAIL {ms.spec}: {exc.message}", False
            ids = None  # no listing here: only a probe can tell
            probe = True
        if ids is not None:
            took = (time.perf_counter() - started) * 1000
            if ms.model not in ids:
                close = difflib.get_close_matches(ms.model, ids, n=3, cutoff=0.5)
                hint = f"; did you mean {', '.join(close)}?" if close else (f"; it lists {len(ids)} models" if ids else "")
                return f"FAIL {ms.spec}: the endpoint {ms.endpoint.display_url} does not serve {ms.model!r}{hint}", False
            listed = f"listed ({took:.0f} ms)"
        parts = [p for p in (listed,) if p]
        if probe:
            params = ms.params(0.0, None)
            started = time.perf_counter()
            try:
                c = await client.complete(ms.model, ms.api, ms.messages([{"role": "user", "content": "Say OK."}]), params)
            except CallError as exc:
                return f"FAIL {ms.spec}: {'; '.join(notes + [exc.message])}", False
            took = (time.perf_counter() - started) * 1000
            served = f", serving {c.served_model}" if c.served_model and c.served_model != ms.model else ""
            parts.append(f"answered ({took:.0f} ms{served})")
        sampling = "provider-default temperature" if ms.params(0.0, None).temperature is None else "temperature 0"
        detail = ", ".join(parts + notes + [f"{ms.api}, {sampling}, profile {ms.profile.pattern}"])
        return f"ok   {where}: {detail}", True
    finally:
        await client.aclose()
