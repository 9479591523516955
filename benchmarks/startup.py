"""Start-up: how long taxcheck takes on paths that send nothing, what they import, and how
soon a run's first request reaches the server.

Issue 5 §1 target: ``taxcheck --help`` under 0.25 s; no SDK (openai, anthropic) imported on
``--help``, ``suites`` or ``validate``. Issue 13 §5 target: an uncached ``taxcheck run`` of
one provider sends its first request within 1 s of launch, and imports only its own SDK.

Each command is timed ``--runs`` times (median printed, min/max beside it) through three
launchers, because users meet all three:

* ``venv``: the interpreter's own console script (``sys.prefix/bin/taxcheck``);
* ``-m``:   ``python -m taxcheck``;
* ``shim``: the first ``taxcheck`` on PATH when it is not the venv script (on this machine
  the pyenv bash shim, which costs ~100 ms of its own before Python starts).

Then each command runs once more with ``PYTHONPROFILEIMPORTTIME=1`` and the script lists the
SDK modules imported (must be none) and the ten most expensive top-level imports.

Time to first request: ``taxcheck run -m PROVIDER:bench -s quick --no-cache`` against the
loopback server (``tests/fakeapi.py`` in a thread of this script), from the fork to the
moment the server has read the first request (one monotonic clock), per provider; beside it
the floor no run of that provider can beat: ``python -c "import SDK"``, since the request
goes through the SDK.

    python benchmarks/startup.py [--runs 10]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    PYTHON,
    REPO,
    VENV_SCRIPT,
    banner,
    load_line,
    median,
    run_child,
    spread,
    workdir,
)

sys.path.insert(0, str(REPO / "tests"))
from fakeapi import FakeAPI  # noqa: E402

HELP_TARGET_S = 0.25
FIRST_REQUEST_TARGET_S = 1.0
SDKS = ("openai", "anthropic", "httpx", "httpx2")
COMMANDS = {
    "--help": ["--help"],
    "suites": ["suites"],
    "validate standard": ["validate", str(REPO / "prompts" / "suites" / "standard.jsonl")],
}


def launchers() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    if VENV_SCRIPT.exists():
        found["venv"] = [str(VENV_SCRIPT)]
    found["-m"] = [PYTHON, "-m", "taxcheck"]
    # Run through a pyenv shim, this script sees the version's bin/ first on PATH, so look
    # for a shim explicitly as well as for whatever else PATH would find.
    candidates = [shutil.which("taxcheck")]
    pyenv_root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    candidates.append(os.path.join(pyenv_root, "shims", "taxcheck"))
    for path in candidates:
        if path and os.access(path, os.X_OK) and Path(path).resolve() != VENV_SCRIPT.resolve():
            found["shim"] = [path]
            break
    return found


_IMPORT_LINE = re.compile(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)")


def import_profile(stderr: str) -> tuple[list[str], list[tuple[float, str]]]:
    """(SDK modules imported, top-level imports by cumulative ms, largest first)."""
    sdk: list[str] = []
    top: list[tuple[float, str]] = []
    for line in stderr.splitlines():
        m = _IMPORT_LINE.match(line)
        if not m:
            continue
        cumulative_us, indent, module = int(m.group(2)), len(m.group(3)), m.group(4)
        if module.split(".")[0] in SDKS:
            sdk.append(module)
        if indent == 1:
            top.append((cumulative_us / 1000.0, module))
    top.sort(reverse=True)
    return sdk, top


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10, help="timed runs per command and launcher")
    args = ap.parse_args(argv)
    banner("start-up: paths that send nothing")
    ok = True
    with workdir() as work:
        env = dict(os.environ, TAXCHECK_CACHE_DIR=str(work / "cache"), TAXCHECK_RUNS_DIR=str(work / "runs"))
        env.pop("PYTHONPROFILEIMPORTTIME", None)
        run_child([PYTHON, "-c", "pass"], env=env)  # warm the page cache
        base = [run_child([PYTHON, "-c", "pass"], env=env).wall_s for _ in range(args.runs)]
        print(f"   bare `python -c pass` [s]: {spread(base)}  (the floor of any Python CLI here)")
        for lname, launcher in launchers().items():
            for cname, cargs in COMMANDS.items():
                argv_ = launcher + cargs
                run_child(argv_, env=env)  # warm-up, not timed
                walls = [run_child(argv_, env=env).wall_s for _ in range(args.runs)]
                print(f"   {lname:5s} taxcheck {cname:18s} [s]: {spread(walls)}")
                if cname == "--help" and lname in ("venv", "-m") and median(walls) >= HELP_TARGET_S:
                    ok = False
        print(f"   target: --help median < {HELP_TARGET_S} s via venv and -m: {'met' if ok else 'MISSED'}  ({load_line()})")

        print("-- imports (PYTHONPROFILEIMPORTTIME=1, venv launcher)")
        launcher = launchers().get("venv") or [PYTHON, "-m", "taxcheck"]
        for cname, cargs in COMMANDS.items():
            res = run_child(launcher + cargs, env=dict(env, PYTHONPROFILEIMPORTTIME="1"))
            sdk, top = import_profile(res.stderr)
            total = sum(ms for ms, _ in top)
            verdict = "none (OK)" if not sdk else f"IMPORTED {sorted({m.split('.')[0] for m in sdk})}"
            ok &= not sdk
            print(f"   {cname}: SDK imports: {verdict}; top-level imports total {total:.0f} ms; largest:")
            print("     " + ", ".join(f"{mod} {ms:.0f}" for ms, mod in top[:10]))
        ok &= first_request(work, env, args.runs)
    print(f"== start-up targets {'met' if ok else 'MISSED'}")
    return 0


def first_request(work: Path, env: dict[str, str], runs: int) -> bool:
    """Launch -> first request at the server, per provider; the SDK import floor beside it."""
    print("-- time to first request (taxcheck run -s quick --no-cache, loopback server)")
    ok = True
    launcher = launchers().get("venv") or [PYTHON, "-m", "taxcheck"]
    with FakeAPI() as api:
        for provider, sdk in (("openai", "openai"), ("anthropic", "anthropic")):
            penv = dict(env, OPENAI_BASE_URL=api.base_url + "/v1", OPENAI_API_KEY="bench-key",
                        ANTHROPIC_BASE_URL=api.base_url, ANTHROPIC_API_KEY="bench-key")
            argv = launcher + ["run", "-m", f"{provider}:bench", "-s", "quick", "--no-cache", "-f", "json"]
            firsts: list[float] = []
            for i in range(runs + 1):
                api.requests.clear()
                start = time.monotonic()
                run_child(argv + ["-o", str(work / f"first-{provider}-{i}.jsonl")], env=penv)
                reqs = list(api.requests)
                if i:  # the first is a warm-up
                    firsts.append(min(r.received_at for r in reqs) - start)
            floor = [run_child([PYTHON, "-c", f"import {sdk}"], env=env).wall_s for _ in range(runs)]
            res = run_child(argv + ["-o", str(work / f"first-{provider}-imports.jsonl")],
                            env=dict(penv, PYTHONPROFILEIMPORTTIME="1"))
            imported = sorted({m.split(".")[0] for m in import_profile(res.stderr)[0]} & {"openai", "anthropic"})
            met = median(firsts) < FIRST_REQUEST_TARGET_S
            ok &= met and imported == [sdk]
            print(f"   {provider:9s} first request after [s]: {spread(firsts)}  "
                  f"[target < {FIRST_REQUEST_TARGET_S:g} s: {'met' if met else 'MISSED'}]")
            print(f"   {'':9s} floor `python -c \"import {sdk}\"` [s]: {spread(floor)}; SDKs imported by the run: "
                  f"{', '.join(imported) or 'none'} ({'OK' if imported == [sdk] else 'WRONG'})")
    print(f"   ({load_line()})")
    return ok


if __name__ == "__main__":
    sys.exit(main())
