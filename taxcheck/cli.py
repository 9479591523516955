"""The command line. Thin: parse, call one function, turn errors into one line and an exit code.

Only typer is imported at start-up; each command imports what it needs, so ``--help``,
``suites`` and ``validate`` never load an SDK.
"""

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer


def examples(*commands: str, tail: str = "") -> str:
    """An epilog of example commands, each kept on one line (click's \\b: no re-wrapping)."""
    text = "\b\nExamples:\n" + "\n".join(f"  {c}" for c in commands)
    return text + (f"\n\n{tail}" if tail else "")


app = typer.Typer(
    name="taxcheck",
    help=(
        "Measure the alignment tax of language models: benign requests refused, hedging, "
        "capability lost and sycophancy, beside the safety bought (harmful requests refused).\n\n"
        "Start with:  taxcheck run -m openai:gpt-5.4-mini -b openai:gpt-5.4"
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
suites_app = typer.Typer(
    help="List the built-in suites (items, calls per model, dimensions fed), or show one.",
    epilog=examples("taxcheck suites", "taxcheck suites --models 3", "taxcheck suites show standard"),
    no_args_is_help=False,
)
app.add_typer(suites_app, name="suites")


def _version(value: bool) -> None:
    if value:
        from taxcheck import __version__

        print(f"taxcheck {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """Measure the alignment tax of language models."""


def _fail(message: str, code: int) -> None:
    from taxcheck.console import say, stderr_console

    say(stderr_console(), "error", "bold red", message)
    raise typer.Exit(code)


def _guard(fn, *args, **kwargs) -> int:
    """Run a command body; user errors become one red line and their exit code."""
    from taxcheck.errors import TaxcheckError, UserError

    try:
        return fn(*args, **kwargs) or 0
    except UserError as exc:
        _fail(str(exc), exc.exit_code)
    except TaxcheckError as exc:
        _fail(str(exc), 2)
    except Terminated:
        _fail("terminated", 143)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except BrokenPipeError:
        return 0
    except OSError as exc:  # an output file in a missing or read-only folder, a full disk: one line, not a traceback
        where = f"{exc.filename}: " if exc.filename else ""
        _fail(f"{where}{exc.strerror or exc}", 2)
    return 0


# --------------------------------------------------------------------------- run

ModelOpt = Annotated[
    Optional[list[str]],
    typer.Option("-m", "--model", metavar="SPEC", help="Model to test, PROVIDER:MODEL (repeat for several). Providers: openai, anthropic, ollama, vllm, llamacpp, lmstudio, or your own --endpoint. Add #completions for a base model."),
]


@app.command(
    epilog=examples(
        "taxcheck run -m openai:gpt-5.4-mini -m anthropic:claude-haiku-4-5 -b openai:gpt-5.4",
        "taxcheck run -m guarded -b plain --config taxcheck.toml -s standard --dry-run",
        "taxcheck run -m vllm:my-model -b vllm:my-base#completions -s standard --limit 200",
        "taxcheck run -m openai:new -b openai:old -f json --fail-over over_refusal=5 > result.json",
        tail="Exit codes: 0 done, 1 a --fail-over gate tripped, 2 bad usage or input, "
        "3 some items failed after retries or a gate could not be measured, 4 --max-cost stopped the run, "
        "130 interrupted / 143 terminated (rerun to resume).",
    )
)
def run(
    model: ModelOpt = None,
    baseline: Annotated[Optional[str], typer.Option("-b", "--baseline", metavar="SPEC", help="Model the taxes are measured against (same spec form as -m).")] = None,
    suite: Annotated[Optional[list[str]], typer.Option("-s", "--suite", metavar="SUITE", help="Built-in suite name, a suite .jsonl file, or FORMAT:FILE to import on the fly (xstest, orbench, sycophancy-eval, mmlu, gsm8k, humaneval). Repeatable. Default: quick.")] = None,
    judge: Annotated[Optional[str], typer.Option("--judge", metavar="SPEC", help="Model spec of an LLM judge that grades beside the rules.")] = None,
    concurrency: Annotated[int, typer.Option("-j", "--concurrency", metavar="N", help="Requests in flight per endpoint (backs off on 429s).")] = 16,
    limit: Annotated[Optional[int], typer.Option("--limit", metavar="N", help="Seeded, stratified sample of N items (pairs kept whole).")] = None,
    seed: Annotated[int, typer.Option("--seed", metavar="S", help="Seed for --limit.")] = 0,
    samples: Annotated[int, typer.Option("--samples", metavar="K", help="Ask each item K times (temperature defaults to 0.7 when K > 1).")] = 1,
    temperature: Annotated[Optional[float], typer.Option("--temperature", metavar="T", help="Sampling temperature (default 0, or 0.7 with --samples > 1).")] = None,
    max_tokens: Annotated[Optional[int], typer.Option("--max-tokens", metavar="N", help="Cap on each answer's length in tokens. Default: the model's profile: 512, or 8192 for reasoning models (OpenAI o-series and GPT-5 family, Claude 4.6+ and 5; 4096 for local Qwen3, DeepSeek-R1, gpt-oss), whose hidden reasoning is spent inside the cap.")] = None,
    timeout: Annotated[float, typer.Option("--timeout", metavar="SECONDS", help="Seconds before one request is abandoned (and retried).")] = 60.0,
    retries: Annotated[int, typer.Option("--retries", metavar="N", help="Retries per request on 429, 5xx, timeouts (never on 400/401/403/404).")] = 4,
    output: Annotated[Optional[Path], typer.Option("-o", "--output", metavar="FILE", help="Run file (JSONL). Default: taxcheck-runs/RUN_ID.jsonl; rerunning the same command resumes it.")] = None,
    fmt: Annotated[str, typer.Option("-f", "--format", metavar="FORMAT", help="table, json, markdown or csv (on stdout).")] = "table",
    fail_over: Annotated[Optional[list[str]], typer.Option("--fail-over", metavar="DIM=PP", help="DIM=PP: exit 1 when a candidate's tax on DIM is confidently above PP percentage points. Repeatable.")] = None,
    grader: Annotated[str, typer.Option("--grader", metavar="auto|rule|judge", help="Which verdicts feed the table when a judge graded: auto (judge where it has verdicts), rule or judge.")] = "auto",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print calls, cache hits, token and cost estimates per model; send nothing.")] = False,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Neither read nor write the response cache.")] = False,
    endpoint: Annotated[Optional[list[str]], typer.Option("--endpoint", metavar="NAME=URL", help="NAME=URL: an OpenAI-compatible endpoint usable as NAME:MODEL; its key comes from NAME_API_KEY.")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", metavar="TOML", help="taxcheck.toml with [endpoints.NAME] tables (default: ./taxcheck.toml if present).")] = None,
    prices: Annotated[Optional[Path], typer.Option("--prices", metavar="FILE", help="JSON price table (format of prompts/prices.json) consulted before the built-in one.")] = None,
    max_cost: Annotated[Optional[float], typer.Option("--max-cost", metavar="USD", help="US dollars: send no request that could take this invocation past it; exit 4 when it stops the run.")] = None,
    batch: Annotated[bool, typer.Option("--batch", help="Send through the provider's batch API (OpenAI Batch, Anthropic Message Batches): about half the price, no rate limits, results within hours. Interrupt and rerun to resume polling.")] = False,
    rpm: Annotated[Optional[int], typer.Option("--rpm", metavar="N", help="Client-side ceiling: requests per minute per endpoint.")] = None,
    tpm: Annotated[Optional[int], typer.Option("--tpm", metavar="N", help="Client-side ceiling: estimated tokens per minute per endpoint.")] = None,
    assume: Annotated[Optional[list[str]], typer.Option("--assume", metavar="NAME=VALUE", help="With --dry-run: an assumption of the detectable-tax figures, DIM=RATE (the baseline's rate, e.g. over_refusal=5%), discordance=X or heterogeneity=X. Repeatable.")] = None,
    sandbox: Annotated[str, typer.Option("--sandbox", metavar="TIER", help="Where model-written code (capability.code) runs: auto (user namespaces on Linux, else Docker/Podman if present), namespaces, docker, podman, or none (do not run it: code items are not graded).")] = "auto",
    unsafe_run_code: Annotated[bool, typer.Option("--unsafe-run-code", help="Run model-written code with no isolation boundary when none is available (resource limits only). Never the default; know what you are doing.")] = False,
    system: Annotated[Optional[Path], typer.Option("--system", metavar="FILE", help="A system prompt file for every -m model (not the baseline): each becomes a variant named SPEC+FILESTEM, so -m X -b X --system guard.txt measures what the prompt costs. For several prompts, use [models.NAME] tables in taxcheck.toml.")] = None,
) -> None:
    """Ask the models the suite's questions, grade the answers, print the tax table."""
    from taxcheck.run import RunOptions, execute

    opts = RunOptions(
        models=list(model or []),
        baseline=baseline,
        suites=list(suite or ["quick"]),
        judge=judge,
        concurrency=concurrency,
        limit=limit,
        seed=seed,
        samples=samples,
        temperature=temperature,
        max_tokens=max_tokens,
        timeout=timeout,
        retries=retries,
        output=output,
        fmt=fmt,
        fail_over=list(fail_over or []),
        grader=grader,
        dry_run=dry_run,
        no_cache=no_cache,
        endpoints=list(endpoint or []),
        config=config,
        prices=prices,
        max_cost=max_cost,
        rpm=rpm,
        tpm=tpm,
        batch=batch,
        system=system,
        sandbox=sandbox,
        unsafe_run_code=unsafe_run_code,
        assume=list(assume or []),
    )
    raise typer.Exit(_guard(execute, opts, sys.argv))


# --------------------------------------------------------------------------- report


@app.command(
    epilog=examples("taxcheck report taxcheck-runs/3f2a9c1b7d4e.jsonl", "taxcheck report run.jsonl -f markdown -o tax.md",
                    "taxcheck report run.jsonl --by type", "taxcheck report run.jsonl -f html -o report.html")
)
def report(
    run_file: Annotated[Path, typer.Argument(metavar="RUN.jsonl", help="A run file written by taxcheck run.")],
    fmt: Annotated[str, typer.Option("-f", "--format", metavar="FORMAT", help="table, json, markdown, csv or html (a self-contained page with plots and worst examples).")] = "table",
    output: Annotated[Optional[Path], typer.Option("-o", "--output", metavar="FILE", help="Write here instead of stdout.")] = None,
    fail_over: Annotated[Optional[list[str]], typer.Option("--fail-over", metavar="DIM=PP", help="DIM=PP gates, as in run.")] = None,
    grader: Annotated[str, typer.Option("--grader", metavar="auto|rule|judge", help="auto, rule or judge (see run --grader).")] = "auto",
    show: Annotated[Optional[str], typer.Option("--show", metavar="WHAT", help="Instead of the table, list graded responses: 'disagreements' (rule vs judge) or a dimension name such as over_refusal. With -f json, a JSON list of them.")] = None,
    by: Annotated[Optional[str], typer.Option("--by", metavar="type", help="Break every dimension down by the items' type (homonyms, privacy, medical ...): each type's n, rates and paired tax, largest tax first. Table and Markdown show the breakdown; JSON adds a 'breakdown' key; HTML a section.")] = None,
) -> None:
    """Re-render a saved run (rules are re-applied; no model is asked again)."""

    def body() -> int:
        from taxcheck.errors import UserError
        from taxcheck.report.pipeline import build_report, emit, exit_code, parse_gates, say_warnings
        from taxcheck.runfile import read_run

        gates = parse_gates(list(fail_over or []))
        data = read_run(run_file, warn=lambda m: print(f"warning: {m}", file=sys.stderr))
        if gates and not data.header.baseline:
            raise UserError(f"--fail-over compares against a baseline, and {run_file} was run without one (-b SPEC)")
        if gates and len(data.header.models) < 2:
            raise UserError(f"--fail-over needs a candidate besides the baseline, and {run_file} has none")
        if by not in (None, "type"):
            raise UserError(f"--by {by!r}: the one breakdown is --by type")
        if by is not None and fmt == "csv":
            raise UserError("--by type comes as a table, markdown, json or html, not csv")
        if show is not None:
            from taxcheck.report.audit import print_audit

            return print_audit(data, show, grader, fmt=fmt, output=output)
        # the HTML report always carries the breakdown section (a product team's first question)
        rep = build_report(data, run_file, gates=gates, grader=grader, by="type" if fmt == "html" else by)
        from taxcheck.console import stderr_console
        from taxcheck.report.failures import say_failures

        say_failures(rep.causes, stderr_console())
        if fmt == "html":
            from taxcheck.report.html import render_html

            say_warnings(rep, gates_too=True)
            html = render_html(data, rep, run_file, grades=rep.grades)
            if output is None:
                sys.stdout.write(html)
            else:
                output.write_text(html, encoding="utf-8")
                print(f"wrote {output}", file=sys.stderr)
        elif by is not None and fmt in ("table", "markdown"):
            from taxcheck.report.by_type import breakdown_markdown, print_breakdown
            from taxcheck.console import stdout_console

            say_warnings(rep, gates_too=True)
            if fmt == "markdown":
                text = breakdown_markdown(rep.breakdown)
                output.write_text(text, encoding="utf-8") if output is not None else sys.stdout.write(text)
            elif output is not None:
                with open(output, "w", encoding="utf-8") as fh:
                    print_breakdown(rep.breakdown, stdout_console(fh, color=False))
            else:
                print_breakdown(rep.breakdown, stdout_console())
        else:
            emit(rep, fmt, output)
        return exit_code(rep)

    raise typer.Exit(_guard(body))


# --------------------------------------------------------------------------- diff


@app.command(
    epilog=examples("taxcheck diff runs/march.jsonl runs/april.jsonl",
                    "taxcheck diff old.jsonl new.jsonl -f markdown --fail-over hedging=3 > diff.md",
                    "taxcheck diff old.jsonl new.jsonl --model openai:gpt-5.4-2026-03-17=openai:gpt-5.5")
)
def diff(
    old: Annotated[Path, typer.Argument(metavar="OLD.jsonl", help="The earlier run file.")],
    new: Annotated[Path, typer.Argument(metavar="NEW.jsonl", help="The later run file.")],
    fmt: Annotated[str, typer.Option("-f", "--format", metavar="FORMAT", help="table, json or markdown.")] = "table",
    output: Annotated[Optional[Path], typer.Option("-o", "--output", metavar="FILE", help="Write here instead of stdout.")] = None,
    fail_over: Annotated[Optional[list[str]], typer.Option("--fail-over", metavar="DIM=PP", help="DIM=PP: exit 1 when the change on DIM is confidently worse than PP points.")] = None,
    model_pair: Annotated[Optional[list[str]], typer.Option("--model", metavar="OLD=NEW", help="OLD=NEW: compare two specs that differ in name (repeatable).")] = None,
) -> None:
    """What changed between two runs, per dimension and model, on the items both ran."""

    def body() -> int:
        from taxcheck.report.diff import (
            diff_gates,
            diff_runs,
            render_diff_json,
            render_diff_markdown,
            render_diff_table,
        )
        from taxcheck.errors import UserError
        from taxcheck.report.pipeline import parse_gates
        from taxcheck.runfile import read_run

        if fmt not in ("table", "json", "markdown"):
            raise UserError(f"-f {fmt!r}: one of table, json, markdown")
        pairs = []
        for spec in model_pair or []:
            a, sep, b = spec.partition("=")
            if not sep or not a or not b:
                raise UserError(f"--model {spec!r}: expected OLD=NEW")
            pairs.append((a, b))
        warn = lambda m: print(f"warning: {m}", file=sys.stderr)  # noqa: E731
        old_data, new_data = read_run(old, warn=warn), read_run(new, warn=warn)
        if old.resolve() == new.resolve() or old_data.header.run_id == new_data.header.run_id and old_data.calls == new_data.calls:
            from taxcheck.console import say, stderr_console

            say(stderr_console(), "warning", "yellow", f"{old} and {new} are the same run: every change is 0")
        result = diff_runs(old_data, new_data, old_file=str(old), new_file=str(new), model_pairs=pairs or None)
        gates = diff_gates(result, parse_gates(list(fail_over or [])))
        if fmt == "table":
            from taxcheck.console import stdout_console

            if output is not None:
                with open(output, "w", encoding="utf-8") as fh:
                    render_diff_table(result, stdout_console(fh, color=False))
            else:
                render_diff_table(result, stdout_console())
        else:
            text = render_diff_json(result) if fmt == "json" else render_diff_markdown(result)
            if output is not None:
                output.write_text(text, encoding="utf-8")
            else:
                sys.stdout.write(text if text.endswith("\n") else text + "\n")
        if any(g.tripped_by for g in gates):
            return 1
        return 3 if any(g.unmeasured for g in gates) else 0  # a gate with nothing to compare fails closed

    raise typer.Exit(_guard(body))


# --------------------------------------------------------------------------- regrade


@app.command(
    epilog=examples("taxcheck regrade run.jsonl --judge openai:gpt-5.4",
                    "taxcheck regrade run.jsonl --judge anthropic:claude-sonnet-4-6 -o judged.jsonl && taxcheck report judged.jsonl",
                    "taxcheck regrade run.jsonl --rerun-code --sandbox docker")
)
def regrade(
    run_file: Annotated[Path, typer.Argument(metavar="RUN.jsonl", help="A run file written by taxcheck run.")],
    judge: Annotated[Optional[str], typer.Option("--judge", metavar="SPEC", help="Model spec of the judge. Without it, only the rules are re-applied.")] = None,
    output: Annotated[Optional[Path], typer.Option("-o", "--output", metavar="FILE", help="Write the regraded run here (default: append verdicts to RUN_FILE).")] = None,
    fmt: Annotated[str, typer.Option("-f", "--format", metavar="FORMAT", help="table, json, markdown or csv.")] = "table",
    concurrency: Annotated[int, typer.Option("-j", "--concurrency", metavar="N", help="Judge requests in flight.")] = 16,
    timeout: Annotated[float, typer.Option("--timeout", metavar="SECONDS", help="Seconds per judge request.")] = 60.0,
    retries: Annotated[int, typer.Option("--retries", metavar="N", help="Retries per judge request.")] = 4,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Neither read nor write the response cache.")] = False,
    endpoint: Annotated[Optional[list[str]], typer.Option("--endpoint", metavar="NAME=URL", help="NAME=URL, as in run.")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", metavar="TOML", help="taxcheck.toml, as in run.")] = None,
    rerun_code: Annotated[bool, typer.Option("--rerun-code", help="Run the code answers again in the sandbox and store new verdicts (without it, code verdicts are read from the run file and no code runs).")] = False,
    sandbox: Annotated[str, typer.Option("--sandbox", metavar="TIER", help="With --rerun-code: where the code runs, as in run.")] = "auto",
    unsafe_run_code: Annotated[bool, typer.Option("--unsafe-run-code", help="With --rerun-code: as in run.")] = False,
) -> None:
    """Re-score a finished run with the current rules and/or an LLM judge, without asking the models again."""

    def body() -> int:
        from taxcheck.send.cache import Cache, default_cache_dir
        from taxcheck.console import say, stderr_console
        from taxcheck.errors import UserError
        from taxcheck.report.pipeline import build_report, emit
        from taxcheck.grade.regrade import regrade as do_regrade
        from taxcheck.runfile import read_run
        from taxcheck.send.specs import Registry

        from taxcheck.grade.sandbox import sandbox_request

        err = stderr_console()
        warn = lambda m: say(err, "warning", "yellow", m)  # noqa: E731
        requested = sandbox_request(sandbox, unsafe_run_code)
        if (sandbox != "auto" or unsafe_run_code) and not rerun_code:
            raise UserError("--sandbox and --unsafe-run-code only apply with --rerun-code (without it no code runs)")
        spec = Registry.load(list(endpoint or []), config).resolve(judge) if judge else None
        cache = Cache(None if no_cache else default_cache_dir(), warn=warn)
        try:
            target = do_regrade(run_file, spec, output, cache, concurrency, timeout, retries, warn)
        finally:
            cache.close()
        if rerun_code:
            from taxcheck.grade.code_stage import grade_code
            from taxcheck.grade.sandbox import choose

            grade_code(target, choose(requested), warn, rerun=True)
        emit(build_report(read_run(target, warn=warn), target), fmt)
        return 0

    raise typer.Exit(_guard(body))


# --------------------------------------------------------------------------- suites


@suites_app.callback(invoke_without_command=True)
def suites_list(
    ctx: typer.Context,
    models: Annotated[int, typer.Option("--models", metavar="N", help="Models per run, to count calls.")] = 1,
) -> None:
    """List built-in suites: items, calls per model and dimensions fed.

    Example: taxcheck suites; taxcheck suites show quick
    """
    if ctx.invoked_subcommand is not None:
        return
    raise typer.Exit(_guard(_list_suites, models))


def _list_suites(models: int) -> int:
    from taxcheck.suites.info import print_suite_list

    print_suite_list(models)
    return 0


@suites_app.command("show", epilog=examples("taxcheck suites show quick", "taxcheck suites show my-suite.jsonl --examples 5",
                                            "taxcheck suites show standard --samples 3 --assume over_refusal=10%"))
def suites_show(
    name: Annotated[str, typer.Argument(metavar="SUITE", help="Built-in suite name or a suite file.")],
    examples: Annotated[int, typer.Option("--examples", metavar="N", help="Sample items to print.")] = 3,
    samples: Annotated[int, typer.Option("--samples", metavar="K", help="Answers per item, for the detectable-tax figures.")] = 1,
    assume: Annotated[Optional[list[str]], typer.Option("--assume", metavar="NAME=VALUE", help="An assumption of the detectable-tax figures, as in run --dry-run (DIM=RATE, discordance=X, heterogeneity=X).")] = None,
) -> None:
    """Per-dimension and per-type counts of one suite, the smallest tax a run of it can detect, and a few sample items."""

    def body() -> int:
        from taxcheck.report.dry_run import print_power
        from taxcheck.measure.power import parse_assumptions
        from taxcheck.suites.format import resolve_suite
        from taxcheck.suites.info import print_suite_detail

        if samples < 1:
            from taxcheck.errors import UserError

            raise UserError("--samples must be at least 1")
        assumed = parse_assumptions(list(assume or []))
        suite = resolve_suite(name)
        heading = f"smallest tax a run of it can call confident (80 % power, {samples} answer(s) per item):"
        print_suite_detail(suite, examples, after=lambda console: print_power(console, suite.items, samples, assumed, heading))
        return 0

    raise typer.Exit(_guard(body))


# --------------------------------------------------------------------------- validate


@app.command(epilog=examples("taxcheck validate my-suite.jsonl && taxcheck run -m openai:gpt-5.4-mini -s my-suite.jsonl"))
def validate(
    files: Annotated[list[Path], typer.Argument(metavar="SUITE.jsonl...", help="Suite files (.jsonl) to check.")],
) -> None:
    """Check suite files; print every problem as file:line: message (exit 2 if any)."""

    def body() -> int:
        from taxcheck.suites.format import parse_lines

        bad = 0
        for f in files:
            try:
                data = f.read_bytes()
            except OSError as exc:
                print(f"{f}: cannot read ({exc.strerror})")
                bad += 1
                continue
            items, problems = parse_lines(data.splitlines(), str(f))
            for p in problems:
                print(p)
            if not items and not problems:
                print(f"{f}: the suite has no items")
                problems = ["empty"]
            bad += bool(problems)
            if not problems:
                print(f"{f}: ok, {len(items)} items", file=sys.stderr)
        return 2 if bad else 0

    raise typer.Exit(_guard(body))


# --------------------------------------------------------------------------- import


@app.command(
    "import",
    epilog=examples("taxcheck import xstest xstest_prompts.csv -o xstest.jsonl",
                    "taxcheck import orbench or-bench-hard-1k.csv -o orbench-hard.jsonl",
                    "taxcheck import sycophancy-eval are_you_sure.jsonl -o pushback.jsonl",
                    tail="Or skip the file: taxcheck run -m openai:gpt-5.4-mini -s xstest:xstest_prompts.csv"),
)
def import_(
    fmt: Annotated[str, typer.Argument(metavar="FORMAT", help="xstest, orbench, sycophancy-eval, mmlu, gsm8k or humaneval.")],
    file: Annotated[Path, typer.Argument(metavar="FILE", help="The dataset file you downloaded.")],
    output: Annotated[Path, typer.Option("-o", "--output", metavar="FILE", help="Suite file to write.")],
    expect: Annotated[Optional[str], typer.Option("--expect", metavar="comply|refuse", help="orbench: comply or refuse, when the file name does not say (80k / hard-1k comply, toxic refuse).")] = None,
    kind: Annotated[Optional[str], typer.Option("--kind", metavar="KIND", help="sycophancy-eval: are-you-sure or answer, when the file name does not say.")] = None,
    subject: Annotated[Optional[str], typer.Option("--subject", metavar="SUBJECT", help="mmlu: subject for headerless per-subject CSVs whose name does not say.")] = None,
) -> None:
    """Turn a public dataset you downloaded into a taxcheck suite (nothing is downloaded)."""

    def body() -> int:
        from taxcheck.errors import SuiteError
        from taxcheck.suites.importers import ImportReport, iter_import, write_suite

        report = ImportReport()
        try:
            n = write_suite(iter_import(fmt, file, report=report, expect=expect, kind=kind, subject=subject), output)
        except SuiteError as exc:
            for problem in exc.problems:
                print(problem, file=sys.stderr)
            return 2
        print(f"{output}: {report.summary() or f'{n} items'}", file=sys.stderr)
        return 0

    raise typer.Exit(_guard(body))


# --------------------------------------------------------------------------- models


@app.command(epilog=examples("taxcheck models openai:gpt-5.4-mini anthropic:claude-haiku-4-5 ollama:llama3.1",
                             "taxcheck models openai:o4-mini --probe"))
def models(
    specs: Annotated[list[str], typer.Argument(metavar="SPEC...", help="Model specs (or variant names) to check.")],
    endpoint: Annotated[Optional[list[str]], typer.Option("--endpoint", metavar="NAME=URL", help="NAME=URL, as in run.")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", metavar="TOML", help="taxcheck.toml, as in run.")] = None,
    timeout: Annotated[float, typer.Option("--timeout", metavar="SECONDS", help="Seconds per check.")] = 20.0,
    probe: Annotated[bool, typer.Option("--probe", help="Also send one tiny request in the form a run would use (costs a few tokens).")] = False,
) -> None:
    """Can each model be reached with its key, and is it served? One line per spec.

    Lists the endpoint's models (GET /v1/models: no tokens spent) and checks the name is
    among them; --probe also sends one tiny request with the model's profile and settings.
    """

    def body() -> int:
        from taxcheck.send.reach import check_models

        return check_models(specs, list(endpoint or []), config, timeout, probe)

    raise typer.Exit(_guard(body))


class Terminated(KeyboardInterrupt):
    """SIGTERM, turned into an exception so that it stops a run as cleanly as Ctrl-C."""


def _on_sigterm(_signum, _frame) -> None:
    raise Terminated()


def main() -> None:
    import signal

    signal.signal(signal.SIGTERM, _on_sigterm)
    if sys.argv[1:] == ["suites"]:
        # The listing people run first. Typer 0.29 builds a pydantic adapter per option
        # when it dispatches a command (~0.1 s here); a bare listing has no option to parse.
        raise SystemExit(_guard(_list_suites, 1))
    try:
        app()
    except Terminated:
        sys.exit(143)
    except KeyboardInterrupt:  # a Ctrl-C that lands outside a command body (start-up, exit)
        sys.exit(130)


if __name__ == "__main__":
    main()
