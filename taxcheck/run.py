"""``taxcheck run``, the conductor: one function per step of a run (DESIGN §6).

    validate -> expand -> send -> grade (code, judge) -> report

``validate`` checks every input (flags, specs, keys, suites, gates, prices) and resolves
them into a ``Prepared`` run before the first request, so a typo costs nothing; ``expand``
turns it into the plan of what is not yet recorded (a rerun resumes); ``send`` appends every
answer to the run file before the next is awaited, so an interruption costs nothing either;
``grade`` does what is done once and stored (the sandbox's code verdicts, the judge's);
``report`` grades by the rules, aggregates, gates and renders, exactly as ``taxcheck
report`` would from the same run file. Each step is small and uses the folder below it.
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

from typing import TYPE_CHECKING, Any

from taxcheck import __version__
from taxcheck.console import say, stderr_console
from taxcheck.cost.budget import Budget
from taxcheck.errors import EXIT_BUDGET, EXIT_OK, EXIT_USAGE, SuiteError, UserError
from taxcheck.runfile import RunData, RunWriter, make_private_dir, read_run
from taxcheck.send.cache import Cache, default_cache_dir
from taxcheck.send.runner import RunPlan
from taxcheck.send.specs import ModelSpec, Registry, redact_url
from taxcheck.send.wire import Params
from taxcheck.suites.format import Suite, SuiteItem, resolve_suite

if TYPE_CHECKING:
    from taxcheck.grade.sandbox import SandboxChoice
    from taxcheck.measure.power import Assumptions
    from taxcheck.report.table import Gate

EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143

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


@dataclass
class Prepared:
    """Every input of a run, validated and resolved before the first request (step 1)."""

    opts: RunOptions
    registry: Registry
    models: list[ModelSpec]
    judge: ModelSpec | None
    prices: list
    budget: Budget | None
    gates: list[Gate]
    suites: list[Suite]
    items: list[SuiteItem]
    sandbox: str  # the request for sandbox.choose
    assume: Assumptions
    params: Params  # the run-level parameters
    model_params: dict[str, Params]  # each model's own (profile, variant)
    run_params: dict[str, Any]
    run_id: str
    out: Path


def execute(opts: RunOptions, argv: list[str]) -> int:
    """The steps of a run (DESIGN §6), in order; a step that ends the run returns its exit code."""
    err = stderr_console()

    def warn(msg: str) -> None:
        say(err, "warning", "yellow", msg)

    prep = validate(opts, warn)
    cache = Cache(None if opts.no_cache else default_cache_dir(), warn=warn)
    try:
        existing, plan = expand(prep, cache, warn)
        if opts.dry_run:
            from taxcheck.report.dry_run import print_dry_run

            print_dry_run(plan, cache, prep.out, prep.prices, prep.assume)
            return EXIT_OK
        check_writable(prep.out)
        choice = choose_sandbox(prep, warn)
        outcome, interrupted = send(prep, plan, existing, choice, cache, argv, err, warn)
    finally:
        cache.close()
    if interrupted:
        return stopped(err, prep, interrupted, "finished calls are kept")
    notes = list(outcome.auth_failures.values()) if outcome else []
    partial = budget_stop(prep, plan)
    if partial is not None:
        notes.append(partial["message"])
    del plan, existing  # the report re-reads the run file: free the in-memory copies first
    ended = grade(prep, choice, notes, outcome, err, warn)
    if ended is not None:
        return ended
    return report(prep, notes, partial, outcome, err)


def validate(opts: RunOptions, warn) -> Prepared:
    """Step 1: every flag, spec, key, suite, gate and price, checked before anything is sent."""
    from taxcheck.cost.pricing import config_prices, load_price_file
    from taxcheck.report.pipeline import FORMATS, parse_gates

    if opts.fmt not in FORMATS:
        raise UserError(f"-f {opts.fmt!r}: one of {', '.join(FORMATS)} (html: use `taxcheck report RUN.jsonl -f html`)")
    for ok, message in (
        (opts.concurrency >= 1, "-j must be at least 1"),
        (opts.samples >= 1, "--samples must be at least 1"),
        (opts.retries >= 0, "--retries must be 0 or more"),
        (opts.max_tokens is None or opts.max_tokens >= 1, "--max-tokens must be at least 1"),
        (opts.temperature is None or 0 <= opts.temperature <= 2, f"--temperature {opts.temperature}: must be between 0 and 2"),
        (opts.timeout > 0, "--timeout must be positive"),
        (bool(opts.models or opts.baseline), "give at least one model: -m openai:gpt-5.4-mini"),
        (opts.grader in ("auto", "rule", "judge"), f"--grader {opts.grader!r}: one of auto, rule, judge"),
        (opts.grader != "judge" or bool(opts.judge), "--grader judge needs --judge SPEC"),
        (opts.max_cost is None or opts.max_cost > 0, "--max-cost must be a positive number of US dollars"),
        (not (opts.batch and opts.max_cost is not None), "--max-cost cannot be enforced inside a provider batch (its "
         "requests are priced only when it ends); drop one of them"),
        ((opts.rpm is None or opts.rpm >= 1) and (opts.tpm is None or opts.tpm >= 1), "--rpm and --tpm must be at least 1"),
    ):
        if not ok:
            raise UserError(message)
    registry = Registry.load(opts.endpoints, opts.config)
    models = resolve_models(registry, opts, warn)
    judge = registry.resolve(opts.judge) if opts.judge else None
    prices = (load_price_file(opts.prices) if opts.prices else []) + config_prices(opts.config)
    budget = None
    if opts.max_cost is not None:
        budget = Budget(opts.max_cost, prices)
        budget.check_priced([m.spec for m in models] + ([judge.spec] if judge else []))
    gates = parse_gates(opts.fail_over)
    if gates and not opts.baseline:
        raise UserError("--fail-over compares against a baseline: add -b SPEC")
    if gates and len(models) < 2:
        raise UserError("--fail-over needs a candidate besides the baseline: add -m SPEC")
    suites = [resolve_suite(ref) for ref in opts.suites]
    items = select_items(suites, opts.limit, opts.seed)
    from taxcheck.grade.sandbox import sandbox_request
    from taxcheck.measure.power import parse_assumptions

    requested, assume = sandbox_request(opts.sandbox, opts.unsafe_run_code), parse_assumptions(opts.assume)
    temperature = opts.temperature if opts.temperature is not None else (0.0 if opts.samples == 1 else 0.7)
    if opts.samples > 1 and temperature == 0:
        warn("--samples > 1 at temperature 0 asks the same question K times for the same answer")
    model_params = {m.spec: m.params(temperature, opts.max_tokens) for m in models}
    untempered = [m.spec for m in models if model_params[m.spec].temperature is None]
    if untempered and (opts.temperature is not None or len(untempered) < len(models)):
        warn(f"{', '.join(untempered)} take no temperature (model profile): their answers are sampled at the provider's "
             f"default, not at {temperature:g}; the JSON 'sampling' key says so per model")
    run_params = {"temperature": temperature, "max_tokens": opts.max_tokens, "samples": opts.samples,
                  "limit": opts.limit, "seed": opts.seed}
    run_id = compute_run_id(models, opts.baseline, suites, run_params)
    return Prepared(opts, registry, models, judge, prices, budget, gates, suites, items, requested, assume,
                    Params(temperature=temperature, max_tokens=opts.max_tokens or 512), model_params, run_params, run_id,
                    opts.output or default_runs_dir() / f"{run_id}.jsonl")


def expand(prep: Prepared, cache: Cache, warn) -> tuple[RunData | None, RunPlan]:
    """Step 2: items x models x samples, minus what the run file already holds (a resumed run)."""
    existing = None
    out = prep.out
    if out.exists() and out.stat().st_size > 0:
        existing = read_run(out, warn=warn)
        if existing.header.run_id != prep.run_id:
            raise UserError(f"{out} holds a different run (models, suites or sampling differ); "
                            f"choose another -o, or delete it to start over")
    opts = prep.opts
    plan = RunPlan(
        models=prep.models, items=prep.items, samples=opts.samples, params=prep.params, concurrency=opts.concurrency,
        timeout_s=opts.timeout, retries=opts.retries, done=dict(existing.calls) if existing else {},
        rpm=opts.rpm, tpm=opts.tpm, model_params=prep.model_params,
        adjustments=[a.model_dump() for a in existing.adjustments] if existing is not None else [],
    )
    return existing, plan


def choose_sandbox(prep: Prepared, warn) -> SandboxChoice | None:
    """Where model code will run, decided (and said) before the first request; None: no code items."""
    if not any(i.answer is not None and i.answer.kind == "code" for i in prep.items):
        return None
    from taxcheck.grade.sandbox import choose

    choice = choose(prep.sandbox)
    if not choice.available:
        warn(f"capability.code will not be graded: {choice.why}")
    elif choice.tier == "unsafe":
        warn("--unsafe-run-code: model-written code runs as you, with resource limits but no isolation boundary")
    return choice


def header(prep: Prepared, choice: SandboxChoice | None, argv: list[str]) -> dict[str, Any]:
    """The run file's first line: what was asked, with secrets redacted (a public interface)."""
    models = prep.models
    return {
        "type": "header", "format": 1, "taxcheck_version": __version__, "run_id": prep.run_id,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": redact_argv(argv, secret_values(prep.registry)),
        "models": [m.spec for m in models], "baseline": prep.opts.baseline,
        "suites": [{"name": s.name, "path": s.path, "sha256": s.sha256, "items": len(s.items)} for s in prep.suites],
        "params": prep.run_params,
        "endpoints": {m.spec: {"url": m.endpoint.display_url, "wire": m.endpoint.wire, "api": m.api} for m in models},
        "prices": [list(r) for r in prep.prices],
        "requests": {m.spec: {**prep.model_params[m.spec].describe(), "profile": m.profile.pattern} for m in models},
        "variants": {m.spec: m.variant.record() for m in models if m.variant is not None},
        "sandbox": {"requested": prep.sandbox, "tier": choice.tier, "why": choice.why} if choice is not None else {},
    }


def send(prep: Prepared, plan: RunPlan, existing: RunData | None, choice, cache: Cache, argv: list[str], err, warn):
    """Steps 3-4: ask what is not yet recorded, every answer on disk before the next is awaited."""
    writer = RunWriter(prep.out)
    writer.open()
    try:
        if existing is None:
            writer.write(header(prep, choice, argv))
            for item in prep.items:
                writer.write({"type": "item", "item": item.model_dump(exclude_none=True, exclude_defaults=True)})
        known = list(existing.batches.values()) if existing is not None else []
        return _send(plan, cache, writer, err, warn, prep.budget, prep.prices, prep.opts.batch, known)
    finally:
        writer.close()


def budget_stop(prep: Prepared, plan: RunPlan) -> dict[str, Any] | None:
    """When ``--max-cost`` stopped the run: what was spent, what is left and how to go on."""
    budget = prep.budget
    if budget is None or not budget.stopped:
        return None
    not_sent = plan.total_calls() - plan.calls_done()
    return {"reason": "max_cost", "max_usd": budget.max_usd, "spent_usd": round(budget.spent, 6),
            "calls_not_sent": not_sent, "message": budget.partial_message(not_sent, str(prep.out))}


def grade(prep: Prepared, choice, notes: list[str], outcome, err, warn) -> int | None:
    """Step 5, the part that is done once and stored: run the code answers in the sandbox, ask
    the judge. Returns an exit code when interrupted (what finished is kept)."""
    out, opts = prep.out, prep.opts
    try:
        if choice is not None:
            from taxcheck.grade.code_stage import grade_code

            grade_code(out, choice, warn, said_unavailable=True)
        if prep.judge is not None:
            from taxcheck.grade.regrade import judge_file

            judge_cache = Cache(None if opts.no_cache else default_cache_dir(), warn=warn)
            try:
                _n, judge_auth = judge_file(out, prep.judge, judge_cache, opts.concurrency, opts.timeout, opts.retries, warn,
                                            prep.budget)
            finally:
                judge_cache.close()
            if judge_auth:
                notes.append(judge_auth)
                outcome.auth_failures[prep.judge.spec] = judge_auth
    except KeyboardInterrupt as exc:
        return stopped(err, prep, "terminated" if type(exc).__name__ == "Terminated" else "interrupted",
                       "verdicts so far are kept", "while grading")
    return None


def report(prep: Prepared, notes: list[str], partial, outcome, err) -> int:
    """Steps 5-6: grade by the rules, aggregate, gate and render; the exit code says how it went."""
    from taxcheck.report.failures import say_failures
    from taxcheck.report.pipeline import build_report, emit, exit_code

    data = read_run(prep.out, warn=lambda m: say(err, "warning", "yellow", m))
    rep = build_report(data, prep.out, gates=prep.gates, notes=notes, grader=prep.opts.grader, partial=partial,
                       timeout_s=prep.opts.timeout)
    say_failures(rep.causes, err)
    emit(rep, prep.opts.fmt)
    if prep.opts.fmt != "table":
        say(err, "run file", "dim", str(prep.out))
    if partial is not None:
        say(err, "Budget reached", "bold yellow", partial["message"])
        return EXIT_BUDGET
    if outcome and outcome.auth_failures:
        return EXIT_USAGE
    return exit_code(rep)


def stopped(err, prep: Prepared, how: str, kept: str, when: str = "") -> int:
    """Ctrl-C (130) or SIGTERM (143): what is kept, and how to resume."""
    out = prep.out
    label = ("Terminated" if how == "terminated" else "Interrupted") + (f" {when}" if when else "")
    again = "rerun the same command to resume" + ("" if prep.opts.output is not None else f" (it finds {out} again; or add -o {out})")
    say(err, label, "bold yellow", f"{kept} in {out}; {again}.")
    return EXIT_TERMINATED if how == "terminated" else EXIT_INTERRUPTED


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
