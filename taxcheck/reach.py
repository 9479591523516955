"""``taxcheck models``: can each spec be reached with its key? One tiny request each."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from taxcheck.errors import CallError, UserError
from taxcheck.specs import Registry


def check_models(specs: list[str], endpoints: list[str], config: Path | None, timeout: float) -> int:
    """Print ``ok``/``FAIL`` per spec; exit 0 only when every spec answered."""
    from taxcheck.clients import EndpointClient
    from taxcheck.wire import Params

    registry = Registry.load(endpoints, config)
    resolved = []
    bad = 0
    for spec in specs:
        try:
            resolved.append(registry.resolve(spec))
        except UserError as exc:
            print(f"FAIL {spec}: {exc}")
            bad += 1

    async def one(ms):
        client = EndpointClient(ms.endpoint, timeout)
        started = time.perf_counter()
        try:
            c = await client.complete(ms.model, ms.api, [{"role": "user", "content": "Say OK."}], Params(max_tokens=5))
            ms_taken = (time.perf_counter() - started) * 1000
            served = f", serving {c.served_model}" if c.served_model and c.served_model != ms.model else ""
            return f"ok   {ms.spec} at {ms.endpoint.display_url} ({ms.api}, {ms_taken:.0f} ms{served})", True
        except CallError as exc:
            return f"FAIL {ms.spec}: {exc.message}", False
        finally:
            await client.aclose()

    async def all_():
        return await asyncio.gather(*(one(ms) for ms in resolved))

    for line, ok in asyncio.run(all_()) if resolved else []:
        print(line)
        bad += not ok
    sys.stdout.flush()
    return 2 if bad else 0
