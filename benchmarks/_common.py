"""Shared helpers for the performance benchmarks (issue 5 §1).

Why a helper module: every benchmark starts the loopback fake server in its own process,
writes a generated suite, runs ``taxcheck`` as a child process and reads that child's own
resource usage. Doing these the same way everywhere keeps the figures comparable.

Per-child resource usage comes from ``os.wait4`` (CPU time and peak RSS of exactly that
child), not from ``getrusage(RUSAGE_CHILDREN)``, whose ``ru_maxrss`` is the maximum over
*every* waited-for child, the fake server included.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FAKEAPI = REPO / "tests" / "fakeapi.py"
PYTHON = sys.executable
VENV_SCRIPT = Path(sys.prefix) / "bin" / "taxcheck"
"""The real console script of this interpreter (no pyenv shim in front of it)."""


def taxcheck_cmd() -> list[str]:
    """How the benchmarks launch taxcheck: the venv's console script, else ``python -m``."""
    if VENV_SCRIPT.exists():
        return [str(VENV_SCRIPT)]
    return [PYTHON, "-m", "taxcheck"]


@dataclass
class ChildResult:
    """One finished child process: wall time, its own CPU time and peak RSS."""

    argv: list[str]
    returncode: int
    wall_s: float
    user_s: float
    sys_s: float
    maxrss_mb: float
    stdout: str
    stderr: str
    started_at: float = 0.0  # time.perf_counter() just before the fork
    ended_at: float = 0.0  # time.perf_counter() when the exit was reaped

    @property
    def cpu_s(self) -> float:
        return self.user_s + self.sys_s


def run_child(
    argv: list[str],
    env: dict[str, str] | None = None,
    poll: Callable[[], None] | None = None,
    poll_interval_s: float = 0.005,
    check: bool = True,
) -> ChildResult:
    """Run ``argv`` to completion; stdout/stderr go to temp files so no pipe can block.

    ``poll`` (if given) is called every ``poll_interval_s`` while the child runs, e.g. to
    watch a run file grow.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        if poll is None:
            _pid, status, ru = os.wait4(proc.pid, 0)
        else:
            while True:
                pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
                if pid:
                    break
                poll()
                time.sleep(poll_interval_s)
            poll()
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        result = ChildResult(
            argv=list(argv),
            returncode=proc.returncode,
            wall_s=wall,
            user_s=ru.ru_utime,
            sys_s=ru.ru_stime,
            maxrss_mb=ru.ru_maxrss / 1024.0,  # Linux: KiB
            stdout=out.read().decode("utf-8", "replace"),
            stderr=err.read().decode("utf-8", "replace"),
            started_at=start,
            ended_at=start + wall,
        )
    if check and result.returncode != 0:
        raise SystemExit(
            f"child failed ({result.returncode}): {' '.join(argv)}\n--- stderr ---\n{result.stderr[-3000:]}"
        )
    return result


@dataclass
class FakeServer:
    """A running ``tests/fakeapi.py`` process."""

    proc: subprocess.Popen
    base_url: str

    @property
    def openai_url(self) -> str:
        return self.base_url.rstrip("/") + "/v1"


@contextmanager
def fake_server(latency: float) -> Iterator[FakeServer]:
    """Start the loopback fake server as a separate process; SIGTERM it on exit."""
    proc = subprocess.Popen(
        [PYTHON, str(FAKEAPI), "--port", "0", "--latency", str(latency)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        if not line.startswith("http"):
            raise SystemExit(f"fakeapi did not print its URL (got {line!r})")
        base = line[:-3] if line.rstrip("/").endswith("/v1") else line
        yield FakeServer(proc, base.rstrip("/"))
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def write_suite(path: Path, n: int, prefix: str = "t") -> Path:
    """N simple capability.math items with distinct prompts (distinct cache keys)."""
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(1, n + 1):
            a, b = i, i % 97 + 3
            item = {
                "id": f"{prefix}-{i}",
                "category": "capability.math",
                "prompt": f"What is {a}+{b}?",
                "expect": "answer",
                "answer": {"number": a + b},
            }
            fh.write(json.dumps(item) + "\n")
    return path


def suite_prompts(path: Path) -> list[str]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line)["prompt"] for line in fh if line.strip()]


def taxcheck_env(server: FakeServer | None, workdir: Path, cache_dir: Path | None = None) -> dict[str, str]:
    """Environment for a taxcheck child: fake server URL, throwaway cache and runs dirs."""
    env = dict(os.environ)
    env.update(
        OPENAI_API_KEY="bench-key",
        TAXCHECK_CACHE_DIR=str(cache_dir or workdir / "cache"),
        TAXCHECK_RUNS_DIR=str(workdir / "runs"),
        PYTHONUNBUFFERED="1",
    )
    if server is not None:
        env["OPENAI_BASE_URL"] = server.openai_url
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    return env


@contextmanager
def workdir(keep: bool = False) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="taxcheck-bench-"))
    try:
        yield path
    finally:
        if not keep:
            shutil.rmtree(path, ignore_errors=True)


def median(values: list[float]) -> float:
    return statistics.median(values)


def spread(values: list[float]) -> str:
    """``median (min–max, n=K)`` so a reader sees the noise next to the figure."""
    return f"{median(values):.3f} (min {min(values):.3f}, max {max(values):.3f}, n={len(values)})"


def load_line() -> str:
    """Machine load when measuring: other jobs on this box distort every figure."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} CPUs"


def banner(title: str) -> None:
    print(f"== {title}")
    print(f"   {load_line()}; python {sys.version.split()[0]}; taxcheck via {' '.join(taxcheck_cmd())}")


def count_call_lines(path: Path) -> int:
    n = 0
    with open(path, "rb") as fh:
        for line in fh:
            if line.startswith(b'{"type":"call"'):
                n += 1
    return n
