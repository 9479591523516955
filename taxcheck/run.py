"""``taxcheck run``: validate everything, send what is not yet recorded, report.

The order matters for a user paying per token: every input (specs, keys, suites, gates,
the output path, free disk) is checked before the first request, so a typo costs
nothing; and every answer is on disk before the next is awaited, so an interruption
costs nothing either.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import shutil
import signal
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from taxcheck import __version__
from taxcheck.errors import (
    EXIT_FAILURES,
    EXIT_GATE,
    EXIT_OK,
    EXIT_USAGE,
    SuiteError,
    UserError,
)
from taxcheck.runfile import make_private_dir
from taxcheck.send.specs import ModelSpec, Registry, redact_url
from taxcheck.suites.format import Suite, SuiteItem, resolve_suite

EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143
from taxcheck.errors import EXIT_BUDGET  # noqa: E402

MIN_FREE_BYTES = 20 * 1024 * 1024


@dataclass
class RunOptions:
    models: list[str]
    baseline: str | None = None
    suites: list[str] = field(default_factory=lambda: ["quick"])
    judge: str | None = None
    concurrency: int = 16
    limit: int | None = None
    seed: int = 0
    samples: int = 1
    temperature: float | None = None
    max_tokens: int | None = None  # None: each model's profile decides (512, more for reasoning models)
    timeout: float = 60.0
    retries: int = 4
    output: Path | None = None
    fmt: str = "table"
    fail_over: list[str] = field(default_factory=list)
    grader: str = "auto"
    dry_run: bool = False
    no_cache: bool = False
    endpoints: list[str] = field(default_factory=list)
    config: Path | None = None
    prices: Path | None = None
    max_cost: float | None = None
    rpm: int | None = None
    tpm: int | None = None
    batch: bool = False
    system: Path | None = None  # a system prompt for every -m model (not the baseline)
    assume: list[str] = field(default_factory=list)  # --dry-run's power assumptions (power.parse_assumptions)
    sandbox: str = "auto"  # where model code runs (sandbox.REQUESTS)
    unsafe_run_code: bool = False


def default_runs_dir() -> Path:
    return Path(os.environ.get("TAXCHECK_RUNS_DIR") or "taxcheck-runs")


def redact_argv(argv: list[str], secrets: list[str]) -> list[str]:
    """The command line as recorded: secret values replaced, and every URL in an argument
    (``URL``, ``NAME=URL``, ``--opt=NAME=URL``) with its credentials redacted."""
    out = []
    for arg in argv:
        for s in secrets:
            if len(s) >= 6 and s in arg:
                arg = arg.replace(s, "***")
        out.append(_URL_IN_ARG.sub(lambda m: redact_url(m.group(0)), arg))
    return out


_URL_IN_ARG = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://\S+")


def secret_values(registry: Registry) -> list[str]:
    return [ep.api_key for ep in registry.endpoints.values() if ep.api_key and ep.api_key != "no-key"]


def select_items(suites: list[Suite], limit: int | None, seed: int) -> list[SuiteItem]:
    items: list[SuiteItem] = []
    seen: dict[str, str] = {}
    for suite in suites:
        for item in suite.items:
            if item.id in seen:
                raise SuiteError([f"{suite.path}: item id {item.id!r} also in {seen[item.id]}; ids must be unique across the suites of a run"])
            seen[item.id] = suite.path
            items.append(item)
    if limit is not None:
        if limit < 1:
            raise UserError("--limit must be at least 1")
        from taxcheck.suites.sampling import sample_items

        items = sample_items(items, limit, seed)
    return items


def compute_run_id(models: list[ModelSpec], baseline: str | None, suites: list[Suite], params: dict) -> str:
    """A hash of what determines the answers. A variant adds its definition, so editing its
    system prompt starts a new run; a plain spec hashes as it always did, so old runs resume."""
    blob = json.dumps(
        {
            "models": [[m.spec, m.endpoint.base_url, m.api] + ([m.variant.record()] if m.variant else []) for m in models],
            "baseline": baseline,
            "suites": [s.sha256 for s in suites],
            "params": params,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def check_writable(path: Path) -> None:
    """Fail before the first request if the run file cannot be written."""
    try:
        make_private_dir(path.parent)
        os.close(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600))
    except OSError as exc:
        raise UserError(f"cannot write the run file {path}: {exc.strerror or exc}; choose another with -o") from None
    free = shutil.disk_usage(path.parent).free
    if free < MIN_FREE_BYTES:
        raise UserError(f"only {free // 1024} KiB free where the run file goes ({path.parent}); free some space or choose another -o")


def assumptions(specs: list[str]):
    """``--assume`` values, checked before anything runs."""
    from taxcheck.measure.power import parse_assumptions

    try:
        return parse_assumptions(specs)
    except ValueError as exc:
        raise UserError(str(exc)) from None


def sandbox_request(sandbox: str, unsafe_run_code: bool) -> str:
    """The ``--sandbox`` / ``--unsafe-run-code`` pair as one request for ``sandbox.choose``."""
    from taxcheck.grade.sandbox import REQUESTS

    if sandbox not in REQUESTS or sandbox == "unsafe":
        raise UserError(f"--sandbox {sandbox!r}: one of {', '.join(r for r in REQUESTS if r != 'unsafe')} "
                        "(to run code with no boundary, say --unsafe-run-code)")
    if unsafe_run_code and sandbox != "auto":
        raise UserError(f"--unsafe-run-code and --sandbox {sandbox} contradict each other; give one")
    return "unsafe" if unsafe_run_code else sandbox


def resolve_models(registry: Registry, opts: RunOptions, warn) -> list[ModelSpec]:
    """Baseline first, then the candidates; ``--system`` makes each candidate a variant."""
    from taxcheck.send.specs import with_system

    system_text = None
    if opts.system is not None:
        try:
            system_text = opts.system.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(f"--system {opts.system}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
        if not system_text:
            raise UserError(f"--system {opts.system}: the file is empty")
    specs: list[ModelSpec] = []
    if opts.baseline:
        specs.append(registry.resolve(opts.baseline))
    for name in opts.models:
        model = registry.resolve(name)
        if system_text is not None:
            model = with_system(model, system_text, opts.system)
        if model.spec in [s.spec for s in specs]:
            same = "the baseline" if opts.baseline and model.spec == specs[0].spec else "given twice"
            warn(f"-m {model.spec} is {same}; it is measured once")
            continue
        specs.append(model)
    for m in specs:
        if m.endpoint.wire == "anthropic" and m.endpoint.base_url.rstrip("/").endswith("/v1"):
            warn(f"{m.spec}: the Anthropic base URL {m.endpoint.display_url} ends in /v1, but the SDK adds /v1/messages "
                 "itself; every call will 404 unless the server expects /v1/v1 (drop /v1 from ANTHROPIC_BASE_URL)")
    return specs


def execute(opts: RunOptions, argv: list[str]) -> int:
    from taxcheck.send.cache import Cache, default_cache_dir
    from taxcheck.console import say, stderr_console
    from taxcheck.report.pipeline import FORMATS, build_report, emit, parse_gates
    from taxcheck.cost.pricing import config_prices, load_price_file
    from taxcheck.runfile import RunWriter, read_run
    from taxcheck.send.runner import RunPlan
    from taxcheck.send.wire import Params

    err = stderr_console()

    def warn(msg: str) -> None:
        say(err, "warning", "yellow", msg)

    # ---- 1. validate everything before the first request
    if opts.fmt not in FORMATS:
        raise UserError(f"-f {opts.fmt!r}: one of {', '.join(FORMATS)} (html: use `taxcheck report RUN.jsonl -f html`)")
    if opts.concurrency < 1:
        raise UserError("-j must be at least 1")
    if opts.samples < 1:
        raise UserError("--samples must be at least 1")
    if opts.retries < 0:
        raise UserError("--retries must be 0 or more")
    if opts.max_tokens is not None and opts.max_tokens < 1:
        raise UserError("--max-tokens must be at least 1")
    if opts.temperature is not None and not 0 <= opts.temperature <= 2:
        raise UserError(f"--temperature {opts.temperature:g}: must be between 0 and 2")
    if opts.timeout <= 0:
        raise UserError("--timeout must be positive")
    if not opts.models and not opts.baseline:
        raise UserError("give at least one model: -m openai:gpt-5.4-mini")
    if opts.grader not in ("auto", "rule", "judge"):
        raise UserError(f"--grader {opts.grader!r}: one of auto, rule, judge")
    if opts.grader == "judge" and not opts.judge:
        raise UserError("--grader judge needs --judge SPEC")
    registry = Registry.load(opts.endpoints, opts.config)
    specs = resolve_models(registry, opts, warn)
    judge_spec = registry.resolve(opts.judge) if opts.judge else None
    price_rows = (load_price_file(opts.prices) if opts.prices else []) + config_prices(opts.config)
    budget = None
    if opts.max_cost is not None:
        from taxcheck.cost.budget import Budget

        if opts.max_cost <= 0:
            raise UserError("--max-cost must be a positive number of US dollars")
        budget = Budget(opts.max_cost, price_rows)
        budget.check_priced([s.spec for s in specs] + ([judge_spec.spec] if judge_spec else []))
    if opts.batch and opts.max_cost is not None:
        raise UserError("--max-cost cannot be enforced inside a provider batch (its requests are priced only when it ends); drop one of them")
    if opts.rpm is not None and opts.rpm < 1 or opts.tpm is not None and opts.tpm < 1:
        raise UserError("--rpm and --tpm must be at least 1")
    gates = parse_gates(opts.fail_over)
    if gates and not opts.baseline:
        raise UserError("--fail-over compares against a baseline: add -b SPEC")
    if gates and len(specs) < 2:
        raise UserError("--fail-over needs a candidate besides the baseline: add -m SPEC")
    suites = [resolve_suite(ref) for ref in opts.suites]
    items = select_items(suites, opts.limit, opts.seed)
    requested = sandbox_request(opts.sandbox, opts.unsafe_run_code)
    assume = assumptions(opts.assume)
    temperature = opts.temperature if opts.temperature is not None else (0.0 if opts.samples == 1 else 0.7)
    if opts.samples > 1 and temperature == 0:
        warn("--samples > 1 at temperature 0 asks the same question K times for the same answer")
    params = Params(temperature=temperature, max_tokens=opts.max_tokens or 512)
    model_params = {m.spec: m.params(temperature, opts.max_tokens) for m in specs}
    untempered = [m.spec for m in specs if model_params[m.spec].temperature is None]
    if untempered and (opts.temperature is not None or len(untempered) < len(specs)):
        warn(f"{', '.join(untempered)} take no temperature (model profile): their answers are sampled at the provider's "
             f"default, not at {temperature:g}; the JSON 'sampling' key says so per model")
    run_params = {
        "temperature": temperature,
        "max_tokens": opts.max_tokens,
        "samples": opts.samples,
        "limit": opts.limit,
        "seed": opts.seed,
    }
    run_id = compute_run_id(specs, opts.baseline, suites, run_params)
    out = opts.output or default_runs_dir() / f"{run_id}.jsonl"

    cache = Cache(None if opts.no_cache else default_cache_dir(), warn=warn)
    done = {}
    existing = None
    if out.exists() and out.stat().st_size > 0:
        existing = read_run(out, warn=warn)
        if existing.header.run_id != run_id:
            raise UserError(
                f"{out} holds a different run (models, suites or sampling differ); "
                f"choose another -o, or delete it to start over"
            )
        done = dict(existing.calls)
    plan = RunPlan(
        models=specs,
        items=items,
        samples=opts.samples,
        params=params,
        concurrency=opts.concurrency,
        timeout_s=opts.timeout,
        retries=opts.retries,
        done=done,
        rpm=opts.rpm,
        tpm=opts.tpm,
        model_params=model_params,
        adjustments=[a.model_dump() for a in existing.adjustments] if existing is not None else [],
    )
    if opts.dry_run:
        from taxcheck.cost.estimate import print_dry_run

        print_dry_run(plan, cache, out, price_rows, assume)
        cache.close()
        return EXIT_OK

    check_writable(out)
    choice = None
    if any(i.answer is not None and i.answer.kind == "code" for i in items):
        from taxcheck.grade.sandbox import choose

        choice = choose(requested)
        if not choice.available:
            warn(f"capability.code will not be graded: {choice.why}")
        elif choice.tier == "unsafe":
            warn("--unsafe-run-code: model-written code runs as you, with resource limits but no isolation boundary")
    writer = RunWriter(out)
    writer.open()
    try:
        if existing is None:
            header = {
                "type": "header",
                "format": 1,
                "taxcheck_version": __version__,
                "run_id": run_id,
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "command": redact_argv(argv, secret_values(registry)),
                "models": [s.spec for s in specs],
                "baseline": opts.baseline,
                "suites": [{"name": s.name, "path": s.path, "sha256": s.sha256, "items": len(s.items)} for s in suites],
                "params": run_params,
                "endpoints": {s.spec: {"url": s.endpoint.display_url, "wire": s.endpoint.wire, "api": s.api} for s in specs},
                "prices": [list(r) for r in price_rows],
                "requests": {s.spec: {**model_params[s.spec].describe(), "profile": s.profile.pattern} for s in specs},
                "variants": {s.spec: s.variant.record() for s in specs if s.variant is not None},
                "sandbox": {"requested": requested, "tier": choice.tier, "why": choice.why} if choice is not None else {},
            }
            writer.write(header)
            for item in items:
                writer.write({"type": "item", "item": item.model_dump(exclude_none=True, exclude_defaults=True)})
        known = list(existing.batches.values()) if existing is not None else []
        outcome, interrupted = _send(plan, cache, writer, err, warn, budget, price_rows, opts.batch, known)
    finally:
        writer.close()
        cache.close()

    if interrupted:
        label = "Terminated" if interrupted == "terminated" else "Interrupted"
        again = "rerun the same command to resume" + ("" if opts.output is not None else f" (it finds {out} again; or add -o {out})")
        say(err, label, "bold yellow", f"finished calls are kept in {out}; {again}.")
        return EXIT_TERMINATED if interrupted == "terminated" else EXIT_INTERRUPTED

    notes = list(outcome.auth_failures.values()) if outcome else []
    partial = None
    if budget is not None and budget.stopped:
        not_sent = plan.total_calls() - plan.calls_done()
        partial = {"reason": "max_cost", "max_usd": budget.max_usd, "spent_usd": round(budget.spent, 6),
                   "calls_not_sent": not_sent, "message": budget.partial_message(not_sent, str(out))}
        notes.append(partial["message"])
    del plan, done, existing  # the report re-reads the run file: free the in-memory copies first
    if choice is not None:
        from taxcheck.grade.code_stage import grade_code

        try:
            grade_code(out, choice, warn, said_unavailable=True)
        except KeyboardInterrupt as exc:
            terminated = type(exc).__name__ == "Terminated"
            say(err, "Terminated while running code" if terminated else "Interrupted while running code", "bold yellow",
                f"verdicts so far are kept in {out}; rerun the same command to resume.")
            return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
    if judge_spec is not None:
        from taxcheck.grade.regrade import judge_file

        judge_cache = Cache(None if opts.no_cache else default_cache_dir(), warn=warn)
        try:
            _n, judge_auth = judge_file(out, judge_spec, judge_cache, opts.concurrency, opts.timeout, opts.retries, warn, budget)
        except KeyboardInterrupt as exc:
            terminated = type(exc).__name__ == "Terminated"
            say(err, "Terminated while judging" if terminated else "Interrupted while judging", "bold yellow",
                f"verdicts so far are kept in {out}; rerun the same command to resume.")
            return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED
        finally:
            judge_cache.close()
        if judge_auth:
            notes.append(judge_auth)
            outcome.auth_failures[judge_spec.spec] = judge_auth
    data = read_run(out, warn=warn)
    report = build_report(data, out, gates=gates, notes=notes, grader=opts.grader, partial=partial)
    from taxcheck.report.failures import say_failures

    say_failures(data, err, opts.timeout)
    emit(report, opts.fmt)
    if opts.fmt != "table":
        say(err, "run file", "dim", str(out))
    if partial is not None:
        say(err, "Budget reached", "bold yellow", partial["message"])
        return EXIT_BUDGET
    if outcome and outcome.auth_failures:
        return EXIT_USAGE
    from taxcheck.report.pipeline import exit_code

    return exit_code(report)


def _send(plan, cache, writer, err, warn, budget=None, prices=(), batch=False, known_batches=()):
    """Run the event loop; returns (outcome or None, interrupted)."""
    from taxcheck.send.progress import RunProgress
    from taxcheck.send.runner import Runner

    progress = RunProgress(err, plan.total_calls(), plan.calls_done(), prices)
    on_call = progress.on_call
    runner = Runner(plan, cache, writer, on_call=on_call, on_warning=warn, budget=budget)
    terminated = {"yes": False}

    async def main():
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()

        def on_term() -> None:
            terminated["yes"] = True
            task.cancel()

        try:
            loop.add_signal_handler(signal.SIGTERM, on_term)
        except (NotImplementedError, RuntimeError):
            pass
        if batch:
            from taxcheck.send.batch import run_batches

            return await run_batches(plan, cache, writer, known_batches=known_batches, on_call=on_call, on_warning=warn,
                                     poll_s=float(os.environ.get("TAXCHECK_BATCH_POLL_S", "30")))
        return await runner.run()

    previous = signal.getsignal(signal.SIGTERM)
    try:
        with progress:
            return asyncio.run(main()), False
    except (KeyboardInterrupt, asyncio.CancelledError) as exc:
        return None, "terminated" if terminated["yes"] or type(exc).__name__ == "Terminated" else "interrupted"
    finally:
        signal.signal(signal.SIGTERM, previous)  # the loop left SIGTERM at its default: put ours back
